"""Conformance replay of the mirror model: a mirroring/failover/resync trace run on the reference.

The mirror model (:mod:`xvol.model.mirror`) hands over a :class:`~xvol.vocabulary.Trace` of
mirror actions; :func:`replay_mirror_trace` runs it on the reference's two sites
(:mod:`xvol.reference.mirror`) one action at a time and judges the model's properties on the
reference's own state after every step. It never imports the model: traces are data.

The world. Site ``A`` (the primary) holds the expandable volume ``vs1/xv`` with the trace's
*original* members (``NS``, ``OLS`` and the first ``n - missing`` data constituents); their
baseline snapshot ``g0`` is mirrored to site ``B`` by the mirroring coordinator's
``initialize``; then the last ``missing`` data constituents are added at ``A`` (the seed's
constituent added at the source after the destination was built), so ``B`` lacks them until a
resize. That is the model's initial state.

Generations and content. The model names snapshots by generation and treats two generations as
two contents; a *generation stamp* makes that true on the reference: before every snapshot the
replay creates one file per data constituent of that site (``/<g>-DC<k>``, which changes the
namespace, the OLS and that constituent), so every member's image differs between generations.
A member's *image* is a digest of what it holds: for the namespace and the OLS their whole file
tree, for a data constituent its objects (one with none is the empty image, the model's
``none``, as is an absent or unformatted volume).

Action by action (``->`` the reference's operation; the mirroring coordinator's ``update`` is
run block by block, in the model's order, with the coordinator's own block functions):

* ``snapshot(site=A, g)`` -> stamp, then a consistent snapshot ``g`` (fences) at ``A``;
* ``source-write(v)`` / ``destination-write(v)`` -> a client write that changes ``v``: a new
  directory for ``NS``; for a data constituent, new bytes in one of its objects (a new file
  placed there if it holds none); the reference has no client operation that changes the OLS
  alone, so an ``OLS`` write creates a file (it also changes ``NS`` and a data constituent);
* ``resize`` -> the update's resize block (create the members the source has);
* ``create-relationship(v)`` -> the update's "create or confirm" block for member ``v`` only;
* ``transfer(v, g)`` -> the update's per-member block: the target is the source's snapshot
  ``g``; the first transfer of a target records it as the update in flight and drops stray
  per-volume snapshots, as the update does; the member's block replication transfer runs (or is
  skipped when the member already holds the target, as the update skips it). When the target is
  on every one of its members, the update's last blocks run at once (copy the configuration,
  snapshot table, notify the N-module): the reference has no link round trip between its last
  transfer and its publication, so a disaster cannot separate them;
* ``publish(g)`` / ``notify`` -> the reference must already export ``g`` (else a divergence);
* ``disaster`` -> both links cut; ``failover(g)`` -> the coordinator's ``failover`` (the
  snapshot it presents must be ``g``); ``primary-return`` -> links restored, a coordinator and
  a :class:`~xvol.reference.mirror.resync.Resync` at ``A``;
* ``common-snapshot(g)`` -> the resync's dry run (its common snapshot must be ``g``);
  ``preserve`` -> the resync's preserve block; ``rollback(g)`` -> its roll-back block;
  ``reverse(g)`` -> the resync's reversal (relationships at ``A`` naming ``B`` as source, ``B``
  releases its broken mirror), then ``B`` takes the update's target snapshot ``g`` (stamped)
  and ``A``'s update resizes and confirms; the transfers back are ``transfer(v, g, source=B)``.

Bug toggles, injected by this replay only (the production code path has none of them):
``no-redirect`` reads the destination's active file system instead of the redirect snapshot;
``no-confirm`` runs a member's transfer over a relationship it never writes into the table;
``skip-resize`` lets the destination's own volume table stand for the source's volume list
(when the update is complete and what it publishes); ``per-volume-common`` picks, per member,
the newest per-volume snapshot both sites hold and rolls each member back to its own;
``skip-rollback`` leaves the old primary unrestored; ``no-reverse`` keeps the old relationships,
so the transfers run from ``A`` to ``B`` (``B`` takes the snapshot the model's reverse step
takes). ``preserve = false`` is the resync's ``discard`` choice, which the reference has.

Properties, judged on the reference after every step (the model's names):

* ``failover-consistent``: once ``B`` is read-write, each of its members holds the image of the
  snapshot it presents (or its newer resync snapshot) unless a client wrote to it since, and
  ``B``'s snapshot table holds that snapshot on every member it has in its source generation;
* ``redirect-consistent``: what clients read at ``B`` before failover (the redirect snapshot,
  or the active file system under ``no-redirect``), and at ``A`` during the resync, is the image
  of one generation on every member, empty elsewhere;
* ``resync-identical``: every member transferred back has the same image at both sites;
* ``no-lost-destination-write``: every write acknowledged at ``B`` is still there;
* ``relationship-before-transfer``: a member's relationship row exists when its transfer
  starts (and stays while it is transferred);
* ``preserve-keeps-divergent``: every file or directory the rollback changes or removes at
  ``A`` is in a preserved volume's snapshot, with its bytes.

Outcomes (:class:`~xvol.verification.conformance.Outcome`): a counterexample is *reproduced*
when its property breaks on the reference; *prevented* when the reference refuses a step with a
typed error or the injected choice turns out to change nothing, with the mechanism named in
``Replay.prevented_by``; otherwise *not reproduced*. A safe trace is *safe* or *broken*. A trace
the reference cannot express (an instance without an original data constituent, a write to a
member the reference's failover removed) is *not replayable*, with the reason.

Uses the reference's mirroring layer (sites, coordinator, resync, relationships), snapshots and
cluster layers, :mod:`xvol.verification.conformance`'s records, the vocabulary and errors.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from xvol.errors import NotFoundError, XvolError
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.mirror.coordinator import MirroringCoordinator
from xvol.reference.mirror.link import Process
from xvol.reference.mirror.relationships import (
    MirrorConfig,
    MirrorGroup,
    Relationship,
)
from xvol.reference.mirror.resync import Resync, ResyncPlan
from xvol.reference.mirror.site import (
    ReadOnlyMirrorError,
    ReleaseMirrorRequest,
    Site,
    SitePair,
    SnapshotReply,
    TakeSnapshotRequest,
)
from xvol.reference.snapshots.snapshot_table import SnapshotRecord, VolumeSnapshot
from xvol.reference.snapshots.volume_snapshots import VolumeSnapshots
from xvol.reference.volume.layout import FileType
from xvol.reference.volume.volume import Volume
from xvol.verification.conformance import NotReplayableError, Outcome, Replay
from xvol.vocabulary import (
    NAMESPACE_VOLUME,
    OLS_VOLUME,
    Action,
    Trace,
    TraceStep,
    VolumeRole,
    role_of,
    volume_names,
)

T = TypeVar("T")

PROPERTIES = (
    "failover-consistent",
    "resync-identical",
    "no-lost-destination-write",
    "relationship-before-transfer",
    "preserve-keeps-divergent",
    "redirect-consistent",
)
BUGS = frozenset(
    {"per-volume-common", "skip-rollback", "skip-resize", "no-redirect", "no-reverse", "no-confirm"}
)
VS, XV = "vs1", "xv"
EMPTY = "empty"
MISSING = "missing"
UNREADABLE = b"\x00conformance: unreadable: "
VOLUME_BLOCKS = 256

# The mechanisms that prevent an injected bug on the reference (Replay.prevented_by)
FAILOVER_DROPS_UNFINISHED = "failover-drops-unfinished-transfer"
REPLICATION_BASE_CHECK = "replication-base-check"
TARGET_ALREADY_HELD = "target-already-held"
TRANSFER_ROLLS_BACK = "transfer-rolls-back"
REFUSED = "refused"

_MIRROR_PHASE = ("mirror", "lost")
_B_READ_WRITE = ("failover", "returned", "common", "preserved", "rolledback", "reversed", "synced")
_RESYNC_IN_FLIGHT = ("rolledback", "reversed")


# --------------------------------------------------------------------------------------------
# Images: what a member volume holds, as a digest
# --------------------------------------------------------------------------------------------


def member_image(volume: Volume | None, member: str, snapshot: uuid.UUID | None = None) -> str:
    """The image of ``member`` in ``volume``'s active file system (``snapshot`` None) or in one
    of its per-volume snapshots: a digest of the namespace's or the OLS's whole file tree, or of
    a data constituent's objects; :data:`EMPTY` for none (see the module text)."""
    if volume is None or (snapshot is None and not volume.has_active):
        return EMPTY
    view: Any = volume if snapshot is None else volume.snapshot(snapshot)
    data = role_of(member) is VolumeRole.DATA
    digest = hashlib.blake2b(digest_size=16)
    found = False
    for path, stat in view.walk():
        if data and not path.startswith("/objects/"):
            continue
        if stat.type == FileType.REGULAR:
            digest.update(f"f {path}\0".encode())
            digest.update(view.read_file(path))
            found = True
        elif not data:
            digest.update(f"d {path}\0".encode())
            found = True
    return digest.hexdigest() if found else EMPTY


