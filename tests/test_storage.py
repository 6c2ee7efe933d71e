"""A node's storage: volumes in named spaces of one aggregate, reopened from their blocks,
destroyed with their space, and refused (with nothing left behind) when the aggregate is full."""

from __future__ import annotations

from pathlib import Path

import pytest

from xvol.errors import OutOfSpaceError
from xvol.reference.cluster.storage import AggregateStorage


def test_volumes_are_created_reopened_and_destroyed() -> None:
    storage = AggregateStorage.memory("n1", blocks_per_disk=1024)
    files = storage.create_volume("vs.xv.DC1", 128)
    files.create("/f")
    files.write("/f", 0, b"kept")
    files.checkpoint()
    assert storage.open_volume("vs.xv.DC1").read("/f", 0, 4) == b"kept"
    assert storage.volume_ids() == ["vs.xv.DC1"] and storage.aggregate_name == "n1.aggr0"
    free = storage.free_bytes()
    storage.destroy_volume("vs.xv.DC1")
    assert storage.volume_ids() == [] and storage.free_bytes() > free


def test_a_volume_that_does_not_fit_leaves_nothing_behind() -> None:
    storage = AggregateStorage.memory("n1", blocks_per_disk=256)
    with pytest.raises(OutOfSpaceError):
        storage.create_volume("huge", 100_000)
    assert storage.volume_ids() == []


def test_file_backed_storage_reopens_with_its_volumes(tmp_path: Path) -> None:
    storage = AggregateStorage.files(tmp_path / "n1", "n1", blocks_per_disk=512)
    files = storage.create_volume("v", 128)
    files.mkdir("/d")
    files.checkpoint()
    storage.aggregate.close()
    again = AggregateStorage.files(tmp_path / "n1", "n1")
    assert again.volume_ids() == ["v"] and again.open_volume("v").exists("/d")
