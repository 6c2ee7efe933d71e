"""E7a, RAID reconstruction: how much disk I/O (and time) RAID-4, RAID-5 and RAID-DP spend to
rebuild failed disks and to serve reads while degraded.

The seed's RAID system keeps each aggregate's RAID groups readable when disks fail (RAID-4, RAID-5
or RAID-DP); this experiment measures what that costs on the kit's real RAID groups
(:class:`xvol.reference.storage.raid.RaidGroup` over in-memory disks), counting every block I/O
with the disks' own counters. One grid point is (RAID level, data disks ``D``, which disks fail,
size); the point fills a fresh group with seeded random bytes, fails the disks, and measures four
operations, each one row of the tidy table:

* ``read-all``: one batch read of every logical block while degraded;
* ``read-lost``: single-block reads, one at a time, of a seeded sample of the blocks whose home is
  on a failed data disk (the small-read worst case; absent when only parity disks failed);
* ``read-random``: single-block reads of a seeded uniform sample of all logical blocks;
* ``rebuild``: :meth:`RaidGroup.rebuild_all` of every failed disk onto a spare, in one pass.

Every operation is checked: the bytes read equal the bytes written, and after the rebuild a full
read touches each block once and returns the written bytes, else the point raises
:class:`xvol.errors.IntegrityError` rather than report a number for a wrong result.

Theory to compare with (Corbett et al., FAST 2004, for RDP): rebuilding one disk of RAID-4/5
reads the ``D`` surviving blocks of each stripe row; RDP can rebuild any one or two disks from at
most the ``D`` surviving cells per row, which is optimal. What the kit does (and the tests pin):
``rebuild_all`` reads each codeword once and solves all its lost cells together, so a double
failure costs ``D`` reads per row, the optimum, whichever two disks failed; rebuilding the
diagonal-parity disk alone reads ``D+1`` per row because RDP's diagonals run through the
row-parity column. A single-block
read of a lost block costs ``D`` reads, except when two columns of the row equation are gone
(two data disks, or a data disk and the row parity): then RDP's chain walks the whole codeword,
``D * (p-1)`` reads for one block. A batch read of every block costs exactly one disk read per
logical block whatever failed (within tolerance): the reconstruction reads one parity cell in
place of each lost data cell and reuses the cells the batch has read already.

The counts are deterministic; the wall-clock columns (``elapsed_s``, ``mib_per_s``) are not and
live only in the timings CSV and the ``raid-rebuild-speed`` figure.

Uses: numpy, :mod:`xvol.reference.storage` (raid, disk), :mod:`xvol.experiments.framework`;
matplotlib and pandas only inside the figure functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from xvol.errors import IntegrityError, InvalidArgumentError
from xvol.experiments.framework import Experiment, FigureSpec, Params, Record, grid
from xvol.reference.storage.block import BLOCK_SIZE
from xvol.reference.storage.disk import Disk, MemoryDisk
from xvol.reference.storage.raid import LEVEL_NAMES, ParityCode, RaidGroup, RaidLevel

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# ---------------------------------------------------------------------------------------------
# The grid: levels by name, and the failure sets each level tolerates.

LEVEL_CODES: dict[str, RaidLevel] = {name: code for code, name in LEVEL_NAMES.items()}
"""Level name as it appears in the CSV (``RAID-4``) -> the kit's level code (``"4"``)."""

FAILURES: dict[str, tuple[str, ...]] = {
    "RAID-4": ("data", "parity"),
    "RAID-5": ("any",),
    "RAID-DP": (
        "data",
        "row-parity",
        "diagonal-parity",
        "data+data",
        "data+row-parity",
        "data+diagonal-parity",
        "row-parity+diagonal-parity",
    ),
}
"""Which disks fail, per level, within its tolerance. ``data`` members are chosen from the data
disks by the point's seed; ``any`` (RAID-5, whose parity rotates) is any one disk, by seed."""


def _valid(point: Params) -> bool:
    return point["failure"] in FAILURES[str(point["level"])]


QUICK = grid(
    {
        "level": list(FAILURES),
        "data_disks": [2, 4],
        "failure": sorted({f for fs in FAILURES.values() for f in fs}),
        "disk_blocks": [24],
        "samples": [4],
    },
    where=_valid,
)
FULL = grid(
    {
        "level": list(FAILURES),
        "data_disks": [2, 3, 4, 6, 8, 10, 12],
        "failure": sorted({f for fs in FAILURES.values() for f in fs}),
        "disk_blocks": [1024],
        "samples": [24],
    },
    where=_valid,
)


