"""E6, a growing volume under throttling: what an update costs as data constituents are added
to a mirrored expandable volume, and how far the mirror lags behind a steady writer for a given
throttle.

The seed's expandable volume grows by adding data constituents while it runs; a mirror update
first *resizes* the destination to match the source (creates the new member volumes, one
relationship each) and then transfers the target snapshot member by member. Configuration field
J of the relationship table sets a *throttle* (bytes per second per relationship) and a
*schedule*. This experiment measures both on the real stack: two sites
(:func:`~xvol.reference.mirror.site.build_site`, a :class:`~xvol.reference.mirror.site.SitePair`
on SimPy time) and the destination's
:class:`~xvol.reference.mirror.coordinator.MirroringCoordinator`, with config J's throttle and
its retention of two mirror snapshots (so that the snapshot lists and the 255 per-volume
snapshots stay bounded in long runs).

Two scenarios, one parameter ``scenario``:

* ``grow`` (``steps`` constituents added, one by one, under ``throttle_kib_s``): the volume starts
  with one data constituent; each step adds one at the source, then runs two updates: a
  *growth* update (the constituent added, nothing written: the destination is resized and the
  new, empty member sent as a baseline) and a *write* update (one new file of
  :data:`GROW_WRITE_BYTES`, no constituent added). Each row is one update: wire bytes (all of
  the update's messages), simulated seconds, diff records, the bytes of the new member's
  transfer and the mean bytes of every other member's. After every update the destination must
  have exactly the source's members and export the update's snapshot, and its client listing
  must equal the source's files.
* ``steady`` (a writer at :data:`WRITE_KIB_S`, one new file every :data:`WRITE_EVERY_S`
  simulated seconds, for ``horizon_s`` seconds; the mirror on config J's schedule every
  :data:`SCHEDULE_S` seconds, :meth:`~MirroringCoordinator.run_schedule`, which starts an
  overrun's successor at once): each row is one scheduled update: when it started, when the
  destination's exported snapshot moved (the N-module's redirect), its wire bytes and records,
  and the *lag* just before and just after that moment: the age of the exported snapshot
  (simulated seconds since the update that took it started; the coordinator takes the snapshot
  one round trip after the start). After the horizon the source takes one more snapshot and
  :meth:`~MirroringCoordinator.lag` reports how many blocks the mirror is behind. Theory: when
  the throttle exceeds the block-level change rate (file data plus the metadata each create
  changes in the namespace, the OLS and the data constituent, plus a few blocks per member per
  update) updates finish within the schedule and the lag stays below about two schedule
  periods; below it every update carries the data written during the previous one, takes
  longer, and the lag grows with time. What the kit's throttle does (and ``effective_kib_s``
  shows): the simulated link paces a relationship's messages *after* the first one of each
  busy period, so a relationship whose transfer is a few batches runs faster than its nominal
  throttle; the bounded region therefore starts below the wire change rate.

Every point ends with the mirror verified equal to the source by leaf digests
(:meth:`~MirroringCoordinator.verify`); a failed check raises
:class:`~xvol.errors.IntegrityError` and no number is reported.

Uses: numpy (seeded file contents, a least-squares slope), :mod:`xvol.reference.mirror` (site,
coordinator, relationships, replication), :mod:`xvol.experiments.framework`; matplotlib and
pandas only inside the figure and numbers functions.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from xvol.errors import IntegrityError, InvalidArgumentError
from xvol.experiments.framework import Experiment, ExperimentError, FigureSpec, Params, Record, grid
from xvol.reference.mirror.coordinator import MirroringCoordinator, ScheduledUpdate, UpdateResult
from xvol.reference.mirror.relationships import MirrorConfig
from xvol.reference.mirror.replication import TransferProgress
from xvol.reference.mirror.site import Site, SitePair, build_site

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

VS, XV = "vs1", "xv"
BANDWIDTH = 1e6
"""Link bandwidth in bytes per simulated second, each direction (above every throttle)."""
LATENCY = 0.005
"""One-way link latency in simulated seconds."""
BATCH_BLOCKS = 16
"""Diff records per batch request."""
RETAIN = 2
"""Config J retention: mirror snapshots kept at both sites (the exported one always)."""
VOLUME_BLOCKS = 1024
"""Blocks per member volume (4 MiB)."""
GROW_START_CONSTITUENTS = 1
"""Data constituents before the first step of the ``grow`` scenario."""
GROW_WRITE_BYTES = 256 * 1024
"""File data written before each write update of the ``grow`` scenario (one new file)."""
STEADY_CONSTITUENTS = 2
"""Data constituents of the volume in the ``steady`` scenario."""
WRITE_KIB_S = 64
"""The steady writer's file data rate in KiB per simulated second."""
WRITE_EVERY_S = 1.0
"""The steady writer creates one file of ``WRITE_KIB_S * WRITE_EVERY_S`` KiB this often."""
SCHEDULE_S = 2.0
"""Config J schedule of the ``steady`` scenario: an update every this many simulated seconds."""
SCENARIOS = ("grow", "steady")

