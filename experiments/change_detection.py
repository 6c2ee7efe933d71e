"""E2, change detection: what it costs to find the blocks that changed between two snapshots,
against volume size at a fixed change rate and against the change rate at a fixed size, for the
kit's two block-level diffs and the full-scan baseline.

Every mirror update (seed: "the changed information is mirrored to the remote location") starts
by finding what changed between the common snapshot and the new one on every member volume. The
kit finds it three ways (:mod:`xvol.reference.volume.diff`), and they must agree:

* ``birth``: walk the target snapshot's pointer tree from its fsinfo root, descending only into
  pointers born after the base snapshot's consistency point (as ZFS send does); a subtree born
  earlier is shared with the base and skipped whole;
* ``maps``: the target's allocation map AND NOT the base's, one bit per volume block (as
  SnapMirror does); the volume keeps its snapshots' maps in memory, so this reads no block but
  scans two maps the size of the volume;
* ``full-scan``: the baseline (rsync-like): read and checksum every in-use block of both
  snapshots and compare block by block.

One grid point is (data blocks in files, change rate in percent, blocks per file). The point
builds a write-anywhere volume on an in-memory RAID-4 aggregate, fills ``data_blocks`` blocks in
files of ``file_blocks`` blocks, and takes three snapshots as ``xvol bench diff`` does
(:mod:`xvol.experiments.bench.diff`, whose block-run length and disk count this reuses):
``base``; ``target`` after ``rate x data_blocks`` blocks were overwritten in runs of 8 blocks
(32 KiB writes) at seeded random places (workload ``8-blk``, diffed base -> target); and
``scattered`` after as many blocks were overwritten one by one (workload ``1-blk``, diffed
target -> scattered). For each workload and method it measures, on the real volume:

* what the method *read* to find the changes: a counting wrapper stands in for the volume's
  block space during the diff and records every block number read; each is classified against
  an independent walk of both snapshots' trees into metadata (fsinfo, inode file, allocation-map
  file, indirect and directory blocks) and file data; ``inodes_visited`` counts the live inodes
  in the inode-file blocks read; ``map_bits_read`` counts the allocation-map bits the method
  consulted (the diff's own calls to the volume's map lookups, counted as they happen);
* what it *found*: the records (every block the target holds and the base does not, metadata
  included) and, of them, the file-data records, which must be exactly the new homes of the file
  blocks the workload overwrote (from the independent walk: the blocks whose pointer differs
  between the snapshots), and their number must be the number of blocks the workload wrote.
  All three methods must return the same block numbers. Any mismatch raises
  :class:`~xvol.errors.IntegrityError` instead of reporting a number.

Counts are deterministic for a seed. The wall-clock columns are not: ``find_s`` (the diff
computation alone) and ``stream_s`` (the diff plus reading every record with its checksums, as a
transfer does), the best of :data:`TIMING_REPEATS` uncounted runs for the two fast methods; the
full scan is timed once, on the run that counts its reads (the counting adds one copy of each
batch's block numbers, nothing against checksumming the batch). They live in the timings CSV
and the ``change-detection-time`` figure.

What theory predicts, and the tests pin: the full scan reads every in-use block of both
snapshots, so its reads grow with the volume; the birth walk reads only metadata on paths to
changed blocks (never a data block), so at a fixed change rate its reads grow with the changed
blocks, and at a fixed size its advantage shrinks as the rate grows; the map diff reads nothing
but scans two bits per volume block.

Uses: numpy, :mod:`xvol.reference.volume` (volume, diff, layout), :mod:`xvol.reference.storage`
(the aggregate beneath the volume), constants of :mod:`xvol.experiments.bench.diff`,
:mod:`xvol.experiments.framework`; matplotlib and pandas only inside the figure and numbers
functions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from xvol.errors import IntegrityError, InvalidArgumentError
from xvol.experiments.bench.diff import DATA_DISKS, RUN_BLOCKS
from xvol.experiments.framework import Experiment, FigureSpec, Params, Record
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.storage.block import BLOCK_SIZE, BlockNumbers, Blocks, VolumeSpace
from xvol.reference.storage.checksum import read_summed
from xvol.reference.volume.diff import BlockDiff, diff_snapshots, full_scan_diff
from xvol.reference.volume.layout import (
    BITS_PER_MAP_BLOCK,
    NDIRECT,
    POINTERS_PER_BLOCK,
    FileType,
    FsInfo,
    Pointers,
    decode_pointers,
    inode_pointers,
    inode_types,
)
from xvol.reference.volume.volume import Volume

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# ---------------------------------------------------------------------------------------------
# The grid: a size sweep at 1 % and a rate sweep at one size, merged (the shared point once).

METHODS: tuple[str, ...] = ("birth", "maps", "full-scan")
WORKLOADS: tuple[tuple[str, str, str], ...] = (
    (f"{RUN_BLOCKS}-blk", "base", "target"),
    ("1-blk", "target", "scattered"),
)
"""(workload, base snapshot, target snapshot): clustered runs of 8 blocks, then single blocks."""
TIMING_REPEATS = 5
"""Timed runs of the fast methods (best counts); the full scan is timed once."""
FILE_BLOCKS = 256
"""Blocks per file (1 MiB): one single-indirect block maps all of a file."""
MAX_CHANGE_PCT = 10.0
"""The highest change rate a volume is sized for (its space does not depend on the rate)."""


def sweeps(
    sizes: Sequence[int], rates: Sequence[float], *, at_rate: float, at_size: int
) -> tuple[Params, ...]:
    """The points of a size sweep at ``at_rate`` and a rate sweep at ``at_size``, each once,
    sorted by size then rate."""
    points = {(size, at_rate) for size in sizes} | {(at_size, rate) for rate in rates}
    return tuple(
        {"data_blocks": size, "change_pct": rate, "file_blocks": FILE_BLOCKS}
        for size, rate in sorted(points)
    )


SIZE_RATE, RATE_SIZE = 1.0, 100_000
FULL = sweeps(
    (10_000, 30_000, 100_000, 300_000),
    (0.1, 0.3, 1.0, 3.0, 10.0),
    at_rate=SIZE_RATE,
    at_size=RATE_SIZE,
)
QUICK_RATE_SIZE = 4_000
QUICK = sweeps((1_000, 4_000), (0.5, 1.0, 5.0), at_rate=SIZE_RATE, at_size=QUICK_RATE_SIZE)


# ---------------------------------------------------------------------------------------------
# Building the volume: files of stamped blocks, three snapshots, the overwritten blocks known.


@dataclass(frozen=True)
class Built:
    """A volume with snapshots ``base``, ``target`` and ``scattered``, the files (path, blocks)
    and, per workload, the (file index, block) pairs it overwrote."""

    volume: Volume
    files: tuple[tuple[str, int], ...]
    changed: dict[str, frozenset[tuple[int, int]]]


def changed_count(data_blocks: int, change_pct: float) -> int:
    """Blocks each workload overwrites: ``change_pct`` percent of the data, at least one run."""
    return max(RUN_BLOCKS, round(data_blocks * change_pct / 100.0))


def build_volume(data_blocks: int, change_pct: float, file_blocks: int, seed: int) -> Built:
    """The volume of one point (see the module text); InvalidArgumentError for sizes a file's
    single indirect block cannot map or a rate above what fits."""
    if not RUN_BLOCKS <= file_blocks <= NDIRECT + POINTERS_PER_BLOCK:
        raise InvalidArgumentError(
            f"file_blocks must be within {RUN_BLOCKS}..{NDIRECT + POINTERS_PER_BLOCK}"
        )
    if data_blocks < file_blocks or not 0 < change_pct <= MAX_CHANGE_PCT:
        raise InvalidArgumentError(
            f"need data_blocks >= file_blocks and 0 < change_pct <= {MAX_CHANGE_PCT}"
        )
    changed = changed_count(data_blocks, change_pct)
    rng = np.random.default_rng(seed)
    # room for the data, both overwrite workloads at the highest rate and every indirect block
    # three times over; independent of the rate, so the map diff scans the same maps at a size
    space_blocks = data_blocks + data_blocks // 4 + data_blocks // 16 + 4096
    per_disk = -(-(space_blocks + 64) // DATA_DISKS)
    aggregate = Aggregate.create_in_memory("4", DATA_DISKS, per_disk, name="e2-aggr")
    volume = Volume.create(aggregate.create_space("e2", space_blocks), "e2")
    files = tuple(
        (f"/d{index:05d}", min(file_blocks, data_blocks - first))
        for index, first in enumerate(range(0, data_blocks, file_blocks))
    )
    group = max(1, 65_536 // file_blocks)  # files per buffer (the buffer is kept until a CP)
    for lo in range(0, len(files), group):
        chunk = files[lo : lo + group]
        buffer = np.zeros((sum(n for _, n in chunk), BLOCK_SIZE), dtype=np.uint8)
        stamps = buffer.view(np.uint64)
        at = 0
        for offset, (path, count) in enumerate(chunk):
            stamps[at : at + count, 0] = ((lo + offset) << 32) + np.arange(count, dtype=np.uint64)
            stamps[at : at + count, 1] = 0x5A5A5A5A5A5A5A5A
            volume.create_file(path)
            volume.write_blocks(path, 0, buffer[at : at + count])
            at += count
        volume.sync()
    volume.create_snapshot("base")
    runs = [(f, r * RUN_BLOCKS) for f, (_p, n) in enumerate(files) for r in range(n // RUN_BLOCKS)]
    wanted = changed // RUN_BLOCKS
    if wanted > len(runs):
        raise InvalidArgumentError(f"{changed} changed blocks do not fit in {len(runs)} runs")
    clustered: set[tuple[int, int]] = set()
    for pick in sorted(rng.choice(len(runs), wanted, replace=False).tolist()):
        which, first = runs[pick]
        data = rng.integers(0, 256, (RUN_BLOCKS, BLOCK_SIZE), dtype=np.uint8)
        volume.write_blocks(files[which][0], first, data)
        clustered.update((which, first + i) for i in range(RUN_BLOCKS))
    volume.create_snapshot("target")
    starts = np.cumsum([0] + [n for _p, n in files])
    scattered: set[tuple[int, int]] = set()
    for block in sorted(rng.choice(data_blocks, changed, replace=False).tolist()):
        which = int(np.searchsorted(starts, block, side="right")) - 1
        fbn = block - int(starts[which])
        data = rng.integers(0, 256, (1, BLOCK_SIZE), dtype=np.uint8)
        volume.write_blocks(files[which][0], fbn, data)
        scattered.add((which, fbn))
    volume.create_snapshot("scattered")
    return Built(
        volume,
        files,
        {WORKLOADS[0][0]: frozenset(clustered), WORKLOADS[1][0]: frozenset(scattered)},
    )


# ---------------------------------------------------------------------------------------------
# An independent look at a snapshot's tree: which blocks are metadata, which are file data, and
# where each file block lives. Written from the on-disk layout alone (not from the diff code).


@dataclass(frozen=True)
class TreeImage:
    """What one snapshot references. ``files`` maps each regular file's inode number to the
    block number of every file block (0: a hole) and ``data`` lists those blocks, sorted;
    ``metadata`` lists every other referenced block (fsinfo, inode file, map file, indirect and
    directory blocks); ``inode_blocks`` lists the inode-file blocks and ``live_inodes`` the live
    inodes each holds."""

    files: dict[int, BlockNumbers]
    data: BlockNumbers
    metadata: BlockNumbers
    inode_blocks: BlockNumbers
    live_inodes: npt.NDArray[np.int64]


def _file_blocks(space: VolumeSpace, pointers: Pointers, meta: list[int]) -> BlockNumbers:
    """The block number of every block of the file with inode ``pointers`` (4 direct, single
    and double indirect), appending the indirect blocks visited to ``meta``."""
    parts = [pointers[:NDIRECT, 0]]
    single, double = int(pointers[NDIRECT, 0]), int(pointers[NDIRECT + 1, 0])
    if single:
        meta.append(single)
        parts.append(decode_pointers(space.read_block(single))[:, 0])
    if double:
        meta.append(double)
        for child in decode_pointers(space.read_block(double))[:, 0]:
            if child:
                meta.append(int(child))
                parts.append(decode_pointers(space.read_block(int(child)))[:, 0])
    blocks: BlockNumbers = np.concatenate(parts).astype(np.int64)
    return blocks


def tree_image(volume: Volume, snapshot: str) -> TreeImage:
    """The :class:`TreeImage` of ``snapshot``, read from the volume's space (uncounted)."""
    space = volume.space
    root = volume._record(snapshot).fsinfo_vbn  # no public accessor for a snapshot's root
    info = FsInfo.decode(space.read_block(root))
    meta: list[int] = [root]
    inode_file = _file_blocks(space, info.inode_file.pointers, meta)
    meta.extend(int(b) for b in _file_blocks(space, info.map_file.pointers, meta) if b)
    files: dict[int, BlockNumbers] = {}
    inode_blocks: list[int] = []
    live: list[int] = []
    for index, vbn in enumerate(int(b) for b in inode_file):
        if not vbn:
            continue
        raw = space.read_block(vbn)
        types, pointers = inode_types(raw), inode_pointers(raw)
        used = np.flatnonzero(types != FileType.FREE)
        inode_blocks.append(vbn)
        live.append(len(used))
        for slot in used:
            blocks = _file_blocks(space, pointers[slot], meta)
            if types[slot] == FileType.REGULAR:
                files[index * len(types) + int(slot)] = blocks
            else:
                meta.extend(int(b) for b in blocks if b)
    every = np.concatenate(list(files.values())) if files else np.zeros(0, dtype=np.int64)
    return TreeImage(
        files,
        np.unique(every[every != 0]),
        np.unique(np.array(meta + inode_blocks, dtype=np.int64)),
        np.array(inode_blocks, dtype=np.int64),
        np.array(live, dtype=np.int64),
    )


