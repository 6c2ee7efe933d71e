"""E3, interrupted transfers: what a link cut in the middle of a mirror update costs, in bytes
sent and simulated time until the mirror is consistent again, when the update resumes from the
kit's checkpoints and when it restarts from zero.

The seed's mirroring coordinator transfers a consistent snapshot of the expandable volume with
the block replication protocol, one relationship per member volume; the kit's
:class:`~xvol.reference.mirror.replication.BlockReplicator` checkpoints each relationship after
every applied batch and commits each member volume atomically, and the coordinator remembers the
update's target snapshot, so a cut update *resumes*. This experiment measures that on the real
stack: two sites (:func:`~xvol.reference.mirror.site.build_site`, a
:class:`~xvol.reference.mirror.site.SitePair` whose SimPy link has bandwidth, latency and a cut),
the destination's :class:`~xvol.reference.mirror.coordinator.MirroringCoordinator`, and an
expandable volume of four data constituents.

One grid point is (update size, cut point, batch size). The point mirrors the volume, then makes
one *reference* update of the given size (new files, one per data constituent) and measures its
wire bytes ``W`` and simulated time ``T`` uncut. Then, once per strategy, it writes another update
of the same size, cuts the link once ``cut * W`` bytes of that update crossed it
(:meth:`SitePair.disaster(after_bytes=...) <xvol.reference.mirror.site.SitePair.disaster>`), waits
out an outage of :data:`OUTAGE_S` simulated seconds after the coordinator reports the failure
(long enough for every request in flight at the cut to time out, which the point checks),
reconnects and retries until the mirror is consistent. The strategies differ only in what the
retry may reuse:

* ``resume``: everything the kit keeps (the checkpoint of the member in flight, the members that
  had committed the target, the coordinator's pending target);
* ``member-restart``: the checkpoints are discarded (``CheckpointStore.clear`` of every
  relationship, as a destination whose checkpoint store was lost); members that had committed
  the target keep it, the member in flight starts over;
* ``restart``: a restart from zero: the checkpoints *and* the per-volume snapshots of the
  unfinished target at the destination are discarded, so every member is sent again.

Measured per strategy: bytes put on the wire by the cut attempt (lost ones included) and by the
retry, the simulated time from the start of the update to the moment the destination exports the
new snapshot, and what the retry skipped or resumed. Theory: resume sends ``W`` plus what was in
flight at the cut (at most ``window`` batches, so the overhead shrinks as the update grows);
restart sends about ``(1 + cut) W``; member-restart lies between, as a saw-tooth over the members.

Checked at every point (a failed check raises :class:`~xvol.errors.IntegrityError`, no number is
reported). Whenever a member volume commits, during the cut attempt and during the retry, the
destination's N-module still redirects clients to the exported snapshot and every member still
holds that snapshot's per-volume copy, so a client read resolves to one snapshot on every member
(the previous one until the retry publishes the new one; the live file systems in between are a
mix, which clients never see). After the cut, and again after the retry, the exported snapshot
is compared with the source's block by block on every member (the numbers and checksums of
every block it references), its client listing must be exactly the snapshot's files and its
newest files must read back byte for byte. The retry must send the cut update's own target, and
at the end both sites have the same members and the mirror verifies equal by leaf digests.

Uses: numpy (seeded file contents), :mod:`xvol.reference.mirror` (site, coordinator, link,
replication), :mod:`xvol.reference.snapshots.volume_snapshots`,
:mod:`xvol.experiments.framework`; matplotlib and pandas only inside the figure and numbers
functions.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from xvol.errors import IntegrityError, InvalidArgumentError
from xvol.experiments.framework import Experiment, ExperimentError, FigureSpec, Params, Record, grid
from xvol.reference.mirror.coordinator import MirroringCoordinator, UpdateResult
from xvol.reference.mirror.link import LinkError, Process
from xvol.reference.mirror.replication import (
    RECORD_BYTES,
    TransferProgress,
    snapshot_checksums,
)
from xvol.reference.mirror.site import Site, SitePair, build_site
from xvol.reference.snapshots.snapshot_table import SnapshotRecord
from xvol.reference.snapshots.volume_snapshots import VolumeSnapshots
from xvol.reference.storage.block import BLOCK_SIZE

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

VS, XV = "vs1", "xv"
DATA_CONSTITUENTS = 4
"""Data constituents of the mirrored volume; each update writes one new file per constituent."""
BANDWIDTH = 1e6
"""Link bandwidth in bytes per simulated second, each direction."""
LATENCY = 0.005
"""One-way link latency in simulated seconds."""
WINDOW = 4
"""Batch requests each transfer keeps in flight (the coordinator's default)."""
OUTAGE_S = 0.5
"""Simulated seconds the link stays down after the coordinator reports the cut."""
STRATEGIES = ("resume", "member-restart", "restart")
"""What the retry may reuse, from everything the kit keeps to nothing (see the module text)."""

QUICK = grid({"update_mib": [1], "cut": [0.6], "batch_blocks": [16]})
FULL = grid(
    {
        "update_mib": [1, 8],
        "cut": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        "batch_blocks": [16],
    }
)


# ---------------------------------------------------------------------------------------------
# Watching a transfer: progress per relationship, and what clients of the mirror see.


@dataclass
class Watch:
    """Follows one update attempt through the coordinator's ``on_progress`` callback.

    ``last`` holds each relationship's latest progress in this attempt; ``commits`` counts the
    member volumes that committed since :meth:`reset`. Life cycle: one per coordinator,
    :meth:`reset` before each attempt."""

    last: dict[str, TransferProgress] = field(default_factory=dict)
    commits: int = 0

    def __call__(self, progress: TransferProgress) -> None:
        self.last[progress.relationship] = progress
        if progress.state == "done":
            self.commits += 1

    def reset(self) -> None:
        """Forget the previous attempt."""
        self.last.clear()
        self.commits = 0

    def records_total(self) -> dict[str, int]:
        """Records in each started relationship's diff."""
        return {rel: p.records_total for rel, p in self.last.items()}

    def records_applied(self) -> int:
        """Records this attempt applied (checkpointed or committed), over all relationships."""
        return sum(p.records_done - p.records_resumed for p in self.last.values())

    def committed(self) -> int:
        """Member volumes this attempt committed."""
        return sum(1 for p in self.last.values() if p.state == "done")


def check_redirect_intact(dest: Site, exported: int | None) -> None:
    """The destination's N-module redirects clients to snapshot ``exported`` (the mirror's
    exported snapshot) and every member still holds that snapshot's per-volume copy, so a client
    read resolves on every member to one snapshot; :class:`IntegrityError` otherwise."""
    redirect = dest.redirects.get((VS, XV))
    if redirect is None or redirect != exported:
        raise IntegrityError(
            f"the mirror redirects clients to snapshot {redirect}, not the exported {exported}"
        )
    for entry in dest.jobs.get(VS, XV, redirect).volumes:
        held = {str(s.uuid) for s in dest.volume(VS, XV, entry.member).snapshots()}
        if entry.uuid not in held:
            raise IntegrityError(
                f"member {entry.member} lost its copy of the exported snapshot {redirect}"
            )


def check_presents(
    source: Site, dest: Site, exported: int | None, expected: dict[str, bytes], recent: list[str]
) -> int:
    """Clients of ``dest`` see snapshot ``exported``, whole and equal to the source's: the
    redirect and every per-volume copy are intact, every member's copy is block for block the
    source's (numbers and checksums of every block it references), the client listing is
    exactly ``expected``'s paths and the files in ``recent`` read back ``expected``'s bytes.
    Returns the blocks compared; :class:`IntegrityError` on any difference."""
    check_redirect_intact(dest, exported)
    if exported is None:
        raise IntegrityError("the mirror exports no snapshot yet")
    compared = 0
    for entry in dest.jobs.get(VS, XV, exported).volumes:
        snapshot = uuid.UUID(entry.uuid)
        mine = snapshot_checksums(dest.volume(VS, XV, entry.member), snapshot)
        theirs = snapshot_checksums(source.volume(VS, XV, entry.member), snapshot)
        if not (np.array_equal(mine[0], theirs[0]) and np.array_equal(mine[1], theirs[1])):
            raise IntegrityError(f"member {entry.member} of the exported snapshot differs")
        compared += len(mine[0])
    view = dest.open_snapshot(VS, XV, exported)
    if {path for path, _goid in view.walk()} != set(expected):
        raise IntegrityError("the mirror's client listing differs from the snapshot's files")
    for path in recent:
        if view.read(path) != expected[path]:
            raise IntegrityError(f"a client read of {path} on the mirror returned wrong bytes")
    return compared


def run_watched(
    pair: SitePair, process: Process[UpdateResult], watch: Watch, check: Callable[[], None]
) -> tuple[UpdateResult | LinkError, int]:
    """Run one update attempt step by step in simulated time and call ``check`` (which raises
    when clients would see something wrong) after every member commit. Returns the update's
    result or the :class:`LinkError` that ended it, and how many checks ran."""

    def attempt() -> Process[UpdateResult | LinkError]:
        try:
            result = yield from process
        except LinkError as error:
            return error
        return result

    running = pair.env.process(attempt())
    seen, checks = watch.commits, 0
    while running.is_alive:
        pair.env.step()
        if watch.commits != seen:
            seen = watch.commits
            checks += 1
            check()
    outcome = running.value
    if not isinstance(outcome, (UpdateResult, LinkError)):
        raise ExperimentError(f"E3: the update attempt returned {outcome!r}")
    return outcome, checks


# ---------------------------------------------------------------------------------------------
# What each strategy discards before the retry.


def discard_checkpoints(co: MirroringCoordinator, vserver: str, volume: str) -> int:
    """Clear the stored transfer checkpoint of every relationship of the mirror; returns how
    many there were."""
    cleared = 0
    for rel in co.tables.relationships(vserver, volume):
        if co.checkpoints.load(rel.channel) is not None:
            co.checkpoints.clear(rel.channel)
            cleared += 1
    return cleared


def discard_unfinished_target(site: Site, vserver: str, volume: str, target: SnapshotRecord) -> int:
    """Delete, at the destination ``site``, the per-volume snapshots of ``target`` that members
    committed before a cut (the target is not exported yet, so no client reads them); returns
    how many went. The next transfer of those members starts from the exported snapshot."""
    calls = VolumeSnapshots(site.cluster, site.cluster.any_up_node(), vserver, volume)
    record = site.record(vserver, volume)
    deleted = 0
    for entry in target.volumes:
        volume_id = record.member(entry.member).volume_id
        for held in calls.list(volume_id):
            if held["uuid"] == entry.uuid:
                calls.delete(volume_id, int(held["sid"]), entry.uuid)
                deleted += 1
    return deleted


# ---------------------------------------------------------------------------------------------
# One point.


@dataclass
class _Scenario:
    """Two sites, their link, the destination's coordinator and what the source holds.

    ``expected`` is every file of the source's active file system (path -> bytes), kept in step
    with each write; an update's target snapshot, taken right after the writes, holds exactly
    these files."""

    source: Site
    dest: Site
    pair: SitePair
    co: MirroringCoordinator
    watch: Watch
    rng: np.random.Generator
    expected: dict[str, bytes] = field(default_factory=dict)

    def link_bytes(self) -> int:
        """Bytes put on the destination's link to the source so far (both directions)."""
        return self.pair.links[(self.dest.name, self.source.name)].stats.bytes

    def exported(self) -> int | None:
        """The snapshot ID the mirror exports (the N-module's redirect)."""
        return self.co.tables.group(VS, XV).exported

    def write(self, path: str, data: bytes) -> None:
        """Create (or replace) ``path`` at the source and remember its bytes."""
        self.source.write(VS, XV, path, data)
        self.expected[path] = data

    def write_update(self, tag: str, update_bytes: int) -> list[str]:
        """Create one new file per data constituent, ``update_bytes`` in all, seeded contents;
        returns their paths."""
        size = update_bytes // DATA_CONSTITUENTS
        paths = [f"/{tag}-{i}" for i in range(DATA_CONSTITUENTS)]
        for path in paths:
            self.write(path, self.rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        return paths

    def check_consistent(self, target: str, recent: list[str], what: str) -> int:
        """The mirror exports ``target``, presents it whole with the source's files, and both
        sites have the same members; returns the blocks compared."""
        exported = self.exported()
        if exported is None or self.dest.jobs.get(VS, XV, exported).name != target:
            raise IntegrityError(f"{what}: the destination does not export {target!r}")
        mine = [m.name for m in self.dest.members(VS, XV)]
        if mine != [m.name for m in self.source.members(VS, XV)]:
            raise IntegrityError(f"{what}: destination members {mine} differ from the source's")
        return check_presents(self.source, self.dest, exported, self.expected, recent)


def _scenario(update_bytes: int, batch_blocks: int, rng: np.random.Generator) -> _Scenario:
    """Sites A (source) and B (destination), a small first file, the mirror initialized."""
    blocks = max(1024, update_bytes // BLOCK_SIZE * 5 // 4 + 512)  # 4 updates per constituent
    seeds = [int(x) for x in rng.integers(0, 2**31, 3)]
    source = build_site(
        "A", seed=seeds[0], data_constituents=DATA_CONSTITUENTS, volume_blocks=blocks
    )
    dest = build_site("B", seed=seeds[1], volume=None)
    pair = SitePair(source, dest, bandwidth=BANDWIDTH, latency=LATENCY, seed=seeds[2])
    watch = Watch()
    co = MirroringCoordinator(
        dest,
        pair.link(dest.name, source.name),
        batch_blocks=batch_blocks,
        window=WINDOW,
        on_progress=watch,
    )
    s = _Scenario(source, dest, pair, co, watch, rng)
    s.write("/first", b"first file\n" * 100)
    first = pair.run(co.initialize(VS, XV))
    s.check_consistent(first.snapshot.name, ["/first"], "E3 initialize")
    return s


def _interrupted(s: _Scenario, strategy: str, cut_bytes: int, update_bytes: int) -> Record:
    """One cut update and its retry under ``strategy``; the measured row (without context)."""
    pair, co, dest = s.pair, s.co, s.dest
    before = dict(s.expected)
    previous = list(before)[-DATA_CONSTITUENTS:]  # the files of the exported update
    recent = s.write_update(f"u-{strategy}", update_bytes)
    exported_before = s.exported()
    start, start_bytes = pair.now, s.link_bytes()

    # The cut attempt: after every member commit clients still resolve the exported snapshot.
    pair.disaster(after_bytes=cut_bytes)
    s.watch.reset()
    outcome, checks_cut = run_watched(
        pair, co.update(VS, XV), s.watch, lambda: check_redirect_intact(dest, exported_before)
    )
    if not isinstance(outcome, LinkError):
        raise ExperimentError(f"E3: a cut after {cut_bytes} bytes did not interrupt the update")
    failed_at = pair.now
    totals = s.watch.records_total()
    applied, committed = s.watch.records_applied(), s.watch.committed()
    if s.exported() != exported_before:
        raise IntegrityError("E3: the cut update moved the exported snapshot")
    blocks_cut = check_presents(s.source, dest, exported_before, before, previous)
    pending = co.tables.group(VS, XV).pending

    # The outage: every request in flight at the cut times out before the link comes back.
    pair.env.run()
    if pair.now > failed_at + OUTAGE_S:
        raise ExperimentError(
            f"E3: requests in flight at the cut were still retrying {pair.now - failed_at:.3f}s "
            f"after the failure, longer than the {OUTAGE_S}s outage"
        )
    if pair.now < failed_at + OUTAGE_S:
        pair.env.run(until=failed_at + OUTAGE_S)
    attempt_bytes = s.link_bytes() - start_bytes
    pair.reconnect()

    discarded_checkpoints = discarded_volumes = 0
    if strategy in ("member-restart", "restart"):
        discarded_checkpoints = discard_checkpoints(co, VS, XV)
    if strategy == "restart" and pending is not None:
        target = s.source.jobs.get(VS, XV, pending)
        discarded_volumes = discard_unfinished_target(dest, VS, XV, target)

    # The retry: clients resolve the previous snapshot until the new one is exported.
    retry_start, retry_bytes_start = pair.now, s.link_bytes()
    s.watch.reset()
    outcome, checks_retry = run_watched(
        pair, co.update(VS, XV), s.watch, lambda: check_redirect_intact(dest, s.exported())
    )
    if isinstance(outcome, LinkError):
        raise ExperimentError(f"E3: the retry failed on a restored link: {outcome}")
    done_at = pair.now
    if pending is not None and outcome.snapshot.name != pending:
        raise IntegrityError(f"E3: the retry sent {outcome.snapshot.name!r}, not {pending!r}")
    blocks_retry = s.check_consistent(outcome.snapshot.name, recent, f"E3 {strategy} retry")
    totals.update(s.watch.records_total())
    retry_bytes = s.link_bytes() - retry_bytes_start
    return {
        "strategy": strategy,
        "update_records": sum(totals.values()),
        "cut_bytes": cut_bytes,
        "attempt_bytes": attempt_bytes,
        "attempt_s": failed_at - start,
        "records_applied_at_cut": applied,
        "members_committed_at_cut": committed,
        "checkpoints_discarded": discarded_checkpoints,
        "volumes_discarded": discarded_volumes,
        "retry_bytes": retry_bytes,
        "retry_s": done_at - retry_start,
        "retry_records_sent": outcome.records_sent,
        "retry_records_resumed": sum(m.records_resumed for m in outcome.members),
        "retry_members_skipped": sum(1 for m in outcome.members if m.skipped),
        "total_bytes": attempt_bytes + retry_bytes,
        "total_s": done_at - start,
        "checks_cut": checks_cut,
        "checks_retry": checks_retry,
        "blocks_checked": blocks_cut + blocks_retry,
    }


def point(params: Params, seed: int) -> list[Record]:
    """Measure the reference update and one cut update per strategy at one (size, cut) point."""
    update_mib, cut = float(params["update_mib"]), float(params["cut"])
    batch_blocks = int(params["batch_blocks"])
    if not 0.0 < cut < 1.0:
        raise InvalidArgumentError(f"the cut point is a fraction of the update in (0, 1): {cut}")
    if update_mib <= 0 or batch_blocks < 1:
        raise InvalidArgumentError("update_mib must be > 0 and batch_blocks >= 1")
    rng = np.random.default_rng(seed)
    update_bytes = int(update_mib * (1 << 20))
    s = _scenario(update_bytes, batch_blocks, rng)

    # The reference: the same kind of update, uncut.
    recent = s.write_update("reference", update_bytes)
    s.watch.reset()
    start, start_bytes = s.pair.now, s.link_bytes()
    reference = s.pair.run(s.co.update(VS, XV))
    transfer_bytes, transfer_s = s.link_bytes() - start_bytes, s.pair.now - start
    s.check_consistent(reference.snapshot.name, recent, "E3 reference update")
    transfer_records = sum(s.watch.records_total().values())

    context: Record = {
        "data_constituents": DATA_CONSTITUENTS,
        "window": WINDOW,
        "bandwidth_bytes_s": BANDWIDTH,
        "outage_s": OUTAGE_S,
        "transfer_records": transfer_records,
        "transfer_bytes": transfer_bytes,
        "transfer_s": transfer_s,
    }
    rows: list[Record] = []
    for strategy in STRATEGIES:
        row = _interrupted(s, strategy, round(cut * transfer_bytes), update_bytes)
        row["bytes_ratio"] = float(row["total_bytes"]) / transfer_bytes
        row["time_ratio"] = float(row["total_s"]) / transfer_s
        rows.append({**context, **row})
    verified = s.pair.run(s.co.verify(VS, XV))
    if not verified.equal:
        raise IntegrityError(f"E3 {dict(params)}: the mirror does not verify equal")
    return rows


# ---------------------------------------------------------------------------------------------
# Figures and the numbers the paper quotes.

_COLOURS = {"resume": "C0", "member-restart": "C1", "restart": "C3"}
_LABELS = {
    "resume": "resume (checkpoints kept)",
    "member-restart": "checkpoints discarded",
    "restart": "restart from zero",
}


def bytes_and_time(frame: pd.DataFrame) -> Figure:
    """Two panels against the cut point: bytes sent until consistent and simulated time until
    consistent, each over the uncut update's; one line per strategy and update size."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10.0, 4.0), layout="constrained")
    sent, took = figure.subplots(1, 2, sharex=True)
    sizes = sorted(frame["update_mib"].unique().tolist())
    styles = ["-", "--", ":", "-."]
    for i, size in enumerate(sizes):
        for strategy in STRATEGIES:
            rows = frame[(frame["update_mib"] == size) & (frame["strategy"] == strategy)]
            rows = rows.sort_values("cut")
            label = f"{_LABELS[strategy]}, {size:g} MiB"
            style = {"color": _COLOURS[strategy], "linestyle": styles[i % 4], "marker": "o"}
            sent.plot(rows["cut"], rows["bytes_ratio"], label=label, **style)
            took.plot(rows["cut"], rows["time_ratio"], label=label, **style)
    cuts = sorted(frame["cut"].unique().tolist())
    sent.plot(cuts, [1 + c for c in cuts], color="grey", linestyle=":", label="1 + cut (theory)")
    sent.axhline(1.0, color="black", linewidth=0.8, label="the update once")
    sent.set_ylabel("bytes sent until consistent / uncut update")
    took.set_ylabel(f"sim. time until consistent / uncut update\n(incl. {OUTAGE_S:g} s outage)")
    sent.set_title("E3 bytes on the wire after a cut")
    took.set_title("E3 time until the mirror is consistent")
    for axes in (sent, took):
        axes.set_xlabel("cut point (fraction of the update's bytes)")
    sent.legend(fontsize=7)
    return figure


def resume_overhead(frame: pd.DataFrame) -> Figure:
    """Bytes resume sends beyond the uncut update, against the cut point, with the bound the
    in-flight window sets (``window`` batches lost at the cut)."""
    from matplotlib.figure import Figure

    figure = Figure(layout="constrained")
    axes = figure.add_subplot()
    rows = frame[frame["strategy"] == "resume"]
    for i, size in enumerate(sorted(rows["update_mib"].unique().tolist())):
        part = rows[rows["update_mib"] == size].sort_values("cut")
        extra = (part["total_bytes"] - part["transfer_bytes"]) / 1024
        axes.plot(part["cut"], extra, marker="o", color=f"C{i}", label=f"resume, {size:g} MiB")
    bound = rows["window"] * rows["batch_blocks"] * RECORD_BYTES / 1024
    for value in sorted(bound.unique().tolist()):
        axes.axhline(value, color="grey", linestyle="--", label="window x batch (in flight)")
    axes.set_xlabel("cut point (fraction of the update's bytes)")
    axes.set_ylabel("bytes beyond the uncut update (KiB)")
    axes.set_title("E3 what a resume re-sends: the batches in flight at the cut")
    axes.legend()
    return figure


def numbers(frame: pd.DataFrame) -> dict[str, str]:
    """Quoted numbers, at the largest update size and the largest cut point of the frame."""
    size = frame["update_mib"].max()
    at_size = frame[frame["update_mib"] == size]
    cut = at_size["cut"].max()
    at_cut = at_size[at_size["cut"] == cut].set_index("strategy")
    resume, restart = at_cut.loc["resume"], at_cut.loc["restart"]
    resumed = at_size[at_size["strategy"] == "resume"]
    saved = float(restart["total_bytes"] - resume["total_bytes"])
    checks = int((frame["checks_cut"] + frame["checks_retry"]).sum()) + 2 * len(frame)
    return {
        "EThreeUpdateMiB": f"{size:g}",
        "EThreeMaxCut": f"{cut:g}",
        "EThreeResumeBytesRatio": f"{float(resume['bytes_ratio']):.2f}",
        "EThreeRestartBytesRatio": f"{float(restart['bytes_ratio']):.2f}",
        "EThreeBytesSavedPercent": f"{100 * saved / float(restart['total_bytes']):.0f}",
        "EThreeTimeRatio": f"{float(restart['total_s'] / resume['total_s']):.2f}",
        "EThreeResumeOverheadMaxPercent": f"{100 * float((resumed['bytes_ratio'] - 1).max()):.1f}",
        "EThreeMirrorChecks": str(checks),
    }


_COLUMNS: dict[str, str] = {
    "update_mib": "size of each update: new files, one per data constituent, in MiB",
    "cut": "cut point: the link is cut once this fraction of the uncut update's bytes crossed it",
    "batch_blocks": "diff records per batch request of the block replication protocol",
    "strategy": "what the retry reuses: resume, member-restart (checkpoints discarded) or "
    "restart (checkpoints and committed members discarded)",
    "data_constituents": "data constituents of the mirrored expandable volume",
    "window": "batch requests each transfer keeps in flight",
    "bandwidth_bytes_s": "link bandwidth in bytes per simulated second, each direction",
    "outage_s": "simulated seconds the link stays down after the failure is reported",
    "transfer_records": "diff records of the uncut reference update (all members)",
    "transfer_bytes": "wire bytes of the uncut reference update (W)",
    "transfer_s": "simulated seconds of the uncut reference update (T)",
    "update_records": "diff records of this (cut) update, all members",
    "cut_bytes": "bytes after which the link was cut (cut x W)",
    "attempt_bytes": "wire bytes of the cut attempt, lost messages and retransmissions included",
    "attempt_s": "simulated seconds from the start of the update to the reported failure",
    "records_applied_at_cut": "records the cut attempt applied (checkpointed or committed)",
    "members_committed_at_cut": "member volumes that committed the target before the cut",
    "checkpoints_discarded": "transfer checkpoints cleared before the retry",
    "volumes_discarded": "per-volume snapshots of the unfinished target deleted before the retry",
    "retry_bytes": "wire bytes of the retry until the mirror exports the new snapshot",
    "retry_s": "simulated seconds of the retry",
    "retry_records_sent": "records the retry sent",
    "retry_records_resumed": "records the retry skipped thanks to a checkpoint",
    "retry_members_skipped": "members the retry skipped (they held the target already)",
    "total_bytes": "attempt_bytes + retry_bytes",
    "total_s": "simulated seconds from the start of the update until the mirror is consistent "
    "(cut attempt, outage, retry)",
    "bytes_ratio": "total_bytes / transfer_bytes",
    "time_ratio": "total_s / transfer_s",
    "checks_cut": "member commits of the cut attempt after which clients were checked to "
    "resolve the previous exported snapshot on every member",
    "checks_retry": "member commits of the retry after which clients were checked to resolve "
    "the exported snapshot (the previous one until the new one is published)",
    "blocks_checked": "blocks of the exported snapshot compared with the source's, after the "
    "cut (the previous snapshot) and after the retry (the new one)",
}

EXPERIMENT = Experiment(
    name="interrupted-transfer",
    title="E3 interrupted transfers: resume against restart",
    measures="bytes sent and simulated time until the mirror is consistent after a link cut "
    "at a given point of an update, resuming from checkpoints or restarting from zero",
    quick=QUICK,
    full=FULL,
    point=point,
    columns=_COLUMNS,
    figures=(
        FigureSpec("interrupted-transfer", bytes_and_time, paper=True),
        FigureSpec("interrupted-transfer-overhead", resume_overhead),
    ),
    keys=("strategy",),
    default_seed=2002,
    paper_numbers=numbers,
)

__all__ = [
    "EXPERIMENT",
    "STRATEGIES",
    "Watch",
    "discard_checkpoints",
    "discard_unfinished_target",
    "point",
    "run_watched",
]
