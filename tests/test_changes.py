"""Tests of the file-level change finder (xvol.reference.volume.changes): over random changes the
created, deleted and directory lists equal a full comparison of both trees, every file whose
bytes differ is listed, nothing outside both trees is, and the cost follows the changes (inode
blocks read), not the number of files."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.errors import XvolError
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.volume.changes import changed_files
from xvol.reference.volume.layout import FileType
from xvol.reference.volume.volume import FileSystemView, Volume

NAMES = ("a", "b", "c")
DIRS = ("/", "/d", "/d/e", "/f")


def new_volume(blocks: int = 4096) -> Volume:
    aggregate = Aggregate.create_in_memory("4", 2, blocks // 2 + 64, name="t-aggr")
    return Volume.create(aggregate.create_space("t", blocks), "t")


def image(view: FileSystemView) -> tuple[dict[str, bytes], set[str]]:
    """(file path -> bytes, directory paths except /) of a tree, read in full."""
    files: dict[str, bytes] = {}
    dirs: set[str] = set()
    for path, stat in view.walk():
        if stat.type == FileType.DIRECTORY:
            if path != "/":
                dirs.add(path)
        else:
            files[path] = view.read_file(path)
    return files, dirs


def mutate(volume: Volume, rng: random.Random, steps: int) -> None:
    """``steps`` random file-system operations (each may be refused; refused ones change
    nothing), then a CP."""
    for _ in range(steps):
        directory = rng.choice(DIRS)
        path = directory.rstrip("/") + "/" + rng.choice(NAMES)
        op = rng.choice(["write", "write", "replace", "unlink", "mkdir", "rmdir", "rename", "cut"])
        try:
            if op == "write":
                if not volume.exists(path):
                    volume.create_file(path)
                volume.write(path, rng.randrange(0, 9000), rng.randbytes(rng.randrange(1, 5000)))
            elif op == "replace":
                if volume.exists(path):
                    volume.unlink(path)
                volume.create_file(path)
                volume.write(path, 0, rng.randbytes(100))
            elif op == "unlink":
                volume.unlink(path)
            elif op == "mkdir":
                volume.mkdir(path)
            elif op == "rmdir":
                volume.rmdir(path)
            elif op == "rename":
                other = rng.choice(DIRS).rstrip("/") + "/" + rng.choice(NAMES)
                volume.rename(path, other)
            else:
                volume.truncate(path, rng.randrange(0, 6000))
        except XvolError:
            pass
    volume.consistency_point()


def check(volume: Volume, base: str, target: str | None) -> None:
    """The change finder's answer agrees with reading both trees in full."""
    before, before_dirs = image(volume.snapshot(base))
    after, after_dirs = image(volume.view(0) if target is None else volume.snapshot(target))
    found = changed_files(volume, base, target)
    assert set(found.created) == set(after) - set(before)
    assert set(found.deleted) == set(before) - set(after)
    assert set(found.modified) <= set(before) & set(after)
    assert {p for p in set(before) & set(after) if before[p] != after[p]} <= set(found.modified)
    assert set(found.created_dirs) == after_dirs - before_dirs
    assert set(found.removed_dirs) == before_dirs - after_dirs


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 25), st.integers(0, 25), st.booleans())
def test_changes_equal_a_full_comparison_of_both_trees(
    seed: int, first: int, second: int, restore: bool
) -> None:
    rng = random.Random(seed)
    volume = new_volume()
    mutate(volume, rng, first)
    volume.create_snapshot("base")
    mutate(volume, rng, second)
    if restore:  # the active lineage goes back to base, then changes again
        volume.create_snapshot("mid")
        volume.restore_snapshot("base")
        mutate(volume, rng, second // 2)
    volume.create_snapshot("target")
    check(volume, "base", "target")
    check(volume, "base", None)
    if restore:
        check(volume, "mid", None)  # backwards: the newer snapshot as the base


def test_a_baseline_lists_every_file_and_directory_as_created() -> None:
    volume = new_volume()
    volume.mkdir("/d")
    volume.create_file("/d/x")
    volume.write("/d/x", 0, b"x")
    volume.consistency_point()
    found = changed_files(volume, None)
    assert found.created == ("/d/x",) and found.created_dirs == ("/d",)
    assert found.deleted == found.modified == found.removed_dirs == ()


def test_the_cost_follows_the_changes_not_the_number_of_files() -> None:
    volume = new_volume(8192)
    for i in range(400):
        volume.create_file(f"/f{i:03d}")
        volume.write(f"/f{i:03d}", 0, bytes([i % 251]) * 3000)
    volume.create_snapshot("base")
    volume.write("/f007", 10, b"changed")
    volume.write("/f300", 0, b"also changed")
    volume.create_file("/new")
    volume.consistency_point()
    found = changed_files(volume, "base")
    assert found.modified == ("/f007", "/f300") and found.created == ("/new",)
    # 400 inodes fill 13 inode-file blocks; only those of /, /f007, /f300, /new are read
    assert found.inode_blocks_read <= 2 * 4 and found.inodes_changed <= 4
    assert found.directories_read == 2  # the root, at both sides (it changed)
    untouched = changed_files(volume, "base", "base")
    assert untouched.files == () and untouched.inode_blocks_read == 0
