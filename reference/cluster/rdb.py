"""The replicated database (RDB): cluster-wide configuration, one instance on every node.

In the seed every node holds an instance of the RDB, and the instances are brought into
synchronisation with each other; the RDB holds the **volume location database (VLDB)**, which
tells the N-modules which D-module owns each volume, and the management subsystem keeps the
**volume table** there (field A: vserver, field B: its expandable volumes, field C: their member
volumes: namespace, OLS and data constituents).

Structure, bottom up:

* :class:`RDBEntry` is one committed change ``(version, table, key, value)``; a ``None`` value
  deletes the key. Versions are 1, 2, 3, ... with no gaps.
* :class:`RDBReplica` is one node's instance: tables of JSON values, the log of entries it has
  applied, and a *persisted* copy of that log as bytes (the replica's "disk"). Invariant: the
  tables are exactly the result of applying ``log`` in order, and ``version == len(log)``.
  :meth:`RDBReplica.restart` throws the tables away and rebuilds them from the persisted log,
  as a rebooted node would.
* :class:`ReplicatedDatabase` is the commit protocol: a transaction (a list of changes) commits
  only when a majority of replicas answer; it is then sent, as CF messages over the transport, to
  every replica that answers. A replica that was down misses entries and is behind; when its
  node comes back it catches up from the most advanced replica (:meth:`resync`) before serving
  reads again. All replicas that answer therefore agree, entry for entry.

The typed views at the bottom (:class:`VolumeLocation`, :class:`MemberRecord`,
:class:`ExpandableRecord`, :class:`VserverRecord`) are what the rest of the cluster reads.

Uses: the CF protocol (:mod:`xvol.reference.cluster.cf`), the shared vocabulary, the standard
library.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xvol.errors import InvalidArgumentError, NotFoundError, StateError, UnavailableError
from xvol.reference.cluster.cf import CFClient, CFReply, CFRequest, Transport
from xvol.vocabulary import VolumeRole

# --------------------------------------------------------------------------------------------
# Entries and replicas
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RDBEntry:
    """One committed change. ``value is None`` deletes ``key`` from ``table``."""

    version: int
    table: str
    key: str
    value: Any

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "table": self.table, "key": self.key, "value": self.value}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> RDBEntry:
        try:
            return RDBEntry(
                int(data["version"]), str(data["table"]), str(data["key"]), data["value"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"not an RDB entry: {data!r}") from exc


class RDBReplica:
    """One node's instance of the replicated database (see the module text for invariants)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.tables: dict[str, dict[str, Any]] = {}
        self.log: list[RDBEntry] = []
        self.persisted = bytearray()  # JSON lines of the log: what survives a restart

    @property
    def version(self) -> int:
        """The version of the last applied entry (0 when empty)."""
        return len(self.log)

    def apply(self, entry: RDBEntry) -> None:
        """Apply the next entry; it must carry version ``self.version + 1``."""
        if entry.version != self.version + 1:
            raise StateError(
                f"RDB replica on {self.node} is at version {self.version}, "
                f"cannot apply entry {entry.version}: resync it first"
            )
        table = self.tables.setdefault(entry.table, {})
        if entry.value is None:
            table.pop(entry.key, None)
        else:
            table[entry.key] = json.loads(json.dumps(entry.value))  # a private copy
        self.log.append(entry)
        self.persisted += json.dumps(entry.to_json(), sort_keys=True).encode() + b"\n"

    def get(self, table: str, key: str) -> Any:
        """The value at ``table[key]``, or ``None``."""
        return self.tables.get(table, {}).get(key)

    def items(self, table: str) -> list[tuple[str, Any]]:
        """All ``(key, value)`` pairs of ``table``, sorted by key."""
        return sorted(self.tables.get(table, {}).items())

    def entries_since(self, version: int) -> list[RDBEntry]:
        """The log entries after ``version``."""
        return self.log[version:]

    def restart(self) -> None:
        """Rebuild the replica from its persisted log, as after a reboot."""
        saved = bytes(self.persisted)
        self.tables, self.log, self.persisted = {}, [], bytearray()
        for line in saved.splitlines():
            self.apply(RDBEntry.from_json(json.loads(line)))

    def state(self) -> dict[str, dict[str, Any]]:
        """A deep copy of all tables (for comparisons)."""
        copy: dict[str, dict[str, Any]] = json.loads(json.dumps(self.tables, sort_keys=True))
        return copy

    def serve(self, request: CFRequest) -> CFReply:
        """The RDB service of a node: ``apply`` entries or hand out ``since`` a version."""
        if request.method == "apply":
            for raw in request.args.get("entries", []):
                self.apply(RDBEntry.from_json(raw))
            return CFReply(result={"version": self.version})
        if request.method == "since":
            version = int(request.args.get("version", 0))
            return CFReply(result=[e.to_json() for e in self.entries_since(version)])
        if request.method == "version":
            return CFReply(result=self.version)
        raise InvalidArgumentError(f"unknown RDB method {request.method!r}")


