"""Which files of a volume changed between two of its trees, without reading any file's data.

The block-level diff (:mod:`.diff`) says which *blocks* a snapshot references and an older one
does not; a resync's dry run needs the *files* behind them, and a full answer (read every file
of both trees and compare) costs as much as the volume. The write-anywhere layout answers it
cheaply, from metadata only:

1. **changed inodes.** Every inode lives in the inode file, 32 to a block. Copy-on-write never
   overwrites a block a snapshot references, so an inode-file block whose pointer is the same in
   both trees holds the same 32 inodes; only the inode-file blocks whose pointers differ are
   read, at both sides, and compared slot by slot. An inode whose 128 bytes are equal (type,
   size, generation, block pointers with their birth CPs) has equal contents in both trees, for
   the same reason. Cost: the inode file's pointer tree (one indirect block per 256 inode-file
   blocks) plus two reads per changed inode-file block.
2. **their names.** Inodes carry no parent pointer, so the directory trees of both sides are
   walked together, reading directory blocks only (names and inode numbers, never a file's
   data); a directory whose inode is unchanged in both trees has the same entries and is read
   once. A file whose entry names the same inode at both sides, and whose inode is unchanged, is
   unchanged; every other name is reported.

The answer (:class:`FileChanges`) is exact at the level of names and inodes: a path is listed
when it exists at one side only, or names a different or changed inode. A listed file may
still hold equal bytes (rewritten with the same data); a caller that needs byte equality reads
only the listed files. ``base`` None lists every file of the target as created (a baseline).

Uses: numpy, :mod:`.layout`, :mod:`.volume` (its snapshot records and committed trees), errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xvol.reference.volume.layout import INODE_SIZE, INODES_PER_BLOCK, ROOT_INODE, FileType
from xvol.reference.volume.volume import SnapshotRef, Volume, _FileSystem


@dataclass(frozen=True)
class FileChanges:
    """Paths (in the volume, sorted) that differ from a base tree to a target tree: files
    (anything not a directory) ``created`` (target only), ``deleted`` (base only) and
    ``modified`` (at both, naming another inode or a changed one); directories ``created_dirs``
    and ``removed_dirs``. A name that is a file at one side and a directory at the other is in
    both kinds of list. The cost counters say what was read: inodes that differ, inode-file
    blocks read and directories read."""

    created: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    created_dirs: tuple[str, ...] = ()
    removed_dirs: tuple[str, ...] = ()
    inodes_changed: int = 0
    inode_blocks_read: int = 0
    directories_read: int = 0

    @property
    def files(self) -> tuple[str, ...]:
        """Every file path that differs, sorted."""
        return tuple(sorted({*self.created, *self.deleted, *self.modified}))


def changed_inodes(base: _FileSystem | None, target: _FileSystem) -> tuple[set[int], int]:
    """Inode numbers whose 128-byte records differ between two trees (every used inode of
    ``target`` when ``base`` is None), and how many inode-file blocks were read."""
    t_vbn = target.ifile.vbn[: target.ifile.slots]
    b_vbn = np.zeros(0, dtype=np.int64) if base is None else base.ifile.vbn[: base.ifile.slots]
    slots = max(len(t_vbn), len(b_vbn))
    padded_t = np.zeros(slots, dtype=np.int64)
    padded_b = np.zeros(slots, dtype=np.int64)
    padded_t[: len(t_vbn)] = t_vbn
    padded_b[: len(b_vbn)] = b_vbn
    differing = np.flatnonzero(padded_t != padded_b)
    changed: set[int] = set()
    reads = 0
    zero = np.zeros((INODES_PER_BLOCK, INODE_SIZE), dtype=np.uint8)
    for index in differing.tolist():
        sides = []
        for tree, vbns in ((base, padded_b), (target, padded_t)):
            if tree is None or not vbns[index]:
                sides.append(zero)
            else:
                raw = tree.ifile.block(tree.space, index)
                sides.append(np.asarray(raw).reshape(INODES_PER_BLOCK, INODE_SIZE))
                reads += 1
        slot = np.flatnonzero((sides[0] != sides[1]).any(axis=1))
        changed.update(int(index * INODES_PER_BLOCK + s) for s in slot.tolist())
    changed.discard(0)
    return changed, reads


@dataclass
class _Walk:
    """The accumulating answer of one :func:`changed_files` walk."""

    base: _FileSystem | None
    target: _FileSystem
    changed: set[int]
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    created_dirs: list[str] = field(default_factory=list)
    removed_dirs: list[str] = field(default_factory=list)
    directories_read: int = 0

    def entries(self, tree: _FileSystem | None, ino: int | None) -> dict[bytes, tuple[int, int]]:
        """Name -> (inode, type) of directory ``ino`` in ``tree`` (empty for None)."""
        if tree is None or ino is None:
            return {}
        self.directories_read += 1
        out: dict[bytes, tuple[int, int]] = {}
        for block in tree.directory(ino).blocks:
            out.update(block)
        return out

    def directory(self, path: str, b_ino: int | None, t_ino: int | None) -> None:
        """Compare directory ``path``: inode ``b_ino`` in the base, ``t_ino`` in the target."""
        t_entries = self.entries(self.target, t_ino)
        if b_ino is not None and b_ino == t_ino and b_ino not in self.changed:
            b_entries = t_entries  # the same inode, unchanged: the same entries
        else:
            b_entries = self.entries(self.base, b_ino)
        for name in sorted(set(b_entries) | set(t_entries)):
            child = path.rstrip("/") + "/" + name.decode()
            b, t = b_entries.get(name), t_entries.get(name)
            b_dir = b is not None and b[1] == FileType.DIRECTORY
            t_dir = t is not None and t[1] == FileType.DIRECTORY
            if b_dir or t_dir:
                if t_dir and not b_dir:
                    self.created_dirs.append(child)
                elif b_dir and not t_dir:
                    self.removed_dirs.append(child)
                b_sub = b[0] if b_dir and b is not None else None
                t_sub = t[0] if t_dir and t is not None else None
                self.directory(child, b_sub, t_sub)
            b_file = b if b is not None and not b_dir else None
            t_file = t if t is not None and not t_dir else None
            if b_file is None and t_file is None:
                continue
            if b_file is None:
                self.created.append(child)
            elif t_file is None:
                self.deleted.append(child)
            elif b_file[0] != t_file[0] or t_file[0] in self.changed:
                self.modified.append(child)


def changed_files(
    volume: Volume, base: SnapshotRef | None, target: SnapshotRef | None = None
) -> FileChanges:
    """The files and directories that differ from snapshot ``base`` (None: an empty tree) to
    snapshot ``target`` (None: the active file system as of its last CP) of ``volume`` (see the
    module text); reads metadata only."""
    target_tree = volume._tree(target)
    base_tree = None if base is None else volume._tree(base)
    changed, reads = changed_inodes(base_tree, target_tree)
    walk = _Walk(base_tree, target_tree, changed)
    walk.directory("/", None if base_tree is None else ROOT_INODE, ROOT_INODE)
    return FileChanges(
        tuple(sorted(walk.created)),
        tuple(sorted(walk.deleted)),
        tuple(sorted(walk.modified)),
        tuple(sorted(walk.created_dirs)),
        tuple(sorted(walk.removed_dirs)),
        len(changed),
        reads,
        walk.directories_read,
    )


__all__ = ["FileChanges", "changed_files", "changed_inodes"]