def _volume(site: Site, member: str) -> Volume | None:
    """The member volume at ``site`` (None if the site has no such member)."""
    if not site.has_volume(VS, XV) or member not in {m.name for m in site.members(VS, XV)}:
        return None
    return site.volume(VS, XV, member)


def active_view(site: Site) -> dict[str, str]:
    """Member -> image of the site's active file systems."""
    return {m.name: member_image(_volume(site, m.name), m.name) for m in site.members(VS, XV)}


def snapshot_view(site: Site, ref: str | int) -> dict[str, str]:
    """Member -> image of the site's copy of snapshot ``ref`` (:data:`MISSING` where the
    per-volume copy is gone)."""
    row = site.jobs.get(VS, XV, ref)
    out: dict[str, str] = {}
    for entry in row.volumes:
        volume = _volume(site, entry.member)
        held = volume is not None and any(str(s.uuid) == entry.uuid for s in volume.snapshots())
        out[entry.member] = (
            member_image(volume, entry.member, uuid.UUID(entry.uuid)) if held else MISSING
        )
    return out


@dataclass(frozen=True)
class Generation:
    """A snapshot a site took (the model's generation): where, and its image per member."""

    name: str
    site: str
    images: Mapping[str, str]


def matching_generation(view: Mapping[str, str], gens: Mapping[str, Generation]) -> str | None:
    """The generation whose image ``view`` is on every member (empty on the others), if any."""
    for g in gens.values():
        if all(view.get(m, EMPTY) == img for m, img in g.images.items()) and all(
            d == EMPTY for m, d in view.items() if m not in g.images
        ):
            return g.name
    return None


