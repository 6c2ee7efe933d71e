"""One file's block-pointer tree in memory, and the write-anywhere block allocator.

A file (a regular file, a directory, the inode file or the allocation-map file) maps file block
numbers (FBN) to volume block numbers (VBN) through the pointers of its inode: 4 direct pointers,
one single-indirect block (256 pointers) and one double-indirect block (256 pointers to indirect
blocks). :class:`BlockTree` holds that mapping as numpy arrays plus the file's *dirty* blocks,
changed since the last consistency point (CP) and not yet written anywhere.

Life cycle of a tree: loaded from its inode's pointers (reading the indirect blocks) -> blocks
made dirty by writes and truncates (only in memory; nothing on the space changes) -> at a CP,
:meth:`BlockTree.assign` gives every dirty block, and every indirect block above one, a *new* VBN
from the :class:`Allocator` (write anywhere: a referenced block is never overwritten) and frees the
old one -> :meth:`BlockTree.collect` hands the bytes to write -> the CP commits and the tree is
clean again. Every pointer written at CP ``c`` carries birth CP ``c``.

The allocator holds three bitmaps over the volume's blocks. ``used``: the active file system's
allocation map (stored in the map file at each CP). ``held``: the union of every snapshot's map
(blocks a snapshot still references). ``pending``: blocks freed since the last CP, still referenced
by the committed root and so not reusable until the next CP commits. A block is free when none of
the three holds it.

Uses: numpy, :mod:`.layout`, :class:`xvol.reference.storage.block.VolumeSpace` (reads only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt

from xvol.errors import IntegrityError, OutOfSpaceError
from xvol.reference.storage.block import BLOCK_SIZE, BlockNumbers, Blocks, VolumeSpace
from xvol.reference.volume.layout import (
    BITS_PER_MAP_BLOCK,
    FIRST_DATA_BLOCK,
    L1_COUNT,
    NDIRECT,
    POINTERS_PER_BLOCK,
    decode_pointers,
    encode_pointers,
)

Allocate = Callable[[int], BlockNumbers]
Free = Callable[[BlockNumbers], None]

_ZERO_BLOCK = np.zeros(BLOCK_SIZE, dtype=np.uint8)
_ZERO_BLOCK.setflags(write=False)


def l1_index(fbn: int) -> int:
    """Which indirect block maps ``fbn`` (-1: a direct pointer; 0: the single indirect block;
    ``j >= 1``: the ``j``-th indirect block under the double indirect block)."""
    if fbn < NDIRECT:
        return -1
    if fbn < NDIRECT + POINTERS_PER_BLOCK:
        return 0
    return 1 + (fbn - NDIRECT - POINTERS_PER_BLOCK) // POINTERS_PER_BLOCK


def l1_range(j: int) -> tuple[int, int]:
    """The FBNs ``[lo, hi)`` that indirect block ``j`` maps."""
    lo = NDIRECT + j * POINTERS_PER_BLOCK
    return lo, lo + POINTERS_PER_BLOCK


def _l1_indices(lo: int, hi: int) -> range:
    """Indirect blocks that map some FBN in ``[lo, hi)``."""
    if hi <= NDIRECT or hi <= lo:
        return range(0)
    return range(l1_index(max(lo, NDIRECT)), l1_index(hi - 1) + 1)


class BlockTree:
    """The pointer tree of one file, with its dirty blocks.

    Invariants: ``vbn[f] == 0`` iff FBN ``f`` is a hole on the space; every key of ``dirty`` is
    below ``slots``; ``dirty_l1`` holds the indirect blocks whose pointers changed since the last
    CP (and ``dirty_l2`` whether the double indirect block's did).
    """

    def __init__(self, slots: int = 0) -> None:
        self.slots = slots
        cap = max(slots, NDIRECT)
        self.vbn = np.zeros(cap, dtype=np.int64)
        self.birth = np.zeros(cap, dtype=np.int64)
        self.l1_vbn = np.zeros(L1_COUNT, dtype=np.int64)
        self.l1_birth = np.zeros(L1_COUNT, dtype=np.int64)
        self.l2_vbn = 0
        self.l2_birth = 0
        self.dirty: dict[int, npt.NDArray[np.uint8]] = {}
        self.dirty_l1: set[int] = set()
        self.dirty_l2 = False

    # -- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, space: VolumeSpace, pointers: npt.NDArray[np.int64], slots: int) -> BlockTree:
        """The tree an inode's ``pointers`` root, mapping ``slots`` blocks (reads its indirect
        blocks from ``space``)."""
        tree = cls(slots)
        direct = min(slots, NDIRECT)
        tree.vbn[:direct] = pointers[:direct, 0]
        tree.birth[:direct] = pointers[:direct, 1]
        tree.l1_vbn[0], tree.l1_birth[0] = pointers[NDIRECT]
        tree.l2_vbn, tree.l2_birth = (int(x) for x in pointers[NDIRECT + 1])
        if tree.l2_vbn:
            under = decode_pointers(space.read_block(tree.l2_vbn))
            tree.l1_vbn[1:] = under[:, 0]
            tree.l1_birth[1:] = under[:, 1]
        wanted = [j for j in _l1_indices(NDIRECT, slots) if tree.l1_vbn[j]]
        if wanted:
            blocks = space.read_blocks(tree.l1_vbn[wanted])
            for j, block in zip(wanted, blocks, strict=True):
                ptrs = decode_pointers(block)
                lo, hi = l1_range(j)
                hi = min(hi, slots)
                tree.vbn[lo:hi] = ptrs[: hi - lo, 0]
                tree.birth[lo:hi] = ptrs[: hi - lo, 1]
        return tree

    def pointers(self) -> npt.NDArray[np.int64]:
        """The six inode pointers that root this tree (valid after :meth:`assign`)."""
        out = np.zeros((NDIRECT + 2, 2), dtype=np.int64)
        direct = min(self.slots, NDIRECT)
        out[:direct, 0] = self.vbn[:direct]
        out[:direct, 1] = self.birth[:direct]
        out[NDIRECT] = (self.l1_vbn[0], self.l1_birth[0])
        out[NDIRECT + 1] = (self.l2_vbn, self.l2_birth)
        return out

    # -- reading -------------------------------------------------------------------------

    def read(self, space: VolumeSpace, first: int, count: int) -> Blocks:
        """Blocks ``first .. first+count-1`` as the file holds them now (dirty ones included,
        holes and slots past the end as zeros)."""
        out = np.zeros((count, BLOCK_SIZE), dtype=np.uint8)
        end = min(first + count, self.slots)
        if end > first:
            numbers = self.vbn[first:end]
            on_space = np.flatnonzero(numbers)
            if len(on_space):
                out[on_space] = space.read_blocks(numbers[on_space])
        for fbn, data in self.dirty.items():
            if first <= fbn < first + count:
                out[fbn - first] = data
        return out

    def block(self, space: VolumeSpace, fbn: int) -> npt.NDArray[np.uint8]:
        """One block as the file holds it now (read-only view)."""
        if fbn in self.dirty:
            return self.dirty[fbn]
        if fbn < self.slots and self.vbn[fbn]:
            return np.frombuffer(space.read_block(int(self.vbn[fbn])), dtype=np.uint8)
        return _ZERO_BLOCK

    # -- changing (memory only) ------------------------------------------------------------

    def resize_slots(self, slots: int, free: Free) -> None:
        """Map ``slots`` blocks: growing adds holes; shrinking frees the blocks past the end
        (through ``free``) and drops their dirty data."""
        if slots > len(self.vbn):
            cap = max(slots, 2 * len(self.vbn))
            self.vbn = np.concatenate([self.vbn, np.zeros(cap - len(self.vbn), np.int64)])
            self.birth = np.concatenate([self.birth, np.zeros(cap - len(self.birth), np.int64)])
        if slots < self.slots:
            gone = self.vbn[slots : self.slots]
            if gone.any():
                free(gone[gone != 0])
            self.vbn[slots : self.slots] = 0
            self.birth[slots : self.slots] = 0
            for fbn in [f for f in self.dirty if f >= slots]:
                del self.dirty[fbn]
            self._touch(slots, self.slots)
        self.slots = slots

    def put(self, fbn: int, data: npt.NDArray[np.uint8]) -> None:
        """Make block ``fbn`` (below ``slots``) dirty with contents ``data``."""
        self.dirty[fbn] = data
        self._touch(fbn, fbn + 1)

    def put_many(self, first: int, blocks: Blocks) -> None:
        """Make blocks ``first ..`` dirty with the rows of ``blocks`` (kept by reference)."""
        for i in range(len(blocks)):
            self.dirty[first + i] = blocks[i]
        self._touch(first, first + len(blocks))

    def _touch(self, lo: int, hi: int) -> None:
        for j in _l1_indices(lo, hi):
            self.dirty_l1.add(j)
            if j >= 1:
                self.dirty_l2 = True

    def free_all(self, free: Free) -> None:
        """Free every block of the tree (data and indirect) and forget it: the file is deleted."""
        self.resize_slots(0, free)
        self.assign(0, _no_allocation, free)

    @property
    def is_dirty(self) -> bool:
        """Whether the next CP must write something for this tree."""
        return bool(self.dirty or self.dirty_l1 or self.dirty_l2)

    def dirty_bound(self) -> int:
        """An upper bound on the blocks the next CP allocates for this tree."""
        return len(self.dirty) + len(self.dirty_l1) + (1 if self.dirty_l2 else 0)

    # -- consistency point -------------------------------------------------------------------

    def assign(self, cp: int, allocate: Allocate, free: Free) -> None:
        """Give each dirty block and each changed indirect block a new VBN with birth ``cp``
        (blocks that already have birth ``cp`` keep theirs), freeing the old VBNs. Idempotent
        within one CP, so the map file can be assigned repeatedly until it settles."""
        fbns = np.fromiter(self.dirty, dtype=np.int64, count=len(self.dirty))
        fresh = fbns[self.birth[fbns] != cp] if len(fbns) else fbns
        if len(fresh):
            fresh.sort()
            old = self.vbn[fresh]
            if old.any():
                free(old[old != 0])
            self.vbn[fresh] = allocate(len(fresh))
            self.birth[fresh] = cp
        for j in sorted(self.dirty_l1):
            lo, hi = l1_range(j)
            live = lo < self.slots and bool(self.vbn[lo : min(hi, self.slots)].any())
            self.l1_vbn[j], self.l1_birth[j] = self._reassign(
                int(self.l1_vbn[j]), int(self.l1_birth[j]), live, cp, allocate, free
            )
        if self.dirty_l2:
            live = bool(self.l1_vbn[1:].any())
            self.l2_vbn, self.l2_birth = self._reassign(
                self.l2_vbn, self.l2_birth, live, cp, allocate, free
            )

    @staticmethod
    def _reassign(
        vbn: int, birth: int, live: bool, cp: int, allocate: Allocate, free: Free
    ) -> tuple[int, int]:
        if not live:
            if vbn:
                free(np.array([vbn], dtype=np.int64))
            return 0, 0
        if birth == cp and vbn:
            return vbn, birth
        if vbn:
            free(np.array([vbn], dtype=np.int64))
        return int(allocate(1)[0]), cp

    def collect(self, chunk: int = 8192) -> Iterator[tuple[BlockNumbers, Blocks]]:
        """The blocks to write for this CP (after :meth:`assign`), in chunks of at most
        ``chunk``: dirty data, then changed indirect blocks. The tree is clean once the
        iterator is exhausted."""
        fbns = sorted(self.dirty)
        for lo in range(0, len(fbns), chunk):
            part = fbns[lo : lo + chunk]
            yield self.vbn[part], np.stack([self.dirty[f] for f in part])
        numbers: list[int] = []
        rows: list[npt.NDArray[np.uint8]] = []
        for j in sorted(self.dirty_l1):
            if self.l1_vbn[j]:
                lo, hi = l1_range(j)
                hi = min(hi, self.slots)
                ptrs = np.stack([self.vbn[lo:hi], self.birth[lo:hi]], axis=1)
                numbers.append(int(self.l1_vbn[j]))
                rows.append(np.frombuffer(encode_pointers(ptrs), np.uint8))
        if self.dirty_l2 and self.l2_vbn:
            ptrs = np.stack([self.l1_vbn[1:], self.l1_birth[1:]], axis=1)
            numbers.append(self.l2_vbn)
            rows.append(np.frombuffer(encode_pointers(ptrs), np.uint8))
        self.dirty = {}
        self.dirty_l1 = set()
        self.dirty_l2 = False
        if rows:
            yield np.array(numbers, dtype=np.int64), np.stack(rows)

    def all_blocks(self) -> BlockNumbers:
        """Every VBN the tree references on the space (data and indirect)."""
        parts = [self.vbn[: self.slots], self.l1_vbn, np.array([self.l2_vbn], np.int64)]
        out: BlockNumbers = np.concatenate(parts)
        nonzero: BlockNumbers = out[out != 0]
        return nonzero


def _no_allocation(count: int) -> BlockNumbers:
    raise AssertionError(f"a deleted tree asked for {count} blocks")


class Allocator:
    """The active allocation map and the bitmaps that keep blocks from being reused.

    Invariant: ``used`` equals, after every CP, the set of blocks reachable from the active
    fsinfo (the content of the map file); ``changed`` lists the map blocks whose bits differ from
    the map file's last written content.
    """

    def __init__(self, block_count: int) -> None:
        self.used = np.zeros(block_count, dtype=bool)
        self.held = np.zeros(block_count, dtype=bool)
        self.pending = np.zeros(block_count, dtype=bool)
        self.changed: set[int] = set()
        self.cursor = FIRST_DATA_BLOCK
        self.limit: int | None = None
        """When set, allocation stays below this block number (while a shrink evacuates)."""
        self._free_count: int | None = None

    @property
    def block_count(self) -> int:
        """Blocks the maps cover."""
        return len(self.used)

    def resize(self, block_count: int) -> None:
        """Cover ``block_count`` blocks (new ones free; dropped ones must be free)."""
        old = len(self.used)
        for name in ("used", "held", "pending"):
            bits = getattr(self, name)
            grown = np.zeros(block_count, dtype=bool)
            keep = min(old, block_count)
            grown[:keep] = bits[:keep]
            setattr(self, name, grown)
        self.changed.update(range(min(old, block_count) // BITS_PER_MAP_BLOCK, self.map_blocks))
        self.cursor = min(self.cursor, max(block_count - 1, FIRST_DATA_BLOCK))
        self._free_count = None

    @property
    def map_blocks(self) -> int:
        """Blocks the map file needs for this many bits."""
        return -(-len(self.used) // BITS_PER_MAP_BLOCK)

    def free_count(self) -> int:
        """Blocks that may be allocated now."""
        if self._free_count is None:
            taken = self.used | self.held | self.pending
            self._free_count = int(len(taken) - FIRST_DATA_BLOCK - taken[FIRST_DATA_BLOCK:].sum())
        return self._free_count

    def allocate(self, count: int) -> BlockNumbers:
        """``count`` free blocks, now marked used; scans forward from a rotating cursor so that a
        CP's blocks land close together. :class:`OutOfSpaceError` if there are not enough (the
        callers reserve space beforehand, so this means a bug or a lost race)."""
        total = len(self.used) if self.limit is None else min(self.limit, len(self.used))
        found: list[BlockNumbers] = []
        need = count
        start = self.cursor
        scanned = 0
        span = total - FIRST_DATA_BLOCK
        while need and scanned < span:
            window = min(max(4 * need, 4096), span - scanned)
            lo = start
            hi = min(lo + window, total)
            taken = self.used[lo:hi] | self.held[lo:hi] | self.pending[lo:hi]
            hits = np.flatnonzero(~taken)[:need] + lo
            found.append(hits.astype(np.int64))
            need -= len(hits)
            scanned += hi - lo
            start = hi if hi < total else FIRST_DATA_BLOCK
        if need:
            raise OutOfSpaceError(f"no free block left for {count} new blocks ({total} in volume)")
        out = np.concatenate(found) if found else np.zeros(0, np.int64)
        self.used[out] = True
        self.changed.update(np.unique(out // BITS_PER_MAP_BLOCK).tolist())
        self.cursor = int(out[-1]) + 1 if int(out[-1]) + 1 < total else FIRST_DATA_BLOCK
        if self.cursor < FIRST_DATA_BLOCK:
            self.cursor = FIRST_DATA_BLOCK
        if self._free_count is not None:
            self._free_count -= count
        return out

    def free(self, numbers: BlockNumbers) -> None:
        """Drop ``numbers`` from the active map; they stay unusable until the next CP commits."""
        if len(numbers) == 0:
            return
        if not self.used[numbers].all():
            raise IntegrityError("freeing a block the active map does not hold: map is damaged")
        self.used[numbers] = False
        self.pending[numbers] = True
        self.changed.update(np.unique(numbers // BITS_PER_MAP_BLOCK).tolist())

    def map_block(self, index: int) -> npt.NDArray[np.uint8]:
        """Contents of allocation-map block ``index`` (little-endian bit order)."""
        bits = self.used[index * BITS_PER_MAP_BLOCK : (index + 1) * BITS_PER_MAP_BLOCK]
        out = np.zeros(BLOCK_SIZE, dtype=np.uint8)
        packed = np.packbits(bits, bitorder="little")
        out[: len(packed)] = packed
        return out

    def committed(self) -> None:
        """The CP committed: freed blocks become reusable and the map file is up to date."""
        self.pending[:] = False
        self.changed = set()
        self._free_count = None


def unpack_map(blocks: Blocks, block_count: int) -> npt.NDArray[np.bool_]:
    """An allocation bitmap of ``block_count`` bits from map-file blocks."""
    bits = np.unpackbits(blocks.reshape(-1), bitorder="little").astype(bool)
    out = np.zeros(block_count, dtype=bool)
    keep = min(block_count, len(bits))
    out[:keep] = bits[:keep]
    return out