QUICK = (
    *grid({"scenario": ["grow"], "throttle_kib_s": [256], "steps": [2], "horizon_s": [0]}),
    *grid({"scenario": ["steady"], "throttle_kib_s": [48, 256], "steps": [0], "horizon_s": [8]}),
)
FULL = (
    *grid({"scenario": ["grow"], "throttle_kib_s": [256], "steps": [12], "horizon_s": [0]}),
    *grid(
        {
            "scenario": ["steady"],
            "throttle_kib_s": [32, 48, 64, 80, 96, 128, 192, 256, 512],
            "steps": [0],
            "horizon_s": [40],
        }
    ),
)


# ---------------------------------------------------------------------------------------------
# Following the mirror: per-update progress, and when the exported snapshot moves.


@dataclass
class Progress:
    """The coordinator's ``on_progress`` callback: each relationship's latest progress since
    :meth:`reset` (one update)."""

    last: dict[str, TransferProgress] = field(default_factory=dict)

    def __call__(self, progress: TransferProgress) -> None:
        self.last[progress.relationship] = progress

    def reset(self) -> None:
        """Forget the previous update."""
        self.last.clear()

    def records(self) -> int:
        """Records in the diffs this update transferred, over all relationships."""
        return sum(p.records_total for p in self.last.values())


@dataclass(frozen=True)
class Publication:
    """The destination's exported snapshot moved: when, to which snapshot, the records the
    update transferred and the link bytes put on the wire so far."""

    at: float
    snapshot: str
    records: int
    link_bytes: int


@dataclass
class _Mirror:
    """Two sites, their link, the destination's coordinator and the source's files.

    ``expected`` is every file of the source's active file system (path -> bytes), kept in step
    with each write."""

    source: Site
    dest: Site
    pair: SitePair
    co: MirroringCoordinator
    progress: Progress
    rng: np.random.Generator
    expected: dict[str, bytes] = field(default_factory=dict)

    def link_bytes(self) -> int:
        """Bytes put on the destination's link to the source so far (both directions)."""
        return self.pair.links[(self.dest.name, self.source.name)].stats.bytes

    def write(self, path: str, size: int) -> None:
        """Create file ``path`` of ``size`` seeded random bytes at the source."""
        data = self.rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        self.source.write(VS, XV, path, data)
        self.expected[path] = data

    def check_mirrors(self, snapshot: str, what: str, *, files: bool = False) -> None:
        """The destination exports ``snapshot``, has the source's members, and its client
        listing is the source snapshot's (and, with ``files``, every file written so far);
        :class:`IntegrityError` otherwise."""
        exported = self.co.tables.group(VS, XV).exported
        if exported is None or self.dest.jobs.get(VS, XV, exported).name != snapshot:
            raise IntegrityError(f"{what}: the destination does not export {snapshot!r}")
        mine = [m.name for m in self.dest.members(VS, XV)]
        theirs = [m.name for m in self.source.members(VS, XV)]
        if mine != theirs:
            raise IntegrityError(f"{what}: destination members {mine}, source members {theirs}")
        listed = _snapshot_paths(self.dest, exported)
        wanted = _snapshot_paths(self.source, snapshot)
        if listed != wanted or (files and listed != set(self.expected)):
            raise IntegrityError(f"{what}: the mirror's client listing differs from the source")

    def verify(self, what: str) -> None:
        """Every member of the exported snapshot equals the source's, by leaf digests."""
        if not self.pair.run(self.co.verify(VS, XV)).equal:
            raise IntegrityError(f"{what}: the mirror does not verify equal")