# --------------------------------------------------------------------------------------------
# Client writes and the probes that find them again
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """A client write to look for later: a directory (``data`` None) or a file's bytes."""

    path: str
    data: bytes | None

    def holds(self, site: Site) -> bool:
        """Whether ``site``'s active file system still has the write."""
        xv = site.cluster.expandable(VS, XV)
        try:
            if self.data is None:
                return bool(xv.stat(self.path).is_dir)
            return xv.read(self.path) == self.data
        except XvolError:
            return False


def _data_members(site: Site) -> list[int]:
    return [int(m.name[2:]) for m in site.members(VS, XV) if m.role is VolumeRole.DATA]


def stamp(site: Site, generation: str) -> None:
    """The generation stamp: one new file on every data constituent of ``site``."""
    xv = site.cluster.expandable(VS, XV)
    for k in _data_members(site):
        xv.create(
            f"/{generation}-DC{k}", f"{generation}@{site.name}:DC{k};".encode() * 64, location=k
        )


def client_write(site: Site, member: str, tag: str) -> tuple[Probe, frozenset[str]]:
    """A client write at ``site`` that changes ``member`` (module text); returns its probe and
    the members it changed. Refused, as a client's write is, while the site is a mirror."""
    if (VS, XV) in site.redirects:
        raise ReadOnlyMirrorError(f"{VS}/{XV} at site {site.name} is a read-only mirror")
    xv = site.cluster.expandable(VS, XV)
    if member == NAMESPACE_VOLUME:
        xv.mkdir(f"/{tag}")
        return Probe(f"/{tag}", None), frozenset({NAMESPACE_VOLUME})
    data = f"{tag};".encode() * 32
    if member == OLS_VOLUME:
        k = _data_members(site)[0]
        xv.create(f"/{tag}", data, location=k)
        return Probe(f"/{tag}", data), frozenset({NAMESPACE_VOLUME, OLS_VOLUME, f"DC{k}"})
    k = int(member[2:])
    if k not in _data_members(site):
        raise NotReplayableError(
            f"a write to {member} at site {site.name}: the reference's {site.name} has no "
            f"{member} (its failover removes a member added after the snapshot it presents; "
            "the model keeps it, empty)"
        )
    raw, _ = xv.access.call(NAMESPACE_VOLUME, "walk", {})
    on_k = [str(p) for p, g in raw if xv.locate(int(g)).location_id == k]
    if on_k:
        path = on_k[0]
        xv.write(path, 0, data)
        return Probe(path, xv.read(path)), frozenset({member})
    xv.create(f"/{tag}", data, location=k)
    return Probe(f"/{tag}", data), frozenset({NAMESPACE_VOLUME, OLS_VOLUME, member})


def client_items(site: Site) -> dict[str, bytes | None]:
    """Every directory (None) and file (its bytes) clients see in the site's active volume; a
    file whose object cannot be read is :data:`UNREADABLE` and the error's name."""
    xv = site.cluster.expandable(VS, XV)
    items: dict[str, bytes | None] = {}
    stack = ["/"]
    while stack:
        directory = stack.pop()
        for entry in xv.readdir(directory):
            path = directory.rstrip("/") + "/" + entry.name
            if entry.is_dir:
                items[path] = None
                stack.append(path)
            else:
                try:
                    items[path] = xv.read(path)
                except XvolError as exc:  # a name whose object is gone: a broken reference
                    items[path] = UNREADABLE + type(exc).__name__.encode()
    return items


# --------------------------------------------------------------------------------------------
# One mirroring direction, its update run block by block
# --------------------------------------------------------------------------------------------


def _member_order(name: str) -> tuple[int, int]:
    if name == NAMESPACE_VOLUME:
        return (0, 0)
    if name == OLS_VOLUME:
        return (1, 0)
    return (2, int(name[2:]))


