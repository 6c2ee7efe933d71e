"""E1, update size: the data one mirror update sends against the update interval, block-level
against a file-level logical diff, for overwrite-heavy, append and create/delete workloads.

The seed keeps a disaster-recovery copy by mirroring a base snapshot to the remote location and
then, "when the information at the primary location changes", mirroring the changed information
so that the base snapshot is updated there: each *update* of the mirroring coordinator takes a
consistent snapshot of the expandable volume and sends every member volume's block diff from the
previous one with the block replication protocol. How much an update sends depends on how often
it runs. Patterson et al. (SnapMirror, FAST 2002) measured it on file-server traces: with longer
intervals a growing share of the written blocks is overwritten before it is sent (writes
*coalesce*), and a block-level update beats a logical (file-level) one for partial overwrites.
This experiment measures the same curves on the kit's whole mirroring stack.

One grid point is (workload, update interval ``I``, arrival rate, volume shape, window). The
point builds two sites (a 2-node cluster each), fills the primary's expandable volume with
``files`` files of ``file_blocks`` blocks, initializes the mirror (baseline, not measured) and
runs one empty update (to measure the fixed per-update cost, ``empty_update_records``). It then
replays a seeded client trace in simulated time with an update at every multiple of ``I``:
``K = max(1, ceil(window_s / I))`` updates over ``K * I`` seconds, so every point runs at least
one whole interval. Client operations go through the expandable volume (N-module -> namespace ->
OLS -> data constituent, a consistency point per acknowledged step); between two updates the
clock jumps to the next update time, so every operation of a window lands before that update's
snapshot. The workloads (operations arrive as a Poisson process at ``arrivals_per_hour``):

* ``overwrite``: each operation rewrites one 4 KiB block of the pre-filled files, drawn from a
  Zipf law (exponent :data:`ZIPF_EXPONENT`) over all their blocks in a seeded random order: a
  skewed hot set, each write a partial overwrite of its file (written anywhere, as always);
* ``append``: each operation appends :data:`APPEND_BYTES` to a file drawn uniformly (files grow;
  nothing is overwritten but the partly filled last block);
* ``create-delete``: each operation creates a file of :data:`CREATE_BLOCKS` blocks that is
  deleted after an exponential lifetime of mean :data:`LIFETIME_S` (deletions are extra
  operations); the point starts in the steady state, with a Poisson number of files alive
  (mean rate times lifetime), each with an exponential remaining lifetime.

Per update the point records, from the coordinator's :class:`UpdateResult` and the link's
counters, the blocks sent (``block_records``; ``block_payload_bytes`` = records x 4 KiB) and the
bytes that crossed the simulated link (``link_bytes``: every message of the update, both
directions, headers and checksums included). From the same two source snapshots it computes the
*file-level logical diff*: every file created or changed since the previous update sent whole
(path and bytes), every deleted file as its path. Every update is checked: the coordinator's
replica verification (leaf digests of every member volume plus the configuration rows) must call
the destination's exported snapshot equal to the source snapshot, and after the last update the
files the destination presents must equal the source snapshot's; otherwise the point raises
:class:`~xvol.errors.IntegrityError`. Every surviving block a window wrote must be among the
blocks its update sent, on top of the blocks even an empty update sends (a new fsinfo and
allocation map per member volume): ``surviving_blocks_written`` plus ``empty_update_records`` is
a lower bound of every update, checked.

Scale. A real file server sees hundreds of operations per second; the kit executes one client
operation in ~10 ms of wall time, so a 24 h interval at a realistic rate cannot run in the
experiment's budget. The rate is scaled down (30 operations per hour for overwrite and append,
12 arrivals per hour for create/delete) and the volume with it (eight files of 256 KiB, a hot set
of 512 blocks), which preserves what the curves are about: the number of operations per interval
relative to the hot set (coalescing) and to the file sizes (file-level against block-level).
What the scaling does not preserve is the fixed cost of an update (a new fsinfo and allocation
map per member volume, ``empty_update_records``): at one minute it is larger than the few
operations of the interval, so the short-interval end of the block-level curve is dominated by
metadata; at a realistic rate it would be negligible. The figures show it, and
``empty_update_records`` lets a reader subtract it.

Storage beneath the volumes does not change what block replication sends (it diffs volume
blocks), so the sites run on the cheapest aggregate: RAID-4 over two memory disks per node.
Counts and bytes are deterministic for a seed; ``elapsed_s`` (wall time of the point) is the only
timing column.

Uses: numpy, :mod:`xvol.reference.mirror` (sites, source proxy, mirroring coordinator, links),
the cluster and repository layers through them, :mod:`xvol.experiments.framework`; matplotlib and
pandas only inside the figure and numbers functions.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from xvol.errors import IntegrityError, InvalidArgumentError
from xvol.experiments.framework import Experiment, FigureSpec, Params, Record, grid
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.mirror.coordinator import MirroringCoordinator, UpdateResult
from xvol.reference.mirror.site import Site, SitePair, changed_paths
from xvol.reference.repository.constituent import object_path
from xvol.reference.snapshots.snapshot_table import SnapshotRecord
from xvol.reference.storage.block import BLOCK_SIZE
from xvol.reference.volume.volume import FileSystemView
from xvol.vocabulary import data_volume_name

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

VS, XV = "vs1", "xv"
"""The vserver and expandable volume every point mirrors."""

# ---------------------------------------------------------------------------------------------
# The workloads and the grid.

Workload = Literal["overwrite", "append", "create-delete"]
WORKLOADS: tuple[Workload, ...] = ("overwrite", "append", "create-delete")
ARRIVALS_PER_HOUR: dict[str, int] = {"overwrite": 30, "append": 30, "create-delete": 12}
"""The fixed (scaled, see the module text) arrival rate of each workload's operations."""

