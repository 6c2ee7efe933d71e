"""Disks: the bottom layer, fixed 4 KiB blocks with a stored checksum each, and injectable faults.

A disk (seed: a mass storage device) is a :class:`~xvol.reference.storage.block.BlockSpace` of
``block_count`` blocks. Every block is stored together with its 64-bit checksum
(:mod:`.checksum`, which mixes in the block number) and every read recomputes and compares it, so a
disk never returns bytes that differ from what was written: it returns them or raises.

Two kinds of disk share one class, :class:`Disk`, which owns the contract, the I/O counters and
the faults, and differ only in where the bytes live:

* :class:`MemoryDisk` keeps the blocks in a ``numpy.zeros`` array (the operating system hands out
  zero pages lazily, so a large, mostly untouched disk costs little memory) and the checksums in a
  parallel ``uint64`` array. It vanishes with the process.
* :class:`FileDisk` keeps them in one file: a header block, the data blocks, then the checksum
  area. Both regions are memory-mapped. **Persistence contract:** a completed ``write_*`` call is
  in the operating system's page cache, so it survives the writing *process* being killed; it
  survives a machine crash or power loss only after :meth:`Disk.flush` (``msync`` + ``fsync``)
  returns. A write stores the data before the checksum, so a write torn by a crash shows up as a
  checksum mismatch on the next read, never as silently wrong data.

Faults (for tests, teaching and experiments; they live in the process, not on the medium, except
bit flips, which really change the stored bytes):

* **fail-stop** (:meth:`Disk.fail`): every later I/O raises :class:`DiskFailedError`, which
  names the disk;
* **latent sector errors** (:meth:`Disk.inject_latent_error`): reads of the chosen blocks raise
  :class:`LatentSectorError`; a later write of the block clears it, as a drive remaps the sector;
* **silent bit flips** (:meth:`Disk.flip_bit`): the stored bytes change but the checksum does not,
  so the next read raises :class:`ChecksumMismatchError`.

The RAID layer reads with :meth:`Disk.read_blocks_tolerant`, which returns the good blocks and a
mask of the unreadable ones instead of raising, so it can treat each bad block as an erasure.
Bulk paths: every read verifies with the block's *content sum* (:func:`.checksum.content_sums`)
and hands it up (:meth:`Disk.read_blocks_summed`); a write given the content sums stores them
mixed with the block numbers without reading the bytes again (:meth:`Disk.write_blocks_summed`).
A request for one ascending run of blocks is served with slices of the storage, not with a
gather or scatter of single blocks. The RAID layer's bulk paths go further: they read and write
whole RAID-4 stripes through all the disks' arrays at once (:meth:`Disk._kernel_arrays`),
verifying, summing and folding the parity in the same pass as the copy (:mod:`.kernels`).

Uses: numpy, :mod:`.block`, :mod:`.checksum`, :mod:`.kernels`, :mod:`xvol.errors`.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from xvol.errors import (
    AlreadyExistsError,
    DeviceError,
    IntegrityError,
    InvalidArgumentError,
    StateError,
)
from xvol.reference.storage.block import BLOCK_SIZE, BlockNumbers, Blocks
from xvol.reference.storage.checksum import (
    Checksums,
    content_sums,
    mix_numbers,
    zero_block_checksums,
)
from xvol.reference.storage.kernels import Words

# ---------------------------------------------------------------------------------------------
# Errors: each names the disk (and the blocks) so that the RAID layer and people can act on it.


class DiskFailedError(DeviceError):
    """The disk has failed (fail-stop): it serves no I/O until it is replaced."""

    def __init__(self, disk: str) -> None:
        super().__init__(f"disk {disk!r} has failed; replace it (RAID rebuild onto a spare)")
        self.disk = disk


class LatentSectorError(DeviceError):
    """Some blocks of a working disk cannot be read (a latent sector error)."""

    def __init__(self, disk: str, blocks: list[int]) -> None:
        super().__init__(
            f"disk {disk!r}: unreadable block(s) {blocks[:8]}{' ...' if len(blocks) > 8 else ''}"
            " (latent sector error); rewrite them from redundancy"
        )
        self.disk = disk
        self.blocks = blocks


class ChecksumMismatchError(IntegrityError):
    """Stored bytes of some blocks do not match their stored checksum (silent corruption)."""

    def __init__(self, disk: str, blocks: list[int]) -> None:
        super().__init__(
            f"disk {disk!r}: checksum mismatch on block(s) {blocks[:8]}"
            f"{' ...' if len(blocks) > 8 else ''}; repair them from redundancy"
        )
        self.disk = disk
        self.blocks = blocks


# ---------------------------------------------------------------------------------------------
# Argument checks shared by every block space of this package.


def as_block_numbers(numbers: npt.ArrayLike, block_count: int, what: str) -> BlockNumbers:
    """``numbers`` as a 1-D int64 array, or InvalidArgumentError if any is outside the space."""
    array = np.asarray(numbers)
    if array.ndim != 1 or not (array.size == 0 or np.issubdtype(array.dtype, np.integer)):
        raise InvalidArgumentError(f"{what}: block numbers must be a 1-D integer array")
    result = array.astype(np.int64, copy=False)
    if result.size and (int(result.min()) < 0 or int(result.max()) >= block_count):
        bad = result[(result < 0) | (result >= block_count)]
        raise InvalidArgumentError(
            f"{what}: block number(s) {bad[:8].tolist()} outside 0..{block_count - 1}"
        )
    return result


def as_blocks(data: npt.ArrayLike, count: int, what: str) -> Blocks:
    """``data`` as a C-contiguous (count, BLOCK_SIZE) uint8 array, or InvalidArgumentError."""
    array = np.asarray(data)
    if array.dtype != np.uint8 or array.shape != (count, BLOCK_SIZE):
        raise InvalidArgumentError(
            f"{what}: data must be a uint8 array of shape ({count}, {BLOCK_SIZE}), "
            f"got {array.dtype} {array.shape}"
        )
    return np.ascontiguousarray(array)


def block_from_bytes(data: bytes, what: str) -> Blocks:
    """One block of bytes as a (1, BLOCK_SIZE) array, or InvalidArgumentError on a wrong size."""
    if not isinstance(data, bytes | bytearray | memoryview) or len(data) != BLOCK_SIZE:
        size = len(data) if isinstance(data, bytes | bytearray | memoryview) else type(data)
        raise InvalidArgumentError(f"{what}: a block is exactly {BLOCK_SIZE} bytes, got {size}")
    return np.frombuffer(bytes(data), dtype=np.uint8).reshape(1, BLOCK_SIZE).copy()


def last_write_wins(numbers: BlockNumbers, data: Blocks) -> tuple[BlockNumbers, Blocks]:
    """Drop earlier duplicates of a batch write so that the last write of each block wins."""
    keep = _last_writes(numbers)
    if keep is None:
        return numbers, data
    return numbers[keep], data[keep]


def _last_writes(numbers: BlockNumbers) -> npt.NDArray[np.intp] | None:
    """Positions of the last write of each block, in order; None when there is no duplicate."""
    if numbers.size < 2 or bool((numbers[1:] > numbers[:-1]).all()):
        return None  # strictly ascending (the bulk paths' case): no duplicate, no sort
    unique, first = np.unique(numbers[::-1], return_index=True)
    if unique.size == numbers.size:
        return None
    return np.sort(numbers.size - 1 - first)


def last_write_wins_summed(
    numbers: BlockNumbers, data: Blocks, sums: Checksums
) -> tuple[BlockNumbers, Blocks, Checksums]:
    """:func:`last_write_wins` for a write that carries content sums."""
    keep = _last_writes(numbers)
    if keep is None:
        return numbers, data, sums
    return numbers[keep], data[keep], sums[keep]


def as_sums(sums: npt.ArrayLike, count: int, what: str) -> Checksums:
    """``sums`` as a (count,) uint64 array, or InvalidArgumentError."""
    array = np.asarray(sums)
    if array.dtype != np.uint64 or array.shape != (count,):
        raise InvalidArgumentError(
            f"{what}: content sums must be a uint64 array of shape ({count},), "
            f"got {array.dtype} {array.shape}"
        )
    return array


def run_start(numbers: BlockNumbers) -> int | None:
    """The first number if ``numbers`` is one non-empty ascending run ``a, a+1, ...``, else
    None (bulk I/O then uses slices instead of a gather or scatter)."""
    n = numbers.size
    if n == 0:
        return None
    first = int(numbers[0])
    if int(numbers[-1]) - first != n - 1:
        return None
    if n > 2 and not bool((numbers[1:] - numbers[:-1] == 1).all()):
        return None
    return first


# ---------------------------------------------------------------------------------------------
# The disk contract, counters and faults.


@dataclass
class IOCounters:
    """Block I/Os a disk has served since creation or the last :meth:`Disk.reset_counters`.

    ``reads`` and ``writes`` count blocks (one I/O per block); failed requests on a fail-stopped
    disk are not counted, reads that hit a latent error or a checksum mismatch are.
    """

    reads: int = 0
    writes: int = 0
    bytes_read: int = 0
    bytes_written: int = 0


class Disk:
    """A block device: fixed-size checksummed blocks, I/O counters and injectable faults.

    Invariant: ``_sums[n] == checksum(block n, n)`` for every block ``n`` unless a fault was
    injected (bit flip) or a crash tore a write. Life cycle: created (all blocks zero, with valid
    checksums) -> read/written -> possibly failed (then it serves nothing; the RAID layer replaces
    it) -> closed. Subclasses provide the storage: ``_data`` ((block_count, BLOCK_SIZE) uint8)
    and ``_sums`` ((block_count,) uint64) arrays or array-likes.
    """

    _data: npt.NDArray[np.uint8]
    _sums: npt.NDArray[np.uint64]

    def __init__(self, name: str, block_count: int) -> None:
        if not name or not isinstance(name, str):
            raise InvalidArgumentError(f"a disk needs a non-empty name, got {name!r}")
        if not isinstance(block_count, int) or block_count <= 0:
            raise InvalidArgumentError(f"disk {name!r}: block_count must be > 0, got {block_count}")
        self._name = name
        self._block_count = block_count
        self.counters = IOCounters()
        self._failed = False
        self._latent: set[int] = set()
        self._mix: Checksums | None = None

    # -- identity and state ------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The disk's name, used in every error it raises."""
        return self._name

    @property
    def block_count(self) -> int:
        """Number of blocks on the disk."""
        return self._block_count

    @property
    def failed(self) -> bool:
        """True once :meth:`fail` was called: the disk serves no I/O."""
        return self._failed

    def __repr__(self) -> str:
        state = "failed" if self._failed else "ok"
        return f"{type(self).__name__}({self._name!r}, {self._block_count} blocks, {state})"

    # -- faults ------------------------------------------------------------------------------

    def fail(self) -> None:
        """Fail-stop the disk: from now on every I/O raises :class:`DiskFailedError`."""
        self._failed = True

    def inject_latent_error(self, number: int) -> None:
        """Make reads of block ``number`` raise :class:`LatentSectorError` until it is rewritten."""
        as_block_numbers([number], self._block_count, f"disk {self._name!r} latent error")
        self._latent.add(int(number))

    @property
    def latent_errors(self) -> frozenset[int]:
        """Blocks that currently have a latent sector error."""
        return frozenset(self._latent)

    def flip_bit(self, number: int, bit: int) -> None:
        """Flip bit ``bit`` (0 .. 8*BLOCK_SIZE-1) of the stored block ``number``, leaving its
        checksum as it was: silent corruption that the next read detects."""
        as_block_numbers([number], self._block_count, f"disk {self._name!r} bit flip")
        if not 0 <= bit < 8 * BLOCK_SIZE:
            raise InvalidArgumentError(f"bit must be in 0..{8 * BLOCK_SIZE - 1}, got {bit}")
        self._data[number, bit // 8] ^= np.uint8(1 << (bit % 8))

    def reset_counters(self) -> None:
        """Zero the I/O counters."""
        self.counters = IOCounters()

    # -- I/O ---------------------------------------------------------------------------------

    def _check_alive(self) -> None:
        if self._failed:
            raise DiskFailedError(self._name)

    def _mixes(self, nums: BlockNumbers | None, first: int, count: int) -> Checksums:
        """``mix_numbers`` of the block numbers, from a table of the whole disk (8 bytes per
        block, built on first use): of ``nums``, or (``nums`` None) of ``first, ..., first +
        count - 1`` as a slice."""
        if self._mix is None:
            self._mix = mix_numbers(np.arange(self._block_count, dtype=np.int64))
        if nums is not None:
            return self._mix[nums]
        return self._mix[first : first + count]

    def _check_run(self, first: int, count: int, what: str) -> None:
        if count < 1 or first < 0 or first + count > self._block_count:
            raise InvalidArgumentError(
                f"disk {self._name!r} {what}: run of {count} block(s) from {first} outside "
                f"0..{self._block_count - 1}"
            )

    def read_verified(
        self, numbers: npt.ArrayLike
    ) -> tuple[Blocks, Checksums, npt.NDArray[np.bool_]]:
        """The bulk read under the others: ``(data, sums, bad)`` where ``sums[i]`` is the
        content sum of ``data[i]`` and ``bad[i]`` marks a block with a latent error or a
        checksum mismatch. Without a copy: for one ascending run ``data`` is a read-only view
        of the disk's storage, valid until the next write, and bad rows hold the stored bytes,
        so the caller must copy what it keeps and never use a bad row. Raises
        :class:`DiskFailedError` if the disk has failed."""
        self._check_alive()
        nums = as_block_numbers(numbers, self._block_count, f"disk {self._name!r} read")
        first = run_start(nums)
        if first is not None:
            return self._verified(None, first, nums.size)
        return self._verified(nums, 0, nums.size)

    def read_run(self, first: int, count: int) -> tuple[Blocks, Checksums, npt.NDArray[np.bool_]]:
        """:meth:`read_verified` of blocks ``first .. first + count - 1`` (a view, no copy)."""
        self._check_alive()
        self._check_run(first, count, "read")
        return self._verified(None, first, count)

    def _verified(
        self, nums: BlockNumbers | None, first: int, count: int
    ) -> tuple[Blocks, Checksums, npt.NDArray[np.bool_]]:
        """Read and verify ``nums`` (a gather) or, when None, the run ``first`` + ``count``."""
        if nums is None:
            data: Blocks = self._data[first : first + count].view()
            data.flags.writeable = False
            stored = self._sums[first : first + count]
        else:
            data = self._data[nums]
            stored = self._sums[nums]
        sums = content_sums(data)
        bad = (sums ^ self._mixes(nums, first, count)) != stored
        if self._latent:
            where = np.arange(first, first + count, dtype=np.int64) if nums is None else nums
            bad |= np.isin(where, np.fromiter(self._latent, dtype=np.int64))
        self.counters.reads += count
        self.counters.bytes_read += count * BLOCK_SIZE
        return data, sums, bad

    def _kernel_arrays(self) -> tuple[Words, Checksums, Checksums]:
        """The disk's blocks as 64-bit words, its stored checksums and the mixes of its block
        numbers: plain array views for the RAID layer's stripe kernels (:mod:`.kernels`), which
        read and write the disk through them. Whoever does counts the I/O
        (:meth:`_count_io`) and only uses a working disk without latent errors."""
        self._check_alive()
        if self._mix is None:
            self._mix = mix_numbers(np.arange(self._block_count, dtype=np.int64))
        words: Words = np.asarray(self._data).view(np.uint64)
        return words, np.asarray(self._sums), self._mix

    def _count_io(self, reads: int, writes: int) -> None:
        """Count block I/O done through :meth:`_kernel_arrays`."""
        self.counters.reads += reads
        self.counters.bytes_read += reads * BLOCK_SIZE
        self.counters.writes += writes
        self.counters.bytes_written += writes * BLOCK_SIZE

    def read_blocks_tolerant(self, numbers: npt.ArrayLike) -> tuple[Blocks, npt.NDArray[np.bool_]]:
        """Read many blocks; return ``(data, bad)`` where ``bad[i]`` marks a block that had a
        latent error or a checksum mismatch (its ``data[i]`` is zeros, never the stored bytes).
        Raises :class:`DiskFailedError` if the disk has failed."""
        view, _, bad = self.read_verified(numbers)
        data: Blocks = view if view.flags.writeable else np.array(view, dtype=np.uint8)
        if bad.any():
            data[bad] = 0
        return data, bad

    def read_blocks_summed(self, numbers: BlockNumbers) -> tuple[Blocks, Checksums]:
        """Verified contents of many blocks and their content sums; raises the first fault it
        meets (typed)."""
        view, sums, bad = self.read_verified(numbers)
        if bad.any():
            nums = np.asarray(numbers, dtype=np.int64)[bad]
            latent = [int(n) for n in nums if int(n) in self._latent]
            if latent:
                raise LatentSectorError(self._name, latent)
            raise ChecksumMismatchError(self._name, [int(n) for n in nums])
        return (view if view.flags.writeable else np.array(view, dtype=np.uint8)), sums

    def read_blocks(self, numbers: BlockNumbers) -> Blocks:
        """Verified contents of many blocks; raises the first fault it meets (typed)."""
        return self.read_blocks_summed(numbers)[0]

    def read_block(self, number: int) -> bytes:
        """Verified contents of one block."""
        return bytes(self.read_blocks(np.array([number], dtype=np.int64))[0].tobytes())

    def write_blocks(self, numbers: BlockNumbers, data: Blocks) -> None:
        """Store ``data[i]`` with its checksum at ``numbers[i]`` (the last duplicate wins); clears
        latent errors of the written blocks."""
        self._check_alive()
        nums = as_block_numbers(numbers, self._block_count, f"disk {self._name!r} write")
        blocks = as_blocks(data, nums.size, f"disk {self._name!r} write")
        nums, blocks = last_write_wins(nums, blocks)
        self._store(nums, blocks, content_sums(blocks))

    def write_blocks_summed(self, numbers: BlockNumbers, data: Blocks, sums: Checksums) -> None:
        """:meth:`write_blocks` for a caller that holds the content sums of ``data`` already
        (``sums[i] == content_sums(data)[i]``): they are stored without reading the bytes."""
        self._check_alive()
        what = f"disk {self._name!r} write"
        nums = as_block_numbers(numbers, self._block_count, what)
        blocks = as_blocks(data, nums.size, what)
        self._store(*last_write_wins_summed(nums, blocks, as_sums(sums, nums.size, what)))

    def _store(self, nums: BlockNumbers, blocks: Blocks, sums: Checksums) -> None:
        """The bulk write under the others (the RAID layer calls it directly), for callers that
        checked their arguments (distinct
        block numbers in range; ``blocks`` any ``(k, BLOCK_SIZE)`` uint8 array, strided views
        included; ``sums`` its content sums): data first, then the checksums (content sum mixed
        with the block number), so a torn write is detectable."""
        self._check_alive()
        first = run_start(nums)
        if first is not None:
            self._store_run(first, blocks, sums)
            return
        self._data[nums] = blocks
        self._sums[nums] = sums ^ self._mixes(nums, 0, nums.size)
        if self._latent:
            self._latent.difference_update(int(n) for n in nums)
        self.counters.writes += int(nums.size)
        self.counters.bytes_written += int(nums.size) * BLOCK_SIZE

    def _store_run(self, first: int, blocks: Blocks, sums: Checksums) -> None:
        """:meth:`_store` of the run of ``len(blocks)`` blocks from ``first`` (in range)."""
        self._check_alive()
        count = len(blocks)
        self._data[first : first + count] = blocks
        self._sums[first : first + count] = sums ^ self._mixes(None, first, count)
        if self._latent:
            self._latent.difference_update(range(first, first + count))
        self.counters.writes += count
        self.counters.bytes_written += count * BLOCK_SIZE

    def write_block(self, number: int, data: bytes) -> None:
        """Store one block (exactly ``BLOCK_SIZE`` bytes) with its checksum."""
        block = block_from_bytes(data, f"disk {self._name!r} write")
        self.write_blocks(np.array([number], dtype=np.int64), block)

    def stored_checksums(self, numbers: BlockNumbers) -> Checksums:
        """The checksums stored with ``numbers`` (not verified; for scrubbing and tests)."""
        nums = as_block_numbers(numbers, self._block_count, f"disk {self._name!r} checksums")
        return np.asarray(self._sums[nums], dtype=np.uint64)

    def flush(self) -> None:
        """Make every completed write durable (a no-op for memory disks)."""

    def close(self) -> None:
        """Flush and release the storage; the disk must not be used afterwards."""
        self.flush()


class MemoryDisk(Disk):
    """A disk whose blocks live in process memory (lazily zero-filled by the OS)."""

    def __init__(self, name: str, block_count: int) -> None:
        super().__init__(name, block_count)
        self._data = np.zeros((block_count, BLOCK_SIZE), dtype=np.uint8)
        self._sums = zero_block_checksums(np.arange(block_count, dtype=np.int64))

    def prefault(self) -> None:
        """Touch every page of the disk's memory now (contents unchanged), so that later
        writes do not pay the operating system's first-touch page faults, as a preallocated
        device would not (benchmarks call it before they time anything)."""
        first_bytes = self._data.reshape(-1)[::4096]  # one byte of every 4 KiB page
        np.copyto(first_bytes, first_bytes.copy())  # (numpy skips a copy onto itself)


# ---------------------------------------------------------------------------------------------
# File-backed disks. File layout (all little-endian):
#   block 0:            header: magic, format version, block_count, name (UTF-8, <= 255 bytes)
#   blocks 1..N:        data blocks 0..N-1
#   after the data:     N uint64 checksums, padded to a whole block

_MAGIC = b"XVOLDISK"
_VERSION = 1
_HEADER = struct.Struct("<8sIQH")


class FileDisk(Disk):
    """A disk stored in one file that persists across processes (see the module's contract)."""

    def __init__(self, path: Path, name: str, block_count: int) -> None:
        """Map an existing, already validated disk file; use :meth:`create` or :meth:`open`."""
        super().__init__(name, block_count)
        self._path = path
        self._data = np.memmap(
            path, dtype=np.uint8, mode="r+", offset=BLOCK_SIZE, shape=(block_count, BLOCK_SIZE)
        )
        self._sums = np.memmap(
            path,
            dtype=np.uint64,
            mode="r+",
            offset=BLOCK_SIZE * (1 + block_count),
            shape=(block_count,),
        )
        self._closed = False

    @property
    def path(self) -> Path:
        """The file holding the disk."""
        return self._path

    @staticmethod
    def _file_size(block_count: int) -> int:
        sum_blocks = -(-8 * block_count // BLOCK_SIZE)
        return BLOCK_SIZE * (1 + block_count + sum_blocks)

    @classmethod
    def create(cls, path: str | os.PathLike[str], name: str, block_count: int) -> FileDisk:
        """Create a new zero-filled disk file at ``path`` and return it open
        (:class:`AlreadyExistsError` if the file exists)."""
        target = Path(path)
        encoded = name.encode()
        if not name or len(encoded) > 255:
            raise InvalidArgumentError(f"a disk name must have 1..255 UTF-8 bytes, got {name!r}")
        if not isinstance(block_count, int) or block_count <= 0:
            raise InvalidArgumentError(f"disk {name!r}: block_count must be > 0, got {block_count}")
        if target.exists():
            raise AlreadyExistsError(f"disk file {target} exists already; open it instead")
        header = _HEADER.pack(_MAGIC, _VERSION, block_count, len(encoded)) + encoded
        with open(target, "xb") as handle:
            handle.write(header.ljust(BLOCK_SIZE, b"\0"))
            handle.truncate(cls._file_size(block_count))
        disk = cls(target, name, block_count)
        disk._sums[:] = zero_block_checksums(np.arange(block_count, dtype=np.int64))
        disk.flush()
        return disk

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> FileDisk:
        """Open an existing disk file; InvalidArgumentError if it is not one."""
        target = Path(path)
        try:
            with open(target, "rb") as handle:
                head = handle.read(BLOCK_SIZE)
        except OSError as exc:
            raise InvalidArgumentError(f"cannot open disk file {target}: {exc}") from exc
        if len(head) < _HEADER.size:
            raise InvalidArgumentError(f"{target} is not an xvol disk file (too short)")
        magic, version, block_count, name_length = _HEADER.unpack_from(head)
        if magic != _MAGIC or version != _VERSION:
            raise InvalidArgumentError(f"{target} is not an xvol disk file (version {_VERSION})")
        if target.stat().st_size != cls._file_size(block_count):
            raise InvalidArgumentError(f"{target}: size does not match its {block_count} blocks")
        name = head[_HEADER.size : _HEADER.size + name_length].decode()
        return cls(target, name, block_count)

    def flush(self) -> None:
        """``msync`` both mapped regions, then ``fsync`` the file."""
        if getattr(self, "_closed", True):
            return
        data, sums = self._data, self._sums
        if isinstance(data, np.memmap) and isinstance(sums, np.memmap):
            data.flush()
            sums.flush()
        with open(self._path, "rb+") as handle:
            os.fsync(handle.fileno())

    def close(self) -> None:
        """Flush and unmap; later I/O raises :class:`StateError`."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._failed = True
        del self._data
        del self._sums

    def _check_alive(self) -> None:
        if self._closed:
            raise StateError(f"disk {self.name!r} ({self._path}) is closed")
        super()._check_alive()