def _snapshot_paths(site: Site, snapshot: str | int) -> set[str]:
    return {path for path, _goid in site.open_snapshot(VS, XV, snapshot).walk()}


def _mirror(
    rng: np.random.Generator, constituents: int, config: MirrorConfig
) -> tuple[_Mirror, UpdateResult]:
    """Sites A (source, ``constituents`` data constituents) and B (destination), one small file,
    the mirror initialized with ``config``."""
    seeds = [int(x) for x in rng.integers(0, 2**31, 3)]
    source = build_site(
        "A", seed=seeds[0], data_constituents=constituents, volume_blocks=VOLUME_BLOCKS
    )
    dest = build_site("B", seed=seeds[1], volume=None)
    pair = SitePair(source, dest, bandwidth=BANDWIDTH, latency=LATENCY, seed=seeds[2])
    progress = Progress()
    co = MirroringCoordinator(
        dest, pair.link(dest.name, source.name), batch_blocks=BATCH_BLOCKS, on_progress=progress
    )
    m = _Mirror(source, dest, pair, co, progress, rng)
    m.write("/first", 4000)
    first = pair.run(co.initialize(VS, XV, config=config))
    m.check_mirrors(first.snapshot.name, "E6 initialize", files=True)
    return m, first


# ---------------------------------------------------------------------------------------------
# The grow scenario.


def _update_row(
    m: _Mirror, index: int, phase: str, result: UpdateResult, wire: int, seconds: float
) -> Record:
    """One row of the grow scenario: the update's cost, split into the new member and the rest."""
    added = set(result.added)
    new = [t for t in result.members if t.member in added]
    others = [t for t in result.members if t.member not in added]
    data = sum(1 for name in (x.name for x in m.source.members(VS, XV)) if name.startswith("DC"))
    return {
        "index": index,
        "phase": phase,
        "data_constituents": data,
        "members": len(m.dest.members(VS, XV)),
        "added": len(added),
        "written_bytes": GROW_WRITE_BYTES if phase == "write" else 0,
        "update_bytes": wire,
        "update_s": seconds,
        "effective_kib_s": wire / seconds / 1024,
        "update_records": m.progress.records(),
        "new_member_bytes": sum(t.wire_bytes for t in new),
        "new_member_records": sum(t.records for t in new),
        "other_member_bytes": sum(t.wire_bytes for t in others) / max(1, len(others)),
        "idle_member_bytes": min((t.wire_bytes for t in others), default=0),
    }


def grow(throttle: float, steps: int, rng: np.random.Generator) -> list[Record]:
    """The grow scenario (see the module text): two rows per step."""
    m, _first = _mirror(
        rng, GROW_START_CONSTITUENTS, MirrorConfig(throttle=throttle, retain=RETAIN)
    )
    rows: list[Record] = []
    for step in range(1, steps + 1):
        m.source.cluster.mhost().add_data_constituent(VS, XV)
        for phase in ("grow", "write"):
            if phase == "write":
                m.write(f"/step-{step}", GROW_WRITE_BYTES)
            m.progress.reset()
            start, start_bytes = m.pair.now, m.link_bytes()
            result = m.pair.run(m.co.update(VS, XV))
            wire, seconds = m.link_bytes() - start_bytes, m.pair.now - start
            want = 1 if phase == "grow" else 0
            if len(result.added) != want:
                raise IntegrityError(
                    f"E6 step {step} {phase}: the update resized by {result.added}, not {want}"
                )
            m.check_mirrors(result.snapshot.name, f"E6 step {step} {phase}", files=True)
            rows.append(_update_row(m, len(rows) + 1, phase, result, wire, seconds))
    m.verify("E6 grow")
    return rows