ZIPF_EXPONENT = 1.2
"""Skew of the overwrite workload's block popularity: rank ``k`` is drawn with weight k^-1.2."""
APPEND_BYTES = 1024
"""Bytes one append operation adds (a log record: a quarter block)."""
CREATE_BLOCKS = 4
"""Blocks of a file the create/delete workload creates (16 KiB)."""
LIFETIME_S = 3600.0
"""Mean lifetime (exponential) of a file the create/delete workload creates."""
VOLUME_BLOCKS = 1024
"""Blocks of each member volume (4 MiB): room for the files and the snapshots an update keeps."""
BANDWIDTH, LATENCY = 10e6, 0.02
"""The simulated inter-site link: 10 MB/s, 20 ms one way."""

INTERVALS: tuple[int, ...] = (60, 300, 900, 3600, 14_400, 43_200, 86_400)
"""Update intervals of the full grid, in seconds: 1 min, 5 min, 15 min, 1 h, 4 h, 12 h, 24 h."""


def _rate_matches(point: Params) -> bool:
    return point["arrivals_per_hour"] == ARRIVALS_PER_HOUR[str(point["workload"])]


FULL = grid(
    {
        "workload": list(WORKLOADS),
        "interval_s": list(INTERVALS),
        "arrivals_per_hour": sorted(set(ARRIVALS_PER_HOUR.values())),
        "files": [8],
        "file_blocks": [64],
        "window_s": [1800],
    },
    where=_rate_matches,
)
QUICK = grid(
    {
        "workload": list(WORKLOADS),
        "interval_s": [300, 1800],
        "arrivals_per_hour": sorted(set(ARRIVALS_PER_HOUR.values())),
        "files": [4],
        "file_blocks": [8],
        "window_s": [600],
    },
    where=lambda p: (
        _rate_matches(p) and (p["workload"] == "overwrite" or float(p["interval_s"]) > 300)
    ),
)
"""Four points: overwrite at 5 and 30 minutes, append and create/delete at 30 minutes."""


# ---------------------------------------------------------------------------------------------
# The client trace: what the clients do, when. Built whole from the point's seed before anything
# runs, so the same seed replays the same operations.


