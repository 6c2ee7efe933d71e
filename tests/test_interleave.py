"""Interleaving client steps with the snapshot protocol: a seeded run is reproducible, its trace
replays on a fresh cluster to the same events and the same snapshot, scripts that do not fit
are refused at the first entry that does not."""

from __future__ import annotations

import pytest

from xvol.errors import InvalidArgumentError
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.snapshots.interleave import Interleaving
from xvol.reference.snapshots.snapshot_access import SnapshotAccessLayer
from xvol.reference.snapshots.snapshot_coordinator import ProtocolStep, SnapshotJobManager
from xvol.vocabulary import Action, OperationKind, StepKind, Trace, TraceStep


def _setup(seed: int = 7) -> tuple[Cluster, Interleaving]:
    cluster = Cluster(
        2,
        seed=seed,
        storage_factory=lambda n: AggregateStorage.memory(
            n, level="4", data_disks=2, blocks_per_disk=1024
        ),
    )
    mhost = cluster.mhost()
    mhost.create_vserver("vs1", ["root"])
    mhost.create_expandable_volume("vs1", "xv", data_constituents=2, volume_blocks=256)
    xv = cluster.expandable("vs1")
    xv.create("/old", b"o", location=1)
    job = SnapshotJobManager(cluster).start("vs1", "xv", "s")
    return cluster, Interleaving(xv, job, seed=seed, protocol_weight=0.25)


def _begin(cluster: Cluster) -> object:
    xv = cluster.expandable("vs1")

    def begin(step: TraceStep) -> None:
        op = str(step.args["op"])
        if step.args["kind"] == OperationKind.CREATE.value:
            xv.submit(OperationKind.CREATE, xv.op_create(f"/{op}", op.encode()), op_id=op)
        else:
            xv.submit(OperationKind.DELETE, xv.op_delete("/old"), op_id=op)

    return begin


def test_a_seeded_run_replays_to_the_same_events_and_snapshot_on_a_fresh_cluster() -> None:
    cluster, run = _setup()
    begin = _begin(cluster)
    for op, kind in (("a", OperationKind.CREATE), ("b", OperationKind.CREATE), ("d", "delete")):
        begin(TraceStep(Action.BEGIN, {"op": op, "kind": str(kind)}))  # type: ignore[operator]
    run.run_random()
    assert {Action.DEFER, Action.RESUME, Action.STEP} <= {e.action for e in run.events}
    begins = [
        TraceStep(Action.BEGIN, {"op": op, "kind": kind})
        for op, kind in (("a", "create"), ("b", "create"), ("d", "delete"))
    ]
    trace = Trace("fence", {}, (*begins, *run.events))
    assert Trace.loads(trace.dumps()) == trace
    again, replay = _setup()
    replay.replay(Trace.loads(trace.dumps()), _begin(again))  # type: ignore[arg-type]
    assert replay.events == run.events
    views = [SnapshotAccessLayer(c, "node1").open("vs1", "xv", "s") for c in (cluster, again)]
    assert views[0].walk() == views[1].walk() and views[0].locations() == views[1].locations()


def test_scripts_that_do_not_fit_are_refused_at_the_first_wrong_entry() -> None:
    cluster, run = _setup()
    xv = cluster.expandable("vs1")
    xv.submit(OperationKind.CREATE, xv.op_create("/x", b"x"), op_id="c")
    with pytest.raises(InvalidArgumentError, match="its next is data-write"):
        run.run_script([("c", StepKind.NAMESPACE_LINK)])
    with pytest.raises(InvalidArgumentError, match="cannot take"):
        run.run_script([ProtocolStep(Action.FENCE, "NS"), ProtocolStep(Action.FENCE, "DC2")])
    assert [e.action for e in run.events] == [Action.FENCE]  # the first entry ran
    with pytest.raises(InvalidArgumentError):
        run.replay(Trace("fence", {}, (TraceStep(Action.DISASTER),)))
    with pytest.raises(InvalidArgumentError):
        Interleaving(xv, None, protocol_weight=2.0)
    with pytest.raises(InvalidArgumentError):
        Interleaving(xv, None).protocol_step()


def test_run_random_stops_at_the_event_budget_and_finish_completes_everything() -> None:
    cluster, run = _setup()
    xv = cluster.expandable("vs1")
    for i in range(3):
        xv.submit(OperationKind.CREATE, xv.op_create(f"/n{i}", b"n"), op_id=f"n{i}")
    assert len(run.run_random(max_events=4)) == 4
    run.finish()
    assert run.job is not None and run.job.ended and not xv.scheduler.unfinished()
    assert run.trace().steps == tuple(run.events)