# ---------------------------------------------------------------------------------------------
# The steady scenario.


def _writer(m: _Mirror, until: float) -> Generator[Any, Any, int]:
    """A SimPy process: one new file of ``WRITE_KIB_S * WRITE_EVERY_S`` KiB every
    ``WRITE_EVERY_S`` seconds until ``until``; returns the files written."""
    size = int(WRITE_KIB_S * 1024 * WRITE_EVERY_S)
    count = 0
    while m.pair.now < until - 1e-9:
        m.write(f"/w-{count}", size)
        count += 1
        yield m.pair.env.timeout(WRITE_EVERY_S)
    return count


def _run_schedule(
    m: _Mirror, until: float
) -> tuple[tuple[ScheduledUpdate, ...], list[Publication]]:
    """Run config J's schedule until ``until`` step by step in simulated time, noting every
    moment the destination's redirect (its exported snapshot) moves."""
    env = m.pair.env
    schedule = env.process(m.co.run_schedule(VS, XV, until=until))
    redirect = m.dest.redirects.get((VS, XV))
    published: list[Publication] = []
    while schedule.is_alive:
        env.step()
        now = m.dest.redirects.get((VS, XV))
        if now != redirect and now is not None:
            redirect = now
            name = m.dest.jobs.get(VS, XV, now).name
            published.append(Publication(m.pair.now, name, m.progress.records(), m.link_bytes()))
            m.progress.reset()
    runs = schedule.value
    if not isinstance(runs, tuple) or not all(isinstance(r, ScheduledUpdate) for r in runs):
        raise ExperimentError(f"E6: the schedule returned {runs!r}")
    return runs, published


def steady(throttle: float, horizon: float, rng: np.random.Generator) -> list[Record]:
    """The steady scenario (see the module text): one row per scheduled update."""
    config = MirrorConfig(schedule=SCHEDULE_S, throttle=throttle, retain=RETAIN)
    m, first = _mirror(rng, STEADY_CONSTITUENTS, config)
    start, start_bytes = m.pair.now, m.link_bytes()
    until = start + horizon
    writer = m.pair.env.process(_writer(m, until))
    runs, published = _run_schedule(m, until)
    if any(run.outcome != "updated" for run in runs):
        raise ExperimentError("E6: a scheduled update failed on a link that is never cut")
    if [run.snapshot for run in runs] != [p.snapshot for p in published]:
        raise IntegrityError("E6: the exported snapshots are not the scheduled updates' in order")
    if writer.is_alive:
        m.pair.env.run(until=writer)  # the writer's last file, when the last update ended early
    # When each exported snapshot was taken: at the start of the update that took it (one
    # round trip earlier than the proxy's snapshot, so lags err long by at most ~2 latencies).
    taken = {first.snapshot.name: start - first.seconds}
    taken.update({str(run.snapshot): run.started for run in runs})
    exported_at_horizon = first.snapshot.name
    rows: list[Record] = []
    previous, previous_bytes = first.snapshot.name, start_bytes
    for index, (run, moved) in enumerate(zip(runs, published, strict=True), start=1):
        if moved.at <= until:
            exported_at_horizon = moved.snapshot
        rows.append(
            {
                "index": index,
                "started_s": run.started - start,
                "exported_s": moved.at - start,
                "update_s": moved.at - run.started,
                "update_bytes": moved.link_bytes - previous_bytes,
                "effective_kib_s": (moved.link_bytes - previous_bytes)
                / (moved.at - run.started)
                / 1024,
                "transfer_bytes": run.wire_bytes,
                "update_records": moved.records,
                "lag_before_s": moved.at - taken[previous],
                "lag_after_s": moved.at - run.started,
            }
        )
        previous, previous_bytes = moved.snapshot, moved.link_bytes
    # After the horizon: a user snapshot at the source, and the coordinator's lag against it.
    m.source.snapshot(VS, XV, "after-horizon")
    lag = m.pair.run(m.co.lag(VS, XV))
    m.check_mirrors(previous, "E6 steady")
    m.verify("E6 steady")
    final: Record = {
        "horizon_written_bytes": sum(len(d) for p, d in m.expected.items() if p.startswith("/w-")),
        "lag_at_horizon_s": until - taken[exported_at_horizon],
        "final_behind_snapshots": len(lag.behind),
        "final_lag_blocks": lag.blocks,
    }
    return [{**row, **final} for row in rows]


