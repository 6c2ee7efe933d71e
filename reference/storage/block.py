"""Blocks and block spaces: the contract between the storage layers and the volumes above them.

Every layer of the stack moves data in fixed 4 KiB blocks. A *block space* is a numbered array of
such blocks whose every read is checked against the checksum stored with the block: a disk, a RAID
group, an aggregate and a volume's logical block space are all block spaces. The volume layer sees
only :class:`VolumeSpace`, the logical block space an aggregate hands to one volume (seed: volume
block numbers mapped to aggregate blocks), so a volume never knows which disks or RAID level lie
beneath it. Batch methods take and return ``numpy`` arrays of shape ``(k, BLOCK_SIZE)`` so that
bulk paths (transfers, scans) run at memory speed instead of one Python call per block.

Uses: numpy. Imports nothing of the kit but :mod:`xvol.errors`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

BLOCK_SIZE = 4096
"""Bytes in one block, everywhere in the stack."""

Blocks = npt.NDArray[np.uint8]
"""A batch of blocks: a C-contiguous ``uint8`` array of shape ``(k, BLOCK_SIZE)``."""

BlockNumbers = npt.NDArray[np.int64]
"""A batch of block numbers: a 1-D ``int64`` array."""


class BlockSpace(Protocol):
    """A numbered space of checksummed 4 KiB blocks.

    Contract: ``read_block(n)`` returns exactly the bytes last written to ``n`` (all zeros if never
    written) or raises a typed :class:`xvol.errors.XvolError` (never wrong data); a number outside
    ``0 <= n < block_count`` raises :class:`xvol.errors.InvalidArgumentError` and changes nothing.
    """

    @property
    def block_count(self) -> int:
        """How many blocks the space holds."""
        ...

    def read_block(self, number: int) -> bytes:
        """The verified contents of block ``number`` (``BLOCK_SIZE`` bytes)."""
        ...

    def write_block(self, number: int, data: bytes) -> None:
        """Store ``data`` (exactly ``BLOCK_SIZE`` bytes) at block ``number`` with its checksum."""
        ...

    def read_blocks(self, numbers: BlockNumbers) -> Blocks:
        """Verified contents of many blocks at once, in the order of ``numbers``."""
        ...

    def write_blocks(self, numbers: BlockNumbers, data: Blocks) -> None:
        """Store ``data[i]`` at ``numbers[i]`` for every ``i``."""
        ...


class VolumeSpace(BlockSpace, Protocol):
    """The logical block space an aggregate gives one volume, by name; it survives reopening the
    aggregate (file-backed disks) and can be resized."""

    @property
    def name(self) -> str:
        """The name under which the aggregate knows this space."""
        ...

    def resize(self, block_count: int) -> None:
        """Grow (taking blocks from the aggregate; :class:`xvol.errors.OutOfSpaceError` when it is
        full, nothing changed) or shrink (returning the tail blocks to the aggregate; their
        contents are lost, so the caller must not use them)."""
        ...
