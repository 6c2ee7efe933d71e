"""The cluster: nodes on a fabric, the replicated database, vservers, and the management subsystem.

This is the seed's clustered storage server seen whole. A :class:`Cluster` has ``n`` nodes
(``node1`` ...), each with its storage, its modules and its RDB replica, joined by a fabric that
carries CF messages (:class:`~xvol.reference.cluster.cf.SimulatedFabric` by default). On top:

* **vservers**: each a separate namespace (one expandable volume mounted at ``/``) with its own
  security domain (the users allowed in); every vserver's objects carry its repository number in
  their GOIDs, and its handles are signed with its own key, so one vserver can never reach
  another's objects.
* the **management subsystem** (:class:`MHost`, the M-host of one node): creates vservers and
  expandable volumes (asking D-modules over CF to create member volumes), adds data constituents
  to a running expandable volume on any node, drains and removes them, and records every change
  in the RDB: the VLDB (volume -> owning node) and the volume table (vserver -> expandable volume
  -> member volumes with roles). The :class:`~xvol.reference.repository.expandable.ExpandableVolume`
  objects are caches the cluster refreshes from the volume table after each change.
* **node life**: a node can be marked down (it answers nothing; operations that need it fail with
  :class:`xvol.errors.UnavailableError` and change nothing, or wait if already under way) and
  restarted (its RDB replica and its D-module's volumes are rebuilt from what they persisted, then
  the replica catches up with the others).

Uses: nodes, CF, RDB, the repository; the node storage given by ``storage_factory`` (by default
aggregates and write-anywhere volumes, :mod:`xvol.reference.cluster.storage`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from xvol.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    StateError,
    UnavailableError,
    XvolError,
)
from xvol.reference.cluster.cf import CFRequest, LatencyModel, SimulatedFabric
from xvol.reference.cluster.node import MountedVolume, Node, NodeStorage
from xvol.reference.cluster.rdb import (
    COUNTERS,
    VLDB,
    VOLUME_TABLE,
    VSERVERS,
    Change,
    ExpandableRecord,
    MemberRecord,
    RDBReplica,
    ReplicatedDatabase,
    VserverRecord,
    counter_value,
    read_expandable,
    read_location,
    read_vserver,
    volume_table,
)
from xvol.reference.repository.expandable import ExpandableVolume, MemberInfo
from xvol.reference.repository.handles import MAX_REPOSITORY, HandleCodec, make_goid
from xvol.reference.repository.namespace import LocatorMode
from xvol.reference.repository.paths import check_name
from xvol.reference.repository.placement import Placement, PlacementStrategy
from xvol.reference.repository.steps import Gate
from xvol.vocabulary import (
    NAMESPACE_VOLUME,
    OLS_VOLUME,
    StepDiscipline,
    VolumeRole,
    data_volume_name,
)

DEFAULT_VOLUME_BLOCKS = 2048  # 8 MiB per member volume


class RDBGoids:
    """GOIDs of one repository, reserved from the RDB in ranges of ``batch`` serials so that no
    two nodes (nor a restarted one) ever hand out the same GOID."""

    def __init__(self, cluster: Cluster, repository: int, batch: int = 64) -> None:
        self.cluster = cluster
        self.repository = repository
        self.batch = batch
        self.next = 0
        self.end = 0

    def allocate(self) -> int:
        if self.next >= self.end:
            origin = self.cluster.any_up_node()
            key = f"goid/{self.repository}"
            start = counter_value(self.cluster.nodes[origin].rdb, key)
            self.cluster.rdb.commit(origin, [(COUNTERS, key, start + self.batch)])
            self.next, self.end = start, start + self.batch
        goid = make_goid(self.repository, self.next)
        self.next += 1
        return goid


class Cluster:
    """A cluster of nodes (see the module text).

    ``storage_factory(node_name)`` makes each node's storage; by default an aggregate of
    memory-backed disks with write-anywhere volumes on it.
    """

    def __init__(
        self,
        nodes: int = 2,
        *,
        seed: int = 0,
        latency: LatencyModel | None = None,
        storage_factory: Callable[[str], NodeStorage] | None = None,
        gate_factory: Callable[[str], Gate] = Gate,
    ) -> None:
        if not 1 <= nodes <= 64:
            raise InvalidArgumentError("a cluster has 1..64 nodes")
        if storage_factory is None:
            from xvol.reference.cluster.storage import AggregateStorage

            def storage_factory(name: str) -> NodeStorage:
                return AggregateStorage.memory(name, seed=seed)

        self.seed = seed
        self.gate_factory = gate_factory
        self.fabric = SimulatedFabric(latency)
        self.nodes: dict[str, Node] = {}
        for i in range(1, nodes + 1):
            name = f"node{i}"
            node = Node(name, storage_factory(name), self.fabric)
            self.nodes[name] = node
            self.fabric.attach(name, node.endpoint)
        self.rdb = ReplicatedDatabase(
            {n: node.rdb for n, node in self.nodes.items()}, self.fabric, self.fabric.is_up
        )
        self.volumes: dict[tuple[str, str], ExpandableVolume] = {}

    # -- nodes ----------------------------------------------------------------------------------

    def node(self, name: str) -> Node:
        """The node called ``name``."""
        try:
            return self.nodes[name]
        except KeyError:
            raise NotFoundError(f"no node {name!r} in the cluster") from None

    def any_up_node(self) -> str:
        """The first node that answers; :class:`UnavailableError` if none does."""
        for name in self.nodes:
            if self.fabric.is_up(name):
                return name
        raise UnavailableError("no node of the cluster answers")

    def set_node_down(self, name: str, down: bool = True) -> None:
        """Mark a node as not answering (or answering again: its RDB replica catches up and
        operations waiting for it may retry)."""
        self.node(name)
        self.fabric.set_down(name, down)
        if not down:
            self.rdb.resync(name)
            for xv in self.volumes.values():
                xv.scheduler.retry_unavailable()

    def restart_node(self, name: str) -> None:
        """Reboot a node: rebuild its RDB replica from its persisted log and reopen its volumes
        from their blocks, then bring it up and let it catch up with the cluster."""
        node = self.node(name)
        self.fabric.set_down(name, True)
        node.rdb.restart()
        members: dict[str, Mapping[str, Any]] = {}
        for _key, data in node.rdb.items(VOLUME_TABLE):
            record = ExpandableRecord.from_json(data)
            for member in record.members:
                members[member.volume_id] = {
                    "member": member.name,
                    "repository": record.repository,
                    "locator": record.locator,
                }
        node.dmodule.remount(members)
        self.set_node_down(name, False)

    def mhost(self, node: str | None = None) -> MHost:
        """The M-host of ``node`` (default: the first node that answers)."""
        return MHost(self, node or self.any_up_node())

    # -- reading the RDB ----------------------------------------------------------------------

    def replica(self, node: str | None = None) -> RDBReplica:
        """The RDB replica of ``node`` (default: the first node that answers)."""
        return self.node(node or self.any_up_node()).rdb

    def vserver(self, name: str) -> VserverRecord:
        """The vserver called ``name``."""
        return read_vserver(self.replica(), name)

    def record(self, vserver: str, name: str) -> ExpandableRecord:
        """The volume table row of one expandable volume."""
        return read_expandable(self.replica(), vserver, name)

    def volume_table(self) -> list[tuple[str, str, MemberRecord]]:
        """Fields A-C of the volume table: (vserver, expandable volume, member)."""
        return volume_table(self.replica())

    def member_location(self, vserver: str, name: str, member: str) -> tuple[str, str]:
        """``(owning node, volume ID)`` of member ``member`` (``NS``, ``OLS``, ``DC<k>``) of an
        expandable volume, from the volume table and the VLDB."""
        volume_id = self.record(vserver, name).member(member).volume_id
        return read_location(self.replica(), volume_id).node, volume_id

    def mounted(self, vserver: str, name: str, member: str) -> MountedVolume:
        """The member volume as its owning D-module holds it (its file system and store)."""
        node, volume_id = self.member_location(vserver, name, member)
        return self.node(node).dmodule.volumes[volume_id]

    def expandable(self, vserver: str, name: str | None = None) -> ExpandableVolume:
        """The expandable volume ``name`` of ``vserver`` (default: the vserver's root volume)."""
        if name is None:
            root = self.vserver(vserver).root_volume
            if root is None:
                raise NotFoundError(f"vserver {vserver!r} has no expandable volume")
            name = root
        try:
            return self.volumes[(vserver, name)]
        except KeyError:
            raise NotFoundError(f"vserver {vserver!r} has no expandable volume {name!r}") from None

    def _refresh(self, record: ExpandableRecord) -> None:
        """Bring the cached expandable volume in line with its volume table row."""
        xv = self.volumes.get((record.vserver, record.name))
        if xv is None:
            return
        xv.set_members([MemberInfo(m.name, m.role, m.accepting) for m in record.members])
        xv.placement = Placement(record.placement, dict(record.policies))


class MHost:
    """The management subsystem, run by the M-host of one node (see the module text)."""

    def __init__(self, cluster: Cluster, node: str) -> None:
        self.cluster = cluster
        self.node = node

    def _commit(self, changes: Sequence[Change]) -> None:
        self.cluster.rdb.commit(self.node, changes)

    def _replica(self) -> RDBReplica:
        return self.cluster.node(self.node).rdb

    def _pick_node(self, node: str | None, load: Mapping[str, int]) -> str:
        if node is not None:
            self.cluster.node(node)
            if not self.cluster.fabric.is_up(node):
                raise UnavailableError(f"node {node!r} does not answer")
            return node
        up = [n for n in self.cluster.nodes if self.cluster.fabric.is_up(n)]
        if not up:
            raise UnavailableError("no node answers")
        return min(up, key=lambda n: (load.get(n, 0), list(self.cluster.nodes).index(n)))

    def _load(self) -> dict[str, int]:
        load: dict[str, int] = {}
        for _vs, _xv, member in self.cluster.volume_table():
            node = self._replica().get(VLDB, member.volume_id)["node"]
            load[node] = load.get(node, 0) + 1
        return load

    def _create_volume(
        self, node: str, volume_id: str, member: str, repository: int, locator: str, blocks: int
    ) -> str:
        reply = self.cluster.node(self.node).cf.call(
            node,
            CFRequest(
                "dmodule",
                volume_id,
                "admin-create",
                {"member": member, "repository": repository, "locator": locator, "blocks": blocks},
            ),
        )
        return str(reply.result)

    def _destroy_volume(self, node: str, volume_id: str) -> None:
        self.cluster.node(self.node).cf.call(node, CFRequest("dmodule", volume_id, "admin-destroy"))

    # -- vservers -----------------------------------------------------------------------------

    def create_vserver(self, name: str, users: Sequence[str] = ("root",)) -> VserverRecord:
        """A new vserver whose namespace the given users may reach."""
        check_name(name)
        if self._replica().get(VSERVERS, name) is not None:
            raise AlreadyExistsError(f"vserver {name!r} exists")
        record = VserverRecord(name, frozenset(users), None)
        self._commit([(VSERVERS, name, record.to_json())])
        return record

    def set_users(self, vserver: str, users: Sequence[str]) -> None:
        """Replace the users allowed into ``vserver``."""
        record = read_vserver(self._replica(), vserver)
        self._commit([(VSERVERS, vserver, replace(record, users=frozenset(users)).to_json())])

    # -- expandable volumes -------------------------------------------------------------------

    def create_expandable_volume(
        self,
        vserver: str,
        name: str = "xv",
        *,
        data_constituents: int = 2,
        nodes: Sequence[str] | None = None,
        locator: LocatorMode | str = LocatorMode.REDIRECTOR_GOID,
        placement: PlacementStrategy | str = PlacementStrategy.ROUND_ROBIN,
        policies: Mapping[int, Sequence[int]] | None = None,
        discipline: StepDiscipline = StepDiscipline.WRITE_AHEAD,
        volume_blocks: int = DEFAULT_VOLUME_BLOCKS,
    ) -> ExpandableVolume:
        """Create an expandable volume for ``vserver`` (its root, if it has none yet) with a
        namespace, an OLS and ``data_constituents`` data constituents spread over ``nodes``
        (default: every node, least loaded first)."""
        check_name(name)
        vs = read_vserver(self._replica(), vserver)
        if self._replica().get(VOLUME_TABLE, f"{vserver}/{name}") is not None:
            raise AlreadyExistsError(f"vserver {vserver!r} already has expandable volume {name!r}")
        if not 1 <= data_constituents <= 256:
            raise InvalidArgumentError("an expandable volume has 1..256 data constituents")
        locator = LocatorMode(locator)
        placement_obj = Placement(placement, policies)
        repository = counter_value(self._replica(), "repository")
        if repository > MAX_REPOSITORY:
            raise StateError("no repository numbers left")
        names = [
            NAMESPACE_VOLUME,
            OLS_VOLUME,
            *(data_volume_name(k) for k in range(1, data_constituents + 1)),
        ]
        load = self._load()
        chosen: list[tuple[str, str]] = []
        for i, member in enumerate(names):
            node = self._pick_node(nodes[i % len(nodes)] if nodes else None, load)
            load[node] = load.get(node, 0) + 1
            chosen.append((member, node))
        for node in {n for _, n in chosen}:
            self.cluster.node(self.node).cf.call(node, CFRequest("ping", "", "ping"))
        created: list[tuple[str, str]] = []
        members: list[MemberRecord] = []
        vldb: list[Change] = []
        try:
            for member, node in chosen:
                volume_id = f"{vserver}.{name}.{member}"
                aggregate = self._create_volume(
                    node, volume_id, member, repository, locator.value, volume_blocks
                )
                created.append((node, volume_id))
                role = (
                    VolumeRole.NAMESPACE
                    if member == NAMESPACE_VOLUME
                    else VolumeRole.OLS
                    if member == OLS_VOLUME
                    else VolumeRole.DATA
                )
                members.append(MemberRecord(member, role, volume_id))
                vldb.append((VLDB, volume_id, {"node": node, "aggregate": aggregate}))
            key = HandleCodec.derive_key(self.cluster.seed, repository)
            record = ExpandableRecord(
                vserver,
                name,
                repository,
                key.hex(),
                data_constituents + 1,
                placement_obj.strategy.value,
                locator.value,
                tuple(members),
                tuple(sorted((p, tuple(ks)) for p, ks in placement_obj.policies.items())),
                volume_blocks,
            )
            changes: list[Change] = [
                *vldb,
                (VOLUME_TABLE, record.key, record.to_json()),
                (COUNTERS, "repository", repository + 1),
            ]
            if vs.root_volume is None:
                changes.append((VSERVERS, vserver, replace(vs, root_volume=name).to_json()))
            self._commit(changes)
        except XvolError:
            for node, volume_id in created:
                self._destroy_volume(node, volume_id)
            raise
        xv = ExpandableVolume(
            name,
            repository,
            self.cluster.node(self.node).nmodule.access(vserver, name),
            HandleCodec(repository, key),
            RDBGoids(self.cluster, repository),
            [MemberInfo(m.name, m.role, m.accepting) for m in record.members],
            placement=placement_obj,
            locator=locator,
            discipline=discipline,
            gate_factory=self.cluster.gate_factory,
            seed=self.cluster.seed,
        )
        self.cluster.volumes[(vserver, name)] = xv
        return xv

    def add_data_constituent(
        self, vserver: str, name: str, *, node: str | None = None, volume_blocks: int | None = None
    ) -> int:
        """Grow a running expandable volume by one data constituent (on ``node``, or the least
        loaded node; of ``volume_blocks`` blocks, by default the size its members were made
        with); returns its number ``k``."""
        record = read_expandable(self._replica(), vserver, name)
        volume_blocks = record.volume_blocks if volume_blocks is None else volume_blocks
        target = self._pick_node(node, self._load())
        k = record.next_constituent
        member = data_volume_name(k)
        volume_id = f"{vserver}.{name}.{member}"
        aggregate = self._create_volume(
            target, volume_id, member, record.repository, record.locator, volume_blocks
        )
        new = replace(
            record,
            next_constituent=k + 1,
            members=(*record.members, MemberRecord(member, VolumeRole.DATA, volume_id)),
        )
        try:
            self._commit(
                [
                    (VLDB, volume_id, {"node": target, "aggregate": aggregate}),
                    (VOLUME_TABLE, new.key, new.to_json()),
                ]
            )
        except XvolError:
            self._destroy_volume(target, volume_id)
            raise
        self.cluster._refresh(new)
        return k

    def remove_data_constituent(
        self, vserver: str, name: str, k: int, *, migrate: bool = False
    ) -> int:
        """Shrink an expandable volume by removing ``DC<k>``. Without ``migrate`` it must hold
        no object (else :class:`StateError`, nothing changed); with ``migrate`` its objects are
        first moved away (it stops accepting new objects at once). Returns objects moved."""
        record = read_expandable(self._replica(), vserver, name)
        member = record.member(data_volume_name(k))
        if member.role is not VolumeRole.DATA:
            raise InvalidArgumentError(f"{member.name} is not a data constituent")
        if sum(1 for m in record.members if m.role is VolumeRole.DATA) == 1:
            raise StateError("an expandable volume keeps at least one data constituent")
        xv = self.cluster.expandable(vserver, name)
        node = self._replica().get(VLDB, member.volume_id)["node"]
        moved = 0
        if migrate:
            others = [
                m
                for m in record.members
                if m.role is VolumeRole.DATA and m.name != member.name and m.accepting
            ]
            if not others:
                raise StateError(f"no other data constituent accepts the objects of {member.name}")
            if member.accepting:
                record = replace(
                    record,
                    members=tuple(
                        replace(m, accepting=False) if m.name == member.name else m
                        for m in record.members
                    ),
                )
                self._commit([(VOLUME_TABLE, record.key, record.to_json())])
                self.cluster._refresh(record)
            moved = xv.drain(k)
        xv.check_removable(k)
        new = replace(record, members=tuple(m for m in record.members if m.name != member.name))
        self._commit([(VLDB, member.volume_id, None), (VOLUME_TABLE, new.key, new.to_json())])
        self.cluster._refresh(new)
        self._destroy_volume(node, member.volume_id)
        xv.gates.pop(member.name, None)
        return moved

    def set_policy(
        self, vserver: str, name: str, policy_id: int, constituents: Sequence[int]
    ) -> None:
        """Allow objects of ``policy_id`` only on ``constituents`` (for new placements and
        :meth:`enforce_policies`)."""
        record = read_expandable(self._replica(), vserver, name)
        known = {int(m.name[2:]) for m in record.members if m.role is VolumeRole.DATA}
        if not constituents or not set(constituents) <= known:
            raise InvalidArgumentError(f"policy constituents must be among {sorted(known)}")
        policies = dict(record.policies)
        policies[int(policy_id)] = tuple(sorted(set(constituents)))
        new = replace(record, policies=tuple(sorted(policies.items())))
        self._commit([(VOLUME_TABLE, new.key, new.to_json())])
        self.cluster._refresh(new)

    def enforce_policies(self, vserver: str, name: str) -> int:
        """Migrate every object that sits on a constituent its policy no longer allows (the
        seed's policy-driven migration); returns how many moved."""
        xv = self.cluster.expandable(vserver, name)
        raw, _ = xv.access.call(OLS_VOLUME, "scan", {})
        moved = 0
        for entry in raw:
            goid, location, policy = (
                int(entry["goid"]),
                int(entry["location_id"]),
                int(entry["policy_id"]),
            )
            allowed = xv.placement.candidates(policy, xv.data_constituents(accepting_only=True))
            if location not in allowed:
                target = xv.placement.choose(goid, policy, allowed, lambda _k: 1)
                xv.migrate(goid, target)
                moved += 1
        return moved


def build_cluster(
    *,
    nodes: int = 2,
    data_constituents: int = 4,
    seed: int = 0,
    vservers: Sequence[str] = ("vs1",),
    users: Sequence[str] = ("root",),
    volume_blocks: int = DEFAULT_VOLUME_BLOCKS,
    locator: LocatorMode | str = LocatorMode.REDIRECTOR_GOID,
    placement: PlacementStrategy | str = PlacementStrategy.ROUND_ROBIN,
    storage_factory: Callable[[str], NodeStorage] | None = None,
) -> Cluster:
    """A ready cluster: ``nodes`` nodes and, for each vserver, an expandable volume ``xv`` with
    ``data_constituents`` data constituents spread over the nodes."""
    cluster = Cluster(nodes, seed=seed, storage_factory=storage_factory)
    mhost = cluster.mhost()
    for vserver in vservers:
        mhost.create_vserver(vserver, users)
        mhost.create_expandable_volume(
            vserver,
            "xv",
            data_constituents=data_constituents,
            locator=locator,
            placement=placement,
            volume_blocks=volume_blocks,
        )
    return cluster
