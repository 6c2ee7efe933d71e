"""Block checksums: the 64-bit code stored beside every block and checked on every read.

Every block the stack stores carries a checksum (seed: data integrity of the storage devices under
the RAID system), and every transfer above re-checks it. The code is a *position-weighted sum*:
the block is read as 512 little-endian 64-bit words ``w[i]`` and

    checksum(block, n) = (sum_i  C[i] * w[i]  mod 2**64)  XOR  mix(n)

where ``C[i]`` are fixed odd 64-bit constants and ``mix`` is the splitmix64 finaliser of the
block number ``n``. Because every ``C[i]`` is odd (invertible modulo 2**64), any change confined
to one word, in particular any single bit flip, always changes the sum; swapping two words changes
it unless ``(w[i] - w[j]) * (C[i] - C[j])`` vanishes modulo 2**64, which the random constants make
unlikely. Mixing in the block number catches a *misdirected* write: a correct block with its own
checksum stored at the wrong place fails the check there, and so does a swap of two blocks.

In numpy the batch function is one integer matrix-vector product, ``numpy.einsum("ij,j->i",
words, C)`` over ``uint64`` views (the definition the tests hold the code to); the code runs the
same sum as a compiled loop (:func:`.kernels.weighted_sums`), about twice as fast on blocks in
cache, and the disks fuse it with their copies (:mod:`.kernels`). Fletcher-64 over 32-bit words
was measured first and was about ten times slower in numpy, because its modular running sums
need wider intermediates.

The weighted sum alone, before the block number is mixed in, is the block's *content sum*
(:func:`content_sums`): ``checksum = content XOR mix(n)``. It does not depend on where the block
is stored, so one computation serves every layer a block passes through: a disk that verifies a
read has computed the content sum of the bytes it returns, a RAID group derives each member
disk's stored checksum from it (only the block number differs), and a block transfer sends it
and re-checks it at the other site (:mod:`xvol.reference.volume.diff`). Block spaces that can
hand these sums up and take them down offer ``read_blocks_summed`` / ``write_blocks_summed``
(:class:`SummedSpace`); :func:`read_summed` and :func:`write_summed` use them when a space has
them and compute the sums otherwise. The caller of a ``write_blocks_summed`` promises that the
sums are the content sums of exactly those bytes (it has just computed them from the bytes, for
instance while verifying a transfer); a wrong promise cannot return wrong data later, because
the next read then fails its checksum.

Uses: numpy, :mod:`.kernels` (the compiled sum).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from xvol.errors import InvalidArgumentError
from xvol.reference.storage.block import BLOCK_SIZE, BlockNumbers, Blocks, BlockSpace
from xvol.reference.storage.kernels import weighted_sums

Checksums = npt.NDArray[np.uint64]
"""A batch of checksums: a 1-D ``uint64`` array, one per block."""

WORDS_PER_BLOCK = BLOCK_SIZE // 8

_MASK64 = (1 << 64) - 1


def _constants() -> npt.NDArray[np.uint64]:
    """The fixed odd multipliers ``C[i]``: a seeded generator, so they never change between runs."""
    rng = np.random.default_rng(0x5EED_C0DE)
    raw = rng.integers(0, 1 << 63, WORDS_PER_BLOCK, dtype=np.uint64)
    return (raw << np.uint64(1)) | np.uint64(1)


WEIGHTS: npt.NDArray[np.uint64] = _constants()
"""The weights ``C[i]`` of the content sum (odd 64-bit constants, the same in every run)."""


def mix_numbers(numbers: npt.NDArray[np.int64] | npt.NDArray[np.uint64]) -> Checksums:
    """splitmix64 finaliser of each block number: a bijection that spreads nearby numbers apart."""
    with np.errstate(over="ignore"):
        z = numbers.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def content_sums(blocks: Blocks) -> Checksums:
    """The content sum (the weighted sum, no block number) of each of ``blocks``, vectorised;
    ``blocks`` may be a strided view of whole blocks (no copy is made then)."""
    if blocks.ndim != 2 or blocks.shape[1] != BLOCK_SIZE or blocks.dtype != np.uint8:
        raise InvalidArgumentError(
            f"content_sums needs a uint8 array of shape (k, {BLOCK_SIZE}), "
            f"got {blocks.dtype} {blocks.shape}"
        )
    if blocks.strides[1] != 1 or blocks.strides[0] % 8:
        blocks = np.ascontiguousarray(blocks)
    return weighted_sums(blocks.view(np.uint64), WEIGHTS)


def checksum_blocks(blocks: Blocks, numbers: BlockNumbers) -> Checksums:
    """Checksums of ``blocks[i]`` stored at block number ``numbers[i]``, vectorised."""
    if blocks.ndim != 2 or blocks.shape[1] != BLOCK_SIZE or blocks.dtype != np.uint8:
        raise InvalidArgumentError(
            f"checksum_blocks needs a uint8 array of shape (k, {BLOCK_SIZE}), "
            f"got {blocks.dtype} {blocks.shape}"
        )
    if numbers.shape != (blocks.shape[0],):
        raise InvalidArgumentError(
            f"checksum_blocks needs one block number per block: {numbers.shape} numbers "
            f"for {blocks.shape[0]} blocks"
        )
    return content_sums(blocks) ^ mix_numbers(numbers)


def checksum_block(data: bytes | npt.NDArray[np.uint8], number: int) -> int:
    """Checksum of one block of exactly ``BLOCK_SIZE`` bytes stored at block ``number``."""
    array = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes | bytearray) else data
    if array.size != BLOCK_SIZE:
        raise InvalidArgumentError(f"a block is {BLOCK_SIZE} bytes, got {array.size}")
    block = array.reshape(1, BLOCK_SIZE)
    return int(checksum_blocks(block, np.array([number], dtype=np.int64))[0]) & _MASK64


def zero_block_checksums(numbers: BlockNumbers) -> Checksums:
    """Checksums of all-zero blocks at ``numbers`` (the weighted sum of zeros is zero)."""
    return mix_numbers(numbers)


# ---------------------------------------------------------------------------------------------
# Spaces that pass content sums up and down (see the module's docstring).


class SummedSpace(BlockSpace, Protocol):
    """A block space that returns the content sums it verified with every read, and stores
    blocks whose content sums the caller already holds without computing them again."""

    def read_blocks_summed(self, numbers: BlockNumbers) -> tuple[Blocks, Checksums]:
        """Verified contents of many blocks and their content sums."""
        ...

    def write_blocks_summed(self, numbers: BlockNumbers, data: Blocks, sums: Checksums) -> None:
        """Store ``data[i]`` at ``numbers[i]``; ``sums`` must be ``content_sums(data)``."""
        ...


def read_summed(space: BlockSpace, numbers: BlockNumbers) -> tuple[Blocks, Checksums]:
    """Read ``numbers`` from ``space`` with their content sums (computed here when the space
    does not hand them up)."""
    read = getattr(space, "read_blocks_summed", None)  # cheaper than a Protocol isinstance
    if read is not None:
        data, sums = read(numbers)
        return data, sums
    data = space.read_blocks(numbers)
    return data, content_sums(data)


def write_summed(space: BlockSpace, numbers: BlockNumbers, data: Blocks, sums: Checksums) -> None:
    """Write ``data`` to ``numbers`` of ``space``, handing down ``sums`` (``content_sums(data)``,
    already computed by the caller) when the space takes them."""
    write = getattr(space, "write_blocks_summed", None)
    if write is not None:
        write(numbers, data, sums)
    else:
        space.write_blocks(numbers, data)