@dataclass
class Direction:
    """The mirroring coordinator at destination ``dest``, pulling from ``source``; what its
    update in flight received per target snapshot, and the members transferred so far."""

    co: MirroringCoordinator
    dest: Site
    source: Site
    run: Callable[[Process[Any]], Any]
    skip_resize: bool = False
    received: dict[str, dict[str, VolumeSnapshot]] = field(default_factory=dict)
    transferred: set[str] = field(default_factory=set)

    def listing(self) -> Any:
        return self.run(self.co._list(VS, XV))

    def resize(self) -> tuple[str, ...]:
        """The resize block: create the members the source has and the destination lacks."""
        listing = self.listing()
        missing = self.co._missing(VS, XV, listing)
        return self.co._resize(VS, XV, missing, listing.record.volume_blocks)

    def relate(self, member: str) -> None:
        """The "create or confirm relationships" block, for member ``member`` only."""
        listing = self.listing()
        only = tuple(m for m in listing.record.members if m.name == member)
        if not only:
            raise NotFoundError(f"the source has no member {member}")
        self.co._confirm(
            self.co.tables.group(VS, XV),
            replace(listing, record=replace(listing.record, members=only)),
        )

    def _unconfirmed(self, member: str) -> Relationship:
        """``no-confirm``: the relationship row the update would write, never written."""
        return self.co._relationship_row(self.co.tables.group(VS, XV), self.listing(), member)

    def transfer(self, member: str, target_name: str, *, confirm: bool = True) -> str:
        """The update's per-member block for source snapshot ``target_name`` (module text);
        returns what happened. ``confirm`` False is the ``no-confirm`` bug. Raises
        :class:`RelationshipMissing` when a correct transfer finds no relationship row."""
        co = self.co
        target = self.run(co._named(VS, XV, target_name))
        group = co.tables.group(VS, XV)
        if group.pending != target.name:  # the first transfer of a target begins the update
            group = co._begin_target(group, target, self.listing())
        if member not in {v.member for v in target.volumes}:
            if _volume(self.dest, member) is None and _volume(self.source, member) is None:
                self.transferred.add(member)
                return f"{member}: absent at both sites (empty in {target.name}), nothing to send"
            raise NotFoundError(f"source snapshot {target.name!r} has no member {member}")
        rel = co.tables.relationship(VS, XV, member)
        if rel is None:
            if confirm:
                raise RelationshipMissing(member)
            rel = self._unconfirmed(member)
        result = self.run(co._transfer_member(rel, group.config, target))
        if result is None:
            what = f"{member}: already holds {target.name}, skipped"
        else:
            what = f"{member}: {target.name} sent ({result.records_sent} blocks)"
        self.received.setdefault(target.name, {})[member] = co._received(rel, target)
        self.transferred.add(member)
        if self._complete(target):
            self._publish(target)
            what += f"; {target.name} complete, published"
        return what

    def _needed(self, target: SnapshotRecord) -> list[str]:
        """The members the update must hold before it publishes: the source's (its volume
        list in the target), or under ``skip-resize`` those the destination has."""
        names = [v.member for v in target.volumes]
        if self.skip_resize:
            mine = {m.name for m in self.dest.members(VS, XV)}
            names = [n for n in names if n in mine]
        return names

    def _complete(self, target: SnapshotRecord) -> bool:
        got = self.received.get(target.name, {})
        return all(m in got for m in self._needed(target))

    def _publish(self, target: SnapshotRecord) -> None:
        """The update's last blocks: copy the configuration, snapshot table, notify."""
        co = self.co
        group = co.tables.group(VS, XV)
        got = self.received[target.name]
        members = sorted(self._needed(target), key=_member_order)
        co._publish(co._destination_record(group, target, [got[m] for m in members]), group)

    def exported(self) -> str | None:
        """The name of the snapshot this destination exports (None: none)."""
        group = self.co.tables.group(VS, XV)
        if group.exported is None:
            return None
        return str(self.dest.jobs.get(VS, XV, group.exported).name)


class RelationshipMissing(XvolError):
    """A transfer of the correct protocol found no relationship row for its member."""

    def __init__(self, member: str) -> None:
        super().__init__(f"no relationship for {member}: the update confirms it before transfer")


# --------------------------------------------------------------------------------------------
# The world of one replay
# --------------------------------------------------------------------------------------------


def _cluster(seed: int) -> Cluster:
    return Cluster(
        2,
        seed=seed,
        storage_factory=lambda k: AggregateStorage.memory(
            k, level="4", data_disks=2, blocks_per_disk=1024
        ),
    )


@dataclass
class World:
    """Both sites, the link pair, the coordinators and what the replay has seen so far."""

    pair: SitePair
    a: Site
    b: Site
    to_b: Direction  # B's coordinator pulling from A (the mirror)
    bugs: frozenset[str]
    preserve: bool
    gens: dict[str, Generation] = field(default_factory=dict)
    phase: str = "mirror"
    to_a: Direction | None = None  # A's coordinator pulling from B (the resync)
    resync: Resync | None = None
    plan: ResyncPlan | None = None
    shown: str | None = None  # the snapshot B presents (then its resync snapshot)
    written: set[str] = field(default_factory=set)  # B members written since ``shown``
    probes: list[Probe] = field(default_factory=list)
    per_volume: dict[str, str | None] | None = None  # per-volume-common: member -> UUID
    writes: int = 0
    evidence: dict[str, list[str]] = field(default_factory=dict)  # property -> violations
    events: list[TraceStep] = field(default_factory=list)
    divergence: str | None = None
    prevented: str = ""
    masked: str = ""

    def run(self, process: Process[T]) -> T:
        return self.pair.run(process)

    def violate(self, prop: str, text: str) -> None:
        found = self.evidence.setdefault(prop, [])
        if text not in found:
            found.append(text)

    def diverge(self, text: str) -> None:
        if self.divergence is None:
            self.divergence = text

    def take_generation(self, site: Site, name: str) -> None:
        self.gens[name] = Generation(name, site.name, snapshot_view(site, name))