# ---------------------------------------------------------------------------------------------
# One point.


def point(params: Params, seed: int) -> list[Record]:
    """Run one scenario at one throttle."""
    scenario = str(params["scenario"])
    throttle_kib = float(params["throttle_kib_s"])
    steps, horizon = int(params["steps"]), float(params["horizon_s"])
    if scenario not in SCENARIOS:
        raise InvalidArgumentError(f"unknown scenario {scenario!r}; choose one of {SCENARIOS}")
    if throttle_kib <= 0:
        raise InvalidArgumentError(f"the throttle must be > 0 KiB/s, got {throttle_kib}")
    rng = np.random.default_rng(seed)
    throttle = throttle_kib * 1024
    if scenario == "grow":
        if steps < 1:
            raise InvalidArgumentError(f"the grow scenario needs steps >= 1, got {steps}")
        return grow(throttle, steps, rng)
    if horizon < SCHEDULE_S:
        raise InvalidArgumentError(f"the steady horizon must be >= {SCHEDULE_S} s: {horizon}")
    return steady(throttle, horizon, rng)


# ---------------------------------------------------------------------------------------------
# Figures and the numbers the paper quotes.


def _slope(x: Any, y: Any) -> float:
    """Least-squares slope of ``y`` against ``x`` (0.0 with fewer than two distinct x)."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(np.unique(xs)) < 2:
        return 0.0
    return float(np.polyfit(xs, ys, 1)[0])


def _settled_lag(rows: pd.DataFrame) -> float:
    """The worst lag (just before a commit) in the second half of one steady run."""
    horizon = float(rows["horizon_s"].iloc[0])
    late = rows[rows["exported_s"] >= horizon / 2]
    return float((late if len(late) else rows)["lag_before_s"].max())


def _wire_rate(rows: pd.DataFrame) -> float:
    """KiB on the wire per second of writing, at the highest throttle of the steady runs (the
    block-level change rate: file data, metadata, per-member snapshot blocks, messages)."""
    top = rows[rows["throttle_kib_s"] == rows["throttle_kib_s"].max()]
    return float(top["update_bytes"].sum() / top["horizon_s"].iloc[0] / 1024)


BOUNDED_SLOPE = 0.02
"""A steady run's lag counts as bounded when its least-squares slope against time (seconds of
lag per second) is at most this."""


def _plain_log_ticks(*axes: Any) -> None:
    """Label log-scaled axes with plain numbers (1, 2, 3, 5, 10, ... or the powers of two)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for axis in axes:
        if axis.get_scale() != "log":
            continue
        base = float(getattr(axis.get_major_locator(), "_base", 10.0))
        subs = (1.0, 2.0, 3.0, 5.0) if base == 10.0 else (1.0,)
        axis.set_major_locator(LogLocator(base=base, subs=subs))
        axis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
        axis.set_minor_formatter(NullFormatter())