# --------------------------------------------------------------------------------------------
# The commit protocol
# --------------------------------------------------------------------------------------------

Change = tuple[str, str, Any]
"""``(table, key, value)``; ``value is None`` deletes."""


class ReplicatedDatabase:
    """Commits transactions to every replica that answers, given a majority answers.

    Life cycle: made by the cluster with one replica per node; ``commit`` from any node that
    answers; ``resync(node)`` when a node comes back.
    """

    def __init__(
        self,
        replicas: Mapping[str, RDBReplica],
        transport: Transport,
        is_up: Callable[[str], bool],
    ) -> None:
        if not replicas:
            raise InvalidArgumentError("a replicated database needs at least one replica")
        self.replicas = dict(replicas)
        self.transport = transport
        self.is_up = is_up
        self.commits = 0

    def _up(self) -> list[str]:
        return [n for n in self.replicas if self.is_up(n)]

    def commit(self, origin: str, changes: Sequence[Change]) -> int:
        """Commit ``changes`` as one transaction sent from node ``origin``; returns the new
        version. :class:`UnavailableError` (nothing changed) without a majority."""
        up = [n for n in self._up() if n in self.replicas]
        if origin not in up:
            raise UnavailableError(f"node {origin!r} does not answer; cannot commit")
        if 2 * len(up) <= len(self.replicas):
            raise UnavailableError(
                f"only {len(up)} of {len(self.replicas)} RDB replicas answer: no majority, "
                "nothing committed"
            )
        base = max(self.replicas[n].version for n in up)
        for node in up:
            if self.replicas[node].version != base:
                self.resync(node)
        entries = [
            RDBEntry(base + i + 1, table, key, value).to_json()
            for i, (table, key, value) in enumerate(changes)
        ]
        client = CFClient(origin, self.transport)
        for node in up:
            client.call(node, CFRequest("rdb", "", "apply", {"entries": entries}))
        self.commits += 1
        return base + len(entries)

    def resync(self, node: str) -> int:
        """Bring every replica that answers (``node`` first, typically one just back) up to the
        most advanced replica that answers: a node that returns may hold entries the others
        missed while it was the one away, or lack entries they committed. Returns how many
        entries ``node`` received."""
        received = self._catch_up(node)
        for other in self._up():
            if other != node:
                self._catch_up(other)
        return received

    def _catch_up(self, node: str) -> int:
        up = [n for n in self._up() if n != node]
        if not up or node not in self.replicas:
            return 0
        source = max(up, key=lambda n: self.replicas[n].version)
        replica = self.replicas[node]
        if self.replicas[source].version <= replica.version:
            return 0
        client = CFClient(node, self.transport)
        reply = client.call(source, CFRequest("rdb", "", "since", {"version": replica.version}))
        entries = [RDBEntry.from_json(e) for e in reply.result]
        for entry in entries:
            replica.apply(entry)
        return len(entries)

    def consistent(self) -> bool:
        """Whether every replica that answers holds the same log."""
        up = self._up()
        logs = {
            tuple(json.dumps(e.to_json(), sort_keys=True) for e in self.replicas[n].log) for n in up
        }
        return len(logs) <= 1


# --------------------------------------------------------------------------------------------
# Typed views: VLDB, volume table, vservers
# --------------------------------------------------------------------------------------------

VLDB = "vldb"  # volume ID -> VolumeLocation
VOLUME_TABLE = "volume-table"  # "<vserver>/<expandable volume>" -> ExpandableRecord
VSERVERS = "vservers"  # vserver name -> VserverRecord
COUNTERS = "counters"  # named counters (repository numbers, GOID ranges)


@dataclass(frozen=True)
class VolumeLocation:
    """A VLDB row: which node's D-module owns volume ``volume_id``, on which aggregate."""

    volume_id: str
    node: str
    aggregate: str

    def to_json(self) -> dict[str, str]:
        return {"node": self.node, "aggregate": self.aggregate}

    @staticmethod
    def from_json(volume_id: str, data: Mapping[str, Any]) -> VolumeLocation:
        return VolumeLocation(volume_id, str(data["node"]), str(data["aggregate"]))