def build(config: Mapping[str, Any], *, seed: int = 0) -> World:
    """The model's initial state on the reference (module text)."""
    bugs = frozenset(str(b) for b in config.get("bugs", []))
    unknown = sorted(bugs - BUGS)
    if unknown:
        raise NotReplayableError(f"unknown mirror bug toggles {unknown}")
    n, missing = int(config["n"]), int(config.get("missing", 1))
    if n - missing < 1:
        raise NotReplayableError(
            f"the model's n = {n} instance with {missing} constituent(s) added after the baseline "
            "starts the mirror with no data constituent; the reference's expandable volume has "
            "1..256"
        )
    if int(config.get("snapshots", 1)) < 1:
        raise NotReplayableError("a mirror trace needs at least one source snapshot")
    ca, cb = _cluster(seed * 2 + 1), _cluster(seed * 2 + 2)
    for c in (ca, cb):
        c.mhost().create_vserver(VS, ["root"])
    ca.mhost().create_expandable_volume(
        VS, XV, data_constituents=n - missing, volume_blocks=VOLUME_BLOCKS
    )
    a, b = Site("A", ca), Site("B", cb)
    pair = SitePair(a, b, seed=seed)
    world = World(
        pair,
        a,
        b,
        Direction(
            MirroringCoordinator(b, pair.link("B", "A")),
            b,
            a,
            pair.run,
            skip_resize="skip-resize" in bugs,
        ),
        bugs,
        bool(config.get("preserve", True)),
    )
    stamp(a, "g0")
    a.snapshot(VS, XV, "g0")
    world.take_generation(a, "g0")
    world.run(world.to_b.co.initialize(VS, XV, snapshot="g0"))
    for _ in range(missing):
        ca.mhost().add_data_constituent(VS, XV, volume_blocks=VOLUME_BLOCKS)
    names = set(volume_names(n))
    if {m.name for m in a.members(VS, XV)} != names:
        raise NotReplayableError(f"the reference's members differ from the model's {sorted(names)}")
    return world


# --------------------------------------------------------------------------------------------
# The actions
# --------------------------------------------------------------------------------------------


def _arg(step: TraceStep, name: str) -> str:
    if name not in step.args:
        raise NotReplayableError(f"{step}: argument {name!r} missing")
    return str(step.args[name])


def _snapshot(w: World, step: TraceStep) -> str:
    site = w.a if _arg(step, "site") == "A" else w.b
    name = _arg(step, "snapshot")
    if site is w.b:  # only the no-reverse bug labels its reverse step so
        return _reverse(w, step)
    stamp(site, name)
    site.snapshot(VS, XV, name)
    w.take_generation(site, name)
    return f"A took consistent snapshot {name}"


def _write(w: World, step: TraceStep, site: Site) -> str:
    member = _arg(step, "volume")
    w.writes += 1
    probe, changed = client_write(site, member, f"w-{site.name}-{member}-{w.writes}")
    if site is w.b:
        w.probes.append(probe)
        w.written |= changed
    return f"client write at {site.name} changing {'+'.join(sorted(changed))}"


def _transfer(w: World, step: TraceStep) -> str:
    member, target = _arg(step, "volume"), _arg(step, "snapshot")
    source = str(step.args.get("source", "A"))
    if source == "A":
        direction = w.to_b
    else:
        if w.to_a is None:
            raise NotReplayableError(f"{step}: a transfer from B before the resync reversed")
        direction = w.to_a
    confirm = "no-confirm" not in w.bugs
    if not confirm and direction.co.tables.relationship(VS, XV, member) is None:
        w.violate(
            "relationship-before-transfer",
            f"{member} transferred to {direction.dest.name} with no row in its relationship table",
        )
    dest = _volume(direction.dest, member)
    newest = dest.snapshots()[-1] if dest is not None and dest.snapshots() else None
    dirty = (
        dest is not None
        and newest is not None
        and member_image(dest, member) != member_image(dest, member, newest.uuid)
    )
    what = direction.transfer(member, target, confirm=confirm)
    if dirty and "sent" in what:
        w.masked = w.masked or (
            f"{TRANSFER_ROLLS_BACK}: {direction.dest.name}'s {member} had changed since its "
            f"newest snapshot {newest.name if newest else None}; the update's transfer rolls a "
            "destination member back to it before applying (BlockReplicator.transfer with "
            "rollback=True), so the change is discarded, not merged"
        )
    if "already holds" in what and source == "A" and w.phase in _B_READ_WRITE:
        w.masked = (
            f"{TARGET_ALREADY_HELD}: the old direction's transfer of {member}@{target} to B is "
            "skipped, B's member already holds that per-volume snapshot (the update skips a "
            "member that holds its target), so B's newer image stays"
        )
    return what


def _check_exported(w: World, direction: Direction, name: str, what: str) -> str:
    exported = direction.exported()
    if exported != name:
        w.diverge(f"{what}({name}): the reference's {direction.dest.name} exports {exported}")
    return f"{direction.dest.name} exports {exported}"


def _strays(site: Site) -> list[str]:
    """``member@snapshot`` of every per-volume snapshot the site's snapshot table does not list
    (the copies an unfinished transfer committed)."""
    listed = {v.uuid for r in site.snapshots(VS, XV) for v in r.volumes}
    return sorted(
        f"{m.name}@{s.name}"
        for m in site.members(VS, XV)
        if (vol := _volume(site, m.name)) is not None
        for s in vol.snapshots()
        if str(s.uuid) not in listed
    )