@dataclass(frozen=True)
class ClientOp:
    """One client operation at simulated time ``at`` (seconds after the measurement starts;
    setup operations have ``at == 0``): create ``path`` with ``data``, write ``data`` into it
    at ``offset``, or delete it."""

    at: float
    kind: Literal["create", "write", "delete"]
    path: str
    offset: int = 0
    data: bytes = b""


@dataclass(frozen=True)
class Trace:
    """A workload's operations: ``setup`` (run before the mirror is initialized) and ``ops``
    (sorted by time, all strictly before ``horizon``)."""

    setup: tuple[ClientOp, ...]
    ops: tuple[ClientOp, ...]
    horizon: float


def updates_for(interval_s: float, window_s: float) -> int:
    """How many updates a point runs: enough whole intervals to cover ``window_s``, at least one."""
    if interval_s <= 0 or window_s <= 0:
        raise InvalidArgumentError("interval_s and window_s must be > 0")
    return max(1, math.ceil(window_s / interval_s))


def base_file(index: int) -> str:
    """Path of pre-filled file ``index``."""
    return f"/f{index:03d}"


def _arrivals(rng: np.random.Generator, per_hour: float, horizon: float) -> list[float]:
    """Times of a Poisson process of rate ``per_hour`` in ``(0, horizon)``."""
    times: list[float] = []
    now = 0.0
    scale = 3600.0 / per_hour
    while True:
        now += float(rng.exponential(scale))
        if now >= horizon:
            return times
        times.append(now)