def new_homes(base: TreeImage, target: TreeImage) -> BlockNumbers:
    """The block numbers, sorted, of the file blocks whose pointer differs between ``base`` and
    ``target``: the new homes of the rewritten blocks."""
    homes: list[BlockNumbers] = []
    for ino, after in target.files.items():
        before = base.files.get(ino, np.zeros(0, dtype=np.int64))
        old = np.zeros(len(after), dtype=np.int64)
        old[: min(len(before), len(after))] = before[: len(after)]
        homes.append(after[(after != old) & (after != 0)])
    out: BlockNumbers = np.unique(np.concatenate(homes)) if homes else np.zeros(0, np.int64)
    return out


@dataclass(frozen=True)
class BlockKinds:
    """Per volume block: referenced as metadata or file data by two snapshots, and the live
    inodes of each inode-file block (0 elsewhere)."""

    metadata: npt.NDArray[np.bool_]
    data: npt.NDArray[np.bool_]
    inode_file: npt.NDArray[np.bool_]
    live_inodes: npt.NDArray[np.int64]

    @classmethod
    def of(cls, block_count: int, *images: TreeImage) -> BlockKinds:
        """The kinds of the blocks ``images`` reference."""
        metadata, data = np.zeros(block_count, bool), np.zeros(block_count, bool)
        inode_file, live = np.zeros(block_count, bool), np.zeros(block_count, np.int64)
        for image in images:
            metadata[image.metadata] = True
            data[image.data] = True
            inode_file[image.inode_blocks] = True
            live[image.inode_blocks] = image.live_inodes
        return cls(metadata, data, inode_file, live)


