"""The expandable volume over real write-anywhere volumes (no cluster): operations follow the
vocabulary's step sequences, failed creates undo themselves, interleaved operations keep the
namespace -> OLS -> data references intact, closed gates defer and reopened ones resume, the fast
and slow paths are taken and counted, placement strategies place as they say, and everything the
repository knows is in the volumes' blocks."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError, StateError
from xvol.reference.repository.constituent import DataConstituent
from xvol.reference.repository.expandable import ExpandableVolume, MemberInfo, SequentialGoids
from xvol.reference.repository.files import LocalMembers, MemberService, VolumeFiles
from xvol.reference.repository.handles import HandleCodec
from xvol.reference.repository.namespace import LocatorMode, NamespaceVolume
from xvol.reference.repository.ols import ObjectLocationStore
from xvol.reference.repository.placement import Placement, PlacementStrategy
from xvol.reference.repository.steps import OperationDeferred, OpState
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.volume.volume import Volume
from xvol.vocabulary import (
    Action,
    OperationKind,
    StepDiscipline,
    StepKind,
    VolumeRole,
    operation_steps,
)

REPO = 7


class Rig:
    """An expandable volume on one aggregate: NS, OLS and ``n`` data constituents."""

    def __init__(
        self,
        n: int = 2,
        *,
        locator: LocatorMode = LocatorMode.REDIRECTOR_GOID,
        discipline: StepDiscipline = StepDiscipline.WRITE_AHEAD,
        placement: Placement | None = None,
        blocks: int = 256,
        seed: int = 0,
    ) -> None:
        self.aggregate = Aggregate.create_in_memory("4", 3, 2048)
        self.volumes: dict[str, Volume] = {}
        services: dict[str, MemberService] = {
            "NS": NamespaceVolume.format(self._files("NS", blocks), locator, REPO),
            "OLS": ObjectLocationStore.format(self._files("OLS", blocks), REPO),
        }
        members = [MemberInfo("NS", VolumeRole.NAMESPACE), MemberInfo("OLS", VolumeRole.OLS)]
        for k in range(1, n + 1):
            services[f"DC{k}"] = DataConstituent.format(self._files(f"DC{k}", blocks), k, REPO)
            members.append(MemberInfo(f"DC{k}", VolumeRole.DATA))
        self.access = LocalMembers(services)
        self.xv = ExpandableVolume(
            "xv",
            REPO,
            self.access,
            HandleCodec(REPO, HandleCodec.derive_key(0, REPO)),
            SequentialGoids(REPO),
            members,
            placement=placement,
            locator=locator,
            discipline=discipline,
            seed=seed,
        )

    def _files(self, name: str, blocks: int) -> VolumeFiles:
        self.volumes[name] = Volume.create(self.aggregate.create_space(name, blocks), name)
        return VolumeFiles(self.volumes[name])

    def steps(self) -> list[tuple[str, str]]:
        return [
            (str(e.args["step"]), str(e.args["volume"]))
            for e in self.xv.scheduler.events
            if e.action in (Action.STEP, Action.RESUME)
        ]


@pytest.mark.parametrize("locator", list(LocatorMode))
def test_basic_operations_in_every_locator_mode(locator: LocatorMode) -> None:
    xv = Rig(locator=locator).xv
    xv.mkdir("/dir")
    handle = xv.create("/dir/f", b"hello")
    assert xv.read("/dir/f") == b"hello"
    xv.write("/dir/f", 5, b" world")
    xv.truncate("/dir/f", 8)
    assert xv.read("/dir/f") == b"hello wo"
    assert xv.replace("/dir/f", b"hi") == handle
    assert xv.read("/dir/f") == b"hi"
    xv.replace("/dir/f", b"hello wo")
    assert xv.read_object(handle)[0] == b"hello wo"
    assert [(e.name, e.goid) for e in xv.readdir("/dir")] == [("f", handle.goid)]
    xv.rename("/dir/f", "/g")
    stat = xv.stat("/g")
    assert (stat.is_dir, stat.size, stat.handle) == (False, 8, handle)
    with pytest.raises(AlreadyExistsError):
        xv.create("/g", b"")
    assert xv.delete("/g") == handle.goid
    with pytest.raises(NotFoundError):
        xv.read("/g")
    with pytest.raises(NotFoundError):
        xv.read_object(handle.goid)
    assert xv.check_references().ok


@pytest.mark.parametrize("discipline", list(StepDiscipline))
def test_create_and_delete_follow_the_vocabulary_step_order(discipline: StepDiscipline) -> None:
    rig = Rig(1, discipline=discipline)
    rig.xv.create("/a", b"x")
    rig.xv.delete("/a")
    kinds = [StepKind(s) for s, _ in rig.steps()]
    create = list(operation_steps(OperationKind.CREATE, discipline))
    delete = list(operation_steps(OperationKind.DELETE, discipline))
    assert kinds == create + delete
    assert {v for _, v in rig.steps()} == {"NS", "OLS", "DC1"}


def test_a_create_whose_link_fails_undoes_its_data_and_location() -> None:
    rig = Rig(1)
    with pytest.raises(NotFoundError):
        rig.xv.create("/missing/dir/a", b"x")
    assert rig.steps()[-2:] == [("ols-remove", "OLS"), ("data-remove", "DC1")]
    report = rig.xv.check_references()
    assert report.ok and report.objects == 0 and rig.xv.objects_on(1) == []


def test_migration_moves_data_keeps_goid_and_paths_and_leaves_no_copy() -> None:
    rig = Rig(2)
    xv = rig.xv
    old = xv.create("/a", b"data" * 1000)
    target = 2 if old.location_id == 1 else 1
    new = xv.migrate(old, target)
    assert (new.goid, new.location_id) == (old.goid, target)
    assert xv.objects_on(old.location_id) == [] and xv.objects_on(target) == [old.goid]
    migrate = [s for s, _ in rig.steps()][-3:]
    assert migrate == list(operation_steps(OperationKind.MIGRATE))
    assert xv.read("/a") == b"data" * 1000
    with pytest.raises(StateError):
        xv.migrate(old.goid, 9)
    assert xv.check_references().ok


def test_fast_path_with_a_valid_handle_slow_path_with_a_stale_one() -> None:
    xv = Rig(2).xv
    handle = xv.create("/a", b"abc")
    text = xv.codec.encode(handle)
    assert xv.read_object(text) == (b"abc", handle)
    assert (xv.counters.fast_path, xv.counters.slow_path) == (1, 0)
    moved = xv.migrate(handle.goid, 2 if handle.location_id == 1 else 1)
    data, fresh = xv.read_object(text)
    assert (data, fresh) == (b"abc", moved)
    assert (xv.counters.fast_path, xv.counters.slow_path, xv.counters.stale) == (1, 1, 1)
    assert xv.read_object(fresh)[1] == moved and xv.counters.fast_path == 2
    assert xv.read_object(handle.goid)[1] == moved and xv.counters.slow_path == 2


def test_redirector_handle_mode_takes_the_fast_path_for_named_reads() -> None:
    xv = Rig(2, locator=LocatorMode.REDIRECTOR_HANDLE).xv
    handle = xv.create("/a", b"abc")
    assert xv.read("/a") == b"abc" and xv.counters.fast_path == 1
    xv.migrate(handle.goid, 2 if handle.location_id == 1 else 1)
    assert xv.read("/a") == b"abc"
    assert (xv.counters.stale, xv.counters.slow_path) == (1, 1)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(list(StepDiscipline)))
def test_interleaved_operations_end_with_intact_references(
    seed: int, discipline: StepDiscipline
) -> None:
    rig = Rig(3, discipline=discipline, seed=seed)
    xv = rig.xv
    rng = random.Random(seed)
    for i in range(6):
        xv.create(f"/pre{i}", bytes([i]) * 10)
    expected = {f"/pre{i}": bytes([i]) * 10 for i in range(6)}
    ops = []
    for i in range(6):
        ops.append(xv.submit("create", xv.op_create(f"/new{i}", b"n" * i)))
        expected[f"/new{i}"] = b"n" * i
    for i in range(3):
        ops.append(xv.submit("delete", xv.op_delete(f"/pre{i}")))
        del expected[f"/pre{i}"]
    ops.append(xv.submit("write", xv.op_write("/pre3", 10, b"++")))
    expected["/pre3"] += b"++"
    goid = xv.stat("/pre4").handle.goid  # type: ignore[union-attr]
    ops.append(xv.submit("migrate", xv.op_migrate(goid, rng.choice([1, 2, 3]))))
    ops.append(xv.submit("create", xv.op_create("/new0", b"dup")))  # loses the race or waits
    xv.run_pending()
    states = [xv.scheduler.records[o].state for o in ops]
    assert states[:-1] == [OpState.DONE] * (len(ops) - 1)
    assert states[-1] is OpState.FAILED
    assert isinstance(xv.scheduler.records[ops[-1]].error, AlreadyExistsError)
    for path, data in expected.items():
        assert xv.read(path) == data
    report = xv.check_references()
    assert report.ok and report.names == len(expected)


def test_a_closed_gate_defers_steps_and_reopening_resumes_them_exactly_once() -> None:
    rig = Rig(1)
    xv = rig.xv
    xv.gate("OLS").close()
    with pytest.raises(OperationDeferred) as deferred:
        xv.create("/a", b"x")
    op_id = deferred.value.op_id
    assert rig.steps() == [("data-write", "DC1")]  # write-ahead: the data is there, no name yet
    assert xv.scheduler.records[op_id].state is OpState.DEFERRED
    second = xv.submit("create", xv.op_create("/b", b"y"))
    xv.run_pending()
    assert [e.action for e in xv.scheduler.events].count(Action.DEFER) == 2
    xv.gate("OLS").open()
    xv.run_pending()
    assert xv.scheduler.records[op_id].state is OpState.DONE
    assert xv.scheduler.records[second].state is OpState.DONE
    resumes = [e for e in xv.scheduler.events if e.action is Action.RESUME]
    assert sorted((str(e.args["op"]), str(e.args["step"])) for e in resumes) == sorted(
        [(op_id, "ols-insert"), (second, "ols-insert")]
    )
    steps = rig.steps()
    assert len(steps) == 6 and len(set((s, v) for s, v in steps)) == 3
    assert xv.read("/a") == b"x" and xv.read("/b") == b"y"
    assert xv.check_references().ok


def test_placement_strategies() -> None:
    robin = Rig(3).xv
    locations = [robin.create(f"/r{i}", b"").location_id for i in range(6)]
    assert sorted(locations) == [1, 1, 2, 2, 3, 3]
    free = Rig(3, placement=Placement(PlacementStrategy.FREE_SPACE)).xv
    free.create("/big", b"z" * 200_000)
    assert free.create("/small", b"").location_id != free.stat("/big").handle.location_id  # type: ignore[union-attr]
    pinned = Rig(3, placement=Placement(PlacementStrategy.BY_POLICY, {5: [3]})).xv
    assert {pinned.create(f"/p{i}", b"", policy_id=5).location_id for i in range(3)} == {3}
    with pytest.raises(InvalidArgumentError):
        pinned.create("/unknown-policy", b"", policy_id=6)
    assert pinned.check_references().ok


def test_an_explicit_location_overrides_placement() -> None:
    xv = Rig(3).xv
    assert {xv.create(f"/e{i}", b"", location=2).location_id for i in range(3)} == {2}
    with pytest.raises(StateError):
        xv.create("/nowhere", b"", location=9)
    assert xv.check_references().names == 3


def test_drain_moves_every_object_off_a_constituent() -> None:
    xv = Rig(2).xv
    for i in range(5):
        xv.create(f"/f{i}", bytes([i]))
    with pytest.raises(StateError):
        xv.drain(1)  # still accepting objects
    xv.set_members(
        [
            *(m for m in xv.members.values() if m.name != "DC1"),
            MemberInfo("DC1", VolumeRole.DATA, accepting=False),
        ]
    )
    held = len(xv.objects_on(1))
    with pytest.raises(StateError):
        xv.check_removable(1)
    assert xv.drain(1) == held
    xv.check_removable(1)
    assert all(xv.read(f"/f{i}") == bytes([i]) for i in range(5))


def test_everything_lives_in_the_volume_blocks() -> None:
    rig = Rig(2, locator=LocatorMode.REDIRECTOR_HANDLE)
    xv = rig.xv
    xv.mkdir("/d")
    handles = {f"/d/f{i}": xv.create(f"/d/f{i}", bytes([i]) * 5000) for i in range(4)}
    xv.migrate(handles["/d/f0"], 2 if handles["/d/f0"].location_id == 1 else 1)
    xv.checkpoint()
    services: dict[str, MemberService] = {}
    for name in ("NS", "OLS", "DC1", "DC2"):
        files = VolumeFiles(Volume.open(rig.aggregate.space(name)))  # from blocks only
        services[name] = (
            NamespaceVolume.open(files)
            if name == "NS"
            else ObjectLocationStore.open(files)
            if name == "OLS"
            else DataConstituent.open(files)
        )
    reopened = ExpandableVolume(
        "xv",
        REPO,
        LocalMembers(services),
        xv.codec,
        SequentialGoids(REPO, 100),
        list(xv.members.values()),
        locator=LocatorMode.REDIRECTOR_HANDLE,
    )
    for path, handle in handles.items():
        assert reopened.read(path) == xv.read(path)
        assert reopened.read_object(handle.goid)[0] == xv.read_object(handle.goid)[0]
    assert reopened.check_references().ok


def test_bad_arguments_are_refused_before_any_step() -> None:
    rig = Rig(1)
    xv = rig.xv
    for call in (
        lambda: xv.create("relative", b""),
        lambda: xv.write("/a", -1, b"x"),
        lambda: xv.read_object("junk"),
        lambda: xv.read_object(True),
        lambda: xv.create("/a", b"", policy_id=-1),
    ):
        with pytest.raises(InvalidArgumentError):
            call()
    assert rig.steps() == []
