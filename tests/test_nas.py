"""The NAS interface over a running cluster: a stateful test drives random creates, writes,
truncates, renames, deletes, migrations, constituent additions and removals and node outages
against a plain dict model; after every step each path reads the same bytes by name and by
GOID, the namespace -> OLS -> data references are intact, and handles made stale by migration
still work (slow path) and come back fresh. Plus the typed refusals of bad input."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from xvol.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    StateError,
    UnavailableError,
    XvolError,
)
from xvol.reference.access.nas import NasClient
from xvol.reference.cluster.cluster import build_cluster
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.repository.handles import ForeignObjectError, ForgedHandleError, ObjectHandle
from xvol.reference.repository.paths import PathOutsideNamespaceError
from xvol.reference.snapshots.snapshot_coordinator import SnapshotJobManager
from xvol.reference.snapshots.volume_snapshots import ReadOnlySnapshotError

PATHS = ["/a", "/b", "/c", "/d/x", "/d/y"]
SMALL = 512  # blocks per member volume (2 MiB)


def _storage(node: str) -> AggregateStorage:
    return AggregateStorage.memory(node, blocks_per_disk=1024)


class NasMachine(RuleBasedStateMachine):
    """The cluster against a dict of path -> bytes."""

    @initialize()
    def setup(self) -> None:
        self.cluster = build_cluster(
            nodes=2, data_constituents=2, seed=1, volume_blocks=SMALL, storage_factory=_storage
        )
        self.nas = NasClient(self.cluster, "vs1", "root", node="node1")
        self.remote = NasClient(self.cluster, "vs1", "root", node="node2")
        self.nas.mkdir("/d")
        self.model: dict[str, bytes] = {}
        self.goids: dict[str, int] = {}
        self.handles: dict[str, ObjectHandle] = {}

    def _xv(self) -> object:
        return self.cluster.expandable("vs1")

    def _client(self, remote: bool) -> NasClient:
        return self.remote if remote else self.nas

    @rule(path=st.sampled_from(PATHS), data=st.binary(max_size=300), remote=st.booleans())
    def create(self, path: str, data: bytes, remote: bool) -> None:
        if path in self.model:
            with pytest.raises(AlreadyExistsError):
                self._client(remote).create(path, data)
            return
        handle = self._client(remote).create(path, data)
        self.model[path], self.goids[path], self.handles[path] = data, handle.goid, handle

    @rule(path=st.sampled_from(PATHS), offset=st.integers(0, 5000), data=st.binary(max_size=200))
    def write(self, path: str, offset: int, data: bytes) -> None:
        if path not in self.model:
            with pytest.raises(NotFoundError):
                self.nas.write(path, data, offset)
            return
        self.nas.write(path, data, offset)
        old = self.model[path]
        if data:
            old = old.ljust(offset, b"\x00")
            self.model[path] = old[:offset] + data + old[offset + len(data) :]

    @rule(path=st.sampled_from(PATHS), size=st.integers(0, 6000))
    def truncate(self, path: str, size: int) -> None:
        if path not in self.model:
            with pytest.raises(NotFoundError):
                self.nas.truncate(path, size)
            return
        self.nas.truncate(path, size)
        self.model[path] = self.model[path][:size].ljust(size, b"\x00")

    @rule(source=st.sampled_from(PATHS), dest=st.sampled_from(PATHS))
    def rename(self, source: str, dest: str) -> None:
        target = dest
        if source not in self.model:
            with pytest.raises(NotFoundError):
                self.nas.rename(source, target)
            return
        if target in self.model:
            with pytest.raises(AlreadyExistsError):
                self.nas.rename(source, target)
            return
        goid = self.goids[source]
        self.nas.rename(source, target)
        for table in (self.model, self.goids, self.handles):
            table[target] = table.pop(source)  # type: ignore[attr-defined]
        assert self.nas.stat(target).handle is not None
        assert self.nas.stat(target).handle.goid == goid  # type: ignore[union-attr]

    @rule(path=st.sampled_from(PATHS))
    def delete(self, path: str) -> None:
        if path not in self.model:
            with pytest.raises(NotFoundError):
                self.nas.unlink(path)
            return
        assert self.nas.unlink(path) == self.goids[path]
        stale = self.handles[path]
        del self.model[path], self.goids[path], self.handles[path]
        with pytest.raises(NotFoundError):
            self.nas.read_object(stale)

    @rule(path=st.sampled_from(PATHS), pick=st.integers(0, 10))
    def migrate(self, path: str, pick: int) -> None:
        if path not in self.model:
            return
        xv = self.cluster.expandable("vs1")
        current = xv.locate(self.goids[path]).location_id
        targets = [k for k in xv.data_constituents(accepting_only=True) if k != current]
        if not targets:
            return
        target = targets[pick % len(targets)]
        fresh = self.nas.migrate(self.goids[path], target)
        assert fresh.goid == self.goids[path] and fresh.location_id == target
        assert xv.locate(fresh.goid).location_id == target
        assert target in xv.data_constituents() and fresh.goid in xv.objects_on(target)

    @rule(path=st.sampled_from(PATHS))
    def read_with_kept_handle(self, path: str) -> None:
        if path not in self.model:
            return
        xv = self.cluster.expandable("vs1")
        kept = self.handles[path]
        stale_before = xv.counters.stale
        data, fresh = self.nas.read_object(self.nas.handle_text(kept))
        assert data == self.model[path]
        location = xv.locate(kept.goid)
        assert fresh == ObjectHandle(kept.goid, location.location_id, location.policy_id)
        if kept.location_id != location.location_id:
            assert xv.counters.stale == stale_before + 1
        self.handles[path] = fresh

    @rule(node=st.sampled_from(["node1", "node2"]))
    def add_constituent(self, node: str) -> None:
        xv = self.cluster.expandable("vs1")
        if len(xv.data_constituents()) >= 4:
            return
        k = self.cluster.mhost().add_data_constituent("vs1", "xv", node=node, volume_blocks=SMALL)
        assert k in xv.data_constituents(accepting_only=True)

    @rule(pick=st.integers(0, 10), move=st.booleans())
    def remove_constituent(self, pick: int, move: bool) -> None:
        migrate = move
        xv = self.cluster.expandable("vs1")
        members = xv.data_constituents()
        k = members[pick % len(members)]
        held = xv.objects_on(k)
        table_before = self.cluster.volume_table()
        if len(members) == 1 or (held and not migrate):
            with pytest.raises(StateError):
                self.cluster.mhost().remove_data_constituent("vs1", "xv", k, migrate=migrate)
            assert self.cluster.volume_table() == table_before
            return
        moved = self.cluster.mhost().remove_data_constituent("vs1", "xv", k, migrate=migrate)
        assert moved == len(held)
        assert k not in xv.data_constituents()
        assert all(m.name != f"DC{k}" for _vs, _xv, m in self.cluster.volume_table())

    @rule(path=st.sampled_from(PATHS), data=st.binary(max_size=50))
    def create_while_a_node_is_down(self, path: str, data: bytes) -> None:
        self.cluster.set_node_down("node2")
        try:
            if path in self.model:
                return
            with pytest.raises(UnavailableError):
                self.nas.create(path, data)  # every volume has members on both nodes
        finally:
            self.cluster.set_node_down("node2", False)

    @invariant()
    def every_path_reads_the_same_by_name_and_by_goid(self) -> None:
        if not hasattr(self, "model"):
            return
        for path, data in self.model.items():
            assert self.nas.read(path) == data
            assert self.remote.read_object(self.goids[path])[0] == data

    @invariant()
    def references_are_intact_and_names_match_the_model(self) -> None:
        if not hasattr(self, "model"):
            return
        xv = self.cluster.expandable("vs1")
        report = xv.check_references()
        assert report.ok, report
        assert report.names == report.objects == len(self.model)
        raw, _ = xv.access.call("NS", "walk", {})
        assert {p: g for p, g in raw} == self.goids
        assert self.cluster.rdb.consistent()


NasMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
TestNasMachine = NasMachine.TestCase


# --------------------------------------------------------------------------------------------
# Bad input: typed errors, nothing changed
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_vservers() -> object:
    cluster = build_cluster(
        nodes=2,
        data_constituents=2,
        seed=2,
        volume_blocks=SMALL,
        vservers=("vs1", "vs2"),
        storage_factory=_storage,
    )
    cluster.mhost().set_users("vs2", ["alice"])
    return cluster


def test_bad_paths_are_refused_and_change_nothing(two_vservers: object) -> None:
    nas = NasClient(two_vservers, "vs1")  # type: ignore[arg-type]
    before = nas.readdir("/")
    with pytest.raises(PathOutsideNamespaceError):
        nas.create("/../../vs2/x", b"1")
    for bad in ("relative", "/a\x00b", "/" + "n" * 300):
        with pytest.raises(InvalidArgumentError):
            nas.create(bad, b"1")
    with pytest.raises(NotFoundError):
        nas.create("/no/such/dir/x", b"1")
    assert nas.readdir("/") == before
    assert two_vservers.expandable("vs1").check_references().ok  # type: ignore[attr-defined]


def test_forged_foreign_and_unknown_handles_are_refused(two_vservers: object) -> None:
    nas = NasClient(two_vservers, "vs1")  # type: ignore[arg-type]
    other = NasClient(two_vservers, "vs2", "alice")  # type: ignore[arg-type]
    handle = nas.create("/forge-me", b"secret")
    text = nas.handle_text(handle)
    forged = text[:-1] + ("0" if text[-1] != "0" else "1")
    with pytest.raises(ForgedHandleError):
        nas.read_object(forged)
    with pytest.raises(ForeignObjectError):
        other.read_object(handle.goid)
    with pytest.raises(ForeignObjectError):
        other.read_object(text)
    with pytest.raises(InvalidArgumentError):
        nas.read_object("not-a-handle")
    with pytest.raises(NotFoundError):
        nas.read_object(handle.goid + 1000)
    assert nas.read("/forge-me") == b"secret"


def test_users_outside_a_vservers_security_domain_are_refused(two_vservers: object) -> None:
    with pytest.raises(PermissionDeniedError):
        NasClient(two_vservers, "vs2", "root")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        NasClient(two_vservers, "vs9")  # type: ignore[arg-type]


def test_open_files_keep_their_handle_across_a_migration(two_vservers: object) -> None:
    nas = NasClient(two_vservers, "vs1")  # type: ignore[arg-type]
    with nas.open("/file", "w") as f:
        f.write(b"hello ")
        f.write(b"world")
    xv = two_vservers.expandable("vs1")  # type: ignore[attr-defined]
    with nas.open("/file", "r+") as f:
        old = f.handle
        target = next(k for k in xv.data_constituents() if k != old.location_id)
        nas.migrate(old.goid, target)
        slow = xv.counters.slow_path
        assert f.read() == b"hello world"
        assert xv.counters.slow_path == slow + 1
        assert f.handle.location_id == target and f.handle.goid == old.goid
        fast = xv.counters.fast_path
        f.seek(0)
        assert f.read(5) == b"hello"
        assert xv.counters.fast_path == fast + 1
    with pytest.raises(InvalidArgumentError):
        f.read()
    with pytest.raises(InvalidArgumentError):
        nas.open("/file", "q")
    with nas.open("/file", "a") as f:
        f.write(b"!")
    assert nas.read("/file") == b"hello world!"
    ro = nas.open("/file")
    with pytest.raises(PermissionDeniedError):
        ro.write(b"x")


def test_directories_mkdir_readdir_rmdir(two_vservers: object) -> None:
    nas = NasClient(two_vservers, "vs1")  # type: ignore[arg-type]
    nas.mkdir("/dir")
    nas.create("/dir/one", b"1")
    with pytest.raises(XvolError):
        nas.rmdir("/dir")
    assert [e.name for e in nas.readdir("/dir")] == ["one"]
    assert nas.stat("/dir").is_dir
    nas.unlink("/dir/one")
    nas.rmdir("/dir")
    with pytest.raises(NotFoundError):
        nas.stat("/dir")


def test_a_session_reads_a_consistent_snapshot_through_one_read_only_object() -> None:
    cluster = build_cluster(
        nodes=2, data_constituents=2, seed=6, volume_blocks=SMALL, storage_factory=_storage
    )
    nas = NasClient(cluster, "vs1")
    nas.mkdir("/d")
    nas.create("/d/f", b"then")
    SnapshotJobManager(cluster).create("vs1", "xv", "s")
    nas.replace("/d/f", b"now")
    view = nas.snapshot("s")
    assert view.read("/d/f") == b"then" and nas.read("/d/f") == b"now"
    assert nas.snapshot(view.snapshot_id).walk() == view.walk()
    with pytest.raises(ReadOnlySnapshotError):
        view.write("/d/f", b"x")