def _failover(w: World, step: TraceStep) -> str:
    b = w.b
    strays = _strays(b)
    result = w.to_b.co.failover(VS, XV)
    w.shown = result.snapshot.name
    w.written = set()
    if result.snapshot.name != _arg(step, "snapshot"):
        w.diverge(f"{step}: the reference presents {result.snapshot.name}")
    text = f"B presents {result.snapshot.name}"
    dropped = sorted(set(strays) - set(_strays(b)))
    if dropped:
        w.evidence.setdefault("_dropped", []).extend(dropped)
        text += f"; unfinished per-volume snapshots deleted: {', '.join(dropped)}"
    return text


def _primary_return(w: World) -> str:
    w.pair.reconnect()
    co = MirroringCoordinator(w.a, w.pair.link("A", "B"))
    w.to_a = Direction(co, w.a, w.b, w.pair.run, skip_resize="skip-resize" in w.bugs)
    w.resync = Resync(co, VS, XV)
    return "links restored; A's coordinator and resync ready"


def _common(w: World, step: TraceStep) -> str:
    assert w.resync is not None
    w.plan = plan = w.run(w.resync.plan())
    common = None if plan.common is None else plan.common.name
    if step.args.get("per-volume"):
        return _per_volume_common(w, plan)
    if common != _arg(step, "snapshot"):
        w.diverge(f"{step}: the reference's common snapshot is {common}")
    return f"dry run: common {common}, {len(plan.discarded_paths)} path(s) to discard"


def _per_volume_common(w: World, plan: ResyncPlan) -> str:
    """``per-volume-common``: each member's newest per-volume snapshot held at both sites."""
    choice: dict[str, str | None] = {}
    for m in w.a.members(VS, XV):
        mine, theirs = _volume(w.a, m.name), _volume(w.b, m.name)
        held = set() if theirs is None else {s.uuid for s in theirs.snapshots()}
        both = [s for s in (mine.snapshots() if mine is not None else []) if s.uuid in held]
        choice[m.name] = str(both[-1].uuid) if both else None
    w.per_volume = choice
    whole = {} if plan.common is None else {v.member: v.uuid for v in plan.common.volumes}
    same = all(choice[m] == whole.get(m) for m in choice)
    if same:
        dropped = w.evidence.get("_dropped", [])
        w.masked = (
            f"{FAILOVER_DROPS_UNFINISHED}: every member's newest per-volume common snapshot is "
            f"the whole-volume common snapshot "
            f"{None if plan.common is None else plan.common.name}; B holds no per-volume "
            "snapshot newer than the one it presented (MirroringCoordinator.failover deleted "
            f"the unfinished transfer's copies: {', '.join(dropped) or 'none were left'})"
        )
    return f"per-volume common snapshots: {choice}"


def _preserve(w: World) -> str:
    assert w.resync is not None and w.plan is not None
    if not w.plan.discarded_paths:
        return "nothing divergent to preserve"
    name = w.resync._preserve(w.plan)
    return f"divergent files preserved in {name}"


def _rollback(w: World, step: TraceStep) -> str:
    assert w.resync is not None and w.plan is not None
    before = client_items(w.a)
    choice, plan = w.per_volume, w.plan
    whole = {} if plan.common is None else {v.member: v.uuid for v in plan.common.volumes}
    if choice is not None and any(choice[m] != whole.get(m) for m in choice):
        _roll_back_per_volume(w, choice)
    else:
        w.resync._roll_back(plan)
    after = client_items(w.a)
    lost = sorted(p for p, data in before.items() if p not in after or after[p] != data)
    for path in lost:
        if not _preserved(w.a, path, before[path]):
            w.violate(
                "preserve-keeps-divergent",
                f"the rollback discarded {path} at A and no preserved volume holds it",
            )
    return f"A rolled back; {len(lost)} divergent item(s) discarded"


def _roll_back_per_volume(w: World, choice: Mapping[str, str | None]) -> None:
    """``per-volume-common``'s rollback: each member restored to its own choice, its newer
    per-volume snapshots deleted; a member with no choice is left as it is (the model's empty
    image is then what A's redirect shows for it)."""
    a = w.a
    a.redirects[(VS, XV)] = None
    calls = VolumeSnapshots(a.cluster, a.cluster.any_up_node(), VS, XV)
    for m in a.members(VS, XV):
        keep = choice.get(m.name)
        if keep is None:
            continue
        vol = a.volume(VS, XV, m.name)
        calls.restore(m.volume_id, vol.snapshot_info(uuid.UUID(keep)).sid, keep)
        kept_cp = vol.snapshot_info(uuid.UUID(keep)).cp
        for snap in vol.snapshots():
            if snap.cp > kept_cp:
                calls.delete(m.volume_id, snap.sid, str(snap.uuid))


def _preserved(site: Site, path: str, data: bytes | None) -> bool:
    """Whether a preserved volume's ``preserved`` snapshot at ``site`` holds ``path``."""
    names = sorted(
        {
            vol
            for vs, vol, _m in site.cluster.volume_table()
            if vs == VS and vol.startswith(f"{XV}-preserved-")
        }
    )
    for name in names:
        try:
            view = site.open_snapshot(VS, name, "preserved")
            if data is None:
                if view.stat(path).is_dir:
                    return True
            elif view.read(path) == data:
                return True
        except XvolError:
            continue
    return False