# ---------------------------------------------------------------------------------------------
# Measuring what a method reads.


class CountingSpace:
    """A :class:`VolumeSpace` that forwards to ``inner`` and records every block number read
    (including reads that hand content sums up). Life cycle: one per measured call."""

    def __init__(self, inner: VolumeSpace) -> None:
        self.inner = inner
        self.reads: list[BlockNumbers] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def block_count(self) -> int:
        return self.inner.block_count

    def resize(self, block_count: int) -> None:
        self.inner.resize(block_count)

    def read_block(self, number: int) -> bytes:
        self.reads.append(np.array([number], dtype=np.int64))
        return self.inner.read_block(number)

    def read_blocks(self, numbers: BlockNumbers) -> Blocks:
        self.reads.append(np.asarray(numbers, dtype=np.int64).copy())
        return self.inner.read_blocks(numbers)

    def read_blocks_summed(self, numbers: BlockNumbers) -> tuple[Blocks, npt.NDArray[np.uint64]]:
        self.reads.append(np.asarray(numbers, dtype=np.int64).copy())
        return read_summed(self.inner, numbers)

    def write_block(self, number: int, data: bytes) -> None:
        raise IntegrityError("a diff must not write to the volume it reads")

    def write_blocks(self, numbers: BlockNumbers, data: Blocks) -> None:
        raise IntegrityError("a diff must not write to the volume it reads")

    def numbers_read(self) -> BlockNumbers:
        """Every block number read, in order, repeats included."""
        if not self.reads:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(self.reads)