# ---------------------------------------------------------------------------------------------
# One point.


def failed_slots(level: str, data_disks: int, failure: str, rng: np.random.Generator) -> list[int]:
    """The disk slots that fail for ``failure`` in a group of ``level`` with ``data_disks``;
    data members are drawn from ``rng``. Raises InvalidArgumentError for an unknown combination."""
    if failure not in FAILURES.get(level, ()):
        raise InvalidArgumentError(f"{level} has no failure set {failure!r}")
    if failure == "any":
        return [int(rng.integers(data_disks + 1))]
    parts = failure.split("+")
    wanted_data = parts.count("data")
    if wanted_data > data_disks:
        raise InvalidArgumentError(f"{failure!r} needs {wanted_data} data disks, got {data_disks}")
    slots = [int(s) for s in rng.choice(data_disks, wanted_data, replace=False)]
    named = {"parity": data_disks, "row-parity": data_disks, "diagonal-parity": data_disks + 1}
    slots += [named[part] for part in parts if part != "data"]
    return sorted(slots)


class _Meter:
    """Measures an operation by the change in the summed block I/O counters of a set of disks
    (the list may grow, e.g. by spares, between measurements)."""

    def __init__(self, disks: list[Disk]) -> None:
        self.disks = disks

    def _totals(self) -> tuple[int, int, int, int]:
        counters = [d.counters for d in self.disks]
        return (
            sum(c.reads for c in counters),
            sum(c.writes for c in counters),
            sum(c.bytes_read for c in counters),
            sum(c.bytes_written for c in counters),
        )

    def measure(self, operation: Callable[[], int]) -> tuple[int, tuple[int, ...], float]:
        """Run ``operation`` (returning the blocks it served); (blocks, I/O deltas, seconds)."""
        before = self._totals()
        started = time.perf_counter()
        blocks = operation()
        elapsed = time.perf_counter() - started
        deltas = tuple(b - a for a, b in zip(before, self._totals(), strict=True))
        return blocks, deltas, elapsed


def _record(operation: str, blocks: int, io: tuple[int, ...], elapsed: float) -> Record:
    """One tidy row: the operation, its I/O counts (reads, writes, bytes read, bytes written) and
    its wall time."""
    reads, writes, bytes_read, bytes_written = io
    return {
        "operation": operation,
        "blocks": blocks,
        "disk_reads": reads,
        "disk_writes": writes,
        "bytes_read": bytes_read,
        "bytes_written": bytes_written,
        "reads_per_block": reads / blocks,
        "elapsed_s": elapsed,
        "mib_per_s": blocks * BLOCK_SIZE / (1 << 20) / elapsed if elapsed > 0 else 0.0,
    }


