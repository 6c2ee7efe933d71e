"""``xvol bench diff``: block-level diff time against volume size, incremental vs full scan.

For each volume size (10^4, 10^5 and 10^6 logical blocks of file data in use, 16 files of 256 MiB
at the largest) the benchmark builds a volume on an in-memory RAID-4 aggregate and takes three
snapshots: ``base``; ``target`` after a fixed number of blocks (default 1000) were overwritten in
8-block (32 KiB) writes at random places; ``scattered`` after as many more blocks were
overwritten one by one at random places. It then times the diffs ``base -> target`` (8-blk) and
``target -> scattered`` (1-blk), each producing the full record stream (block numbers, bytes,
checksums):

* ``birth``: the birth-CP tree walk (ZFS-style): cost proportional to the changed blocks;
* ``maps``: target allocation map AND NOT base map (SnapMirror-style): one bit per block;
* ``full scan`` (8-blk only): checksum every in-use block of both snapshots and compare
  (rsync-style), the baseline, measured in the same run.

The fast diffs are timed in rounds that visit every size in turn, best round counts. The run
prints a table and the two target ratios for the 8-blk workload: the birth walk at the largest
size takes at most 1.5x its time at the smallest, and is at least 50x faster than the full scan
at the largest size. With 1-block writes every changed block also changes its own indirect block,
so the records (and the time) grow with the volume's spread; the run prints that too. All diffs
must agree, or the run fails. Volumes are filled with cheap patterned data in 256 MiB batch
writes (each block stamped with its file and block number).

Uses: numpy, rich, :mod:`xvol.reference.volume` (volume, diff), :mod:`xvol.reference.storage`
(the aggregate that provides the volume's logical block space).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from rich.console import Console
from rich.table import Table

from xvol.errors import InvalidArgumentError
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.storage.block import BLOCK_SIZE
from xvol.reference.volume.diff import BlockDiff, diff_snapshots, full_scan_diff
from xvol.reference.volume.volume import Volume

FILE_BLOCKS = 65_536
"""Blocks per data file (256 MiB; an inode maps up to 65 796)."""
DATA_DISKS = 8
SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
GROWTH_TARGET = 1.5
SPEEDUP_TARGET = 50.0


@dataclass(frozen=True)
class Row:
    """Timings for one volume size (seconds, best of the repeats)."""

    blocks: int
    workload: str
    records: int
    build: float
    birth: float
    maps: float
    full_scan: float | None


RUN_BLOCKS = 8
"""Blocks per write in the clustered workload (32 KiB writes)."""


def _overwrite(
    volume: Volume, files: list[tuple[str, int]], changed: int, run: int, rng: random.Random
) -> None:
    """Overwrite ``changed`` distinct blocks in writes of ``run`` consecutive blocks at random
    places (``run = 1``: scattered single blocks)."""
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < changed // run:
        which = rng.randrange(len(files))
        chosen.add((which, rng.randrange(files[which][1] // run) * run))
    for which, block in sorted(chosen):
        volume.write(files[which][0], block * BLOCK_SIZE, rng.randbytes(run * BLOCK_SIZE))


def build_volume(blocks: int, changed: int, seed: int) -> tuple[Volume, float]:
    """A volume with ``blocks`` data blocks in files and three snapshots: ``base``; ``target``
    after ``changed`` blocks were overwritten in 8-block writes; ``scattered`` after another
    ``changed`` blocks were overwritten one by one. Returns it and the build time."""
    start = time.perf_counter()
    space_blocks = blocks + blocks // 64 + 8 * changed + 4096
    per_disk = -(-(space_blocks + 64) // DATA_DISKS)
    aggregate = Aggregate.create_in_memory("4", DATA_DISKS, per_disk, name="bench-aggr")
    volume = Volume.create(aggregate.create_space("bench", space_blocks), "bench")
    buffer = np.zeros((min(blocks, FILE_BLOCKS), BLOCK_SIZE), dtype=np.uint8)
    stamps = buffer.view(np.uint64)
    files: list[tuple[str, int]] = []
    for index, first in enumerate(range(0, blocks, FILE_BLOCKS)):
        count = min(FILE_BLOCKS, blocks - first)
        path = f"/data{index:03d}"
        volume.create_file(path)
        stamps[:count, 0] = (index << 32) + np.arange(count, dtype=np.uint64)
        stamps[:count, 1] = 0x5A5A5A5A5A5A5A5A
        volume.write_blocks(path, 0, buffer[:count])
        volume.sync()  # the buffer is reused for the next file
        files.append((path, count))
    volume.create_snapshot("base")
    rng = random.Random(seed)
    _overwrite(volume, files, changed, RUN_BLOCKS, rng)
    volume.create_snapshot("target")
    _overwrite(volume, files, changed, 1, rng)
    volume.create_snapshot("scattered")
    return volume, time.perf_counter() - start


def _drain(diff: BlockDiff) -> int:
    """Produce every record of ``diff`` (bytes and checksums); returns how many."""
    return sum(len(batch.numbers) for batch in diff.batches())


def _time(run: Callable[[], BlockDiff]) -> tuple[float, BlockDiff]:
    start = time.perf_counter()
    result = run()
    _drain(result)
    return time.perf_counter() - start, result


WORKLOADS = ((f"{RUN_BLOCKS}-blk", "base", "target"), ("1-blk", "target", "scattered"))


def measure_all(
    sizes: tuple[int, ...], changed: int, seed: int, repeats: int, progress: Callable[[str], None]
) -> list[Row]:
    """Build one volume per size, then time the fast diffs in ``repeats`` rounds that visit
    every size in turn (so a burst of load on the machine hits all sizes alike; the best time
    counts), then the full scan once per size. Checks that all diffs agree."""
    volumes: dict[int, tuple[Volume, float]] = {}
    for blocks in sizes:
        progress(f"building a {blocks:,}-block volume")
        volumes[blocks] = build_volume(blocks, changed, seed)
    best: dict[tuple[int, str, str], float] = {}
    found: dict[tuple[int, str, str], BlockDiff] = {}
    for round_no in range(repeats):
        progress(f"timing the fast diffs, round {round_no + 1} of {repeats}")
        for blocks in sizes:
            volume = volumes[blocks][0]
            for workload, base, target in WORKLOADS:
                for method in ("birth", "maps"):
                    key = (blocks, workload, method)
                    runner = partial(diff_snapshots, volume, base, target, method=method)
                    elapsed, diff = _time(runner)
                    best[key] = min(best.get(key, float("inf")), elapsed)
                    found[key] = diff
    rows = []
    for blocks in sizes:
        volume, build = volumes[blocks]
        for workload, base, target in WORKLOADS:
            numbers = found[(blocks, workload, "birth")].numbers
            if not np.array_equal(numbers, found[(blocks, workload, "maps")].numbers):
                raise AssertionError(f"birth walk and maps disagree at {blocks} blocks")
            if len(numbers) < changed:
                raise AssertionError(f"diff found {len(numbers)} blocks, {changed} changed")
            scan = None
            if workload == WORKLOADS[0][0]:
                progress(f"full scan of the {blocks:,}-block volume")
                scan, by_scan = _time(partial(full_scan_diff, volume, base, target))
                if not np.array_equal(numbers, by_scan.numbers):
                    raise AssertionError(f"birth walk and full scan disagree at {blocks} blocks")
            rows.append(
                Row(
                    blocks,
                    workload,
                    len(numbers),
                    build,
                    best[(blocks, workload, "birth")],
                    best[(blocks, workload, "maps")],
                    scan,
                )
            )
    return rows


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``xvol bench diff``."""
    parser.add_argument(
        "--quick", action="store_true", help="only 10^4 and 10^5 blocks (for tests)"
    )
    parser.add_argument(
        "--changed", type=int, default=1000, help="blocks overwritten between the snapshots"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--repeats", type=int, default=15, help="timing rounds of the fast diffs (best taken)"
    )


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print the table and target ratios; exit status 1 if the full run
    misses a target."""
    if args.changed < 1 or args.repeats < 1:
        raise InvalidArgumentError("--changed and --repeats must be >= 1")
    sizes = QUICK_SIZES if args.quick else SIZES
    if args.changed > sizes[0] // 2:
        raise InvalidArgumentError(f"--changed must be at most {sizes[0] // 2}")
    console = Console(width=max(Console().width, 100))
    console.print(
        f"diff benchmark: sizes {', '.join(f'{s:,}' for s in sizes)} blocks, "
        f"{args.changed} changed blocks, seed {args.seed}, best of {args.repeats}"
    )
    with console.status("starting") as status:
        rows = measure_all(sizes, args.changed, args.seed, args.repeats, status.update)
    table = Table(
        title=f"block-level diff of {args.changed} overwritten blocks "
        f"(writes of {RUN_BLOCKS} or 1 blocks; scan = full-scan baseline)"
    )
    for column in ("blocks", "writes", "records", "build s", "birth ms", "maps ms",
                   "scan ms", "scan/birth"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            f"{row.blocks:,}",
            row.workload,
            f"{row.records:,}",
            f"{row.build:.1f}",
            f"{row.birth * 1e3:.1f}",
            f"{row.maps * 1e3:.1f}",
            "" if row.full_scan is None else f"{row.full_scan * 1e3:.0f}",
            "" if row.full_scan is None else f"{row.full_scan / row.birth:.0f}x",
        )
    console.print(table)
    clustered = [r for r in rows if r.full_scan is not None]
    scattered = [r for r in rows if r.full_scan is None]
    small, large = clustered[0], clustered[-1]
    assert large.full_scan is not None
    growth = large.birth / small.birth
    speedup = large.full_scan / large.birth
    growth_ok = growth <= GROWTH_TARGET
    speedup_ok = speedup >= SPEEDUP_TARGET
    console.print(
        f"birth walk ({small.workload}) at {large.blocks:,} / at {small.blocks:,} blocks: "
        f"{growth:.2f}x (target <= {GROWTH_TARGET}x: {'met' if growth_ok else 'MISSED'})"
    )
    console.print(
        f"full scan / birth walk at {large.blocks:,} blocks: {speedup:.0f}x "
        f"(target >= {SPEEDUP_TARGET:.0f}x: {'met' if speedup_ok else 'MISSED'})"
    )
    per_record = [r.birth / r.records * 1e6 for r in scattered]
    console.print(
        f"1-blk writes: every overwritten block also dirties its indirect block, so records "
        f"grow from {scattered[0].records:,} to {scattered[-1].records:,}; birth walk per "
        f"record {per_record[0]:.1f} -> {per_record[-1]:.1f} us"
    )
    if args.quick:
        return 0
    return 0 if growth_ok and speedup_ok else 1
