"""The replicated database: commits reach every replica that answers, need a majority, and a
replica that was down or restarted catches up to the same log."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.errors import UnavailableError
from xvol.reference.cluster.cf import SimulatedFabric, serve_frame
from xvol.reference.cluster.rdb import RDBReplica, ReplicatedDatabase


def _rdb(n: int) -> tuple[ReplicatedDatabase, SimulatedFabric]:
    fabric = SimulatedFabric()
    replicas = {f"n{i}": RDBReplica(f"n{i}") for i in range(1, n + 1)}
    for name, replica in replicas.items():
        fabric.attach(name, lambda frame, r=replica: serve_frame(frame, r.serve))
    return ReplicatedDatabase(replicas, fabric, fabric.is_up), fabric


def test_a_commit_reaches_every_replica_over_the_fabric() -> None:
    rdb, fabric = _rdb(3)
    rdb.commit("n1", [("vldb", "v1", {"node": "n2", "aggregate": "a"})])
    assert all(
        r.get("vldb", "v1") == {"node": "n2", "aggregate": "a"} for r in rdb.replicas.values()
    )
    assert fabric.counters.lpc_messages == 1 and fabric.counters.rpc_messages == 2


def test_without_a_majority_nothing_commits() -> None:
    rdb, fabric = _rdb(3)
    fabric.set_down("n2", True)
    fabric.set_down("n3", True)
    with pytest.raises(UnavailableError):
        rdb.commit("n1", [("t", "k", 1)])
    assert all(r.version == 0 for r in rdb.replicas.values())


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["write", "down", "up", "restart"]),
            st.integers(1, 3),
            st.integers(0, 4),
        ),
        max_size=30,
    )
)
def test_replicas_that_answer_always_agree(script: list[tuple[str, int, int]]) -> None:
    rdb, fabric = _rdb(3)
    for action, index, value in script:
        node = f"n{index}"
        if action == "write":
            with contextlib.suppress(UnavailableError):
                rdb.commit(node, [("t", f"k{value}", value or None)])
        elif action == "down":
            fabric.set_down(node, True)
        elif action == "up" and not fabric.is_up(node):
            fabric.set_down(node, False)
            rdb.resync(node)
        elif action == "restart" and fabric.is_up(node):
            rdb.replicas[node].restart()
            rdb.resync(node)
        assert rdb.consistent()
    for node in rdb.replicas:
        if not fabric.is_up(node):
            fabric.set_down(node, False)
            rdb.resync(node)
    states = {str(r.state()) for r in rdb.replicas.values()}
    assert len(states) == 1 and rdb.consistent()
