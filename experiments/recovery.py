"""E4, recovery: what a disaster costs a mirrored expandable volume, how long the failover takes,
and what it costs to resynchronize afterwards.

The seed mirrors the expandable volume of a *primary location* to a *remote location* by
transferring consistent snapshots; after a disaster the remote location's mirror is broken
(failover) and serves clients read-write from the newest snapshot it holds whole; when the primary
returns, the resync "determines a common snapshot", restores the primary to it, reverses the
mirroring relationships and transfers back. This experiment measures the three prices of that
story on the kit's real stack (:func:`~xvol.reference.mirror.site.build_site`,
:class:`~xvol.reference.mirror.site.SitePair`,
:class:`~xvol.reference.mirror.coordinator.MirroringCoordinator`,
:class:`~xvol.reference.mirror.resync.Resync`), one *scenario family* per price, all rows in one
tidy frame (the ``scenario`` column says which family a row belongs to; a parameter a family does
not use holds ``0`` or ``"-"``):

* ``rpo`` (recovery point): a client writes one :data:`WRITE_BYTES` file every
  :data:`WRITE_PERIOD_S` simulated seconds at the primary (a steady rate, the writes at half
  periods); the mirror is initialized at ``t = 0`` and updated every ``interval_s`` (each update a
  new consistent snapshot, sent as block diffs over a :data:`LINK_BANDWIDTH` link); a disaster cuts
  both links at a seeded random time in ``[interval, 2 * interval)`` (stratified: trial ``k`` of
  :data:`RPO_STRATA` draws from the ``k``-th fifth). The remote site fails over, and the point
  counts the writes acknowledged at the primary that the failed-over volume does not hold, and
  their bytes. It checks, else raises :class:`~xvol.errors.IntegrityError`: every file at the
  remote site is a write the client made, byte for byte; the writes present are a *prefix* of the
  write sequence (the snapshot is consistent: no write is present while an earlier one is
  missing); exactly the writes acknowledged before the exported update started are present; and
  the exported snapshot verifies equal at both sites by leaf digests.
  Expect ``rpo_s`` (disaster time minus the start of the update whose snapshot was exported)
  ``< interval`` when no update was in flight, and ``interval + inflight_s`` when the disaster cut
  one.
* ``rto`` (recovery time): a primary with ``data_constituents`` data constituents (on the
  :data:`NODES` nodes of each site) is mirrored, then the remote site fails over, either
  ``idle`` (no update in flight) or ``mid-update`` (the link is cut once half of the member
  volumes committed the next update, so the failover must restore them and drop the strays).
  Failover is local to the remote cluster: its simulated time is the advance of that cluster's
  fabric clock (:class:`~xvol.reference.cluster.cf.LatencyModel`: per CF message, LPC or RPC),
  and its work is the CF messages it sends, counted by service and method (per-volume snapshot
  calls, RDB commits, pings; :func:`fabric_calls`). What the reference does, as measured: per
  member a ping and five snapshot-service calls (listings, an undo snapshot created and deleted
  around the all-or-nothing restore, the restore), one RDB commit for the whole volume, and for a
  cut update one more deletion per member that had committed it and one more RDB commit (the
  object and snapshot counters the cut update's source handed out, so that the new primary
  never reuses them). Checks: the failed-over volume
  holds exactly the exported snapshot's files, its namespace -> OLS -> data references are whole,
  and it accepts and returns a write.
* ``resync`` (resynchronization): a mirrored primary with :data:`BASE_FILES` files fails over;
  then *each* side writes ``divergence_kib`` KiB (the remote site's clients, whose writes are
  acknowledged, and the cut-off primary's clients): :data:`CHUNK_BYTES` files alternating between
  replacing a base file and creating a new one, the primary from the first base file up, the
  remote site from the last down. The links come back and the old primary resyncs from the remote
  site: ``resync_mode`` ``delta`` (from the common snapshot) or ``baseline`` (the old primary's
  snapshots are deleted first, so no common snapshot exists and ``baseline=True`` re-sends every
  block: the reference resyncs from the common snapshot whenever there is one), with the old
  primary's divergent files preserved (``preserve`` ``on``) or discarded (``off``). A dry run
  precedes each resync (and must plan what the resync then does). Checks after every resync: both
  sites verify equal; every write acknowledged at the remote site after the failover is at the old
  primary, byte for byte, and the two sites' files are equal; with ``preserve`` on, every file the
  old primary's clients had and would lose (the divergent ones since the common snapshot for a
  delta; for a baseline, those whose contents differ from the remote site's, compared by
  digests) is readable from the preserved volume's snapshot, with its manifest, and with
  ``preserve`` off no preserved volume exists.

Everything quoted is measured on the reference and deterministic for a seed: simulated seconds
come from SimPy (the inter-site link) or from the remote cluster's fabric clock (failover), bytes
from the link's counters and the replication results, blocks from the volumes' allocation maps.
Wall-clock seconds fill only the timing column ``elapsed_s``. The point's seed draws the disaster
time and every byte written; the four resync variants of one divergence write the same paths and
sizes, so their counts are paired.

Uses: simpy (through the mirror layer), the reference mirror, cluster and snapshots layers,
:mod:`xvol.experiments.framework`; matplotlib and pandas only inside the figure and number
functions.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xvol.errors import IntegrityError, InvalidArgumentError, NotFoundError
from xvol.experiments.framework import Experiment, FigureSpec, Params, Record, grid
from xvol.reference.cluster.cf import FabricCounters, SimulatedFabric, decode_request
from xvol.reference.mirror.coordinator import MirroringCoordinator, UpdateResult
from xvol.reference.mirror.link import LinkError, Process
from xvol.reference.mirror.replication import snapshot_checksums
from xvol.reference.mirror.resync import PRESERVED_MANIFEST, Resync, ResyncPlan
from xvol.reference.mirror.site import Site, SitePair, build_site
from xvol.reference.snapshots.snapshot_table import SnapshotRecord
from xvol.reference.storage.block import BLOCK_SIZE

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# ---------------------------------------------------------------------------------------------
# Fixed setting of every point (documented in the sidecar through the column meanings).

VS, XV = "vs1", "xv"
"""The vserver and the expandable volume mirrored in every scenario."""

NODES = 2
"""Nodes per site (members are spread over them, so CF calls are LPC and RPC)."""

LINK_BANDWIDTH = 250e3
"""Inter-site link bandwidth per direction, bytes per simulated second (2 Mbit/s)."""

LINK_LATENCY = 0.02
"""One-way inter-site latency, simulated seconds."""

WRITE_PERIOD_S = 30
"""rpo: one client write every this many simulated seconds (at half periods)."""

WRITE_BYTES = 32 * 1024
"""rpo: bytes of each client write (a new file): 32 KiB every 30 s, about 1.07 KiB/s."""

RPO_STRATA = 5
"""rpo: trial ``k`` draws the disaster time from the ``k``-th of this many equal slices of
``[interval, 2 * interval)``."""

DATA_CONSTITUENTS = 2
"""Data constituents of the mirrored volume in the rpo and resync scenarios."""

MEMBER_BLOCKS = 1024
"""Blocks per member volume (4 MiB) in the rpo and resync scenarios."""

RTO_FILES = 4
"""rto: files written before the mirror is initialized (and again before a cut update)."""

RTO_FILE_BYTES = 8 * 1024
RTO_MEMBER_BLOCKS = 512
"""rto: blocks per member volume (2 MiB): failover work does not depend on the size."""

BASE_FILES = 4
BASE_FILE_BYTES = 256 * 1024
"""resync: the mirrored volume holds ``BASE_FILES`` files of this size (1 MiB) before failover."""

CHUNK_BYTES = 64 * 1024
"""resync: divergent writes are files of at most this many bytes."""

NA = "-"
"""A string parameter a scenario does not use."""

FAILOVER_CASES = ("idle", "mid-update")
RESYNC_MODES = ("delta", "baseline")
PRESERVE = ("on", "off")


# ---------------------------------------------------------------------------------------------
# The grid: one tuple of points per scenario family, all with the same parameters in one order.


def _rpo(intervals: Sequence[int], trials: Sequence[int]) -> tuple[Params, ...]:
    return grid(
        {
            "scenario": ["rpo"],
            "interval_s": list(intervals),
            "trial": list(trials),
            "data_constituents": [DATA_CONSTITUENTS],
            "failover_case": [NA],
            "divergence_kib": [0],
            "resync_mode": [NA],
            "preserve": [NA],
        }
    )


def _rto(pairs: Sequence[tuple[int, str]]) -> tuple[Params, ...]:
    return tuple(
        p
        for n, case in pairs
        for p in grid(
            {
                "scenario": ["rto"],
                "interval_s": [0],
                "trial": [0],
                "data_constituents": [n],
                "failover_case": [case],
                "divergence_kib": [0],
                "resync_mode": [NA],
                "preserve": [NA],
            }
        )
    )


def _resync(variants: Sequence[tuple[int, str, str]]) -> tuple[Params, ...]:
    return tuple(
        p
        for kib, mode, keep in variants
        for p in grid(
            {
                "scenario": ["resync"],
                "interval_s": [0],
                "trial": [0],
                "data_constituents": [DATA_CONSTITUENTS],
                "failover_case": [NA],
                "divergence_kib": [kib],
                "resync_mode": [mode],
                "preserve": [keep],
            }
        )
    )


QUICK = (
    _rpo([60], [2])
    + _rto([(1, "idle"), (2, "mid-update")])
    + _resync([(16, "delta", "on"), (16, "baseline", "off")])
)
FULL = (
    _rpo([60, 120, 240, 480, 960], range(RPO_STRATA))
    + _rto([(n, case) for n in (1, 2, 4, 8, 16) for case in FAILOVER_CASES])
    + _resync(
        [
            (kib, mode, keep)
            for kib in (4, 16, 64, 256, 1024)
            for mode in RESYNC_MODES
            for keep in PRESERVE
        ]
    )
)


# ---------------------------------------------------------------------------------------------
# Instruments: the CF messages a cluster sends while a block of code runs.


@dataclass
class FabricTally:
    """What one cluster's fabric carried while a ``with fabric_calls(...)`` block ran: simulated
    seconds (its clock's advance), LPC and RPC messages and bytes, and messages by
    ``service.method`` (``snapshot.restore``, ``rdb.apply``, ``ping.ping`` ...). Filled in when
    the block ends."""

    seconds: float = 0.0
    lpc: int = 0
    rpc: int = 0
    bytes: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)

    @property
    def messages(self) -> int:
        """LPC plus RPC messages."""
        return self.lpc + self.rpc

    def of_service(self, service: str) -> int:
        """Messages to ``service`` (any method)."""
        return sum(n for kind, n in self.by_kind.items() if kind.split(".")[0] == service)


@contextmanager
def fabric_calls(fabric: SimulatedFabric) -> Iterator[FabricTally]:
    """Count what ``fabric`` carries inside the block (see :class:`FabricTally`).

    The fabric counts messages and bytes but not their kind; for the block's duration its
    ``send`` is wrapped (on this instance only, restored on exit) to decode each request frame's
    service and method before delivering it unchanged."""
    tally = FabricTally()
    start_clock, start = fabric.clock.now, _totals(fabric.counters)
    own = "send" in vars(fabric)
    deliver = fabric.send

    def counting(source: str, target: str, frame: bytes) -> bytes:
        request = decode_request(frame)
        tally.by_kind[f"{request.service}.{request.method}"] += 1
        return deliver(source, target, frame)

    fabric.send = counting  # type: ignore[method-assign]
    try:
        yield tally
    finally:
        if own:
            fabric.send = deliver  # type: ignore[method-assign]
        else:
            del fabric.send
        lpc, rpc, nbytes = (b - a for a, b in zip(start, _totals(fabric.counters), strict=True))
        tally.seconds, tally.lpc, tally.rpc, tally.bytes = (
            fabric.clock.now - start_clock,
            lpc,
            rpc,
            nbytes,
        )


def _totals(counters: FabricCounters) -> tuple[int, int, int]:
    return (
        counters.lpc_messages,
        counters.rpc_messages,
        counters.lpc_bytes + counters.rpc_bytes,
    )


# ---------------------------------------------------------------------------------------------
# Two sites, mirrored.


def _pair(rng: random.Random, data_constituents: int, volume_blocks: int) -> SitePair:
    """Sites ``A`` (the primary, with the expandable volume) and ``B`` (empty), joined by the
    experiment's link; cluster and link seeds drawn from ``rng``."""
    primary = build_site(
        "A",
        seed=rng.randrange(1 << 30),
        nodes=NODES,
        data_constituents=data_constituents,
        volume_blocks=volume_blocks,
    )
    remote = build_site("B", seed=rng.randrange(1 << 30), nodes=NODES, volume=None)
    return SitePair(
        primary,
        remote,
        bandwidth=LINK_BANDWIDTH,
        latency=LINK_LATENCY,
        seed=rng.randrange(1 << 30),
    )


def _catch(process: Process[Any], outcome: list[object]) -> Process[None]:
    """Run ``process``; append its result, or the :class:`LinkError` that ended it."""
    try:
        outcome.append((yield from process))
    except LinkError as error:
        outcome.append(error)


def _newest(site: Site) -> dict[str, str]:
    """Member -> UUID of its newest per-volume snapshot (``""``: none)."""
    out: dict[str, str] = {}
    for member in site.members(VS, XV):
        snaps = site.volume(VS, XV, member.name).snapshots()
        out[member.name] = str(snaps[-1].uuid) if snaps else ""
    return out


def _exists(site: Site, path: str) -> bool:
    """Whether a client of ``site`` sees a file at ``path``."""
    try:
        site.cluster.expandable(VS, XV).stat(path)
    except NotFoundError:
        return False
    return True


def _snapshot_blocks(site: Site, volume: str, record: SnapshotRecord) -> int:
    """Blocks the per-volume snapshots of ``record`` reference, summed over its members (what a
    full transfer of it sends)."""
    return sum(
        len(snapshot_checksums(site.volume(VS, volume, v.member), uuid.UUID(v.uuid))[0])
        for v in record.volumes
    )


def _fail(family: str, params: Params, claim: str) -> IntegrityError:
    return IntegrityError(f"E4 {family} {dict(params)}: {claim}")


# ---------------------------------------------------------------------------------------------
# rpo: data lost at a disaster against the update interval.


@dataclass(frozen=True)
class AckedWrite:
    """A client write the primary acknowledged: its index, simulated time, path and bytes."""

    index: int
    at: float
    path: str
    data: bytes


def rpo_point(params: Params, seed: int) -> Record:
    """Run the rpo scenario (module text) for ``interval_s`` and ``trial``; one record."""
    interval, trial = int(params["interval_s"]), int(params["trial"])
    if interval <= 0 or interval % WRITE_PERIOD_S:
        raise InvalidArgumentError(
            f"interval_s must be a positive multiple of {WRITE_PERIOD_S}, got {interval}"
        )
    if not 0 <= trial < RPO_STRATA:
        raise InvalidArgumentError(f"trial must be in 0..{RPO_STRATA - 1}, got {trial}")
    rng = random.Random(seed)
    disaster = interval * (1 + (trial + rng.random()) / RPO_STRATA)
    pair = _pair(rng, DATA_CONSTITUENTS, MEMBER_BLOCKS)
    a, b, env = pair.site("A"), pair.site("B"), pair.env
    co = MirroringCoordinator(b, pair.link("B", "A"))
    completed: list[tuple[float, UpdateResult]] = [(0.0, pair.run(co.initialize(VS, XV)))]
    log: list[AckedWrite] = []
    cut: list[float] = []  # start of the update the disaster cut, if one was in flight
    pair.disaster(at_time=disaster)

    def client() -> Generator[Any, Any, None]:
        k = 0
        while (at := (k + 0.5) * WRITE_PERIOD_S) <= disaster:
            yield env.timeout(at - env.now)
            data = rng.randbytes(WRITE_BYTES)
            a.write(VS, XV, f"/w{k:05d}", data)
            log.append(AckedWrite(k, at, f"/w{k:05d}", data))
            k += 1

    def updates() -> Generator[Any, Any, None]:
        slot = 1
        while (start := slot * interval) < disaster:
            yield env.timeout(max(0.0, start - env.now))
            outcome: list[object] = []
            yield env.process(_catch(co.update(VS, XV), outcome))
            if isinstance(outcome[0], LinkError):
                cut.append(start)
                return
            assert isinstance(outcome[0], UpdateResult)
            completed.append((start, outcome[0]))
            slot = max(slot + 1, math.floor(env.now / interval) + 1)  # skip slots overrun

    env.process(client())
    env.process(updates())
    env.run()
    exported_start, exported = completed[-1]
    failover = co.failover(VS, XV)
    if failover.snapshot.name != exported.snapshot.name:
        raise _fail("rpo", params, "the failover does not present the newest completed update")
    seen = b.files(VS, XV)
    written = {w.path: w.data for w in log}
    if any(written.get(path) != data for path, data in seen.items()):
        raise _fail("rpo", params, "the failed-over volume holds a file no client wrote")
    present = [w.path in seen for w in log]
    kept = sum(present)
    if present != [True] * kept + [False] * (len(log) - kept):
        raise _fail("rpo", params, "the writes present are not a prefix: an inconsistent copy")
    if kept != sum(1 for w in log if w.at < exported_start):
        raise _fail("rpo", params, "the writes present are not those before the exported update")
    pair.reconnect()
    if not pair.run(co.verify(VS, XV)).equal:
        raise _fail("rpo", params, "the exported snapshot differs between the sites")
    lost = log[kept:]
    return {
        "disaster_s": disaster,
        "recovery_point_s": exported_start,
        "rpo_s": disaster - exported_start,
        "inflight_s": disaster - cut[0] if cut else 0.0,
        "update_cut": bool(cut),
        "updates_completed": len(completed),
        "exported_update_s": exported.seconds,
        "writes_acked": len(log),
        "writes_lost": len(lost),
        "kib_lost": sum(len(w.data) for w in lost) / 1024,
    }


# ---------------------------------------------------------------------------------------------
# rto: failover time and work against the number of data constituents.


def _cut_midway(pair: SitePair, co: MirroringCoordinator) -> int:
    """Start an update and cut both links once half of the remote members have committed it;
    returns how many had. Raises IntegrityError unless the update then fails on the cut."""
    b = pair.site("B")
    before = _newest(b)
    half = math.ceil(len(before) / 2)
    outcome: list[object] = []
    process = pair.env.process(_catch(co.update(VS, XV), outcome))
    committed = 0
    while process.is_alive:
        pair.env.step()
        if not committed:
            now = _newest(b)
            done = sum(now[m] != before[m] for m in before)
            if done >= half:
                committed = done
                pair.disaster()
    if not committed or not outcome or not isinstance(outcome[0], LinkError):
        raise IntegrityError("E4 rto: the cut did not interrupt the update half way")
    return committed


def rto_point(params: Params, seed: int) -> Record:
    """Run the rto scenario (module text) for ``data_constituents`` and ``failover_case``."""
    n, case = int(params["data_constituents"]), str(params["failover_case"])
    if n < 1 or case not in FAILOVER_CASES:
        raise InvalidArgumentError(
            f"rto needs >= 1 data constituents and a case in {FAILOVER_CASES}"
        )
    rng = random.Random(seed)
    pair = _pair(rng, n, RTO_MEMBER_BLOCKS)
    a, b = pair.site("A"), pair.site("B")
    for i in range(RTO_FILES):
        a.write(VS, XV, f"/f{i}", rng.randbytes(RTO_FILE_BYTES))
    co = MirroringCoordinator(b, pair.link("B", "A"))
    pair.run(co.initialize(VS, XV))
    exported = b.files(VS, XV)
    committed = 0
    if case == "mid-update":
        for i in range(RTO_FILES):
            a.write(VS, XV, f"/g{i}", rng.randbytes(RTO_FILE_BYTES))
        committed = _cut_midway(pair, co)
    else:
        pair.disaster()
    members = len(b.members(VS, XV))
    started = time.perf_counter()
    with fabric_calls(b.cluster.fabric) as calls:
        failover = co.failover(VS, XV)
    elapsed = time.perf_counter() - started
    if b.files(VS, XV) != exported:
        raise _fail("rto", params, "the failed-over volume is not the exported snapshot")
    if not b.cluster.expandable(VS, XV).check_references().ok:
        raise _fail("rto", params, "the failed-over volume has broken references")
    probe = rng.randbytes(RTO_FILE_BYTES)
    b.write(VS, XV, "/after-failover", probe)
    if b.read(VS, XV, "/after-failover") != probe:
        raise _fail("rto", params, "the failed-over volume does not return what was written")
    return {
        "members": members,
        "members_committed": committed,
        "members_restored": len(failover.members),
        "failover_ms": calls.seconds * 1e3,
        "cf_messages": calls.messages,
        "rpc_messages": calls.rpc,
        "cf_kib": calls.bytes / 1024,
        "volume_ops": calls.of_service("snapshot"),
        "snapshot_restores": calls.by_kind["snapshot.restore"],
        "snapshot_deletes": calls.by_kind["snapshot.delete"],
        "rdb_messages": calls.of_service("rdb"),
        "pings": calls.of_service("ping"),
        "elapsed_s": elapsed,
    }


# ---------------------------------------------------------------------------------------------
# resync: bytes against divergence; delta against baseline; preserve on against off.


def divergent_writes(side: str, kib: int) -> list[tuple[str, int]]:
    """The (path, size) writes one side makes for ``kib`` KiB of divergence: chunks of
    :data:`CHUNK_BYTES` (the last one partial), even chunks replacing a base file (side ``a``
    from the first up, side ``b`` from the last down), odd ones creating ``/<side>-new-<j>``."""
    if side not in ("a", "b") or kib < 0:
        raise InvalidArgumentError(f"divergent writes need side a or b and kib >= 0, got {side}")
    total, sizes = kib * 1024, []
    while total > 0:
        sizes.append(min(CHUNK_BYTES, total))
        total -= sizes[-1]
    out = []
    for j, size in enumerate(sizes):
        if j % 2:
            out.append((f"/{side}-new-{j}", size))
        else:
            k = (j // 2) % BASE_FILES
            out.append((f"/base{k if side == 'a' else BASE_FILES - 1 - k}", size))
    return out


def _same_plan(first: ResyncPlan, second: ResyncPlan) -> bool:
    def common(plan: ResyncPlan) -> str | None:
        return None if plan.common is None else plan.common.name

    return (
        common(first) == common(second)
        and first.discarded_paths == second.discarded_paths
        and first.discarded_snapshots == second.discarded_snapshots
        and first.source_changes == second.source_changes
    )


def resync_point(params: Params, seed: int) -> Record:
    """Run the resync scenario (module text) for one divergence, mode and preserve choice."""
    kib, mode, keep = int(params["divergence_kib"]), str(params["resync_mode"]), params["preserve"]
    if mode not in RESYNC_MODES or keep not in PRESERVE or kib < 0:
        raise InvalidArgumentError(f"resync needs a mode in {RESYNC_MODES}, preserve in {PRESERVE}")
    baseline, preserve = mode == "baseline", keep == "on"
    rng = random.Random(seed)
    pair = _pair(rng, DATA_CONSTITUENTS, MEMBER_BLOCKS)
    a, b = pair.site("A"), pair.site("B")
    for i in range(BASE_FILES):
        a.write(VS, XV, f"/base{i}", rng.randbytes(BASE_FILE_BYTES))
    co_b = MirroringCoordinator(b, pair.link("B", "A"))
    pair.run(co_b.initialize(VS, XV))
    a.write(VS, XV, "/mirrored-by-update", rng.randbytes(RTO_FILE_BYTES))
    pair.run(co_b.update(VS, XV))
    pair.disaster()
    co_b.failover(VS, XV)
    acked_b = {}
    for path, size in divergent_writes("b", kib):
        acked_b[path] = rng.randbytes(size)
        b.write(VS, XV, path, acked_b[path])
    for path, size in divergent_writes("a", kib):
        a.write(VS, XV, path, rng.randbytes(size))
    acknowledged = b.files(VS, XV)
    if any(acknowledged.get(p) != d for p, d in acked_b.items()):
        raise _fail("resync", params, "a write acknowledged at B is not at B")
    pair.reconnect()
    if baseline:  # the common base is lost: a new baseline is the only way back
        for hold in a.holds(VS, XV):  # the broken mirror's hold on it, released by hand
            a.release(VS, XV, hold.holder)
        for row in a.snapshots(VS, XV):
            a.jobs.delete(VS, XV, row.name)
    co_a = MirroringCoordinator(a, pair.link("A", "B"))
    resync = Resync(co_a, VS, XV)
    link = pair.link("A", "B")

    bytes_before = link.stats.bytes
    plan = pair.run(resync.plan(baseline=baseline))
    dry_run_bytes = link.stats.bytes - bytes_before
    if (plan.common is None) != baseline:
        raise _fail("resync", params, "the dry run found a common snapshot iff delta, not so")
    if {p for p, _ in divergent_writes("a", kib)} - set(plan.discarded_paths):
        raise _fail("resync", params, "the dry run does not list every divergent write at A")
    primary_files = (  # what the old primary's clients see now, where it diverged
        {p: a.read(VS, XV, p) for p in plan.discarded_paths if _exists(a, p)} if preserve else {}
    )

    started, bytes_before, sim_before = time.perf_counter(), link.stats.bytes, pair.now
    with fabric_calls(a.cluster.fabric) as local:
        result = pair.run(resync.run(discard=not preserve, baseline=baseline))
    elapsed = time.perf_counter() - started
    wire, seconds = link.stats.bytes - bytes_before, pair.now - sim_before
    if not _same_plan(plan, result.plan):
        raise _fail("resync", params, "the resync did not do what its dry run planned")

    after = a.files(VS, XV)
    if after != acknowledged or any(after.get(p) != d for p, d in acked_b.items()):
        raise _fail("resync", params, "a write acknowledged at B is missing at the old primary")
    if not pair.run(co_a.verify(VS, XV)).equal:
        raise _fail("resync", params, "the sites do not verify equal after the resync")

    preserved_files = preserved_bytes = preserved_blocks = preserved_snapshots = 0
    if preserve:
        if result.preserved is None:
            raise _fail("resync", params, "preserve was on but nothing was preserved")
        view = a.open_snapshot(VS, result.preserved, "preserved")
        kept = {p: primary_files[p] for p in plan.discarded_paths if p in primary_files}
        if any(view.read(p) != d for p, d in kept.items()) or not view.read(PRESERVED_MANIFEST):
            raise _fail("resync", params, "the old primary's data is not in the preserved copy")
        if {path for path, _goid in view.walk()} != {*kept, PRESERVED_MANIFEST}:
            raise _fail("resync", params, "the preserved copy holds other files than the kept")
        record = a.jobs.get(VS, result.preserved, "preserved")
        preserved_files, preserved_bytes = len(kept), sum(len(d) for d in kept.values())
        preserved_blocks = _snapshot_blocks(a, result.preserved, record)
        preserved_snapshots = len(record.volumes)
    elif result.preserved is not None or any(
        name.startswith(f"{XV}-preserved") for _vs, name, _m in a.cluster.volume_table()
    ):
        raise _fail("resync", params, "preserve was off yet a preserved volume exists")
    update = result.update
    return {
        "common_snapshot": NA if plan.common is None else plan.common.name,
        "split_brain": plan.split_brain,
        "conflicting_paths": len(plan.conflicting_paths),
        "discarded_paths": len(plan.discarded_paths),
        "discarded_snapshots": len(plan.discarded_snapshots),
        "source_changes": len(plan.source_changes),
        "dry_run_kib": dry_run_bytes / 1024,
        "wire_kib": wire / 1024,
        "transfer_kib": update.wire_bytes / 1024,
        "records_sent": update.records_sent,
        "full_transfer_blocks": _snapshot_blocks(a, XV, update.snapshot),
        "resync_s": seconds,
        "local_cf_messages": local.messages,
        "local_fabric_ms": local.seconds * 1e3,
        "preserved_files": preserved_files,
        "preserved_kib": preserved_bytes / 1024,
        "preserved_blocks": preserved_blocks,
        "preserved_snapshots": preserved_snapshots,
        "elapsed_s": elapsed,
    }


# ---------------------------------------------------------------------------------------------
# One point: dispatch on the scenario family.

SCENARIOS = {"rpo": rpo_point, "rto": rto_point, "resync": resync_point}


def point(params: Params, seed: int) -> list[Record]:
    """Measure one point of any family; the rpo family's wall time is recorded here."""
    family = SCENARIOS.get(str(params["scenario"]))
    if family is None:
        raise InvalidArgumentError(f"unknown scenario {params['scenario']!r}; one of {SCENARIOS}")
    started = time.perf_counter()
    record = family(params, seed)
    record.setdefault("elapsed_s", time.perf_counter() - started)
    return [record]


# ---------------------------------------------------------------------------------------------
# Figures.


def _of(frame: pd.DataFrame, scenario: str) -> pd.DataFrame:
    return frame[frame["scenario"] == scenario]


def _integer_ticks(axes: Axes, values: Sequence[float]) -> None:
    """Tick the x axis at ``values`` and label them as plain numbers (no powers)."""
    axes.set_xticks(list(values), [f"{v:g}" for v in values])
    axes.minorticks_off()


def rpo_figure(frame: pd.DataFrame) -> Figure:
    """Recovery point (minutes) and data lost (KiB) against the update interval: every trial and
    the mean, with the half-interval (the mean for a disaster at a uniform time) and one-interval
    (the bound while no update is in flight) lines for reference."""
    from matplotlib.figure import Figure

    rows = _of(frame, "rpo")
    figure = Figure(figsize=(10.0, 3.8), layout="constrained")
    seconds, lost = figure.subplots(1, 2)
    minutes = rows["interval_s"] / 60
    xs = sorted(minutes.unique().tolist())
    rate = WRITE_BYTES / 1024 / WRITE_PERIOD_S * 60  # KiB written per minute
    for axes, column, scale, per in (
        (seconds, "rpo_s", 1 / 60, 1.0),
        (lost, "kib_lost", 1.0, rate),
    ):
        values = rows[column] * scale
        axes.scatter(minutes, values, s=12, color="0.6", label="one disaster (seeded time)")
        mean = values.groupby(minutes).mean()
        axes.plot(mean.index, mean.to_numpy(), marker="o", color="C0", label="mean")
        axes.plot(xs, [x * per for x in xs], ":", color="black", label="one interval")
        axes.plot(xs, [x * per / 2 for x in xs], "--", color="0.4", label="half an interval")
        axes.set_xscale("log", base=2)
        _integer_ticks(axes, xs)
        axes.set_xlabel("update interval (min, simulated)")
        axes.legend(fontsize=7)
    seconds.set_yscale("log")
    seconds.set_ylabel("RPO: disaster - exported snapshot (min)")
    seconds.set_title("recovery point after a disaster at a random time")
    one_write = WRITE_BYTES / 1024
    lost.set_yscale("symlog", linthresh=one_write)  # a trial may lose nothing: 0 is drawn
    top = max(float(rows["kib_lost"].max()), xs[-1] * rate)
    ticks = [0.0] + [one_write * 2**k for k in range(64) if one_write * 2**k <= top * 1.01]
    lost.set_yticks(ticks, [f"{t:g}" for t in ticks])
    lost.minorticks_off()
    lost.set_ylim(-one_write / 4, top * 1.3)
    lost.set_ylabel("acknowledged writes lost (KiB)")
    lost.set_title(f"data lost ({WRITE_BYTES // 1024} KiB written every {WRITE_PERIOD_S} s)")
    return figure


def rto_figure(frame: pd.DataFrame) -> Figure:
    """Failover time (fabric-simulated ms) and CF messages against data constituents, for an
    idle mirror and one cut half way through an update."""
    from matplotlib.figure import Figure

    rows = _of(frame, "rto")
    figure = Figure(figsize=(10.0, 3.8), layout="constrained")
    ms, messages = figure.subplots(1, 2)
    for i, case in enumerate(FAILOVER_CASES):
        part = rows[rows["failover_case"] == case].sort_values("data_constituents")
        if part.empty:
            continue
        n, style = part["data_constituents"], {"marker": "os"[i], "color": f"C{i}"}
        ms.plot(n, part["failover_ms"], label=case, **style)
        messages.plot(n, part["cf_messages"], label=f"{case}: all CF messages", **style)
        messages.plot(
            n,
            part["volume_ops"],
            linestyle="--",
            label=f"{case}: per-volume snapshot calls",
            **style,
        )
    for axes in (ms, messages):
        _integer_ticks(axes, sorted(rows["data_constituents"].unique().tolist()))
        axes.set_xlabel("data constituents")
        axes.set_ylim(bottom=0)
        axes.legend(fontsize=7)
    ms.set_ylabel("failover time (ms, fabric-simulated)")
    ms.set_title("RTO: failover time at the remote site")
    messages.set_ylabel("CF messages (LPC + RPC)")
    messages.set_title("RTO: work of the failover")
    return figure


def _resync_lines(axes: Axes, rows: pd.DataFrame, column: str, scale: float) -> None:
    """One line per (mode, preserve): filled markers for preserve on, hollow for off."""
    for i, mode in enumerate(RESYNC_MODES):
        for keep in PRESERVE:
            part = rows[(rows["resync_mode"] == mode) & (rows["preserve"] == keep)]
            part = part.sort_values("divergence_kib")
            if part.empty:
                continue
            axes.plot(
                part["divergence_kib"],
                part[column] * scale,
                marker="o",
                markersize=4 if keep == "on" else 8,
                fillstyle="full" if keep == "on" else "none",
                linestyle="-" if keep == "on" else "--",
                color=f"C{i}",
                label=f"{mode}, preserve {keep}",
            )


def resync_figure(frame: pd.DataFrame) -> Figure:
    """Three panels against the divergence each side wrote after failover: bytes on the wire of
    the resync, what preserving keeps, and the old primary's local work."""
    from matplotlib.figure import Figure

    rows = _of(frame, "resync")
    figure = Figure(figsize=(12.0, 3.8), layout="constrained")
    wire, kept, local = figure.subplots(1, 3)
    divergence = sorted(rows["divergence_kib"].unique().tolist())
    _resync_lines(wire, rows, "wire_kib", 1 / 1024)
    wire.set_yscale("log")
    wire.set_ylabel("resync bytes on the link (MiB)")
    wire.set_title("delta vs new baseline (preserve on = off)")
    preserved = rows[rows["preserve"] == "on"]
    _resync_lines(kept, preserved, "preserved_kib", 1.0)
    for i, mode in enumerate(RESYNC_MODES):
        part = preserved[preserved["resync_mode"] == mode].sort_values("divergence_kib")
        if not part.empty:
            space = part["preserved_blocks"] * BLOCK_SIZE / 1024
            kept.plot(
                part["divergence_kib"], space, "-.", color=f"C{i}", label=f"{mode}: space taken"
            )
    kept.plot(divergence, divergence, ":", color="black", label="KiB written at the old primary")
    kept.set_yscale("log")
    kept.set_ylabel("preserved file data, space taken (KiB)")
    kept.set_title("what preserving keeps")
    _resync_lines(local, rows, "local_cf_messages", 1.0)
    local.set_ylim(bottom=0)
    local.set_ylabel("CF messages at the old primary")
    local.set_title("what preserving costs the old primary")
    for axes in (wire, kept, local):
        axes.set_xscale("log", base=2)
        _integer_ticks(axes, divergence)
        axes.set_xlabel("divergence: KiB written by each side after failover")
        axes.legend(fontsize=7)
    return figure


# ---------------------------------------------------------------------------------------------
# The numbers the paper quotes.


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


NUMBER_KEYS = (
    "EFourRpoShortestIntervalS",
    "EFourRpoLongestIntervalS",
    "EFourFailoverConstituentsMax",
    "EFourFailoverMsMax",
    "EFourFailoverMsPerConstituent",
    "EFourFailoverMessagesPerConstituent",
    "EFourBaselineOverDelta",
    "EFourPreserveOverheadPct",
)
"""The macros :func:`numbers` defines (the two per-constituent slopes need two idle counts)."""


def numbers(frame: pd.DataFrame) -> dict[str, str]:
    """Mean RPO (seconds) at the shortest and longest interval; failover time at the largest
    constituent count and its least-squares growth per data constituent (ms and CF messages);
    baseline / delta resync bytes at the smallest divergence; the space a preserved copy takes
    beyond the data it keeps (percent, at the largest divergence of a delta resync)."""
    import numpy as np

    out: dict[str, str] = {}
    rpo = _of(frame, "rpo")
    if not rpo.empty:
        mean = rpo.groupby("interval_s")["rpo_s"].mean()
        out["EFourRpoShortestIntervalS"] = _fmt(mean[mean.index.min()], 0)
        out["EFourRpoLongestIntervalS"] = _fmt(mean[mean.index.max()], 0)
    idle = _of(frame, "rto")
    idle = idle[idle["failover_case"] == "idle"].sort_values("data_constituents")
    if not idle.empty:
        largest = idle.iloc[-1]
        out["EFourFailoverConstituentsMax"] = str(int(largest["data_constituents"]))
        out["EFourFailoverMsMax"] = _fmt(float(largest["failover_ms"]), 2)
        if idle["data_constituents"].nunique() > 1:
            n = idle["data_constituents"].to_numpy(dtype=float)
            slope_ms = np.polyfit(n, idle["failover_ms"].to_numpy(dtype=float), 1)[0]
            slope_msgs = np.polyfit(n, idle["cf_messages"].to_numpy(dtype=float), 1)[0]
            out["EFourFailoverMsPerConstituent"] = _fmt(float(slope_ms), 3)
            out["EFourFailoverMessagesPerConstituent"] = _fmt(float(slope_msgs), 1)
    resync = _of(frame, "resync")
    if not resync.empty:
        at = resync[resync["divergence_kib"] == resync["divergence_kib"].min()]
        by_mode = at.groupby("resync_mode")["wire_kib"].mean()
        if {"delta", "baseline"} <= set(by_mode.index):
            out["EFourBaselineOverDelta"] = _fmt(by_mode["baseline"] / by_mode["delta"])
        kept = resync[(resync["preserve"] == "on") & (resync["resync_mode"] == "delta")]
        if not kept.empty:
            top = kept.sort_values("divergence_kib").iloc[-1]
            space = float(top["preserved_blocks"]) * BLOCK_SIZE / 1024
            data = float(top["preserved_kib"])
            out["EFourPreserveOverheadPct"] = _fmt((space - data) / data * 100, 0)
    return out


# ---------------------------------------------------------------------------------------------
# The declaration.

EXPERIMENT = Experiment(
    name="recovery",
    title="E4 recovery: RPO, RTO and resync",
    measures="data lost at a disaster against the update interval; failover time and work "
    "against data constituents; resync bytes against divergence, delta vs baseline, preserve "
    "on vs off",
    quick=QUICK,
    full=FULL,
    point=point,
    columns={
        "scenario": "family of the row: rpo, rto or resync",
        "interval_s": "rpo: mirror update interval, simulated seconds (0: other families)",
        "trial": f"rpo: which of {RPO_STRATA} slices of [interval, 2 interval) the disaster "
        "time is drawn from (0: other families)",
        "data_constituents": "data constituents of the mirrored expandable volume",
        "failover_case": "rto: idle (no update in flight) or mid-update (link cut once half of "
        "the members committed the next update); '-' otherwise",
        "divergence_kib": "resync: KiB each side wrote after the failover (0: other families)",
        "resync_mode": "resync: delta (from the common snapshot) or baseline (common snapshot "
        "lost, everything re-sent); '-' otherwise",
        "preserve": "resync: on (old primary's divergent files preserved) or off (discarded)",
        "disaster_s": "rpo: simulated time both links were cut",
        "recovery_point_s": "rpo: start time of the update whose snapshot the failover exported",
        "rpo_s": "rpo: disaster_s - recovery_point_s",
        "inflight_s": "rpo: how long the update the disaster cut had run (0: none in flight)",
        "update_cut": "rpo: whether an update was in flight at the disaster",
        "updates_completed": "rpo: completed updates, the initialize included",
        "exported_update_s": "rpo: simulated seconds the exported update took",
        "writes_acked": "rpo: client writes the primary acknowledged before the disaster",
        "writes_lost": "rpo: acknowledged writes absent after failover",
        "kib_lost": "rpo: KiB of the writes lost",
        "members": "rto: member volumes (namespace, OLS, data constituents)",
        "members_committed": "rto: members that had committed the cut update (mid-update)",
        "members_restored": "rto: members the failover restored to the exported snapshot",
        "failover_ms": "rto: remote cluster's fabric clock advance during failover, simulated ms",
        "cf_messages": "rto: CF messages (LPC + RPC) the failover sent",
        "rpc_messages": "rto: of those, RPCs between nodes",
        "cf_kib": "rto: KiB of CF requests and replies",
        "volume_ops": "rto: per-volume snapshot-service calls (list, create, restore, delete)",
        "snapshot_restores": "rto: per-volume snapshot restores",
        "snapshot_deletes": "rto: per-volume snapshot deletions",
        "rdb_messages": "rto: replicated-database messages (commits, one per replica)",
        "pings": "rto: CF pings (reachability of a member's node before a call)",
        "common_snapshot": "resync: the common snapshot the dry run found ('-': none)",
        "split_brain": "resync: both sites changed files since the common snapshot",
        "conflicting_paths": "resync: paths changed on both sides",
        "discarded_paths": "resync: files the old primary would lose (dry run)",
        "discarded_snapshots": "resync: old primary's snapshots the other site lacks",
        "source_changes": "resync: files the new source changed since the common snapshot",
        "dry_run_kib": "resync: KiB on the link for the dry run",
        "wire_kib": "resync: KiB on the link for the resync (proxy messages and transfer)",
        "transfer_kib": "resync: KiB of the block transfer alone",
        "records_sent": "resync: blocks the transfer sent",
        "full_transfer_blocks": "resync: blocks the transferred snapshot references (what a "
        "full transfer sends)",
        "resync_s": "resync: simulated seconds of the resync on the link",
        "local_cf_messages": "resync: CF messages at the old primary during the resync",
        "local_fabric_ms": "resync: old primary's fabric clock advance during the resync, ms",
        "preserved_files": "resync: files kept in the preserved volume",
        "preserved_kib": "resync: KiB of file data kept in the preserved volume",
        "preserved_blocks": "resync: blocks the preserved volume's snapshot references",
        "preserved_snapshots": "resync: per-volume snapshots of the preserved volume",
        "elapsed_s": "wall seconds of the point (rto: of the failover; resync: of the resync; "
        "varies run to run)",
    },
    figures=(
        FigureSpec("recovery-rpo", rpo_figure, paper=True),
        FigureSpec("recovery-rto", rto_figure),
        FigureSpec("recovery-resync", resync_figure, paper=True),
    ),
    timing_columns=("elapsed_s",),
    default_seed=4,
    paper_numbers=numbers,
)