@dataclass(frozen=True)
class MemberRecord:
    """Field C of the volume table: one member volume of an expandable volume. ``name`` is the
    trace name (``NS``, ``OLS``, ``DC<k>``); ``accepting`` is false while a data constituent is
    being drained for removal (no new objects are placed on it)."""

    name: str
    role: VolumeRole
    volume_id: str
    accepting: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role.value,
            "volume_id": self.volume_id,
            "accepting": self.accepting,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> MemberRecord:
        return MemberRecord(
            str(data["name"]),
            VolumeRole(data["role"]),
            str(data["volume_id"]),
            bool(data.get("accepting", True)),
        )


@dataclass(frozen=True)
class ExpandableRecord:
    """Fields A-C of the volume table for one expandable volume, plus its repository settings:
    the repository number in its GOIDs, the handle key, the next data constituent number, the
    placement policy and the namespace locator mode."""

    vserver: str
    name: str
    repository: int
    handle_key: str  # hex
    next_constituent: int
    placement: str
    locator: str
    members: tuple[MemberRecord, ...]
    policies: tuple[tuple[int, tuple[int, ...]], ...] = ()
    volume_blocks: int = 2048  # size of each new member volume

    @property
    def key(self) -> str:
        return f"{self.vserver}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "vserver": self.vserver,
            "name": self.name,
            "repository": self.repository,
            "handle_key": self.handle_key,
            "next_constituent": self.next_constituent,
            "placement": self.placement,
            "locator": self.locator,
            "members": [m.to_json() for m in self.members],
            "policies": [[p, list(ks)] for p, ks in self.policies],
            "volume_blocks": self.volume_blocks,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> ExpandableRecord:
        return ExpandableRecord(
            vserver=str(data["vserver"]),
            name=str(data["name"]),
            repository=int(data["repository"]),
            handle_key=str(data["handle_key"]),
            next_constituent=int(data["next_constituent"]),
            placement=str(data["placement"]),
            locator=str(data["locator"]),
            members=tuple(MemberRecord.from_json(m) for m in data["members"]),
            policies=tuple(
                (int(p), tuple(int(k) for k in ks)) for p, ks in data.get("policies", [])
            ),
            volume_blocks=int(data.get("volume_blocks", 2048)),
        )

    def member(self, name: str) -> MemberRecord:
        """The member called ``name``; :class:`NotFoundError` if there is none."""
        for member in self.members:
            if member.name == name:
                return member
        raise NotFoundError(f"expandable volume {self.key} has no member volume {name!r}")


@dataclass(frozen=True)
class VserverRecord:
    """A vserver: its own namespace (one expandable volume mounted at ``/``) and its access
    control (the users allowed to reach it; the seed's separate security domain)."""

    name: str
    users: frozenset[str]
    root_volume: str | None

    def to_json(self) -> dict[str, Any]:
        return {"users": sorted(self.users), "root_volume": self.root_volume}

    @staticmethod
    def from_json(name: str, data: Mapping[str, Any]) -> VserverRecord:
        root = data.get("root_volume")
        return VserverRecord(
            name, frozenset(data.get("users", [])), None if root is None else str(root)
        )


def read_location(replica: RDBReplica, volume_id: str) -> VolumeLocation:
    """The VLDB row of ``volume_id`` in ``replica``."""
    data = replica.get(VLDB, volume_id)
    if data is None:
        raise NotFoundError(f"the VLDB has no volume {volume_id!r}")
    return VolumeLocation.from_json(volume_id, data)


def read_expandable(replica: RDBReplica, vserver: str, name: str) -> ExpandableRecord:
    """The volume table row of expandable volume ``name`` of ``vserver``."""
    data = replica.get(VOLUME_TABLE, f"{vserver}/{name}")
    if data is None:
        raise NotFoundError(f"vserver {vserver!r} has no expandable volume {name!r}")
    return ExpandableRecord.from_json(data)


def read_vserver(replica: RDBReplica, name: str) -> VserverRecord:
    """The vserver called ``name``."""
    data = replica.get(VSERVERS, name)
    if data is None:
        raise NotFoundError(f"no vserver {name!r}")
    return VserverRecord.from_json(name, data)


def volume_table(replica: RDBReplica) -> list[tuple[str, str, MemberRecord]]:
    """The whole volume table as rows (field A vserver, field B expandable volume, field C
    member), sorted."""
    rows: list[tuple[str, str, MemberRecord]] = []
    for _key, data in replica.items(VOLUME_TABLE):
        record = ExpandableRecord.from_json(data)
        rows.extend((record.vserver, record.name, m) for m in record.members)
    return rows


def counter_value(replica: RDBReplica, name: str, default: int = 1) -> int:
    """The current value of a named counter."""
    value = replica.get(COUNTERS, name)
    return default if value is None else int(value)


def all_members(records: Iterable[ExpandableRecord]) -> list[MemberRecord]:
    """Every member volume of ``records``."""
    return [m for r in records for m in r.members]
