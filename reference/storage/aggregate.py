"""Aggregates: RAID groups pooled into one physical block space that hands out volume spaces.

In the seed, one or more RAID groups together form an *aggregate*, and an aggregate contains one
or more volumes, each with its own volume block number (VBN) space. An :class:`Aggregate` is that
pool: the data blocks of its RAID groups, concatenated in group order, form one physical block
space (aggregate block numbers). Out of it the aggregate hands named *volume spaces*
(:class:`AggregateSpace`, the :class:`~xvol.reference.storage.block.VolumeSpace` protocol): a
volume's block ``n`` maps through the space's list of *extents* (runs of aggregate blocks, in
volume order) to an aggregate block, so a volume never sees disks or RAID.

Structures and their invariants:

* the **reserved area**: aggregate blocks ``[0, 2*M)`` hold two copies (A = ``[0, M)``,
  B = ``[M, 2M)``) of the aggregate's own metadata, the *space table* (name -> extents). Each copy
  starts with a header carrying a generation number and a SHA-256 of the payload. An update
  writes generation ``g+1`` into the copy *not* holding ``g``, so a crash in the middle of an
  update leaves the other copy intact; opening picks the valid copy with the highest generation.
* the **free list**: sorted, coalesced runs of free aggregate blocks; it is derived (every block
  that is neither reserved nor in an extent is free) and never stored. The table also keeps the
  *high-water mark*, the end of the highest block ever given to a space: blocks above it have
  never been written and read as zeros. A block newly given to a space must read as never
  written, so allocation zeroes the taken blocks that lie below the mark *before* the table
  update that hands them out; deleting or shrinking a space only updates the table. A crash at
  any point therefore leaves either the old table (the zeroed blocks are still free) or the new.
* **extents**: allocation is first-fit in runs, so a space grown in one step is one extent when
  the pool is not fragmented.

Bulk I/O passes the blocks' content sums through (:meth:`AggregateSpace.read_blocks_summed`,
:meth:`AggregateSpace.write_blocks_summed`, see :mod:`.checksum`), so a transfer that verified a
batch does not checksum it again on its way to the disks.

Every table change builds the new table, checks that it fits, writes it, and only then changes
the in-memory state: an operation that raises (:class:`~xvol.errors.OutOfSpaceError`,
:class:`~xvol.errors.NotFoundError`, ...) leaves the aggregate as it was.

File-backed aggregates live in a directory: ``aggregate.json`` (a manifest of the RAID groups
and their disk files, rewritten atomically by rename when a group is added or a disk replaced)
and one :class:`~xvol.reference.storage.disk.FileDisk` file per disk. :meth:`Aggregate.open`
reopens it in any process. Memory-backed aggregates run the same code on memory disks.

Uses: numpy, hashlib, json, :mod:`.block`, :mod:`.checksum`, :mod:`.disk`, :mod:`.raid`,
:mod:`xvol.errors`.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from xvol.errors import (
    AlreadyExistsError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    OutOfSpaceError,
)
from xvol.reference.storage.block import BLOCK_SIZE, BlockNumbers, Blocks
from xvol.reference.storage.checksum import Checksums
from xvol.reference.storage.disk import (
    Disk,
    FileDisk,
    MemoryDisk,
    as_block_numbers,
    as_blocks,
    as_sums,
    block_from_bytes,
    last_write_wins,
    last_write_wins_summed,
    run_start,
)
from xvol.reference.storage.raid import (
    LEVELS,
    RaidGroup,
    RaidLevel,
    RebuildReport,
    ScrubReport,
)

MANIFEST = "aggregate.json"
DEFAULT_METADATA_BLOCKS = 8
_ZERO_CHUNK = 4096
_MAGIC = b"XVOLAGGR"
_HEADER = struct.Struct("<8sQQ32s")  # magic, generation, payload length, sha256(payload)

Extent = tuple[int, int]
"""A run of aggregate blocks: (first block, length)."""
_Run = tuple[int, int, int, int]
"""A run of a request: (RAID group index, its first logical block, first position, end)."""


@dataclass(frozen=True)
class GroupSpec:
    """How a RAID group is built: level, data disks, disk size, chunk, prime, disk names."""

    name: str
    level: RaidLevel
    data_disks: int
    blocks_per_disk: int
    chunk_blocks: int
    prime: int | None
    disks: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "level": self.level,
            "data_disks": self.data_disks,
            "blocks_per_disk": self.blocks_per_disk,
            "chunk_blocks": self.chunk_blocks,
            "prime": self.prime,
            "disks": list(self.disks),
        }

    @staticmethod
    def from_json(raw: dict[str, Any]) -> GroupSpec:
        return GroupSpec(
            str(raw["name"]),
            raw["level"],
            int(raw["data_disks"]),
            int(raw["blocks_per_disk"]),
            int(raw["chunk_blocks"]),
            None if raw["prime"] is None else int(raw["prime"]),
            tuple(str(d) for d in raw["disks"]),
        )


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or len(name) > 255 or "\0" in name:
        raise InvalidArgumentError(f"a space name must be 1..255 characters, got {name!r}")


def _check_count(block_count: int) -> None:
    if not isinstance(block_count, int | np.integer) or block_count < 0:
        raise InvalidArgumentError(f"block_count must be an integer >= 0, got {block_count!r}")


def _coalesce(runs: list[Extent]) -> list[Extent]:
    """Sort runs and merge the touching ones."""
    merged: list[Extent] = []
    for start, length in sorted(r for r in runs if r[1] > 0):
        if merged and merged[-1][0] + merged[-1][1] == start:
            merged[-1] = (merged[-1][0], merged[-1][1] + length)
        else:
            merged.append((start, length))
    return merged


class Aggregate:
    """One or more RAID groups as one block space, with named volume spaces carved from it.

    Life cycle: :meth:`create_in_memory` / :meth:`create` (fresh, empty table) or :meth:`open`
    (file-backed, table from the newest valid metadata copy) -> spaces created, resized, deleted;
    RAID groups added -> :meth:`close`.
    """

    def __init__(
        self,
        name: str,
        groups: Sequence[RaidGroup],
        specs: Sequence[GroupSpec],
        metadata_blocks: int,
        directory: Path | None,
    ) -> None:
        """Assemble an aggregate from built groups; use the constructors below instead."""
        self.name = name
        self._groups: list[RaidGroup] = list(groups)
        self._specs: list[GroupSpec] = list(specs)
        self.metadata_blocks = metadata_blocks
        self.directory = directory
        self._starts: list[int] = []
        self._recount()
        if self.block_count <= 2 * metadata_blocks:
            raise InvalidArgumentError(
                f"aggregate {name!r}: {self.block_count} blocks cannot hold the reserved "
                f"{2 * metadata_blocks}-block metadata area and any data"
            )
        self._table: dict[str, list[Extent]] = {}
        self._generation = 0
        self._high_water = 2 * metadata_blocks
        self._handles: dict[str, AggregateSpace] = {}

    def _recount(self) -> None:
        self._starts = []
        total = 0
        for group in self._groups:
            self._starts.append(total)
            total += group.block_count
        self._block_count = total

    # -- constructors --

    @staticmethod
    def _spec(
        index: int,
        level: RaidLevel,
        data_disks: int,
        blocks_per_disk: int,
        chunk_blocks: int,
        prime: int | None,
    ) -> GroupSpec:
        if level not in LEVELS:
            raise InvalidArgumentError(f"RAID level must be one of {LEVELS}, got {level!r}")
        name = f"rg{index}"
        count = data_disks + (2 if level == "dp" else 1)
        disks = tuple(f"{name}.d{i}.disk" for i in range(count))
        return GroupSpec(name, level, data_disks, blocks_per_disk, chunk_blocks, prime, disks)

    @staticmethod
    def _build(spec: GroupSpec, disks: Sequence[Disk]) -> RaidGroup:
        return RaidGroup(
            disks, spec.level, chunk_blocks=spec.chunk_blocks, prime=spec.prime, name=spec.name
        )

    @classmethod
    def create_in_memory(
        cls,
        level: RaidLevel = "dp",
        data_disks: int = 6,
        blocks_per_disk: int = 4096,
        *,
        groups: int = 1,
        chunk_blocks: int = 1,
        prime: int | None = None,
        metadata_blocks: int = DEFAULT_METADATA_BLOCKS,
        name: str = "aggr0",
    ) -> Aggregate:
        """A fresh aggregate of ``groups`` identical RAID groups on memory disks."""
        if groups < 1:
            raise InvalidArgumentError(f"an aggregate needs >= 1 RAID group, got {groups}")
        specs, built = [], []
        for index in range(groups):
            spec = cls._spec(index, level, data_disks, blocks_per_disk, chunk_blocks, prime)
            disks = [MemoryDisk(f"{name}.{d}", blocks_per_disk) for d in spec.disks]
            specs.append(spec)
            built.append(cls._build(spec, disks))
        aggregate = cls(name, built, specs, metadata_blocks, None)
        aggregate._commit({}, 1)
        return aggregate

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        level: RaidLevel = "dp",
        data_disks: int = 6,
        blocks_per_disk: int = 4096,
        *,
        groups: int = 1,
        chunk_blocks: int = 1,
        prime: int | None = None,
        metadata_blocks: int = DEFAULT_METADATA_BLOCKS,
        name: str = "aggr0",
    ) -> Aggregate:
        """A fresh file-backed aggregate in ``directory`` (created if missing, must not already
        hold an aggregate)."""
        root = Path(directory)
        if (root / MANIFEST).exists():
            raise AlreadyExistsError(f"{root} already holds an aggregate; use Aggregate.open")
        if groups < 1:
            raise InvalidArgumentError(f"an aggregate needs >= 1 RAID group, got {groups}")
        specs = [
            cls._spec(i, level, data_disks, blocks_per_disk, chunk_blocks, prime)
            for i in range(groups)
        ]
        # validate the geometry on memory-free RaidGroup arithmetic before touching the disk
        for spec in specs:
            probe = [MemoryDisk(d, spec.blocks_per_disk) for d in spec.disks]
            cls._build(spec, probe)
        root.mkdir(parents=True, exist_ok=True)
        built = []
        for spec in specs:
            disks = [FileDisk.create(root / d, f"{name}.{d}", blocks_per_disk) for d in spec.disks]
            built.append(cls._build(spec, disks))
        aggregate = cls(name, built, specs, metadata_blocks, root)
        aggregate._write_manifest()
        aggregate._commit({}, 1)
        aggregate.flush()
        return aggregate

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> Aggregate:
        """Reopen a file-backed aggregate with all its spaces (newest valid metadata copy)."""
        root = Path(directory)
        try:
            manifest = json.loads((root / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise NotFoundError(f"no readable aggregate manifest in {root}: {exc}") from exc
        specs = [GroupSpec.from_json(raw) for raw in manifest["groups"]]
        built = []
        for spec in specs:
            disks = [FileDisk.open(root / d) for d in spec.disks]
            built.append(cls._build(spec, disks))
        aggregate = cls(str(manifest["name"]), built, specs, int(manifest["metadata_blocks"]), root)
        aggregate._load()
        return aggregate

    def _write_manifest(self) -> None:
        """Atomically replace the manifest (write a temporary file, fsync, rename)."""
        if self.directory is None:
            return
        text = json.dumps(
            {
                "format": 1,
                "name": self.name,
                "metadata_blocks": self.metadata_blocks,
                "groups": [spec.to_json() for spec in self._specs],
            },
            indent=2,
        )
        temporary = self.directory / (MANIFEST + ".tmp")
        with open(temporary, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.directory / MANIFEST)

    # -- the metadata copies --

    def _encode_table(
        self, table: dict[str, list[Extent]], generation: int, high_water: int
    ) -> Blocks:
        payload = json.dumps(
            {
                "name": self.name,
                "high_water": high_water,
                "spaces": {k: [list(e) for e in v] for k, v in table.items()},
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        header = _HEADER.pack(_MAGIC, generation, len(payload), hashlib.sha256(payload).digest())
        raw = header + payload
        capacity = self.metadata_blocks * BLOCK_SIZE
        if len(raw) > capacity:
            raise OutOfSpaceError(
                f"aggregate {self.name!r}: the space table needs {len(raw)} bytes but the "
                f"metadata area holds {capacity}; create the aggregate with more metadata_blocks"
            )
        buffer = np.zeros(capacity, dtype=np.uint8)
        buffer[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)
        return buffer.reshape(self.metadata_blocks, BLOCK_SIZE)

    def _commit(
        self, table: dict[str, list[Extent]], generation: int, high_water: int | None = None
    ) -> None:
        """Write ``table`` as ``generation`` into its copy, then adopt it in memory."""
        mark = self._high_water if high_water is None else high_water
        blocks = self._encode_table(table, generation, mark)
        first = (generation % 2) * self.metadata_blocks
        numbers = np.arange(first, first + self.metadata_blocks, dtype=np.int64)
        self._physical_write(numbers, blocks)
        self._table = {k: list(v) for k, v in table.items()}
        self._generation = generation
        self._high_water = mark

    def _read_copy(self, copy: int) -> tuple[int, dict[str, list[Extent]], int] | None:
        first = copy * self.metadata_blocks
        numbers = np.arange(first, first + self.metadata_blocks, dtype=np.int64)
        try:
            raw = self._physical_read(numbers).tobytes()
        except IntegrityError:
            return None
        magic, generation, length, digest = _HEADER.unpack_from(raw)
        payload = raw[_HEADER.size : _HEADER.size + length]
        if magic != _MAGIC or len(payload) != length or hashlib.sha256(payload).digest() != digest:
            return None
        content = json.loads(payload)
        table = {k: [(int(a), int(b)) for a, b in v] for k, v in content["spaces"].items()}
        return int(generation), table, int(content.get("high_water", self.block_count))

    def _load(self) -> None:
        copies = [c for c in (self._read_copy(0), self._read_copy(1)) if c is not None]
        if not copies:
            raise IntegrityError(
                f"aggregate {self.name!r}: neither metadata copy is valid; the space table is lost"
            )
        generation, table, high_water = max(copies, key=lambda c: c[0])
        self._table = table
        self._generation = generation
        self._high_water = high_water

    @property
    def generation(self) -> int:
        """Generation number of the current space table (grows by one per table update)."""
        return self._generation

    # -- physical block space --

    @property
    def raid_groups(self) -> tuple[RaidGroup, ...]:
        """The RAID groups in order; group ``i`` holds aggregate blocks from ``group_start(i)``."""
        return tuple(self._groups)

    def group_start(self, index: int) -> int:
        """First aggregate block of RAID group ``index``."""
        return self._starts[index]

    @property
    def block_count(self) -> int:
        """Aggregate blocks in all RAID groups (reserved ones included)."""
        return self._block_count

    @property
    def reserved_blocks(self) -> int:
        """Blocks of the two metadata copies."""
        return 2 * self.metadata_blocks

    @property
    def used_blocks(self) -> int:
        """Blocks given to volume spaces."""
        return sum(length for extents in self._table.values() for _, length in extents)

    @property
    def free_blocks(self) -> int:
        """Blocks neither reserved nor given to a space."""
        return self.block_count - self.reserved_blocks - self.used_blocks

    def free_extents(self) -> list[Extent]:
        """The free runs of aggregate blocks, sorted and coalesced."""
        return self._free_runs(self._table)

    def _free_runs(self, table: dict[str, list[Extent]]) -> list[Extent]:
        used = _coalesce([e for extents in table.values() for e in extents])
        runs: list[Extent] = []
        cursor = self.reserved_blocks
        for start, length in used:
            if start > cursor:
                runs.append((cursor, start - cursor))
            cursor = max(cursor, start + length)
        if cursor < self.block_count:
            runs.append((cursor, self.block_count - cursor))
        return runs

    def locate(self, number: int) -> tuple[int, int]:
        """Aggregate block -> (RAID group index, the group's logical block)."""
        as_block_numbers([number], self.block_count, f"aggregate {self.name!r}")
        index = int(np.searchsorted(self._starts, number, side="right")) - 1
        return index, number - self._starts[index]

    def _split(self, numbers: BlockNumbers) -> list[tuple[int, npt.NDArray[np.intp]]]:
        """Group positions of ``numbers`` by RAID group: (group index, positions)."""
        which = np.searchsorted(np.asarray(self._starts), numbers, side="right") - 1
        return [(int(g), np.flatnonzero(which == g)) for g in np.unique(which)]

    def _physical_read(self, numbers: BlockNumbers) -> Blocks:
        return self._physical_read_summed(numbers)[0]

    def _physical_read_summed(self, numbers: BlockNumbers) -> tuple[Blocks, Checksums]:
        """Verified aggregate blocks (checked numbers) and their content sums."""
        if len(self._groups) == 1:
            return self._groups[0].read_blocks_summed(numbers)
        out = np.empty((numbers.size, BLOCK_SIZE), dtype=np.uint8)
        sums = np.empty(numbers.size, dtype=np.uint64)
        for index, where in self._split(numbers):
            part = numbers[where] - self._starts[index]
            out[where], sums[where] = self._groups[index].read_blocks_summed(part)
        return out, sums

    def _physical_write(
        self, numbers: BlockNumbers, data: Blocks, sums: Checksums | None = None
    ) -> None:
        """Store aggregate blocks (checked, distinct numbers), with their content sums if known."""
        if len(self._groups) == 1:
            if sums is None:
                self._groups[0].write_blocks(numbers, data)
            else:
                self._groups[0].write_blocks_summed(numbers, data, sums)
            return
        for index, where in self._split(numbers):
            group, part = self._groups[index], numbers[where] - self._starts[index]
            if sums is None:
                group.write_blocks(part, data[where])
            else:
                group.write_blocks_summed(part, data[where], sums[where])

    def read_blocks(self, numbers: BlockNumbers) -> Blocks:
        """Verified contents of aggregate blocks (any, reserved included)."""
        nums = as_block_numbers(numbers, self.block_count, f"aggregate {self.name!r} read")
        return self._physical_read(nums)

    def read_block(self, number: int) -> bytes:
        """Verified contents of one aggregate block."""
        return bytes(self.read_blocks(np.array([number], dtype=np.int64))[0].tobytes())

    def write_blocks(self, numbers: BlockNumbers, data: Blocks) -> None:
        """Store aggregate blocks; the reserved metadata area is refused (InvalidArgumentError)."""
        nums = as_block_numbers(numbers, self.block_count, f"aggregate {self.name!r} write")
        blocks = as_blocks(data, nums.size, f"aggregate {self.name!r} write")
        if nums.size and int(nums.min()) < self.reserved_blocks:
            raise InvalidArgumentError(
                f"aggregate {self.name!r}: blocks below {self.reserved_blocks} hold its metadata"
            )
        nums, blocks = last_write_wins(nums, blocks)
        self._physical_write(nums, blocks)

    def write_block(self, number: int, data: bytes) -> None:
        """Store one aggregate block."""
        block = block_from_bytes(data, f"aggregate {self.name!r} write")
        self.write_blocks(np.array([number], dtype=np.int64), block)

    def _prepare(self, taken: Sequence[Extent]) -> int:
        """Zero the blocks of ``taken`` that lie below the high-water mark (they may hold an old
        space's data); return the high-water mark after handing ``taken`` out."""
        below = [(s, min(n, self._high_water - s)) for s, n in taken if s < self._high_water]
        numbers = np.concatenate(
            [np.arange(s, s + n, dtype=np.int64) for s, n in below] or [np.zeros(0, np.int64)]
        )
        zeros = np.zeros((min(_ZERO_CHUNK, max(1, numbers.size)), BLOCK_SIZE), dtype=np.uint8)
        for start in range(0, numbers.size, _ZERO_CHUNK):
            part = numbers[start : start + _ZERO_CHUNK]
            self._physical_write(part, zeros[: part.size])
        return max([self._high_water, *(s + n for s, n in taken)])

    # -- volume spaces --

    def _take(self, table: dict[str, list[Extent]], count: int) -> list[Extent]:
        """First-fit runs totalling ``count`` free blocks, or OutOfSpaceError."""
        taken: list[Extent] = []
        need = count
        for start, length in self._free_runs(table):
            if need == 0:
                break
            use = min(length, need)
            taken.append((start, use))
            need -= use
        if need:
            free = sum(n for _, n in self._free_runs(table))
            raise OutOfSpaceError(
                f"aggregate {self.name!r}: {count} blocks requested, {free} free; "
                "add a RAID group (Aggregate.add_raid_group) or shrink/delete a space"
            )
        return taken

    def create_space(self, name: str, block_count: int) -> AggregateSpace:
        """A new volume space of ``block_count`` zero blocks (AlreadyExistsError,
        OutOfSpaceError)."""
        _check_name(name)
        _check_count(block_count)
        if name in self._table:
            raise AlreadyExistsError(f"aggregate {self.name!r} already has a space {name!r}")
        table = {k: list(v) for k, v in self._table.items()}
        taken = self._take(table, int(block_count))
        table[name] = _coalesce(taken)
        self._commit(table, self._generation + 1, self._prepare(taken))
        return self.space(name)

    def space(self, name: str) -> AggregateSpace:
        """The volume space called ``name`` (NotFoundError)."""
        if name not in self._table:
            raise NotFoundError(
                f"aggregate {self.name!r} has no space {name!r}; it has {sorted(self._table)}"
            )
        handle = self._handles.get(name)
        if handle is None:
            handle = AggregateSpace(self, name)
            self._handles[name] = handle
        return handle

    def spaces(self) -> tuple[str, ...]:
        """Names of the volume spaces, sorted."""
        return tuple(sorted(self._table))

    def delete_space(self, name: str) -> None:
        """Remove a space and give its blocks back to the free pool."""
        self.extents(name)  # NotFoundError
        table = {k: list(v) for k, v in self._table.items() if k != name}
        self._commit(table, self._generation + 1)
        self._handles.pop(name, None)

    def extents(self, name: str) -> list[Extent]:
        """The extents of space ``name`` in volume order (NotFoundError)."""
        if name not in self._table:
            raise NotFoundError(f"aggregate {self.name!r} has no space {name!r}")
        return list(self._table[name])

    def resize_space(self, name: str, block_count: int) -> None:
        """Grow (first-fit, OutOfSpaceError when full) or shrink (the tail blocks are freed)."""
        _check_count(block_count)
        extents = self.extents(name)
        current = sum(n for _, n in extents)
        table = {k: list(v) for k, v in self._table.items()}
        high_water = None
        if block_count > current:
            taken = self._take(table, int(block_count) - current)
            grown = extents + taken
            merged: list[Extent] = []
            for start, length in grown:  # merge only neighbours in volume order
                if merged and merged[-1][0] + merged[-1][1] == start:
                    merged[-1] = (merged[-1][0], merged[-1][1] + length)
                else:
                    merged.append((start, length))
            table[name] = merged
            high_water = self._prepare(taken)
        elif block_count < current:
            keep, remaining = [], int(block_count)
            for start, length in extents:
                use = min(length, remaining)
                if use:
                    keep.append((start, use))
                remaining -= use
            table[name] = keep
        else:
            return
        self._commit(table, self._generation + 1, high_water)

    def _runs_of(self, name: str, numbers: BlockNumbers) -> list[_Run] | None:
        """The volume blocks ``numbers`` of space ``name`` as runs of consecutive blocks, each
        inside one extent and one RAID group: ``(group index, the group's first logical block,
        first position, end position)`` in order. None when the numbers are not strictly
        ascending, are scattered (more than one run per 16 blocks), or are bad arguments (the
        caller then takes the general path, which also reports them)."""
        extents = self._table.get(name)
        nums = np.asarray(numbers)
        if extents is None or nums.ndim != 1 or nums.dtype.kind not in "iu" or nums.size == 0:
            return None
        count = int(nums.size)
        first, last = int(nums[0]), int(nums[-1])
        if first < 0 or last >= sum(n for _, n in extents):
            return None
        if last - first == count - 1 and (count < 3 or run_start(nums) is not None):
            bounds = [0, count]
        else:
            step = nums[1:] - nums[:-1]
            if not bool((step > 0).all()):
                return None
            breaks = np.flatnonzero(step != 1) + 1
            if breaks.size + 1 > max(1, count // 16):
                return None
            bounds = [0, *breaks.tolist(), count]
        runs: list[_Run] = []
        offsets = [0]
        for _, length in extents:
            offsets.append(offsets[-1] + length)
        for lo, hi in itertools.pairwise(bounds):
            at = lo
            while at < hi:  # split the run at extent and RAID group boundaries
                volume_block = int(nums[lo]) + (at - lo)
                e = bisect.bisect_right(offsets, volume_block) - 1
                block = extents[e][0] + volume_block - offsets[e]
                g = bisect.bisect_right(self._starts, block) - 1
                local = block - self._starts[g]
                take = min(
                    hi - at, offsets[e + 1] - volume_block, self._groups[g].block_count - local
                )
                runs.append((g, local, at, at + take))
                at += take
        return runs

    def _map(self, name: str, numbers: BlockNumbers) -> BlockNumbers:
        """Volume block numbers of space ``name`` -> aggregate block numbers."""
        extents = self._table[name]
        starts = np.array([s for s, _ in extents], dtype=np.int64)
        lengths = np.array([n for _, n in extents], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        which = np.searchsorted(offsets, numbers, side="right") - 1
        return np.asarray(starts[which] + (numbers - offsets[which]), dtype=np.int64)

    # -- RAID maintenance --

    def add_raid_group(
        self,
        level: RaidLevel | None = None,
        data_disks: int | None = None,
        blocks_per_disk: int | None = None,
        *,
        chunk_blocks: int | None = None,
        prime: int | None = None,
    ) -> RaidGroup:
        """Grow the aggregate by one RAID group (defaults: like the first group); its blocks
        become free space at the end of the aggregate."""
        first = self._specs[0]
        spec = self._spec(
            len(self._groups),
            first.level if level is None else level,
            first.data_disks if data_disks is None else data_disks,
            first.blocks_per_disk if blocks_per_disk is None else blocks_per_disk,
            first.chunk_blocks if chunk_blocks is None else chunk_blocks,
            (first.prime if level in (None, first.level) and data_disks is None else None)
            if prime is None
            else prime,
        )
        self._build(spec, [MemoryDisk(d, spec.blocks_per_disk) for d in spec.disks])  # validate
        if self.directory is None:
            disks: list[Disk] = [
                MemoryDisk(f"{self.name}.{d}", spec.blocks_per_disk) for d in spec.disks
            ]
        else:
            disks = [
                FileDisk.create(self.directory / d, f"{self.name}.{d}", spec.blocks_per_disk)
                for d in spec.disks
            ]
        group = self._build(spec, disks)
        self._groups.append(group)
        self._specs.append(spec)
        self._recount()
        self._write_manifest()
        self._commit(self._table, self._generation + 1)
        return group

    def replace_disk(self, group: int, slot: int) -> RebuildReport:
        """Rebuild the failed disk in ``slot`` of RAID group ``group`` onto a new spare disk."""
        return self.replace_disks(group, (slot,))[0]

    def replace_disks(self, group: int, slots: Sequence[int]) -> tuple[RebuildReport, ...]:
        """Rebuild the failed disks in ``slots`` of RAID group ``group`` onto new spare disks,
        in one pass over the survivors (:meth:`RaidGroup.rebuild_all`); the manifest then names
        the spares. If the rebuild fails (a slot that has not failed, or more failures than the
        group tolerates), the spares are removed again and nothing changes."""
        if not 0 <= group < len(self._groups):
            raise InvalidArgumentError(f"aggregate {self.name!r} has no RAID group {group}")
        raid, spec = self._groups[group], self._specs[group]
        if not slots or len(set(slots)) != len(slots):
            raise InvalidArgumentError(
                f"RAID group {spec.name!r}: give each slot once, got {slots}"
            )
        for slot in slots:
            if not 0 <= slot < len(spec.disks):
                raise InvalidArgumentError(f"RAID group {spec.name!r} has no disk slot {slot}")
        existing = set(spec.disks)
        names: dict[int, str] = {}
        for slot in slots:
            base = spec.disks[slot].split(".r")[0].removesuffix(".disk")
            serial = 1
            while f"{base}.r{serial}.disk" in existing:
                serial += 1
            names[slot] = f"{base}.r{serial}.disk"
            existing.add(names[slot])
        spares: dict[int, Disk] = {}
        try:
            for slot, file_name in names.items():
                if self.directory is None:
                    spares[slot] = MemoryDisk(f"{self.name}.{file_name}", spec.blocks_per_disk)
                else:
                    spares[slot] = FileDisk.create(
                        self.directory / file_name,
                        f"{self.name}.{file_name}",
                        spec.blocks_per_disk,
                    )
            reports = raid.rebuild_all(spares)
        except BaseException:
            for spare in spares.values():  # nothing refers to them: remove them again
                spare.close()
                if isinstance(spare, FileDisk):
                    spare.path.unlink(missing_ok=True)
            raise
        disks = list(spec.disks)
        for slot, file_name in names.items():
            disks[slot] = file_name
        self._specs[group] = GroupSpec(
            spec.name,
            spec.level,
            spec.data_disks,
            spec.blocks_per_disk,
            spec.chunk_blocks,
            spec.prime,
            tuple(disks),
        )
        self._write_manifest()
        return reports

    def scrub(self, *, repair: bool = True) -> list[ScrubReport]:
        """Scrub every RAID group (see :meth:`RaidGroup.scrub`)."""
        return [group.scrub(repair=repair) for group in self._groups]

    def flush(self) -> None:
        """Make every completed write durable (file-backed disks)."""
        for group in self._groups:
            group.flush()

    def close(self) -> None:
        """Flush and close every disk; the aggregate must not be used afterwards."""
        for group in self._groups:
            for disk in group.disks:
                if not disk.failed:
                    disk.close()

    def __repr__(self) -> str:
        where = "memory" if self.directory is None else str(self.directory)
        return (
            f"Aggregate({self.name!r}, {len(self._groups)} RAID group(s), {self.block_count} "
            f"blocks, {self.free_blocks} free, {len(self._table)} space(s), {where})"
        )


class AggregateSpace:
    """A named volume space of an aggregate: the VolumeSpace protocol over extents.

    A handle, not the owner: the extents live in the aggregate's space table, so a handle sees
    resizes made through any other handle; after the space is deleted every call raises
    NotFoundError.
    """

    def __init__(self, aggregate: Aggregate, name: str) -> None:
        self._aggregate = aggregate
        self._name = name

    @property
    def name(self) -> str:
        """The space's name in its aggregate."""
        return self._name

    @property
    def aggregate(self) -> Aggregate:
        """The aggregate the space lives in."""
        return self._aggregate

    @property
    def block_count(self) -> int:
        """Volume blocks in the space."""
        return sum(n for _, n in self._aggregate.extents(self._name))

    @property
    def extents(self) -> list[Extent]:
        """(first aggregate block, length) runs in volume order."""
        return self._aggregate.extents(self._name)

    def resize(self, block_count: int) -> None:
        """Grow (OutOfSpaceError when the aggregate is full, nothing changed) or shrink (the tail
        blocks go back to the aggregate; their contents are lost)."""
        self._aggregate.resize_space(self._name, block_count)

    def to_aggregate(self, numbers: BlockNumbers) -> BlockNumbers:
        """Volume block numbers -> aggregate block numbers."""
        nums = as_block_numbers(numbers, self.block_count, f"space {self._name!r}")
        return self._aggregate._map(self._name, nums)

    def read_blocks(self, numbers: BlockNumbers) -> Blocks:
        """Verified contents of volume blocks, in the order of ``numbers``."""
        return self.read_blocks_summed(numbers)[0]

    def read_blocks_summed(self, numbers: BlockNumbers) -> tuple[Blocks, Checksums]:
        """:meth:`read_blocks` and the content sums the disks verified (runs of consecutive
        blocks go to their RAID groups as runs, read straight into place)."""
        runs = self._aggregate._runs_of(self._name, numbers)
        if runs is None:
            return self._aggregate._physical_read_summed(self.to_aggregate(numbers))
        count = runs[-1][3]
        out = np.empty((count, BLOCK_SIZE), dtype=np.uint8)
        sums = np.empty(count, dtype=np.uint64)
        groups = self._aggregate.raid_groups
        for g, first, lo, hi in runs:
            groups[g].read_run_into(first, out[lo:hi], sums[lo:hi])
        return out, sums

    def _write_runs(self, runs: list[_Run], data: Blocks, sums: Checksums | None) -> None:
        """Write the runs of a request, group by group (each group reads all it needs first)."""
        groups = self._aggregate.raid_groups
        by_group: dict[int, list[tuple[int, Blocks, Checksums | None]]] = {}
        for g, first, lo, hi in runs:
            part = None if sums is None else sums[lo:hi]
            by_group.setdefault(g, []).append((first, data[lo:hi], part))
        for g, parts in by_group.items():
            groups[g].write_runs(parts)

    def read_block(self, number: int) -> bytes:
        """Verified contents of one volume block."""
        return bytes(self.read_blocks(np.array([number], dtype=np.int64))[0].tobytes())

    def write_blocks(self, numbers: BlockNumbers, data: Blocks) -> None:
        """Store ``data[i]`` at volume block ``numbers[i]`` (the last duplicate wins)."""
        runs = self._aggregate._runs_of(self._name, numbers)
        if runs is not None:
            self._write_runs(
                runs, as_blocks(data, runs[-1][3], f"space {self._name!r} write"), None
            )
            return
        mapped = self.to_aggregate(numbers)
        blocks = as_blocks(data, mapped.size, f"space {self._name!r} write")
        mapped, blocks = last_write_wins(mapped, blocks)
        self._aggregate._physical_write(mapped, blocks)

    def write_blocks_summed(self, numbers: BlockNumbers, data: Blocks, sums: Checksums) -> None:
        """:meth:`write_blocks` for a caller that holds ``content_sums(data)`` already."""
        what = f"space {self._name!r} write"
        runs = self._aggregate._runs_of(self._name, numbers)
        if runs is not None:
            count = runs[-1][3]
            self._write_runs(runs, as_blocks(data, count, what), as_sums(sums, count, what))
            return
        mapped = self.to_aggregate(numbers)
        blocks = as_blocks(data, mapped.size, what)
        checked = as_sums(sums, mapped.size, what)
        self._aggregate._physical_write(*last_write_wins_summed(mapped, blocks, checked))

    def write_block(self, number: int, data: bytes) -> None:
        """Store one volume block (exactly ``BLOCK_SIZE`` bytes)."""
        block = block_from_bytes(data, f"space {self._name!r} write")
        self.write_blocks(np.array([number], dtype=np.int64), block)

    def __repr__(self) -> str:
        return f"AggregateSpace({self._name!r}, {self.block_count} blocks)"