def point(params: Params, seed: int) -> list[Record]:
    """Measure degraded reads and the rebuild of one (level, D, failure set, size) point."""
    level, failure = str(params["level"]), str(params["failure"])
    data_disks, disk_blocks, samples = (
        int(params[k]) for k in ("data_disks", "disk_blocks", "samples")
    )
    code: RaidLevel = LEVEL_CODES[level]
    rng = np.random.default_rng(seed)
    rows = ParityCode(code, data_disks).rows
    if disk_blocks < rows:
        raise InvalidArgumentError(f"{level} with D={data_disks} needs >= {rows} blocks per disk")
    group = RaidGroup.in_memory(code, data_disks, disk_blocks // rows * rows, name="e7a")
    data = rng.integers(0, 256, (group.block_count, BLOCK_SIZE), dtype=np.uint8)
    everything = np.arange(group.block_count, dtype=np.int64)
    group.write_blocks(everything, data)
    slots = failed_slots(level, data_disks, failure, rng)
    for slot in slots:
        group.disks[slot].fail()
    meter = _Meter(list(group.disks))
    context: Record = {
        "failed": len(slots),
        "failed_slots": " ".join(str(s) for s in slots),
        "rows": rows,
        "blocks_per_disk": group.blocks_per_disk,
    }

    def read(numbers: npt.NDArray[np.int64], one_at_a_time: bool) -> int:
        got = (
            np.concatenate([group.read_blocks(numbers[i : i + 1]) for i in range(numbers.size)])
            if one_at_a_time
            else group.read_blocks(numbers)
        )
        if not np.array_equal(got, data[numbers]):
            raise IntegrityError(f"E7a {dict(params)}: a degraded read returned wrong bytes")
        return int(numbers.size)

    records = [_record("read-all", *meter.measure(lambda: read(everything, False)))]
    homes, _ = group.cell_location(*group.decompose(everything))
    lost = everything[np.isin(homes, slots)]
    if lost.size:
        sample = np.sort(rng.choice(lost, min(samples, lost.size), replace=False))
        records.append(_record("read-lost", *meter.measure(lambda: read(sample, True))))
    uniform = np.sort(rng.choice(everything, min(samples, everything.size), replace=False))
    records.append(_record("read-random", *meter.measure(lambda: read(uniform, True))))

    spares = [MemoryDisk(f"e7a.spare{i}", group.blocks_per_disk) for i in range(len(slots))]
    meter.disks += spares

    def rebuild() -> int:
        reports = group.rebuild_all(dict(zip(slots, spares, strict=True)))
        return sum(report.blocks_written for report in reports)

    records.append(_record("rebuild", *meter.measure(rebuild)))
    group.reset_counters()
    if not np.array_equal(group.read_blocks(everything), data) or group.failed_disks:
        raise IntegrityError(f"E7a {dict(params)}: the rebuilt group does not read back")
    if sum(d.counters.reads for d in group.disks) != group.block_count:
        raise IntegrityError(f"E7a {dict(params)}: the rebuilt group still reconstructs")
    return [{**context, **record} for record in records]


# ---------------------------------------------------------------------------------------------
# Figures: I/O counts (deterministic) and rebuild speed (wall clock, varies).

SERIES: tuple[tuple[str, str], ...] = tuple(
    (level, failure) for level, failures in FAILURES.items() for failure in failures
)
"""Every (level, failure set) line, in legend order; each keeps one colour and marker."""

_MARKERS = {"RAID-4": "s", "RAID-5": "o", "RAID-DP": "^"}


def _style(level: str, failure: str) -> tuple[str, str, str]:
    """(colour, marker, line style): matplotlib's ten-colour cycle, one colour per series, one
    marker per level, dashed for two failed disks."""
    return f"C{SERIES.index((level, failure))}", _MARKERS[level], "--" if "+" in failure else "-"


def _lines(
    axes: Axes, frame: pd.DataFrame, operation: str, y: pd.Series, failed: int | None
) -> None:
    """Mean of ``y`` against D for each (level, failure set) with ``failed`` disks (any count when
    None). Series with identical curves are drawn once, with one legend entry naming them all,
    so that no line hides another."""
    chosen = frame["operation"] == operation
    if failed is not None:
        chosen &= frame["failed"] == failed
    curves: dict[tuple[tuple[float, ...], tuple[float, ...]], list[tuple[str, str]]] = {}
    for level, failure in SERIES:
        mask = chosen & (frame["level"] == level) & (frame["failure"] == failure)
        if mask.any():
            mean = y[mask].groupby(frame["data_disks"][mask], sort=True).mean()
            key = (tuple(float(x) for x in mean.index), tuple(float(v) for v in mean))
            curves.setdefault(key, []).append((level, failure))
    for (xs, ys), members in curves.items():
        label = "\n".join(f"{level}: {failure}" for level, failure in members)
        color, marker, linestyle = _style(*members[0])
        axes.plot(xs, ys, label=label, color=color, marker=marker, linestyle=linestyle)


def _optimum(axes: Axes, frame: pd.DataFrame, label: str) -> None:
    disks = sorted(frame["data_disks"].unique().tolist())
    axes.plot(disks, disks, color="black", linestyle=":", linewidth=1.0, label=label)


def rebuild_and_lost_reads(frame: pd.DataFrame) -> Figure:
    """Three panels: disk reads per stripe row to rebuild one failed disk, to rebuild two
    (RAID-DP), and disk reads per single-block read of a block on a failed disk (log scale)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11.0, 3.8), layout="constrained")
    one, two, lost = figure.subplots(1, 3)
    per_row = frame["disk_reads"] / frame["blocks_per_disk"]
    _lines(one, frame, "rebuild", per_row, failed=1)
    _optimum(one, frame, "D (read every survivor once)")
    one.set_title("rebuild one failed disk")
    _lines(two, frame, "rebuild", per_row, failed=2)
    _optimum(two, frame, "D (one pass over survivors)")
    two.set_title("rebuild two failed disks (one pass)")
    for axes in (one, two):
        axes.set_ylabel("disk reads per stripe row")
    _lines(lost, frame, "read-lost", frame["reads_per_block"], failed=None)
    lost.set_yscale("log")
    lost.set_title("degraded read of one lost block")
    lost.set_ylabel("disk reads per block read")
    for axes in (one, two, lost):
        axes.set_xlabel("data disks D")
        axes.legend(fontsize=6.5)
    return figure


def rebuild_speed(frame: pd.DataFrame) -> Figure:
    """Rebuild speed (MiB written to spares per second of wall time) against data disks."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11.0, 3.8), layout="constrained")
    one, two = figure.subplots(1, 2, sharey=True)
    for axes, failed in ((one, 1), (two, 2)):
        _lines(axes, frame, "rebuild", frame["mib_per_s"], failed=failed)
        axes.set_xlabel("data disks D")
        axes.set_title(f"rebuild {failed} failed disk{'s' if failed > 1 else ''} (in memory)")
        axes.legend(fontsize=6.5)
    one.set_ylabel("rebuilt MiB/s (wall clock: varies run to run)")
    return figure


def quoted_numbers(frame: pd.DataFrame) -> dict[str, str]:
    """What the paper quotes: at the largest group measured, disk reads per rebuilt block for one
    and two failed data disks, the worst single lost-block read, and a degraded batch read."""
    largest = int(frame["data_disks"].max())
    at = frame[frame["data_disks"] == largest]

    def mean(level: str, failure: str, operation: str) -> float:
        rows = at[(at["level"] == level) & (at["failure"] == failure)]
        rows = rows[rows["operation"] == operation]
        if rows.empty:
            raise InvalidArgumentError(f"no {operation} rows for {level} {failure} at D={largest}")
        return float(rows["reads_per_block"].mean())

    read_all = at[at["operation"] == "read-all"]["reads_per_block"]
    return {
        "ESevenALargestD": str(largest),
        "ESevenARebuildOneReads": f"{mean('RAID-DP', 'data', 'rebuild'):g}",
        "ESevenARebuildTwoReads": f"{mean('RAID-DP', 'data+data', 'rebuild'):g}",
        "ESevenALostReadTwoFailed": f"{mean('RAID-DP', 'data+data', 'read-lost'):g}",
        "ESevenALostReadOneFailed": f"{mean('RAID-4', 'data', 'read-lost'):g}",
        "ESevenAReadAllMax": f"{float(read_all.max()):g}",
    }


EXPERIMENT = Experiment(
    name="raid-reconstruction",
    title="E7a RAID reconstruction I/O",
    paper_numbers=quoted_numbers,
    measures="disk reads/writes (and wall time) to rebuild failed disks and serve degraded reads, "
    "RAID-4/5/DP",
    quick=QUICK,
    full=FULL,
    point=point,
    columns={
        "level": "RAID level: RAID-4, RAID-5 or RAID-DP (row-diagonal parity)",
        "data_disks": "data disks D in the group (RAID-DP prime p = smallest prime > D)",
        "failure": "which disks fail: data, parity, row-parity, diagonal-parity, any, or a pair",
        "disk_blocks": "blocks per disk asked for, rounded down to whole stripes (blocks_per_disk)",
        "samples": "single-block reads per read-lost / read-random operation",
        "failed": "number of failed disks",
        "failed_slots": "slots of the failed disks (data disks 0..D-1, then parity)",
        "rows": "rows per codeword (1 for RAID-4/5, p-1 for RAID-DP)",
        "blocks_per_disk": "blocks on each disk: disk_blocks rounded down to a multiple of rows",
        "operation": "read-all, read-lost, read-random or rebuild",
        "blocks": "logical blocks served (reads) or disk blocks written to spares (rebuild)",
        "disk_reads": "block reads issued to member disks",
        "disk_writes": "block writes issued to member disks and spares",
        "bytes_read": "bytes read from disks",
        "bytes_written": "bytes written to disks",
        "reads_per_block": "disk_reads / blocks",
        "elapsed_s": "wall time of the operation in seconds (varies run to run)",
        "mib_per_s": "blocks x 4 KiB / elapsed_s in MiB/s (varies run to run)",
    },
    figures=(
        FigureSpec("raid-reconstruction-io", rebuild_and_lost_reads, paper=True),
        FigureSpec("raid-rebuild-speed", rebuild_speed, deterministic=False),
    ),
    keys=("operation",),
    timing_columns=("elapsed_s", "mib_per_s"),
    default_seed=2004,
)