def lag_over_time(frame: pd.DataFrame) -> Figure:
    """Left: the mirror's lag (age of the exported snapshot just before each update commits)
    against simulated time, one line per throttle. Right: the lag at the horizon against the
    throttle, with the writer's file data rate marked."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10.0, 4.0), layout="constrained")
    over_time, at_horizon = figure.subplots(1, 2)
    rows = frame[frame["scenario"] == "steady"]
    throttles = sorted(rows["throttle_kib_s"].unique().tolist())
    for i, throttle in enumerate(throttles):
        part = rows[rows["throttle_kib_s"] == throttle].sort_values("index")
        over_time.plot(
            part["exported_s"],
            part["lag_before_s"],
            marker="o",
            markersize=3,
            color=f"C{i % 10}",
            label=f"{throttle:g} KiB/s",
        )
    over_time.set_xlabel("simulated time since the writer started (s)")
    over_time.set_ylabel("lag: age of the exported snapshot (s)")
    over_time.set_yscale("log")
    over_time.set_title(f"E6 mirror lag, writer at {WRITE_KIB_S} KiB/s of file data")
    over_time.legend(title="throttle", fontsize=7)
    worst = [_settled_lag(rows[rows["throttle_kib_s"] == t]) for t in throttles]
    at_horizon.plot(throttles, worst, marker="o", color="C0", label="worst lag, second half")
    at_horizon.axvline(WRITE_KIB_S, color="grey", linestyle="--", label="file data rate")
    wire = _wire_rate(rows)
    at_horizon.axvline(wire, color="C3", linestyle="-.", label="wire bytes per second written")
    at_horizon.axhline(SCHEDULE_S, color="black", linestyle=":", label="schedule period")
    at_horizon.set_xscale("log", base=2)
    at_horizon.set_yscale("log")
    at_horizon.set_xlabel("config J throttle (KiB/s per relationship)")
    at_horizon.set_ylabel("worst lag in the run's second half (s)")
    at_horizon.set_title("E6 lag against throttle")
    at_horizon.legend(fontsize=7)
    _plain_log_ticks(over_time.yaxis, at_horizon.yaxis, at_horizon.xaxis)
    return figure


def growth_cost(frame: pd.DataFrame) -> Figure:
    """Update wire bytes and simulated seconds against the number of data constituents, for
    growth updates (a constituent added, nothing written) and write updates (one file)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10.0, 4.0), layout="constrained")
    sent, took = figure.subplots(1, 2, sharex=True)
    rows = frame[frame["scenario"] == "grow"]
    labels = {"grow": "constituent added, no writes", "write": "one file written"}
    for i, phase in enumerate(("grow", "write")):
        part = rows[rows["phase"] == phase].sort_values("data_constituents")
        style = {"marker": "o", "color": f"C{i}", "label": labels[phase]}
        sent.plot(part["data_constituents"], part["update_bytes"] / 1024, **style)
        took.plot(part["data_constituents"], part["update_s"], **style)
        if phase == "grow":
            sent.plot(
                part["data_constituents"],
                part["new_member_bytes"] / 1024,
                linestyle="--",
                color=f"C{i}",
                label="of which the new member",
            )
    throttle = rows["throttle_kib_s"].unique().tolist()
    sent.set_ylabel("update bytes on the wire (KiB)")
    took.set_ylabel("simulated update time (s)")
    sent.set_title("E6 update bytes as the volume grows")
    took.set_title(f"E6 update time, throttle {', '.join(f'{t:g}' for t in throttle)} KiB/s")
    from matplotlib.ticker import MaxNLocator

    for axes in (sent, took):
        axes.set_xlabel("data constituents after the update")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.legend(fontsize=7)
    return figure


def numbers(frame: pd.DataFrame) -> dict[str, str]:
    """Quoted numbers: the growth costs, the change rate on the wire, the smallest throttle that
    keeps the lag bounded, and the lag at the lowest and highest throttle."""
    out: dict[str, str] = {"ESixWriteRateKiB": f"{WRITE_KIB_S}"}
    grown = frame[frame["scenario"] == "grow"]
    if len(grown):
        growth = grown[grown["phase"] == "grow"]
        writes = grown[grown["phase"] == "write"]
        out["ESixBytesPerAddedConstituentKiB"] = f"{growth['new_member_bytes'].mean() / 1024:.1f}"
        per_member = _slope(writes["members"], writes["update_bytes"]) / 1024
        out["ESixBytesPerMemberPerUpdateKiB"] = f"{per_member:.1f}"
    rows = frame[frame["scenario"] == "steady"]
    if len(rows):
        throttles = sorted(rows["throttle_kib_s"].unique().tolist())
        runs = {t: rows[rows["throttle_kib_s"] == t].sort_values("index") for t in throttles}
        bounded = [  # fewer than 3 updates in the horizon: the mirror did not keep up
            t
            for t in throttles
            if len(runs[t]) >= 3
            and _slope(runs[t]["exported_s"], runs[t]["lag_before_s"]) <= BOUNDED_SLOPE
        ]
        low, high = throttles[0], throttles[-1]
        out["ESixWireRateKiB"] = f"{_wire_rate(rows):.0f}"
        out["ESixBoundedFromKiB"] = f"{min(bounded):g}" if bounded else "none"
        out["ESixLowestThrottleKiB"] = f"{low:g}"
        out["ESixLagLowestThrottleS"] = f"{runs[low]['lag_before_s'].max():.1f}"
        out["ESixLagHighestThrottleS"] = f"{_settled_lag(runs[high]):.1f}"
        burst = rows["effective_kib_s"] / rows["throttle_kib_s"]
        out["ESixThrottleBurstFactor"] = f"{burst.median():.2f}"
    return out