def make_trace(
    workload: str,
    *,
    files: int,
    file_blocks: int,
    per_hour: float,
    horizon: float,
    rng: np.random.Generator,
) -> Trace:
    """The seeded trace of ``workload`` over ``(0, horizon)``; InvalidArgumentError for an
    unknown workload or a non-positive size or rate."""
    if workload not in WORKLOADS:
        raise InvalidArgumentError(f"unknown workload {workload!r}; known: {', '.join(WORKLOADS)}")
    if files < 1 or file_blocks < 1 or per_hour <= 0 or horizon <= 0:
        raise InvalidArgumentError("files, file_blocks, rate and horizon must be positive")
    setup = [
        ClientOp(0.0, "create", base_file(i), data=rng.bytes(file_blocks * BLOCK_SIZE))
        for i in range(files)
    ]
    ops: list[tuple[float, int, ClientOp]] = []  # (time, sequence) orders ties stably
    times = _arrivals(rng, per_hour, horizon)
    if workload == "overwrite":
        blocks = files * file_blocks
        weights = np.arange(1, blocks + 1, dtype=np.float64) ** -ZIPF_EXPONENT
        order = rng.permutation(blocks)  # rank -> block
        ranks = rng.choice(blocks, size=len(times), p=weights / weights.sum())
        for seq, (at, rank) in enumerate(zip(times, ranks, strict=True)):
            block = int(order[rank])
            path, fbn = base_file(block // file_blocks), block % file_blocks
            data = rng.bytes(BLOCK_SIZE)
            ops.append((at, seq, ClientOp(at, "write", path, fbn * BLOCK_SIZE, data)))
    elif workload == "append":
        sizes = [file_blocks * BLOCK_SIZE] * files
        for seq, at in enumerate(times):
            which = int(rng.integers(files))
            op = ClientOp(at, "write", base_file(which), sizes[which], rng.bytes(APPEND_BYTES))
            sizes[which] += APPEND_BYTES
            ops.append((at, seq, op))
    else:
        seq = 0
        alive = int(rng.poisson(per_hour * LIFETIME_S / 3600.0))
        births = [0.0] * alive + times
        for serial, born in enumerate(births):
            path = f"/c{serial:05d}"
            data = rng.bytes(CREATE_BLOCKS * BLOCK_SIZE)
            dies = born + float(rng.exponential(LIFETIME_S))
            if serial < alive:
                setup.append(ClientOp(0.0, "create", path, data=data))
            else:
                ops.append((born, seq, ClientOp(born, "create", path, data=data)))
                seq += 1
            if dies < horizon:
                ops.append((dies, seq, ClientOp(dies, "delete", path)))
                seq += 1
    ops.sort(key=lambda entry: (entry[0], entry[1]))
    return Trace(tuple(setup), tuple(op for _at, _seq, op in ops), horizon)


# ---------------------------------------------------------------------------------------------
# The two sites and what a client and the mirror do to them.


def make_site(name: str, seed: int, *, volume: bool) -> Site:
    """A site: a 2-node cluster on RAID-4 memory aggregates (two data disks per node) with
    vserver ``vs1`` and, if ``volume``, the expandable volume ``xv`` (two data constituents)."""
    cluster = Cluster(
        2,
        seed=seed,
        storage_factory=lambda node: AggregateStorage.memory(node, level="4", data_disks=2),
    )
    mhost = cluster.mhost()
    mhost.create_vserver(VS)
    if volume:
        mhost.create_expandable_volume(VS, XV, data_constituents=2, volume_blocks=VOLUME_BLOCKS)
    return Site(name, cluster)


@dataclass
class ClientLog:
    """What the clients did since the last update: bytes written, operations by kind, and the
    blocks written per path (file block numbers)."""

    written: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    blocks: dict[str, set[int]] = field(default_factory=dict)

    def apply(self, site: Site, op: ClientOp) -> None:
        """Run ``op`` through the site's expandable volume and log it."""
        xv = site.cluster.expandable(VS, XV)
        if op.kind == "create":
            xv.create(op.path, op.data)
            self.blocks[op.path] = set(range(-(-len(op.data) // BLOCK_SIZE)))
        elif op.kind == "write":
            xv.write(op.path, op.offset, op.data)
            first, end = op.offset // BLOCK_SIZE, -(-(op.offset + len(op.data)) // BLOCK_SIZE)
            self.blocks.setdefault(op.path, set()).update(range(first, end))
        else:
            xv.delete(op.path)
            self.blocks.pop(op.path, None)
        self.written += len(op.data)
        self.kinds[op.kind] = self.kinds.get(op.kind, 0) + 1


def snapshot_contents(site: Site, record: SnapshotRecord) -> dict[str, bytes]:
    """Every file of expandable-volume snapshot ``record`` at ``site``, path -> bytes.

    Names and locations come from the snapshot's namespace and OLS through the snapshot access
    layer; the bytes are read from each data constituent's per-volume snapshot directly (the
    same blocks the access layer would read, without one CF round trip per file)."""
    view = site.open_snapshot(VS, XV, record.snapshot_id)
    where = view.locations()
    trees: dict[str, FileSystemView] = {}
    out: dict[str, bytes] = {}
    for path, goid in view.walk():
        member = data_volume_name(where[goid].location_id)
        if member not in trees:
            volume = site.volume(VS, XV, member)
            trees[member] = volume.snapshot(uuid.UUID(record.member(member).uuid))
        out[path] = trees[member].read_file(object_path(goid))
    return out


@dataclass(frozen=True)
class FileLevelDiff:
    """The logical diff between two snapshots' files: bytes it would send (path and whole
    contents of every created or changed file, the path of every deleted one) and counts."""

    bytes: int
    changed: int
    deleted: int


def file_level_diff(before: Mapping[str, bytes], after: Mapping[str, bytes]) -> FileLevelDiff:
    """The file-level logical diff from ``before`` to ``after`` (see :class:`FileLevelDiff`)."""
    paths = changed_paths(dict(before), dict(after))
    sent = changed = deleted = 0
    for path in paths:
        sent += len(path.encode())
        if path in after:
            sent += len(after[path])
            changed += 1
        else:
            deleted += 1
    return FileLevelDiff(sent, changed, deleted)


@dataclass
class Mirror:
    """The pair of sites, the coordinator at the remote site, and the link it uses."""

    pair: SitePair
    coordinator: MirroringCoordinator

    @property
    def primary(self) -> Site:
        return self.pair.site("A")

    @property
    def remote(self) -> Site:
        return self.pair.site("B")

    def run(self, process: Generator[Any, Any, Any]) -> Any:
        """Run a coordinator process to its end in simulated time."""
        return self.pair.run(process)

    def wait_until(self, when: float) -> None:
        """Advance simulated time to ``when`` (no-op if it has passed)."""
        if when > self.pair.now:
            self.pair.run(_sleep(self.pair, when - self.pair.now))

    def link_bytes(self) -> int:
        """Bytes put on the coordinator's link so far (both directions)."""
        return self.pair.links[("B", "A")].stats.bytes

    def update(self) -> tuple[UpdateResult, int]:
        """One verified update: its result and the link bytes it moved. Raises IntegrityError
        unless replica verification calls the new exported snapshot equal at both sites."""
        before = self.link_bytes()
        result: UpdateResult = self.run(self.coordinator.update(VS, XV))
        moved = self.link_bytes() - before
        check = self.run(self.coordinator.verify(VS, XV))
        if not check.equal or check.snapshot != result.snapshot.name:
            raise IntegrityError(
                f"E1: after update {result.snapshot.name!r} the mirror does not verify equal "
                f"(verified {check.snapshot!r}; configuration differences "
                f"{list(check.config_differences)})"
            )
        return result, moved

    def source_record(self, result: UpdateResult) -> SnapshotRecord:
        """The source's snapshot table row of the snapshot ``result`` sent."""
        return self.primary.jobs.get(VS, XV, result.snapshot.name)


def _sleep(pair: SitePair, seconds: float) -> Generator[Any, Any, None]:
    yield pair.env.timeout(seconds)


def open_mirror(seed: int, setup: tuple[ClientOp, ...]) -> Mirror:
    """Two fresh sites, the setup operations run at the primary, the mirror initialized and
    verified."""
    primary = make_site("A", seed % (1 << 31), volume=True)
    remote = make_site("B", (seed >> 31) % (1 << 31), volume=False)
    pair = SitePair(primary, remote, bandwidth=BANDWIDTH, latency=LATENCY, seed=seed % 1000)
    log = ClientLog()
    for op in setup:
        log.apply(primary, op)
    mirror = Mirror(pair, MirroringCoordinator(remote, pair.link("B", "A")))
    mirror.run(mirror.coordinator.initialize(VS, XV))
    if not mirror.run(mirror.coordinator.verify(VS, XV)).equal:
        raise IntegrityError("E1: the mirror does not verify equal after initialize")
    return mirror


# ---------------------------------------------------------------------------------------------
# One point.


def point(params: Params, seed: int) -> list[Record]:
    """Measure one (workload, interval) point: ``K`` verified updates over the seeded trace."""
    started = time.perf_counter()
    workload, interval = str(params["workload"]), float(params["interval_s"])
    files, file_blocks = int(params["files"]), int(params["file_blocks"])
    updates = updates_for(interval, float(params["window_s"]))
    rng = np.random.default_rng(seed)
    trace = make_trace(
        workload,
        files=files,
        file_blocks=file_blocks,
        per_hour=float(params["arrivals_per_hour"]),
        horizon=updates * interval,
        rng=rng,
    )
    mirror = open_mirror(seed, trace.setup)
    empty, _ = mirror.update()  # nothing changed since initialize: the fixed cost
    previous = snapshot_contents(mirror.primary, mirror.source_record(empty))
    start = mirror.pair.now

    totals: dict[str, int] = dict.fromkeys(
        ("create", "write", "delete", "written", "surviving", "records", "wire", "link",
         "file_bytes", "changed", "deleted"), 0,
    )  # fmt: skip
    seconds: list[float] = []
    pending = list(trace.ops)
    for k in range(1, updates + 1):
        log = ClientLog()
        while pending and pending[0].at < k * interval:
            op = pending.pop(0)
            mirror.wait_until(start + op.at)
            log.apply(mirror.primary, op)
        mirror.wait_until(start + k * interval)
        result, moved = mirror.update()
        current = snapshot_contents(mirror.primary, mirror.source_record(result))
        logical = file_level_diff(previous, current)
        surviving = sum(len(blocks) for path, blocks in log.blocks.items() if path in current)
        if result.records_sent < surviving + empty.records_sent:
            raise IntegrityError(
                f"E1 {dict(params)}: update {k} sent {result.records_sent} blocks, fewer than "
                f"the {surviving} surviving blocks its window wrote plus the "
                f"{empty.records_sent} metadata blocks every update sends"
            )
        for kind, count in log.kinds.items():
            totals[kind] += count
        totals["written"] += log.written
        totals["surviving"] += surviving
        totals["records"] += result.records_sent
        totals["wire"] += result.wire_bytes
        totals["link"] += moved
        totals["file_bytes"] += logical.bytes
        totals["changed"] += logical.changed
        totals["deleted"] += logical.deleted
        seconds.append(result.seconds)
        previous = current
    if pending:
        raise IntegrityError(f"E1 {dict(params)}: {len(pending)} operations were never run")
    final = mirror.remote.jobs.get(VS, XV, result.snapshot.name)
    if snapshot_contents(mirror.remote, final) != previous:
        raise IntegrityError(f"E1 {dict(params)}: the mirror's files differ from the source's")

    hours = updates * interval / 3600.0
    payload = totals["records"] * BLOCK_SIZE
    above_floor = (totals["records"] - updates * empty.records_sent) * BLOCK_SIZE
    written = totals["written"]
    return [
        {
            "updates": updates,
            "hours": hours,
            "ops": totals["create"] + totals["write"] + totals["delete"],
            "creates": totals["create"],
            "writes": totals["write"],
            "deletes": totals["delete"],
            "written_bytes": written,
            "surviving_blocks_written": totals["surviving"],
            "empty_update_records": empty.records_sent,
            "block_records": totals["records"],
            "block_payload_bytes": payload,
            "block_above_floor_bytes": above_floor,
            "replication_wire_bytes": totals["wire"],
            "link_bytes": totals["link"],
            "file_level_bytes": totals["file_bytes"],
            "files_changed": totals["changed"],
            "files_deleted": totals["deleted"],
            "written_per_hour": written / hours,
            "block_per_hour": payload / hours,
            "floor_per_hour": (payload - above_floor) / hours,
            "block_above_floor_per_hour": above_floor / hours,
            "link_per_hour": totals["link"] / hours,
            "file_per_hour": totals["file_bytes"] / hours,
            "block_over_written": payload / written if written else math.nan,
            "above_floor_over_written": above_floor / written if written else math.nan,
            "file_over_written": totals["file_bytes"] / written if written else math.nan,
            "file_over_block": totals["file_bytes"] / payload,
            "update_s_mean": sum(seconds) / len(seconds),
            "update_s_max": max(seconds),
            "verified_updates": updates,
            "elapsed_s": time.perf_counter() - started,
        }
    ]


# ---------------------------------------------------------------------------------------------
# Figures.

_COLOURS = {"overwrite": "C0", "append": "C1", "create-delete": "C2"}
_TICKS: tuple[tuple[int, str], ...] = (
    (60, "1 min"), (300, "5 min"), (900, "15 min"), (1800, "30 min"), (3600, "1 h"),
    (14_400, "4 h"), (43_200, "12 h"), (86_400, "1 day"),
)  # fmt: skip


def _interval_axis(axes: Axes, frame: pd.DataFrame) -> None:
    axes.set_xscale("log")
    present = set(frame["interval_s"].tolist())
    shown = [(s, label) for s, label in _TICKS if s in present]
    axes.set_xticks([s for s, _ in shown], [label for _, label in shown], rotation=40)
    axes.minorticks_off()
    axes.set_xlabel("update interval")


def bytes_per_hour(frame: pd.DataFrame) -> Figure:
    """One panel per workload: bytes per hour the clients wrote, the block-level updates sent
    and a file-level logical diff would send, against the update interval (log-log)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11.0, 3.8), layout="constrained")
    panels = figure.subplots(1, len(WORKLOADS), sharey=True)
    series = (
        ("written_per_hour", "written by clients", "k", "--", "."),
        ("block_per_hour", "block-level update (payload)", "C0", "-", "o"),
        ("link_per_hour", "block-level update (link, all messages)", "C0", ":", "x"),
        ("file_per_hour", "file-level logical diff", "C3", "-", "s"),
        ("floor_per_hour", "fixed cost of the updates (empty updates)", "0.5", "-.", ""),
    )
    for axes, workload in zip(panels, WORKLOADS, strict=True):
        rows = frame[frame["workload"] == workload].sort_values("interval_s")
        for column, label, colour, style, marker in series:
            axes.plot(
                rows["interval_s"], rows[column] / 1024, label=label,
                color=colour, linestyle=style, marker=marker,
            )  # fmt: skip
        _interval_axis(axes, rows)
        axes.set_yscale("log")
        axes.set_title(f"{workload} ({int(rows['arrivals_per_hour'].iloc[0])} arrivals/h)")
    panels[0].set_ylabel("KiB per hour")
    panels[0].legend(fontsize=7)
    figure.suptitle("E1: data one mirror update sends per hour, against the update interval")
    return figure


def sent_over_written(frame: pd.DataFrame) -> Figure:
    """Bytes sent per byte written against the update interval: block-level (solid), the part of
    it above the fixed update cost (dotted) and file-level (dashed), one colour per workload."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.0, 4.4), layout="constrained")
    axes = figure.add_subplot()
    for workload in WORKLOADS:
        rows = frame[frame["workload"] == workload].sort_values("interval_s")
        colour = _COLOURS[workload]
        axes.plot(rows["interval_s"], rows["block_over_written"], color=colour, marker="o",
                  label=f"{workload}: block-level")  # fmt: skip
        axes.plot(
            rows["interval_s"],
            rows["above_floor_over_written"],
            color=colour,
            linestyle=":",
            linewidth=1.0,
            label=f"{workload}: block-level above fixed cost",
        )
        axes.plot(rows["interval_s"], rows["file_over_written"], color=colour, marker="s",
                  linestyle="--", label=f"{workload}: file-level")  # fmt: skip
    axes.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    _interval_axis(axes, frame)
    axes.set_yscale("log")
    axes.set_ylabel("bytes sent / bytes written")
    axes.set_title("E1: update size relative to the data written")
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return figure


# ---------------------------------------------------------------------------------------------
# The numbers the paper quotes.


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}\\,h"
    return f"{int(seconds // 60)}\\,min"


def numbers(frame: pd.DataFrame) -> dict[str, str]:
    """Quoted figures: at the longest interval, the overwrite workload's coalescing (bytes
    written per block byte sent), the file-level/block-level ratio of overwrite (and its
    largest value over the intervals) and of append, the share of create/delete's written bytes
    that reached the mirror; at the shortest interval, what overwrite sent above the fixed
    update cost per byte written; and that fixed cost in blocks."""

    def rows(workload: str) -> pd.DataFrame:
        return frame[frame["workload"] == workload].sort_values("interval_s")

    overwrite, append, churn = rows("overwrite"), rows("append"), rows("create-delete")
    longest, shortest = overwrite.iloc[-1], overwrite.iloc[0]
    return {
        "EOneLongestInterval": _duration(float(longest["interval_s"])),
        "EOneOverwriteCoalescing": f"{1 / float(longest['block_over_written']):.1f}",
        "EOneOverwriteFileOverBlock": f"{float(longest['file_over_block']):.1f}",
        "EOneOverwriteFileOverBlockMax": f"{float(overwrite['file_over_block'].max()):.1f}",
        "EOneAppendFileOverBlock": f"{float(append.iloc[-1]['file_over_block']):.1f}",
        "EOneCreateDeleteSentPercent": f"{100 * float(churn.iloc[-1]['block_over_written']):.0f}",
        "EOneOverwriteShortAboveFixed": f"{float(shortest['above_floor_over_written']):.2f}",
        "EOneEmptyUpdateBlocks": f"{int(longest['empty_update_records'])}",
    }


EXPERIMENT = Experiment(
    name="update-size",
    title="E1 data sent per mirror update against the update interval",
    measures="bytes a block-level mirror update sends (and a file-level logical diff would "
    "send) per hour against the update interval, for overwrite, append and create/delete",
    quick=QUICK,
    full=FULL,
    point=point,
    columns={
        "workload": "client workload: overwrite (Zipf hot set), append, or create-delete",
        "interval_s": "update interval in simulated seconds",
        "arrivals_per_hour": "client operations arriving per simulated hour (Poisson; "
        "create-delete: creations, deletions come on top)",
        "files": "files of the pre-filled volume",
        "file_blocks": "4 KiB blocks per pre-filled file",
        "window_s": "minimum measured simulated time; updates = max(1, ceil(window_s/interval))",
        "updates": "measured updates K, each verified",
        "hours": "measured simulated hours (K x interval)",
        "ops": "client operations run in the measured window",
        "creates": "file creations in the window",
        "writes": "writes (overwrites or appends) in the window",
        "deletes": "file deletions in the window",
        "written_bytes": "bytes the clients wrote in the window",
        "surviving_blocks_written": "file blocks written in each window whose file still "
        "exists at that update, summed (a lower bound of the blocks the updates must send)",
        "empty_update_records": "blocks an update sends when nothing changed (new fsinfo and "
        "allocation map per member volume)",
        "block_records": "blocks the K updates sent (block diff records, every member volume)",
        "block_payload_bytes": "block_records x 4096",
        "block_above_floor_bytes": "block_payload_bytes minus K empty updates' worth: what the "
        "updates sent beyond the fixed per-update cost",
        "replication_wire_bytes": "bytes of the block replication channels (records with "
        "checksums and message headers)",
        "link_bytes": "bytes on the simulated link during the updates, both directions, all "
        "messages (volume and snapshot lists, snapshot request, transfers)",
        "file_level_bytes": "bytes of a file-level logical diff over the same snapshots: path "
        "plus contents of each created or changed file, path of each deleted file",
        "files_changed": "files created or changed, summed over the updates",
        "files_deleted": "files deleted, summed over the updates",
        "written_per_hour": "written_bytes per simulated hour",
        "block_per_hour": "block_payload_bytes per simulated hour",
        "floor_per_hour": "the fixed update cost per simulated hour: K x empty_update_records "
        "x 4096 / hours",
        "block_above_floor_per_hour": "block_above_floor_bytes per simulated hour",
        "link_per_hour": "link_bytes per simulated hour",
        "file_per_hour": "file_level_bytes per simulated hour",
        "block_over_written": "block_payload_bytes / written_bytes",
        "above_floor_over_written": "block_above_floor_bytes / written_bytes",
        "file_over_written": "file_level_bytes / written_bytes",
        "file_over_block": "file_level_bytes / block_payload_bytes",
        "update_s_mean": "mean simulated seconds of one update (10 MB/s, 20 ms link)",
        "update_s_max": "longest update in simulated seconds",
        "verified_updates": "updates whose exported snapshot verified equal at both sites",
        "elapsed_s": "wall time of the point in seconds (varies run to run)",
    },
    figures=(
        FigureSpec("update-size-bytes", bytes_per_hour, paper=True),
        FigureSpec("update-size-ratio", sent_over_written),
    ),
    timing_columns=("elapsed_s",),
    default_seed=2002,
    paper_numbers=numbers,
)

__all__ = [
    "ARRIVALS_PER_HOUR",
    "EXPERIMENT",
    "ClientLog",
    "ClientOp",
    "FileLevelDiff",
    "Trace",
    "file_level_diff",
    "make_site",
    "make_trace",
    "numbers",
    "open_mirror",
    "point",
    "snapshot_contents",
    "updates_for",
]
