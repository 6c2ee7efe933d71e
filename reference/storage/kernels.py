"""Compiled inner loops of the storage layer: checksums, verified copies and parity in one pass.

The storage layer defines its arithmetic in numpy terms where it is introduced: the content sum
of a block in :mod:`.checksum`, the RAID-4 row parity (the XOR of a stripe's data blocks) in
:mod:`.raid`. Every numpy expression is one pass over memory, though, and a block on its way
through the stack would meet several of them: a disk read copies the block out and, in a second
pass, sums it to verify its checksum; a full-stripe write copies each data block to its disk and,
in another pass, XORs it into the parity. Once blocks no longer fit in the processor's caches,
each pass costs about as much as a ``memcpy`` of the same bytes, so the passes, not the
arithmetic, set the speed of a transfer (``xvol bench transfer`` shows the split).

The kernels below *fuse* such passes: each is a plain loop over a block's 512 64-bit words that
does every step while the word is in a register, compiled to machine code by numba (the loops
read exactly like the arithmetic they replace). They work on ``uint64`` word views of blocks,
``(k, 512)`` arrays:

1. :func:`weighted_sums`: the content sums of a batch (about twice numpy's ``einsum`` on blocks
   in cache);
2. :func:`copy_rows_summed`: copy rows ``first + i * step`` to other rows and sum them in the
   same pass (a verified read from one array);
3. :func:`read_stripes` and :func:`write_stripes`: whole RAID-4 stripes in one call over every
   disk of the group, reading with verification, or writing with the parity folded in and the
   disks' checksums stored. They go disk by disk, because sequential streams measured about a
   third faster than switching disks every block.

Callers check their arguments (shapes, ranges) before calling; a kernel does no checks of its
own. ``tests/test_kernels.py`` checks each against the numpy expressions it replaces.

Compiled code is cached on disk beside this module (numba's ``cache=True``), so only the first
use on a machine pays the compilation (about a second per kernel).

Uses: numpy, numba. Imports nothing of the kit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numba
import numpy as np
import numpy.typing as npt

Words = npt.NDArray[np.uint64]
"""Blocks as 64-bit words: a ``(k, 512)`` ``uint64`` array (a view of a ``(k, 4096)`` uint8
batch)."""

Sums = npt.NDArray[np.uint64]
"""One 64-bit sum per block: a 1-D ``uint64`` array."""

WORDS_PER_BLOCK = 512


def _compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """numba's ahead-of-use compilation of ``function`` (cached on disk, no Python objects, no
    bounds checks: callers check their arguments)."""
    return cast(Callable[..., Any], numba.njit(cache=True, nogil=True, boundscheck=False)(function))


# ---------------------------------------------------------------------------------------------
# 1. The content sum: sum_i C[i] * w[i] mod 2**64 of every block (see .checksum).


def _weighted_sums_loop(words: Words, constants: Words, sums: Sums) -> None:
    for block in range(words.shape[0]):
        row = words[block]
        total = np.uint64(0)
        for i in range(WORDS_PER_BLOCK):
            total += row[i] * constants[i]  # wraps modulo 2**64, as the definition says
        sums[block] = total


_weighted_sums = _compiled(_weighted_sums_loop)


def weighted_sums(words: Words, constants: Words) -> Sums:
    """``sums[k] = sum_i constants[i] * words[k, i] mod 2**64`` for every row ``k`` (rows may be
    a strided view)."""
    sums = np.empty(words.shape[0], dtype=np.uint64)
    _weighted_sums(words, constants, sums)
    return sums


# ---------------------------------------------------------------------------------------------
# 2. A verified copy: copy rows and sum them in the same pass (a disk read).


def _copy_rows_summed_loop(
    source: Words,
    source_first: int,
    source_step: int,
    dest: Words,
    dest_first: int,
    dest_step: int,
    count: int,
    constants: Words,
    sums: Sums,
) -> None:
    for k in range(count):
        src = source[source_first + k * source_step]
        at = dest_first + k * dest_step
        dst = dest[at]
        total = np.uint64(0)
        for i in range(WORDS_PER_BLOCK):
            word = src[i]
            dst[i] = word
            total += word * constants[i]
        sums[at] = total


copy_rows_summed: Callable[[Words, int, int, Words, int, int, int, Words, Sums], None] = _compiled(
    _copy_rows_summed_loop
)
"""``copy_rows_summed(source, sf, ss, dest, df, ds, count, constants, sums)``: for ``k <
count``, copy row ``sf + k*ss`` of ``source`` to row ``df + k*ds`` of ``dest`` and store its
weighted sum in ``sums[df + k*ds]`` (``sums`` is indexed like the rows of ``dest``). Both arrays
C-contiguous."""


# ---------------------------------------------------------------------------------------------
# 3. Whole RAID-4 stripes: every data disk and the parity in one loop.
#
# A RAID-4 group with one-block chunks keeps logical block ``n`` in row ``n // D`` of data disk
# ``n % D`` and the XOR of each row's data blocks on disk ``D``. The disks are passed as tuples
# of arrays (their blocks as words, their stored checksums, the mixes of their block numbers:
# see :mod:`.checksum`), so that one call serves a whole batch, with no Python per disk.
DiskWords = tuple[Words, ...]
DiskSums = tuple[Sums, ...]


def _read_stripes_loop(
    disks: DiskWords,
    stored: DiskSums,
    mixes: DiskSums,
    first: int,
    count: int,
    out: Words,
    sums: Sums,
    constants: Words,
) -> int:
    columns = len(disks)
    for j in range(columns):  # disk by disk: each disk is read as one sequential stream
        disk, disk_stored, disk_mixes = disks[j], stored[j], mixes[j]
        for k in range((j - first) % columns, count, columns):
            row = (first + k) // columns
            src = disk[row]
            dst = out[k]
            total = np.uint64(0)
            for i in range(WORDS_PER_BLOCK):
                word = src[i]
                dst[i] = word
                total += word * constants[i]
            sums[k] = total
            if total ^ disk_mixes[row] != disk_stored[row]:
                return k
    return -1


read_stripes: Callable[[DiskWords, DiskSums, DiskSums, int, int, Words, Sums, Words], int] = (
    _compiled(_read_stripes_loop)
)
"""``read_stripes(disks, stored, mixes, first, count, out, sums, constants)``: read the logical
blocks ``first .. first + count - 1`` of a RAID-4 group whose data disks are ``disks`` into
``out``, their content sums into ``sums``, verifying each against its disk's stored checksum
(``stored[j][row] == sum ^ mixes[j][row]``) in the same pass. Returns -1, or the position of
a block that fails (``out`` and ``sums`` are then incomplete). Disk by disk, not in logical
order: sequential streams run about a third faster than switching disks every block."""


def _write_stripes_loop(
    blocks: Words,
    given: Sums,
    use_given: bool,
    disks: DiskWords,
    stored: DiskSums,
    mixes: DiskSums,
    first_row: int,
    rows: int,
    chunk: int,
    constants: Words,
) -> None:
    columns = len(disks) - 1  # the last disk holds the parity
    parity = np.empty((rows, WORDS_PER_BLOCK), dtype=np.uint64)
    for j in range(columns):  # disk by disk, as in _read_stripes_loop
        disk, disk_stored, disk_mixes = disks[j], stored[j], mixes[j]
        for r in range(rows):
            k = (r // chunk) * columns * chunk + j * chunk + r % chunk
            src = blocks[k]
            dst = disk[first_row + r]
            fold = parity[r]
            total = np.uint64(0)
            if j == 0:
                for i in range(WORDS_PER_BLOCK):
                    word = src[i]
                    dst[i] = word
                    fold[i] = word
            else:
                for i in range(WORDS_PER_BLOCK):
                    word = src[i]
                    dst[i] = word
                    fold[i] ^= word
            if use_given:
                total = given[k]
            else:
                for i in range(WORDS_PER_BLOCK):  # src is in the nearest cache now
                    total += src[i] * constants[i]
            disk_stored[first_row + r] = total ^ disk_mixes[first_row + r]  # after the data
    disk, disk_stored, disk_mixes = disks[columns], stored[columns], mixes[columns]
    for r in range(rows):
        src = parity[r]
        dst = disk[first_row + r]
        total = np.uint64(0)
        for i in range(WORDS_PER_BLOCK):
            word = src[i]
            dst[i] = word
            total += word * constants[i]
        disk_stored[first_row + r] = total ^ disk_mixes[first_row + r]


write_stripes: Callable[
    [Words, Sums, bool, DiskWords, DiskSums, DiskSums, int, int, int, Words], None
] = _compiled(_write_stripes_loop)
"""``write_stripes(blocks, given, use_given, disks, stored, mixes, first_row, rows, chunk,
constants)``: write the disk rows ``first_row .. first_row + rows - 1`` of whole RAID-4
stripes, ``blocks`` holding their ``rows * D`` data blocks in logical order (each disk's part
of a stripe is a chunk of ``chunk`` consecutive blocks); ``disks`` are the ``D`` data disks and
then the parity disk. Each data block is copied to its disk and folded into its row's parity
in one pass, disk by disk, then the parity rows are written; every disk's checksum is stored
after its data. A data block's checksum comes from its content sum: ``given[k]`` when
``use_given`` (the caller holds the sums of exactly these bytes, see :mod:`.checksum`), else
computed right after the copy, while the block is still in the nearest cache."""
