"""The expandable volume: one namespace over a namespace volume, an OLS and many data constituents.

This is the seed's content repository seen from its presentation layer. An expandable volume
joins member volumes, each reached by name through a :class:`MemberAccess` (over the CF protocol
in the cluster):

* ``NS``: the namespace volume (:mod:`.namespace`): paths -> redirectors -> GOIDs;
* ``OLS``: the object location store (:mod:`.ols`): GOID -> location ID, policy ID;
* ``DC<k>``: data constituents (:mod:`.constituent`): GOID -> bytes.

Every client operation is a generator of steps (:mod:`.steps`) following
:func:`xvol.vocabulary.operation_steps` under the volume's :class:`StepDiscipline`:

=========  ==================================================================================
create     DATA_WRITE, OLS_INSERT, NAMESPACE_LINK (undone in reverse if a step fails)
write      NAMESPACE_LOOKUP, [OLS_LOOKUP], DATA_WRITE     (OLS lookup skipped on the fast path)
truncate   like write, the data step truncates
replace    like write, the data step rewrites the whole object
read       NAMESPACE_LOOKUP, [OLS_LOOKUP], DATA_READ
delete     NAMESPACE_UNLINK, OLS_REMOVE, DATA_REMOVE (namespace-first: DATA_REMOVE, OLS_REMOVE,
           NAMESPACE_UNLINK, after reads that resolve the path and location)
migrate    DATA_COPY (on the target; reads the source), OLS_UPDATE, DATA_REMOVE (after a read of
           the OLS that finds the source)
rename     NAMESPACE_LINK (one atomic rename in the namespace volume)
mkdir      NAMESPACE_LINK; rmdir: NAMESPACE_UNLINK; readdir, stat: NAMESPACE_LOOKUP (+ data size)
raw read   [OLS_LOOKUP], DATA_READ by handle or GOID; raw write likewise with DATA_WRITE
=========  ==================================================================================

*Fast and slow path* (seed): an access that carries a location (a client's handle, or the
redirector's hint in ``redirector-handle`` mode) goes straight to that data constituent; if the
object is not there (:class:`StaleLocationError`) or the constituent is gone, the access falls
back to the slow path through the OLS and returns a fresh handle with the same GOID. Both paths
are counted in :class:`RepositoryCounters`.

Operations that change state first *ping* every member they will change (a node that does not
answer fails the operation with :class:`xvol.errors.UnavailableError` before any step), take
per-object locks (paths, then GOIDs), and run through the volume's :class:`Scheduler`. A
synchronous call (``create``, ``read``, ...) submits one operation and runs it to its end; the
``op_*`` generators can instead be submitted together and interleaved.

Membership (the volume table's field C for this volume) is set by the management layer with
:meth:`ExpandableVolume.set_members`; data constituents can be added while the volume runs, and
removed once drained (:meth:`drain`, then :meth:`check_removable`).

Uses: the repository's stores (through :class:`MemberAccess`), handles, placement, steps, paths,
the vocabulary and errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from xvol.errors import (
    InvalidArgumentError,
    NotFoundError,
    StateError,
    UnavailableError,
    XvolError,
)
from xvol.reference.repository.constituent import MAX_OBJECT_BYTES, StaleLocationError
from xvol.reference.repository.files import MemberAccess
from xvol.reference.repository.handles import (
    MAX_U32,
    HandleCodec,
    ObjectHandle,
    UnknownObjectError,
    make_goid,
)
from xvol.reference.repository.namespace import Entry, Locator, LocatorMode
from xvol.reference.repository.ols import Location
from xvol.reference.repository.paths import normalise
from xvol.reference.repository.placement import Placement
from xvol.reference.repository.steps import (
    Acquire,
    Gate,
    Op,
    OperationDeferred,
    OpState,
    Scheduler,
    Step,
)
from xvol.vocabulary import (
    NAMESPACE_VOLUME,
    OLS_VOLUME,
    OperationKind,
    StepDiscipline,
    StepKind,
    VolumeRole,
    data_volume_name,
    operation_steps,
    role_of,
)

T = TypeVar("T")
COPY_CHUNK = 1 << 20


class GoidSource(Protocol):
    """Hands out GOIDs that are never reused (the cluster reserves ranges in its RDB)."""

    def allocate(self) -> int:
        """A fresh GOID."""
        ...


class SequentialGoids:
    """A :class:`GoidSource` counting up from ``start`` in one repository (single process)."""

    def __init__(self, repository: int, start: int = 1) -> None:
        self.repository = repository
        self.next = start

    def allocate(self) -> int:
        goid = make_goid(self.repository, self.next)
        self.next += 1
        return goid


@dataclass(frozen=True)
class MemberInfo:
    """One member volume as the expandable volume sees it: its trace name, role, and whether it
    accepts new objects (data constituents being drained do not)."""

    name: str
    role: VolumeRole
    accepting: bool = True


@dataclass(frozen=True)
class ObjectStat:
    """What stat reports for a path: a directory, or an object with its size and handle."""

    path: str
    is_dir: bool
    size: int
    handle: ObjectHandle | None


@dataclass
class RepositoryCounters:
    """Paths taken to objects and operations run."""

    fast_path: int = 0  # data reached with a valid location (handle or redirector hint)
    slow_path: int = 0  # data reached through an OLS lookup
    stale: int = 0  # locations found stale (moved or gone) on the fast path
    migrations: int = 0
    operations: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ReferenceReport:
    """The result of :meth:`ExpandableVolume.check_references`: every problem found, by kind.

    ``dangling_names``: namespace entries whose GOID has no OLS record; ``dangling_locations``:
    OLS records whose data constituent lacks the object (or is not a member);
    ``orphan_objects``: objects on a data constituent with no OLS record pointing there;
    ``unnamed_objects``: OLS records no namespace entry points to; ``shared_names``: GOIDs named
    more than once."""

    names: int
    objects: int
    dangling_names: tuple[tuple[str, int], ...] = ()
    dangling_locations: tuple[tuple[int, int], ...] = ()
    orphan_objects: tuple[tuple[int, int], ...] = ()
    unnamed_objects: tuple[int, ...] = ()
    shared_names: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return not (
            self.dangling_names
            or self.dangling_locations
            or self.orphan_objects
            or self.unnamed_objects
            or self.shared_names
        )


class ExpandableVolume:
    """One expandable volume's repository logic (see the module text).

    Life cycle: made by the management layer (or a test) over members that are already
    formatted; :meth:`set_members` whenever the volume table changes. State that matters lives
    in the member volumes; this object holds caches (membership, gates, scheduler, counters).
    """

    def __init__(
        self,
        name: str,
        repository: int,
        access: MemberAccess,
        codec: HandleCodec,
        goids: GoidSource,
        members: Sequence[MemberInfo],
        *,
        placement: Placement | None = None,
        locator: LocatorMode = LocatorMode.REDIRECTOR_GOID,
        discipline: StepDiscipline = StepDiscipline.WRITE_AHEAD,
        gate_factory: Callable[[str], Gate] = Gate,
        seed: int = 0,
    ) -> None:
        self.name = name
        self.repository = repository
        self.access = access
        self.codec = codec
        self.goids = goids
        self.placement = placement or Placement()
        self.locator = LocatorMode(locator)
        self.discipline = StepDiscipline(discipline)
        self.gate_factory = gate_factory
        self.gates: dict[str, Gate] = {}
        self.scheduler = Scheduler(self.gate, seed=seed)
        self.counters = RepositoryCounters()
        self.members: dict[str, MemberInfo] = {}
        self.set_members(members)

    # -- membership and gates -----------------------------------------------------------------

    def set_members(self, members: Sequence[MemberInfo]) -> None:
        """Replace the membership (from the volume table). Needs exactly one NS and one OLS."""
        by_name = {m.name: m for m in members}
        roles = [m.role for m in members]
        if roles.count(VolumeRole.NAMESPACE) != 1 or roles.count(VolumeRole.OLS) != 1:
            raise InvalidArgumentError("an expandable volume has one namespace and one OLS")
        for member in members:
            if role_of(member.name) is not member.role:
                raise InvalidArgumentError(f"member {member.name} cannot have role {member.role}")
        self.members = by_name

    def data_constituents(self, *, accepting_only: bool = False) -> list[int]:
        """The numbers ``k`` of the member data constituents ``DC<k>``, sorted."""
        return sorted(
            int(m.name[2:])
            for m in self.members.values()
            if m.role is VolumeRole.DATA and (m.accepting or not accepting_only)
        )

    def gate(self, volume: str) -> Gate:
        """The gate of member ``volume`` (made open on first use)."""
        gate = self.gates.get(volume)
        if gate is None:
            gate = self.gates[volume] = self.gate_factory(volume)
        return gate

    def _is_member(self, location_id: int) -> bool:
        return 1 <= location_id <= MAX_U32 and data_volume_name(location_id) in self.members

    # -- running operations -------------------------------------------------------------------

    def submit(self, kind: str, op: Op[Any], *, op_id: str | None = None, label: str = "") -> str:
        """Submit ``op`` to the scheduler without running it; returns its operation ID."""
        self.counters.operations[str(kind)] = self.counters.operations.get(str(kind), 0) + 1
        return self.scheduler.submit(kind, op, op_id=op_id, label=label).op_id

    def run(self, kind: str, op: Op[T], label: str = "") -> T:
        """Run one operation now, to its end. If it must wait (closed gate, lock held by a
        deferred operation) it stays submitted and :class:`OperationDeferred` is raised."""
        op_id = self.submit(kind, op, label=label)
        record = self.scheduler.run_op(op_id)
        if record.unavailable and not record.finished:
            self.scheduler.abandon(
                op_id,
                UnavailableError(
                    f"a member of {self.name} does not answer; the operation was not completed"
                ),
            )
        if not record.finished:
            raise OperationDeferred(
                f"operation {op_id} ({kind} {label}) waits "
                + ("for a lock" if record.state is OpState.WAITING else "at a closed gate"),
                op_id,
            )
        self.scheduler.forget(op_id)
        result: T = record.outcome()
        return result

    def run_pending(self, max_steps: int | None = None) -> int:
        """Interleave the steps of all submitted operations (seeded); returns steps run."""
        return self.scheduler.run_random(max_steps)

    # -- member calls -------------------------------------------------------------------------

    def _step(
        self,
        access: MemberAccess,
        kind: StepKind,
        volume: str,
        method: str,
        args: Mapping[str, Any],
        payload: bytes = b"",
    ) -> Step:
        return Step(kind, volume, lambda: access.call(volume, method, args, payload))

    def _preflight(self, access: MemberAccess, volumes: Iterable[str]) -> None:
        access.ping(sorted(set(volumes)))

    def _handle(self, goid: int, location: int, policy: int) -> ObjectHandle:
        return ObjectHandle(goid, location, policy)

    def _resolve(self, handle: ObjectHandle | str | int) -> tuple[int, Locator]:
        """GOID and locator of a client-supplied handle (text checked by MAC), handle or GOID."""
        if isinstance(handle, str):
            decoded = self.codec.decode(handle)
            return decoded.goid, Locator(decoded.goid, decoded.location_id, decoded.policy_id)
        if isinstance(handle, ObjectHandle):
            self.codec.check_goid(handle.goid)
            return handle.goid, Locator(handle.goid, handle.location_id, handle.policy_id)
        if isinstance(handle, bool) or not isinstance(handle, int):
            raise InvalidArgumentError("an object is named by a handle or a global object ID")
        ObjectHandle(handle, 0, 0)  # range check
        self.codec.check_goid(handle)
        return handle, Locator(handle)

    def _data(
        self,
        access: MemberAccess,
        locator: Locator,
        kind: StepKind,
        method: str,
        args: Mapping[str, Any],
        payload: bytes = b"",
    ) -> Op[tuple[Any, bytes, ObjectHandle]]:
        """Reach the object's data constituent: fast path with a valid hint, else through the
        OLS (slow path). Returns the data call's reply and the (fresh) handle."""
        goid = locator.goid
        hint = locator.location_id
        if hint is not None and self._is_member(hint):
            volume = data_volume_name(hint)
            try:
                result, data = yield self._step(
                    access, kind, volume, method, {"goid": goid, **args}, payload
                )
            except StaleLocationError:
                self.counters.stale += 1
            else:
                self.counters.fast_path += 1
                return result, data, self._handle(goid, hint, locator.policy_id or 0)
        elif hint is not None:
            self.counters.stale += 1
        raw, _ = yield self._step(access, StepKind.OLS_LOOKUP, OLS_VOLUME, "lookup", {"goid": goid})
        location = Location.from_json(raw)
        self.counters.slow_path += 1
        result, data = yield self._step(
            access,
            kind,
            data_volume_name(location.location_id),
            method,
            {"goid": goid, **args},
            payload,
        )
        return result, data, self._handle(goid, location.location_id, location.policy_id)

    def _lookup_name(self, access: MemberAccess, path: str) -> Op[Locator]:
        raw, _ = yield self._step(
            access, StepKind.NAMESPACE_LOOKUP, NAMESPACE_VOLUME, "lookup", {"path": path}
        )
        return Locator.from_json(raw)

    # -- create -------------------------------------------------------------------------------

    def op_create(
        self,
        path: str,
        data: bytes = b"",
        policy_id: int = 0,
        access: MemberAccess | None = None,
        *,
        location: int | None = None,
    ) -> Op[ObjectHandle]:
        """Create an object named ``path`` holding ``data``; returns its handle. The data
        constituent is the placement policy's choice, or ``location`` when given (it must be a
        member that accepts objects)."""
        access = access or self.access
        path = normalise(path)
        _check_data(data)
        if isinstance(policy_id, bool) or not isinstance(policy_id, int):
            raise InvalidArgumentError("a policy ID is an integer")
        if not 0 <= policy_id <= MAX_U32:
            raise InvalidArgumentError("a policy ID is a 32-bit unsigned integer")
        if location is not None and location not in self.data_constituents(accepting_only=True):
            raise StateError(f"DC{location} is not a data constituent that accepts objects")
        yield Acquire(frozenset([f"path:{path}"]))
        goid = self.goids.allocate()
        if location is None:
            location = self.placement.choose(
                goid,
                policy_id,
                self.data_constituents(accepting_only=True),
                lambda k: self._free_bytes(access, k),
            )
        dc = data_volume_name(location)
        self._preflight(access, [dc, OLS_VOLUME, NAMESPACE_VOLUME])
        yield Acquire(frozenset([f"goid:{goid:016x}"]))
        hint = (
            (location, policy_id) if self.locator is LocatorMode.REDIRECTOR_HANDLE else (None, None)
        )
        link_args = {"path": path, "goid": goid, "location_id": hint[0], "policy_id": hint[1]}
        forward: dict[StepKind, Step] = {
            StepKind.DATA_WRITE: self._step(
                access, StepKind.DATA_WRITE, dc, "put", {"goid": goid}, data
            ),
            StepKind.OLS_INSERT: self._step(
                access,
                StepKind.OLS_INSERT,
                OLS_VOLUME,
                "insert",
                {"goid": goid, "location_id": location, "policy_id": policy_id},
            ),
            StepKind.NAMESPACE_LINK: self._step(
                access, StepKind.NAMESPACE_LINK, NAMESPACE_VOLUME, "link", link_args
            ),
        }
        undo: dict[StepKind, Step] = {
            StepKind.DATA_WRITE: self._step(
                access, StepKind.DATA_REMOVE, dc, "remove", {"goid": goid}
            ),
            StepKind.OLS_INSERT: self._step(
                access, StepKind.OLS_REMOVE, OLS_VOLUME, "remove", {"goid": goid}
            ),
            StepKind.NAMESPACE_LINK: self._step(
                access, StepKind.NAMESPACE_UNLINK, NAMESPACE_VOLUME, "unlink", {"path": path}
            ),
        }
        done: list[StepKind] = []
        try:
            for kind in operation_steps(OperationKind.CREATE, self.discipline):
                yield forward[kind]
                done.append(kind)
        except XvolError:
            for kind in reversed(done):
                yield undo[kind]
            raise
        return self._handle(goid, location, policy_id)

    def _free_bytes(self, access: MemberAccess, k: int) -> int:
        usage, _ = access.call(data_volume_name(k), "usage", {})
        return int(usage["free_bytes"])

    # -- write, truncate, read ----------------------------------------------------------------

    def op_write(
        self, path: str, offset: int, data: bytes, access: MemberAccess | None = None
    ) -> Op[ObjectHandle]:
        """Write ``data`` at ``offset`` of the object at ``path``; returns its handle."""
        access = access or self.access
        path = normalise(path)
        _check_range(offset, len(data))
        yield Acquire(frozenset([f"path:{path}"]))
        locator = yield from self._lookup_name(access, path)
        yield Acquire(frozenset([f"goid:{locator.goid:016x}"]))
        _, _, handle = yield from self._data(
            access, locator, StepKind.DATA_WRITE, "write", {"offset": offset}, data
        )
        return handle

    def op_truncate(
        self, path: str, size: int, access: MemberAccess | None = None
    ) -> Op[ObjectHandle]:
        """Cut or extend (zeros) the object at ``path`` to ``size`` bytes."""
        access = access or self.access
        path = normalise(path)
        _check_range(size, 0)
        yield Acquire(frozenset([f"path:{path}"]))
        locator = yield from self._lookup_name(access, path)
        yield Acquire(frozenset([f"goid:{locator.goid:016x}"]))
        _, _, handle = yield from self._data(
            access, locator, StepKind.DATA_WRITE, "truncate", {"size": size}
        )
        return handle

    def op_replace(
        self, path: str, data: bytes, access: MemberAccess | None = None
    ) -> Op[ObjectHandle]:
        """Make the object at ``path`` hold exactly ``data`` (one data step)."""
        access = access or self.access
        path = normalise(path)
        _check_data(data)
        yield Acquire(frozenset([f"path:{path}"]))
        locator = yield from self._lookup_name(access, path)
        yield Acquire(frozenset([f"goid:{locator.goid:016x}"]))
        _, _, handle = yield from self._data(
            access, locator, StepKind.DATA_WRITE, "replace", {}, bytes(data)
        )
        return handle

    def op_read(
        self,
        path: str,
        offset: int = 0,
        size: int = MAX_OBJECT_BYTES,
        access: MemberAccess | None = None,
    ) -> Op[tuple[bytes, ObjectHandle]]:
        """Read up to ``size`` bytes at ``offset`` of the object at ``path`` (named access)."""
        access = access or self.access
        path = normalise(path)
        _check_range(offset, size)
        yield Acquire(frozenset([f"path:{path}"]))
        locator = yield from self._lookup_name(access, path)
        yield Acquire(frozenset([f"goid:{locator.goid:016x}"]))
        _, data, handle = yield from self._data(
            access, locator, StepKind.DATA_READ, "read", {"offset": offset, "size": size}
        )
        return data, handle

    def op_read_object(
        self,
        handle: ObjectHandle | str | int,
        offset: int = 0,
        size: int = MAX_OBJECT_BYTES,
        access: MemberAccess | None = None,
    ) -> Op[tuple[bytes, ObjectHandle]]:
        """Raw access: read by handle (fast path if its location is valid) or GOID."""
        access = access or self.access
        goid, locator = self._resolve(handle)
        _check_range(offset, size)
        yield Acquire(frozenset([f"goid:{goid:016x}"]))
        _, data, fresh = yield from self._data(
            access, locator, StepKind.DATA_READ, "read", {"offset": offset, "size": size}
        )
        return data, fresh

    def op_write_object(
        self,
        handle: ObjectHandle | str | int,
        offset: int,
        data: bytes,
        access: MemberAccess | None = None,
    ) -> Op[ObjectHandle]:
        """Raw access: write by handle or GOID; returns the (fresh) handle."""
        access = access or self.access
        goid, locator = self._resolve(handle)
        _check_range(offset, len(data))
        yield Acquire(frozenset([f"goid:{goid:016x}"]))
        _, _, fresh = yield from self._data(
            access, locator, StepKind.DATA_WRITE, "write", {"offset": offset}, data
        )
        return fresh

    def op_stat_object(
        self, handle: ObjectHandle | str | int, access: MemberAccess | None = None
    ) -> Op[tuple[int, ObjectHandle]]:
        """Raw access: the object's size and fresh handle."""
        access = access or self.access
        goid, locator = self._resolve(handle)
        yield Acquire(frozenset([f"goid:{goid:016x}"]))
        size, _, fresh = yield from self._data(access, locator, StepKind.DATA_READ, "size", {})
        return int(size), fresh

    # -- delete -------------------------------------------------------------------------------

    def op_delete(self, path: str, access: MemberAccess | None = None) -> Op[int]:
        """Delete the object at ``path``; returns its GOID."""
        access = access or self.access
        path = normalise(path)
        yield Acquire(frozenset([f"path:{path}"]))
        self._preflight(access, self.members)
        if self.discipline is StepDiscipline.WRITE_AHEAD:
            raw, _ = yield self._step(
                access, StepKind.NAMESPACE_UNLINK, NAMESPACE_VOLUME, "unlink", {"path": path}
            )
            goid = Locator.from_json(raw).goid
            yield Acquire(frozenset([f"goid:{goid:016x}"]))
            raw, _ = yield self._step(
                access, StepKind.OLS_REMOVE, OLS_VOLUME, "remove", {"goid": goid}
            )
            location = Location.from_json(raw)
            yield self._step(
                access,
                StepKind.DATA_REMOVE,
                data_volume_name(location.location_id),
                "remove",
                {"goid": goid},
            )
            return goid
        # Namespace-first: the data goes first, so the name and location are resolved by reads
        # that change nothing (not steps); the steps are the vocabulary's three.
        raw, _ = access.call(NAMESPACE_VOLUME, "lookup", {"path": path})
        goid = Locator.from_json(raw).goid
        yield Acquire(frozenset([f"goid:{goid:016x}"]))
        raw, _ = access.call(OLS_VOLUME, "lookup", {"goid": goid})
        location = Location.from_json(raw)
        steps = {
            StepKind.DATA_REMOVE: self._step(
                access,
                StepKind.DATA_REMOVE,
                data_volume_name(location.location_id),
                "remove",
                {"goid": goid},
            ),
            StepKind.OLS_REMOVE: self._step(
                access, StepKind.OLS_REMOVE, OLS_VOLUME, "remove", {"goid": goid}
            ),
            StepKind.NAMESPACE_UNLINK: self._step(
                access, StepKind.NAMESPACE_UNLINK, NAMESPACE_VOLUME, "unlink", {"path": path}
            ),
        }
        for kind in operation_steps(OperationKind.DELETE, self.discipline):
            yield steps[kind]
        return goid

    # -- namespace-only operations ------------------------------------------------------------

    def op_rename(self, source: str, target: str, access: MemberAccess | None = None) -> Op[None]:
        """Move the entry at ``source`` to ``target``: no GOID and no data moves."""
        access = access or self.access
        source, target = normalise(source), normalise(target)
        yield Acquire(frozenset([f"path:{source}", f"path:{target}"]))
        yield self._step(
            access,
            StepKind.NAMESPACE_LINK,
            NAMESPACE_VOLUME,
            "rename",
            {"source": source, "target": target},
        )
        return None

    def op_mkdir(self, path: str, access: MemberAccess | None = None) -> Op[None]:
        """Create directory ``path``."""
        access = access or self.access
        path = normalise(path)
        yield Acquire(frozenset([f"path:{path}"]))
        yield self._step(access, StepKind.NAMESPACE_LINK, NAMESPACE_VOLUME, "mkdir", {"path": path})
        return None

    def op_rmdir(self, path: str, access: MemberAccess | None = None) -> Op[None]:
        """Remove the empty directory ``path``."""
        access = access or self.access
        path = normalise(path)
        yield Acquire(frozenset([f"path:{path}"]))
        yield self._step(
            access, StepKind.NAMESPACE_UNLINK, NAMESPACE_VOLUME, "rmdir", {"path": path}
        )
        return None

    def op_readdir(self, path: str, access: MemberAccess | None = None) -> Op[list[Entry]]:
        """The entries of directory ``path``."""
        access = access or self.access
        path = normalise(path)
        raw, _ = yield self._step(
            access, StepKind.NAMESPACE_LOOKUP, NAMESPACE_VOLUME, "readdir", {"path": path}
        )
        return [Entry.from_json(e) for e in raw]

    def op_stat(self, path: str, access: MemberAccess | None = None) -> Op[ObjectStat]:
        """Stat ``path``: a directory, or an object with its size and handle."""
        access = access or self.access
        path = normalise(path)
        yield Acquire(frozenset([f"path:{path}"]))
        raw, _ = yield self._step(
            access, StepKind.NAMESPACE_LOOKUP, NAMESPACE_VOLUME, "stat", {"path": path}
        )
        entry = Entry.from_json(raw)
        if entry.is_dir or entry.goid is None:
            return ObjectStat(path, True, 0, None)
        locator = Locator(entry.goid)
        if self.locator is LocatorMode.REDIRECTOR_HANDLE:
            locator = yield from self._lookup_name(access, path)
        yield Acquire(frozenset([f"goid:{entry.goid:016x}"]))
        size, _, handle = yield from self._data(access, locator, StepKind.DATA_READ, "size", {})
        return ObjectStat(path, False, int(size), handle)

    # -- migration ----------------------------------------------------------------------------

    def op_migrate(
        self, handle: ObjectHandle | str | int, target: int, access: MemberAccess | None = None
    ) -> Op[ObjectHandle]:
        """Move an object to data constituent ``target`` (transparent: same GOID and paths)."""
        access = access or self.access
        goid, _ = self._resolve(handle)
        if target not in self.data_constituents(accepting_only=True):
            raise StateError(f"DC{target} is not a data constituent that accepts objects")
        yield Acquire(frozenset([f"goid:{goid:016x}"]))
        # Resolving the source is a read of the OLS by the migration job, not a client step:
        # the steps are exactly the vocabulary's DATA_COPY, OLS_UPDATE, DATA_REMOVE.
        raw, _ = access.call(OLS_VOLUME, "lookup", {"goid": goid})
        location = Location.from_json(raw)
        source = location.location_id
        if source == target:
            return self._handle(goid, source, location.policy_id)
        src, dst = data_volume_name(source), data_volume_name(target)
        self._preflight(access, [src, dst, OLS_VOLUME])

        def copy() -> None:
            """Read the object from the source, then write it on the target in one call (so
            the target changes all at once or not at all)."""
            size, _ = access.call(src, "size", {"goid": goid})
            chunks = []
            for offset in range(0, int(size), COPY_CHUNK):
                _, chunk = access.call(
                    src, "read", {"goid": goid, "offset": offset, "size": COPY_CHUNK}
                )
                chunks.append(chunk)
            access.call(dst, "put", {"goid": goid}, b"".join(chunks))

        yield Step(StepKind.DATA_COPY, dst, copy)
        try:
            yield self._step(
                access,
                StepKind.OLS_UPDATE,
                OLS_VOLUME,
                "update",
                {
                    "goid": goid,
                    "location_id": target,
                    "policy_id": location.policy_id,
                    "expect_location": source,
                },
            )
        except XvolError:
            yield self._step(access, StepKind.DATA_REMOVE, dst, "remove", {"goid": goid})
            raise
        yield self._step(access, StepKind.DATA_REMOVE, src, "remove", {"goid": goid})
        self.counters.migrations += 1
        return self._handle(goid, target, location.policy_id)

    # -- synchronous API ----------------------------------------------------------------------

    def create(
        self, path: str, data: bytes = b"", policy_id: int = 0, *, location: int | None = None
    ) -> ObjectHandle:
        """Create an object (on ``DC<location>`` if given); returns its handle."""
        return self.run(
            OperationKind.CREATE,
            self.op_create(path, data, policy_id, location=location),
            path,
        )

    def write(self, path: str, offset: int, data: bytes) -> ObjectHandle:
        """Write into the object at ``path``."""
        return self.run(OperationKind.WRITE, self.op_write(path, offset, data), path)

    def truncate(self, path: str, size: int) -> ObjectHandle:
        """Truncate the object at ``path``."""
        return self.run("truncate", self.op_truncate(path, size), path)

    def replace(self, path: str, data: bytes) -> ObjectHandle:
        """Replace the bytes of the object at ``path``."""
        return self.run(OperationKind.WRITE, self.op_replace(path, data), path)

    def read(self, path: str, offset: int = 0, size: int = MAX_OBJECT_BYTES) -> bytes:
        """Read from the object at ``path``."""
        data, _ = self.run(OperationKind.READ_NAMED, self.op_read(path, offset, size), path)
        return data

    def read_object(
        self, handle: ObjectHandle | str | int, offset: int = 0, size: int = MAX_OBJECT_BYTES
    ) -> tuple[bytes, ObjectHandle]:
        """Read by handle or GOID; returns the bytes and a fresh handle."""
        return self.run(OperationKind.READ_RAW, self.op_read_object(handle, offset, size), "raw")

    def write_object(
        self, handle: ObjectHandle | str | int, offset: int, data: bytes
    ) -> ObjectHandle:
        """Write by handle or GOID; returns a fresh handle."""
        return self.run(OperationKind.WRITE, self.op_write_object(handle, offset, data), "raw")

    def stat_object(self, handle: ObjectHandle | str | int) -> tuple[int, ObjectHandle]:
        """Size and fresh handle of an object named by handle or GOID."""
        return self.run("stat", self.op_stat_object(handle), "raw")

    def delete(self, path: str) -> int:
        """Delete the object at ``path``; returns its GOID."""
        return self.run(OperationKind.DELETE, self.op_delete(path), path)

    def rename(self, source: str, target: str) -> None:
        """Rename an entry."""
        self.run("rename", self.op_rename(source, target), source)

    def mkdir(self, path: str) -> None:
        """Create a directory."""
        self.run("mkdir", self.op_mkdir(path), path)

    def rmdir(self, path: str) -> None:
        """Remove an empty directory."""
        self.run("rmdir", self.op_rmdir(path), path)

    def readdir(self, path: str) -> list[Entry]:
        """List a directory."""
        return self.run("readdir", self.op_readdir(path), path)

    def stat(self, path: str) -> ObjectStat:
        """Stat a path."""
        return self.run("stat", self.op_stat(path), path)

    def migrate(self, handle: ObjectHandle | str | int, target: int) -> ObjectHandle:
        """Move an object to ``DC<target>``; returns its new handle."""
        return self.run(OperationKind.MIGRATE, self.op_migrate(handle, target), "migrate")

    def locate(self, goid: int) -> Location:
        """The OLS record of ``goid`` (a management read, not a client step)."""
        self.codec.check_goid(goid)
        raw, _ = self.access.call(OLS_VOLUME, "lookup", {"goid": goid})
        return Location.from_json(raw)

    # -- management: drain and check ----------------------------------------------------------

    def objects_on(self, k: int) -> list[int]:
        """The GOIDs stored on ``DC<k>``."""
        raw, _ = self.access.call(data_volume_name(k), "goids", {})
        return [int(g) for g in raw]

    def drain(self, k: int) -> int:
        """Migrate every object off ``DC<k>`` (which must no longer accept objects) to the
        constituents placement chooses; returns how many moved."""
        if k in self.data_constituents(accepting_only=True):
            raise StateError(f"DC{k} still accepts objects: stop placement on it first")
        if k not in self.data_constituents():
            raise NotFoundError(f"DC{k} is not a member of {self.name}")
        moved = 0
        for goid in self.objects_on(k):
            location = self.locate(goid)
            target = self.placement.choose(
                goid,
                location.policy_id,
                self.data_constituents(accepting_only=True),
                lambda j: self._free_bytes(self.access, j),
                exclude=k,
            )
            self.migrate(goid, target)
            moved += 1
        return moved

    def check_removable(self, k: int) -> None:
        """Raise :class:`StateError` unless ``DC<k>`` holds no object."""
        remaining = self.objects_on(k)
        if remaining:
            raise StateError(
                f"data constituent DC{k} still holds {len(remaining)} objects: "
                "migrate them away (drain) first"
            )

    def checkpoint(self) -> None:
        """Take a consistency point on every member volume."""
        for name in sorted(self.members):
            self.access.call(name, "checkpoint", {})

    def check_references(self) -> ReferenceReport:
        """Walk namespace -> OLS -> data and report every broken or missing reference."""
        raw_names, _ = self.access.call(NAMESPACE_VOLUME, "walk", {})
        names = [(str(p), int(g)) for p, g in raw_names]
        raw_ols, _ = self.access.call(OLS_VOLUME, "scan", {})
        ols = {loc.goid: loc for loc in (Location.from_json(r) for r in raw_ols)}
        stored: dict[int, set[int]] = {k: set(self.objects_on(k)) for k in self.data_constituents()}
        named: dict[int, int] = {}
        for _, goid in names:
            named[goid] = named.get(goid, 0) + 1
        dangling_names = tuple((p, g) for p, g in names if g not in ols)
        dangling_locations = tuple(
            (g, loc.location_id)
            for g, loc in sorted(ols.items())
            if g not in stored.get(loc.location_id, set())
        )
        orphans = tuple(
            (g, k)
            for k, goids in sorted(stored.items())
            for g in sorted(goids)
            if g not in ols or ols[g].location_id != k
        )
        unnamed = tuple(g for g in sorted(ols) if g not in named)
        shared = tuple(g for g, n in sorted(named.items()) if n > 1)
        return ReferenceReport(
            len(names), len(ols), dangling_names, dangling_locations, orphans, unnamed, shared
        )

    def lookup_goid(self, goid: int) -> ObjectHandle:
        """A fresh handle for ``goid`` (slow path), or :class:`UnknownObjectError`."""
        location = self.locate(goid)
        return self._handle(goid, location.location_id, location.policy_id)


def _check_data(data: bytes) -> None:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidArgumentError("object data must be bytes")
    if len(data) > MAX_OBJECT_BYTES:
        raise InvalidArgumentError(f"an object holds at most {MAX_OBJECT_BYTES} bytes")


def _check_range(offset: int, size: int) -> None:
    if isinstance(offset, bool) or not isinstance(offset, int) or not isinstance(size, int):
        raise InvalidArgumentError("offsets and sizes are integers")
    if offset < 0 or size < 0 or offset + size > MAX_OBJECT_BYTES:
        raise InvalidArgumentError(
            f"offset and size must be >= 0 and end within {MAX_OBJECT_BYTES} bytes"
        )


__all__ = [
    "ExpandableVolume",
    "GoidSource",
    "MemberInfo",
    "ObjectStat",
    "ReferenceReport",
    "RepositoryCounters",
    "SequentialGoids",
    "UnknownObjectError",
]