def _reverse(w: World, step: TraceStep) -> str:
    """The resync's reversal and the start of its update (module text); under ``no-reverse``
    only B's snapshot."""
    name = _arg(step, "snapshot")
    b = w.b
    if "no-reverse" in w.bugs:
        stamp(b, name)
        b.snapshot(VS, XV, name)
        w.take_generation(b, name)
        w.shown, w.written = name, set()
        return f"B took snapshot {name}; the relationships keep their direction (no-reverse)"
    assert w.to_a is not None and w.plan is not None
    co, a = w.to_a.co, w.a
    tables = co.tables
    if tables.has_group(VS, XV):
        tables.remove_group(VS, XV)
    listing = w.run(co._list(VS, XV))
    plan = w.plan
    group = MirrorGroup(
        VS,
        XV,
        listing.cluster,
        VS,
        XV,
        exported=None if plan.common is None else plan.common.snapshot_id,
        config=MirrorConfig(),
    )
    tables.save_group(group)
    a.redirects[(VS, XV)] = group.exported
    w.run(co.link.channel("proxy").request(ReleaseMirrorRequest(VS, XV)))
    # the update's first blocks: the new source takes the target snapshot, resize, confirm
    stamp(b, name)
    reply = w.run(co.link.channel("proxy").request(TakeSnapshotRequest(VS, XV, name)))
    assert isinstance(reply, SnapshotReply)
    w.take_generation(b, name)
    w.shown, w.written = name, set()
    w.to_a.resize()
    listing = w.run(co._list(VS, XV))
    co._confirm(tables.group(VS, XV), listing)
    return f"relationships reversed (B -> A); B took {name}"


# --------------------------------------------------------------------------------------------
# The properties, on the reference's state
# --------------------------------------------------------------------------------------------


def judge(w: World) -> None:
    """Evaluate every property now; record each violation with its evidence."""
    if w.phase in _MIRROR_PHASE:
        view = _client_view_b(w)
        if view is not None and matching_generation(view, w.gens) is None:
            w.violate("redirect-consistent", f"reads at B see a mix: {_show(view, w.gens)}")
    if w.phase in _RESYNC_IN_FLIGHT:
        view = _client_view_a(w)
        if view is not None and matching_generation(view, w.gens) is None:
            w.violate("redirect-consistent", f"reads at A see a mix: {_show(view, w.gens)}")
    if w.phase in _B_READ_WRITE and w.shown is not None:
        for problem in _failover_problems(w):
            w.violate("failover-consistent", problem)
    for probe in w.probes:
        if not probe.holds(w.b):
            w.violate("no-lost-destination-write", f"B lost the acknowledged write {probe.path}")
    if w.phase in ("reversed", "synced") and w.to_a is not None:
        for m in sorted(w.to_a.transferred):
            mine, theirs = member_image(_volume(w.a, m), m), member_image(_volume(w.b, m), m)
            if mine != theirs:
                w.violate("resync-identical", f"{m} differs between A and B after its transfer")
    for direction in (w.to_b, w.to_a):
        if direction is None:
            continue
        for m in sorted(direction.transferred):
            if (
                _volume(direction.dest, m) is not None
                and direction.co.tables.relationship(VS, XV, m) is None
                and direction.co.tables.has_group(VS, XV)
            ):
                w.violate(
                    "relationship-before-transfer",
                    f"{m} at {direction.dest.name} was transferred and has no relationship",
                )


def _client_view_b(w: World) -> dict[str, str] | None:
    if "no-redirect" in w.bugs:
        return active_view(w.b)
    sid = w.b.redirects.get((VS, XV))
    return None if sid is None else snapshot_view(w.b, sid)


def _client_view_a(w: World) -> dict[str, str] | None:
    if w.per_volume is not None and w.plan is not None:
        whole = {} if w.plan.common is None else {v.member: v.uuid for v in w.plan.common.volumes}
        if any(w.per_volume[m] != whole.get(m) for m in w.per_volume):
            view: dict[str, str] = {}
            for m, chosen in w.per_volume.items():
                vol = _volume(w.a, m)
                view[m] = (
                    EMPTY
                    if chosen is None or vol is None
                    else member_image(vol, m, uuid.UUID(chosen))
                )
            return view
    sid = w.a.redirects.get((VS, XV))
    return None if sid is None else snapshot_view(w.a, sid)


def _failover_problems(w: World) -> list[str]:
    assert w.shown is not None
    b, gen = w.b, w.gens.get(w.shown)
    if gen is None:
        return [f"B presents {w.shown}, which no site took"]
    problems = []
    row = {v.member for v in b.jobs.get(VS, XV, w.shown).volumes}
    for m, img in gen.images.items():
        if img != EMPTY and m not in row:
            problems.append(f"B's {w.shown} lacks {m}, a member of the source's {w.shown}")
        if m in w.written:
            continue
        have = member_image(_volume(b, m), m)
        if have != img:
            problems.append(f"B's {m} is not {w.shown}'s image")
    for member in b.members(VS, XV):
        name = member.name
        outside = name not in gen.images and name not in w.written
        if outside and member_image(_volume(b, name), name) != EMPTY:
            problems.append(f"B's {name} holds data outside {w.shown}")
    return problems


