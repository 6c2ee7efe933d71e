"""Tests of the mirroring tables (reference/mirror/relationships.py): fields A-J round-trip
through the destination's RDB, the destination volume table maps IDs, typed errors."""

from __future__ import annotations

import pytest

from xvol.errors import InvalidArgumentError
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.mirror.relationships import (
    DEFAULT_RETAIN,
    MIRROR,
    MirrorConfig,
    MirrorGroup,
    MirrorState,
    MirrorTables,
    Relationship,
    UnknownRelationshipError,
    mirror_holder,
)


def row(member: str, config: MirrorConfig) -> Relationship:
    return Relationship(
        "B", "xv", 1, "vs1", "A", "xv", 1, "vs1", MIRROR, config, member,
        f"vs1.xv.{member}", f"vs1.xv.{member}",
    )  # fmt: skip


def test_relationships_with_fields_a_to_j_round_trip_through_the_rdb() -> None:
    cluster = Cluster(3)
    tables = MirrorTables(cluster)
    config = MirrorConfig(schedule=300.0, allowed_clients=frozenset({"alice"}), throttle=1e6)
    rows = [row(m, config) for m in ("NS", "OLS", "DC1")]
    tables.add_relationships(rows)
    assert tables.relationships("vs1", "xv") == sorted(rows, key=lambda r: r.key)
    assert tables.relationship("vs1", "xv", "DC1") == rows[2]
    assert {d.volume_id: d.source_volume_id for d in tables.destination_volumes()} == {
        r.dest_volume_id: r.source_volume_id for r in rows
    }
    # every replica of the destination's RDB holds them
    for node in cluster.nodes:
        assert len(cluster.replica(node).items("mirror-relationships")) == 3
    tables.remove_relationship("vs1", "xv", "DC1")
    assert tables.relationship("vs1", "xv", "DC1") is None
    assert len(tables.destination_volumes()) == 2


def test_groups_keep_state_exported_and_pending_snapshots() -> None:
    tables = MirrorTables(Cluster(1))
    with pytest.raises(UnknownRelationshipError):
        tables.group("vs1", "xv")
    group = MirrorGroup("vs1", "xv", "A", "vs1", "xv")
    tables.save_group(group)
    moved = tables.update_group(group, exported=4, pending="mirror.B.5")
    assert tables.group("vs1", "xv") == moved and moved.state is MirrorState.MIRRORED
    tables.update_group(moved, state=MirrorState.BROKEN)
    assert tables.group("vs1", "xv").state is MirrorState.BROKEN
    tables.add_relationships([row("NS", MirrorConfig())])
    tables.remove_group("vs1", "xv")
    assert not tables.has_group("vs1", "xv") and tables.relationships("vs1", "xv") == []


@pytest.mark.parametrize("bad", [{"schedule": 0.0}, {"throttle": -1.0}])
def test_configuration_j_rejects_bad_values(bad: dict[str, float]) -> None:
    with pytest.raises(InvalidArgumentError):
        MirrorConfig(**bad)  # type: ignore[arg-type]


def test_retention_defaults_on_and_none_stays_an_explicit_keep_all() -> None:
    assert MirrorConfig().retain == DEFAULT_RETAIN >= 1
    assert MirrorConfig.from_json(MirrorConfig(retain=None).to_json()).retain is None
    assert MirrorConfig.from_json({"schedule": 60.0}).retain == DEFAULT_RETAIN  # an older row
    assert MirrorConfig.from_json(MirrorConfig(retain=7).to_json()).retain == 7


def test_a_group_names_its_hold_tag_and_round_trips_an_unfinished_baseline() -> None:
    group = MirrorGroup("vs1", "xv", "A", "vs0", "src", pending="mirror.B.3", rebaseline=True)
    assert group.holder("B") == mirror_holder("A", "vs0", "src", "B", "vs1", "xv")
    assert group.holder("B") == "mirror A:vs0/src -> B:vs1/xv"
    assert MirrorGroup.from_json(group.to_json()) == group
    older = {k: v for k, v in group.to_json().items() if k != "rebaseline"}
    assert not MirrorGroup.from_json(older).rebaseline