@dataclass
class MapBits:
    """Allocation-map bits a diff consulted through the volume's map lookups."""

    bits: int = 0


@contextmanager
def counting(volume: Volume) -> Iterator[tuple[CountingSpace, MapBits]]:
    """Within the block, ``volume`` reads through a :class:`CountingSpace` and its snapshot-map
    lookups count the bits they return; both are restored on exit."""
    space, maps = CountingSpace(volume.space), MapBits()
    whole, holds = volume._snapshot_map, volume._snapshot_holds

    def counted_map(sid: int) -> npt.NDArray[np.bool_]:
        found = whole(sid)
        maps.bits += len(found)
        return found

    def counted_holds(sid: int, numbers: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        maps.bits += len(numbers)
        return holds(sid, numbers)

    inner = volume.space
    volume.space = space
    setattr(volume, "_snapshot_map", counted_map)  # noqa: B010 (shadow a method per instance)
    setattr(volume, "_snapshot_holds", counted_holds)  # noqa: B010
    try:
        yield space, maps
    finally:
        volume.space = inner
        delattr(volume, "_snapshot_map")
        delattr(volume, "_snapshot_holds")


def find(volume: Volume, method: str, base: str, target: str) -> BlockDiff:
    """The diff ``base`` -> ``target`` by ``method`` (one of :data:`METHODS`)."""
    if method == "full-scan":
        return full_scan_diff(volume, base, target)
    if method in ("birth", "maps"):
        return diff_snapshots(volume, base, target, method="birth" if method == "birth" else "maps")
    raise InvalidArgumentError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def best_times(
    volume: Volume, method: str, base: str, target: str, repeats: int
) -> tuple[float, float]:
    """Wall seconds to find the diff ``base`` -> ``target`` by ``method``, and to find it and
    read every record (bytes and checksums) as a transfer does: the best of ``repeats`` runs."""
    best_find = best_stream = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        diff = find(volume, method, base, target)
        found = time.perf_counter()
        for _batch in diff.batches():
            pass
        best_find = min(best_find, found - started)
        best_stream = min(best_stream, time.perf_counter() - started)
    return best_find, best_stream


# ---------------------------------------------------------------------------------------------
# One point.


def point(params: Params, seed: int) -> list[Record]:
    """Measure the three methods on both workloads of one (size, rate) point."""
    data_blocks, change_pct = int(params["data_blocks"]), float(params["change_pct"])
    built = build_volume(data_blocks, change_pct, int(params["file_blocks"]), seed)
    volume = built.volume
    images = {name: tree_image(volume, name) for name in ("base", "target", "scattered")}
    records: list[Record] = []
    for workload, base, target in WORKLOADS:
        homes = new_homes(images[base], images[target])
        wrote = len(built.changed[workload])
        if len(homes) != wrote:
            raise IntegrityError(
                f"E2 {dict(params)} {workload}: the snapshots differ in {len(homes)} file "
                f"blocks, the workload wrote {wrote}"
            )
        kinds = BlockKinds.of(volume.block_count, images[base], images[target])
        target_data = np.zeros(volume.block_count, dtype=bool)
        target_data[images[target].data] = True
        found: dict[str, BlockNumbers] = {}
        for method in METHODS:
            with counting(volume) as (space, maps):
                started = time.perf_counter()
                diff = find(volume, method, base, target)
                counted_s = time.perf_counter() - started
            read, numbers = space.numbers_read(), diff.numbers
            found[method] = numbers
            data_found = numbers[target_data[numbers]]
            if not np.array_equal(data_found, homes):
                raise IntegrityError(
                    f"E2 {dict(params)} {workload} {method}: found {len(data_found)} changed "
                    f"file blocks, the workload moved {len(homes)} (or others)"
                )
            stray = read[~kinds.metadata[read] & ~kinds.data[read]]
            if len(stray):
                raise IntegrityError(
                    f"E2 {dict(params)} {method}: read blocks {stray[:4].tolist()} that neither "
                    "snapshot references"
                )
            if method == "full-scan":  # one timed run: the counted one (an index copy per batch)
                started = time.perf_counter()
                for _batch in diff.batches():
                    pass
                find_s, stream_s = counted_s, counted_s + time.perf_counter() - started
            else:
                find_s, stream_s = best_times(volume, method, base, target, TIMING_REPEATS)
            records.append(
                {
                    "workload": workload,
                    "method": method,
                    "volume_blocks": volume.block_count,
                    "files": len(built.files),
                    "changed_blocks": wrote,
                    "records": len(numbers),
                    "data_records": len(data_found),
                    "metadata_records": len(numbers) - len(data_found),
                    "blocks_read": len(read),
                    "metadata_blocks_read": int(kinds.metadata[read].sum()),
                    "data_blocks_read": int((~kinds.metadata[read]).sum()),
                    "inode_blocks_read": int(kinds.inode_file[read].sum()),
                    "inodes_visited": int(kinds.live_inodes[read].sum()),
                    "map_bits_read": maps.bits,
                    "map_blocks_scanned": maps.bits / BITS_PER_MAP_BLOCK,
                    "reads_per_changed_block": len(read) / wrote,
                    "find_s": find_s,
                    "stream_s": stream_s,
                }
            )
        for method in METHODS[1:]:
            if not np.array_equal(found[method], found[METHODS[0]]):
                raise IntegrityError(
                    f"E2 {dict(params)} {workload}: {method} and {METHODS[0]} found different "
                    f"blocks ({len(found[method])} against {len(found[METHODS[0]])})"
                )
    return records


# ---------------------------------------------------------------------------------------------
# Figures.

_STYLE: dict[tuple[str, str], tuple[str, str, str]] = {
    ("birth", "8-blk"): ("C0", "-", "o"),
    ("birth", "1-blk"): ("C0", "--", "v"),
    ("maps", "8-blk"): ("C2", "-", "s"),
    ("maps", "1-blk"): ("C2", "--", "s"),
    ("full-scan", "8-blk"): ("C3", "-", "D"),
    ("full-scan", "1-blk"): ("C3", "--", "D"),
}


def _sweep(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """The rows of the size sweep (``by="data_blocks"``) or the rate sweep (``"change_pct"``)."""
    if by == "data_blocks":
        return frame[frame["change_pct"] == SIZE_RATE]
    size = frame.groupby("data_blocks")["change_pct"].nunique().idxmax()  # the most rates
    return frame[frame["data_blocks"] == size]


def _plot(axes: Axes, rows: pd.DataFrame, by: str, y: Callable[[pd.DataFrame], Any]) -> None:
    """One line per (method, workload); workloads of a method with identical curves are drawn
    once, labelled with both, so that no line hides another."""
    curves: dict[tuple[str, tuple[float, ...], tuple[float, ...]], list[str]] = {}
    for method, workload in _STYLE:
        part = rows[(rows["method"] == method) & (rows["workload"] == workload)].sort_values(by)
        if len(part):
            key = (method, tuple(map(float, part[by])), tuple(map(float, y(part))))
            curves.setdefault(key, []).append(workload)
    for (method, xs, ys), workloads in curves.items():
        colour, style, marker = _STYLE[(method, workloads[0])]
        axes.plot(xs, ys, color=colour, linestyle=style, marker=marker,
                  label=f"{method}, {' and '.join(workloads)}")  # fmt: skip
    axes.set_xscale("log")
    axes.set_yscale("log")


def _cost(part: pd.DataFrame) -> Any:
    """Blocks read, or for the map diff the map blocks it scanned in memory."""
    return part["blocks_read"].where(part["method"] != "maps", part["map_blocks_scanned"])


def io(frame: pd.DataFrame) -> Figure:
    """Blocks read to find the changes (map blocks scanned for the map diff) against volume
    size at 1 % changed, and against the change rate at a fixed size (log-log)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11.0, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    size_rows, rate_rows = _sweep(frame, "data_blocks"), _sweep(frame, "change_pct")
    _plot(left, size_rows, "data_blocks", _cost)
    left.set_xlabel("data blocks in files (4 KiB each)")
    left.set_title(f"against volume size, {SIZE_RATE:g} % of the blocks changed")
    _plot(right, rate_rows, "change_pct", _cost)
    right.set_xlabel("blocks changed (% of the data)")
    size = int(rate_rows["data_blocks"].iloc[0])
    right.set_title(f"against change rate, {size:,} data blocks")
    for axes in (left, right):
        axes.set_ylabel("blocks read to find the changes\n(maps: map blocks scanned in memory)")
        axes.legend(fontsize=7)
    figure.suptitle("E2: cost of finding what changed between two snapshots")
    return figure


def timing(frame: pd.DataFrame) -> Figure:
    """Wall time to find the changes, against size and change rate (log-log)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11.0, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    _plot(left, _sweep(frame, "data_blocks"), "data_blocks", lambda p: p["find_s"] * 1e3)
    left.set_xlabel("data blocks in files (4 KiB each)")
    left.set_title(f"against volume size, {SIZE_RATE:g} % of the blocks changed")
    rate_rows = _sweep(frame, "change_pct")
    _plot(right, rate_rows, "change_pct", lambda p: p["find_s"] * 1e3)
    right.set_xlabel("blocks changed (% of the data)")
    right.set_title(f"against change rate, {int(rate_rows['data_blocks'].iloc[0]):,} data blocks")
    for axes in (left, right):
        axes.set_ylabel("ms to find the changes\n(wall clock, varies run to run)")
        axes.legend(fontsize=7)
    figure.suptitle("E2: time of the diffs (in-memory volume)")
    return figure


# ---------------------------------------------------------------------------------------------
# Numbers the paper quotes.


def _thousands(value: int) -> str:
    return f"{value:,}".replace(",", "{,}")


def numbers(frame: pd.DataFrame) -> dict[str, str]:
    """At the largest size (1 % changed, 8-block writes): the full scan's reads over the birth
    walk's, and the same in time (one run); growth of the birth walk's and the scan's reads from
    the smallest to the largest size; the scan/birth read ratio at the lowest and highest rate."""
    clustered = frame[frame["workload"] == WORKLOADS[0][0]]
    sizes, rates = _sweep(clustered, "data_blocks"), _sweep(clustered, "change_pct")

    def at(rows: pd.DataFrame, by: str, where: float, method: str, column: str) -> float:
        chosen = rows[(rows[by] == where) & (rows["method"] == method)]
        return float(chosen[column].iloc[0])

    def ratio(rows: pd.DataFrame, by: str, where: float, column: str = "blocks_read") -> float:
        return at(rows, by, where, "full-scan", column) / at(rows, by, where, "birth", column)

    def growth(method: str) -> float:
        return at(sizes, "data_blocks", large, method, "blocks_read") / at(
            sizes, "data_blocks", small, method, "blocks_read"
        )

    small, large = int(sizes["data_blocks"].min()), int(sizes["data_blocks"].max())
    low, high = float(rates["change_pct"].min()), float(rates["change_pct"].max())
    out = {
        "ETwoLargestBlocks": _thousands(large),
        "ETwoSmallestBlocks": _thousands(small),
        "ETwoScanOverBirthReads": f"{ratio(sizes, 'data_blocks', large):.0f}",
        "ETwoBirthReadsGrowth": f"{growth('birth'):.0f}",
        "ETwoScanReadsGrowth": f"{growth('full-scan'):.0f}",
        "ETwoBirthReadsPerChangedBlock": (
            f"{at(sizes, 'data_blocks', large, 'birth', 'reads_per_changed_block'):.2f}"
        ),
        "ETwoScanOverBirthReadsLowRate": f"{ratio(rates, 'change_pct', low):.0f}",
        "ETwoScanOverBirthReadsHighRate": f"{ratio(rates, 'change_pct', high):.0f}",
    }
    if "find_s" in frame.columns:
        seconds = ratio(sizes, "data_blocks", large, "find_s")
        out["ETwoScanOverBirthTimeOneRun"] = f"{seconds:.0f}"
    return out


EXPERIMENT = Experiment(
    name="change-detection",
    title="E2 cost of change detection: birth walk and map diff against the full scan",
    measures="blocks and inodes read, map bits scanned and wall time to find the changed blocks "
    "between two snapshots, against volume size and change rate",
    quick=QUICK,
    full=FULL,
    point=point,
    columns={
        "data_blocks": "4 KiB blocks of file data in the volume",
        "change_pct": "blocks each workload overwrites, in percent of data_blocks",
        "file_blocks": "blocks per file (the last file may be shorter)",
        "workload": "8-blk: base -> target after 8-block overwrites; 1-blk: target -> "
        "scattered after single-block overwrites",
        "method": "birth (birth-CP tree walk), maps (allocation maps), full-scan (checksum "
        "every in-use block of both snapshots)",
        "volume_blocks": "blocks of the volume's space",
        "files": "files in the volume",
        "changed_blocks": "distinct file blocks the workload overwrote",
        "records": "blocks the diff found (target holds, base does not), metadata included",
        "data_records": "of the records, file-data blocks (checked equal to the new homes of "
        "the overwritten blocks)",
        "metadata_records": "records - data_records (fsinfo, inode file, map, indirect blocks)",
        "blocks_read": "block reads the method issued to find the changes (repeats counted)",
        "metadata_blocks_read": "of blocks_read, metadata blocks of either snapshot",
        "data_blocks_read": "of blocks_read, file-data blocks",
        "inode_blocks_read": "of blocks_read, inode-file blocks",
        "inodes_visited": "live inodes in the inode-file blocks read",
        "map_bits_read": "allocation-map bits the method consulted (one per block looked up, "
        "or a whole map per map taken)",
        "map_blocks_scanned": "map_bits_read / 32768 (bits per map block)",
        "reads_per_changed_block": "blocks_read / changed_blocks",
        "find_s": "wall seconds to compute the diff (best of 5; full scan: its counted run; "
        "varies)",
        "stream_s": "wall seconds to compute it and read every record with checksums (best "
        "of 5; full scan: one run; varies)",
    },
    figures=(
        FigureSpec("change-detection-io", io, paper=True),
        FigureSpec("change-detection-time", timing, deterministic=False),
    ),
    keys=("workload", "method"),
    timing_columns=("find_s", "stream_s"),
    default_seed=2017,
    paper_numbers=numbers,
)

__all__ = [
    "EXPERIMENT",
    "METHODS",
    "WORKLOADS",
    "Built",
    "CountingSpace",
    "TreeImage",
    "build_volume",
    "changed_count",
    "counting",
    "find",
    "new_homes",
    "numbers",
    "point",
    "sweeps",
    "tree_image",
]
