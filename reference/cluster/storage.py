"""A node's storage: one aggregate whose volume spaces hold the node's write-anywhere volumes.

In the seed each node's D-module reaches its storage devices, grouped in RAID groups that form
an aggregate; the member volumes of expandable volumes live in the aggregates of the nodes that
own them. :class:`AggregateStorage` is that stack for one node: an
:class:`~xvol.reference.storage.aggregate.Aggregate` (memory- or file-backed disks, RAID-DP by
default) that hands one named volume space per member volume, each formatted as a
:class:`~xvol.reference.volume.volume.Volume` and seen by the repository through
:class:`~xvol.reference.repository.files.VolumeFiles`. It implements the
:class:`~xvol.reference.cluster.node.NodeStorage` protocol the D-module uses.

Uses: the storage and volume layers, the repository's file adapter.
"""

from __future__ import annotations

import os

from xvol.errors import XvolError
from xvol.reference.repository.files import VolumeFiles
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.storage.raid import RaidLevel
from xvol.reference.volume.volume import Volume

DEFAULT_DATA_DISKS = 4
DEFAULT_BLOCKS_PER_DISK = 4096  # 4 data disks x 16 MiB = 64 MiB of aggregate per node


class AggregateStorage:
    """The volumes of one node on one aggregate. Invariant: every space of the aggregate holds
    one formatted volume, named by its volume ID."""

    def __init__(self, aggregate: Aggregate) -> None:
        self.aggregate = aggregate

    @classmethod
    def memory(
        cls,
        node: str,
        *,
        seed: int = 0,
        level: RaidLevel = "dp",
        data_disks: int = DEFAULT_DATA_DISKS,
        blocks_per_disk: int = DEFAULT_BLOCKS_PER_DISK,
    ) -> AggregateStorage:
        """A node's storage on memory disks (``seed`` is accepted for symmetry; memory disks
        start zeroed, so nothing here is random)."""
        del seed
        return cls(
            Aggregate.create_in_memory(level, data_disks, blocks_per_disk, name=f"{node}.aggr0")
        )

    @classmethod
    def files(
        cls,
        directory: str | os.PathLike[str],
        node: str,
        *,
        level: RaidLevel = "dp",
        data_disks: int = DEFAULT_DATA_DISKS,
        blocks_per_disk: int = DEFAULT_BLOCKS_PER_DISK,
    ) -> AggregateStorage:
        """A node's storage on file-backed disks in ``directory`` (reopened if it exists)."""
        try:
            return cls(Aggregate.open(directory))
        except XvolError:
            return cls(
                Aggregate.create(
                    directory, level, data_disks, blocks_per_disk, name=f"{node}.aggr0"
                )
            )

    @property
    def aggregate_name(self) -> str:
        return self.aggregate.name

    def create_volume(self, volume_id: str, blocks: int) -> VolumeFiles:
        """Carve a space of ``blocks`` blocks and format a volume on it (nothing left behind if
        either step fails)."""
        space = self.aggregate.create_space(volume_id, blocks)
        try:
            volume = Volume.create(space, volume_id)
        except XvolError:
            self.aggregate.delete_space(volume_id)
            raise
        return VolumeFiles(volume)

    def open_volume(self, volume_id: str) -> VolumeFiles:
        """The volume in space ``volume_id`` as of its last consistency point."""
        return VolumeFiles(Volume.open(self.aggregate.space(volume_id)))

    def destroy_volume(self, volume_id: str) -> None:
        """Delete the volume's space; its blocks return (zeroed) to the aggregate."""
        self.aggregate.delete_space(volume_id)

    def volume_ids(self) -> list[str]:
        return list(self.aggregate.spaces())

    def free_bytes(self) -> int:
        """Free bytes left in the aggregate."""
        from xvol.reference.storage.block import BLOCK_SIZE

        return self.aggregate.free_blocks * BLOCK_SIZE