def _show(view: Mapping[str, str], gens: Mapping[str, Generation]) -> str:
    """Each member of a view named by the generation whose image it is."""
    parts = []
    for m in sorted(view, key=_member_order):
        names = [g.name for g in gens.values() if g.images.get(m) == view[m]]
        label = "none" if view[m] == EMPTY else "/".join(names) or "other"
        parts.append(f"{m}={label}")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# Replaying
# --------------------------------------------------------------------------------------------

_PHASE_AFTER = {
    Action.DISASTER: "lost",
    Action.FAILOVER: "failover",
    Action.PRIMARY_RETURN: "returned",
    Action.COMMON_SNAPSHOT: "common",
    Action.PRESERVE: "preserved",
    Action.ROLLBACK: "rolledback",
    Action.REVERSE: "reversed",
    Action.NOTIFY: "synced",
}


def apply(w: World, step: TraceStep) -> str:
    """Perform one model action on the reference; returns what the reference did."""
    a = step.action
    if a is Action.SNAPSHOT:
        if _arg(step, "site") == "B":
            w.phase = "reversed"
        return _snapshot(w, step)
    if a is Action.SOURCE_WRITE:
        return _write(w, step, w.a)
    if a is Action.DESTINATION_WRITE:
        return _write(w, step, w.b)
    if a is Action.RESIZE:
        added = w.to_b.resize()
        return f"B resized: {', '.join(added) or 'nothing to add'}"
    if a is Action.CREATE_RELATIONSHIP:
        w.to_b.relate(_arg(step, "volume"))
        return f"relationship for {_arg(step, 'volume')}"
    if a is Action.TRANSFER:
        return _transfer(w, step)
    if a is Action.PUBLISH:
        return _check_exported(w, w.to_b, _arg(step, "snapshot"), "publish")
    if a is Action.NOTIFY:
        assert w.to_a is not None
        name = w.shown or ""
        return _check_exported(w, w.to_a, name, "notify")
    if a is Action.DISASTER:
        w.pair.disaster()
        return "links cut"
    if a is Action.FAILOVER:
        return _failover(w, step)
    if a is Action.PRIMARY_RETURN:
        return _primary_return(w)
    if a is Action.COMMON_SNAPSHOT:
        return _common(w, step)
    if a is Action.PRESERVE:
        return _preserve(w)
    if a is Action.ROLLBACK:
        return _rollback(w, step)
    if a is Action.REVERSE:
        return _reverse(w, step)
    raise NotReplayableError(f"{step}: no reference operation for {a.value!r}")


def replay_mirror_trace(trace: Trace, *, seed: int = 0) -> Replay:
    """Replay a mirror-model trace on the reference and judge it (module text)."""
    if trace.system != "mirror":
        return Replay(trace, Outcome.NOT_REPLAYABLE, f"not a mirror trace: {trace.system!r}")
    try:
        w = build(trace.config, seed=seed)
    except NotReplayableError as exc:
        return Replay(trace, Outcome.NOT_REPLAYABLE, str(exc))
    stopped = ""
    for i, step in enumerate(trace.steps, 1):
        try:
            what = apply(w, step)
        except NotReplayableError as exc:
            return Replay(
                trace, Outcome.NOT_REPLAYABLE, f"entry {i} {step}: {exc}", events=w.events
            )
        except XvolError as exc:
            stopped = f"entry {i} {step}: the reference refused: {type(exc).__name__}: {exc}"
            w.events.append(TraceStep(step.action, {"reference": f"refused: {type(exc).__name__}"}))
            break
        w.phase = _PHASE_AFTER.get(step.action, w.phase)
        w.events.append(TraceStep(step.action, {"reference": what}))
        judge(w)
    violations = {p: found for p, found in w.evidence.items() if not p.startswith("_")}
    return _outcome(trace, w, violations, stopped)


def _outcome(trace: Trace, w: World, violations: dict[str, list[str]], stopped: str) -> Replay:
    prevented = ""
    if trace.violated is not None:
        if trace.violated in violations:
            outcome, reason = Outcome.REPRODUCED, ""
        elif stopped and "NotFoundError" in stopped and "common snapshot" in stopped:
            outcome = Outcome.PREVENTED
            prevented = f"{REPLICATION_BASE_CHECK}: {stopped}"
            reason = prevented
        elif stopped:
            outcome, reason = Outcome.PREVENTED, stopped
            prevented = f"{REFUSED}: {stopped}"
        elif w.masked:
            outcome, reason, prevented = Outcome.PREVENTED, w.masked, w.masked
        else:
            outcome, reason = Outcome.NOT_REPRODUCED, f"{trace.violated} holds on the reference"
    else:
        outcome = Outcome.BROKEN if violations or stopped else Outcome.SAFE
        reason = "; ".join([*sorted(violations), *([stopped] if stopped else [])])
    return Replay(
        trace,
        outcome,
        reason,
        violations,
        w.divergence,
        w.events,
        prevented_by=prevented,
    )


__all__ = [
    "BUGS",
    "EMPTY",
    "PROPERTIES",
    "Direction",
    "Generation",
    "Probe",
    "World",
    "active_view",
    "apply",
    "build",
    "client_items",
    "client_write",
    "judge",
    "matching_generation",
    "member_image",
    "replay_mirror_trace",
    "snapshot_view",
    "stamp",
]