_COLUMNS: dict[str, str] = {
    "scenario": "grow (constituents added between updates) or steady (a writer at a steady rate, "
    "updates on config J's schedule)",
    "throttle_kib_s": "config J throttle in KiB per simulated second, per relationship",
    "steps": "grow: data constituents added, one per step (steady: 0)",
    "horizon_s": "steady: simulated seconds the writer writes and the schedule runs (grow: 0)",
    "index": "the update's number in its run, from 1",
    "phase": "grow: 'grow' (a constituent added, nothing written) or 'write' (one file written)",
    "data_constituents": "grow: data constituents of the source (and destination) after the update",
    "members": "grow: member volumes of the destination after the update (equal to the source's)",
    "added": "grow: member volumes the update's resize created at the destination",
    "written_bytes": "grow: file data written at the source before the update",
    "update_bytes": "link bytes of the update, all messages (steady: since the previous "
    "update's commit, so including that update's prune request)",
    "update_s": "simulated seconds from the update's start to its commit (the redirect moving)",
    "effective_kib_s": "update_bytes / update_s in KiB/s: the rate the throttled update achieved",
    "update_records": "diff records the update transferred, all members",
    "new_member_bytes": "grow: wire bytes of the new member's transfer (its baseline)",
    "new_member_records": "grow: diff records of the new member's transfer",
    "other_member_bytes": "grow: mean wire bytes of every other member's transfer",
    "idle_member_bytes": "grow: wire bytes of the cheapest other member's transfer (a member "
    "nothing was written to: its new snapshot's own blocks)",
    "started_s": "steady: when the scheduled update started, since the writer started",
    "exported_s": "steady: when the destination's exported snapshot moved to this update's",
    "transfer_bytes": "steady: wire bytes of the member transfers (control messages excluded)",
    "lag_before_s": "steady: age of the exported snapshot just before this update committed "
    "(seconds since the update that took it started)",
    "lag_after_s": "steady: age of the exported snapshot just after this update committed",
    "horizon_written_bytes": "steady: file data the writer wrote in the whole run",
    "lag_at_horizon_s": "steady: age, at the horizon, of the snapshot exported then",
    "final_behind_snapshots": "steady: source snapshots newer than the exported one after the "
    "schedule ended (the coordinator's lag against a snapshot taken then)",
    "final_lag_blocks": "steady: blocks the members are behind that snapshot (coordinator lag)",
}

EXPERIMENT = Experiment(
    name="growing-volume",
    title="E6 growing volume under throttling",
    measures="update bytes and simulated time as data constituents are added to a mirrored "
    "volume, and the mirror's lag behind a steady writer against the throttle",
    quick=QUICK,
    full=FULL,
    point=point,
    columns=_COLUMNS,
    figures=(
        FigureSpec("growing-volume-lag", lag_over_time, paper=True),
        FigureSpec("growing-volume-growth", growth_cost, paper=True),
    ),
    keys=("index",),
    default_seed=2006,
    paper_numbers=numbers,
)

__all__ = ["EXPERIMENT", "Progress", "Publication", "grow", "point", "steady"]
