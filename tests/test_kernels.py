"""The compiled kernels of the storage layer equal the numpy expressions they replace."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.reference.storage.checksum import WEIGHTS, mix_numbers
from xvol.reference.storage.kernels import (
    WORDS_PER_BLOCK,
    copy_rows_summed,
    read_stripes,
    weighted_sums,
    write_stripes,
)


def _words(seed: int, rows: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**64, (rows, WORDS_PER_BLOCK), dtype=np.uint64, endpoint=False)


def _einsum_sums(words: np.ndarray) -> np.ndarray:
    """The content sum's definition in numpy: one integer matrix-vector product mod 2**64."""
    return np.einsum("ij,j->i", words, WEIGHTS)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), rows=st.integers(0, 9), step=st.integers(1, 3))
def test_weighted_sums_equal_the_einsum_definition(seed: int, rows: int, step: int) -> None:
    words = _words(seed, rows * step)[::step]  # strided views too
    assert np.array_equal(weighted_sums(words, WEIGHTS), _einsum_sums(words))


def test_weighted_sums_wrap_modulo_2_to_the_64() -> None:
    words = np.full((1, WORDS_PER_BLOCK), 2**64 - 1, dtype=np.uint64)
    expected = (-sum(int(c) for c in WEIGHTS)) % 2**64
    assert int(weighted_sums(words, WEIGHTS)[0]) == expected


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    count=st.integers(0, 6),
    source_first=st.integers(0, 3),
    source_step=st.integers(1, 3),
    dest_first=st.integers(0, 3),
    dest_step=st.integers(1, 3),
)
def test_a_summed_copy_moves_the_rows_and_sums_them(
    seed: int, count: int, source_first: int, source_step: int, dest_first: int, dest_step: int
) -> None:
    source = _words(seed, source_first + count * source_step + 1)
    dest = _words(seed + 1, dest_first + count * dest_step + 1)
    sums = np.zeros(len(dest), dtype=np.uint64)
    before, sums_before = dest.copy(), sums.copy()
    copy_rows_summed(
        source, source_first, source_step, dest, dest_first, dest_step, count, WEIGHTS, sums
    )
    taken = np.arange(count) * source_step + source_first
    put = np.arange(count) * dest_step + dest_first
    expected, expected_sums = before.copy(), sums_before.copy()
    expected[put] = source[taken]
    expected_sums[put] = _einsum_sums(source[taken])
    assert np.array_equal(dest, expected)  # and no other row changed
    assert np.array_equal(sums, expected_sums)


def _group(seed: int, columns: int, rows: int) -> tuple[tuple[np.ndarray, ...], ...]:
    """Disks of a RAID-4 group (data disks, then parity) with valid stored checksums."""
    disks = tuple(_words(seed + j, rows) for j in range(columns + 1))
    mixes = tuple(mix_numbers(np.arange(rows, dtype=np.int64)) for _ in disks)
    stored = tuple(_einsum_sums(disk) ^ mix for disk, mix in zip(disks, mixes, strict=True))
    return disks, stored, mixes


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    columns=st.integers(1, 5),
    first=st.integers(0, 12),
    count=st.integers(0, 12),
)
def test_reading_stripes_gathers_logical_blocks_with_their_sums(
    seed: int, columns: int, first: int, count: int
) -> None:
    disks, stored, mixes = _group(seed, columns, rows=(first + count) // columns + 1)
    out = np.zeros((count, WORDS_PER_BLOCK), dtype=np.uint64)
    sums = np.zeros(count, dtype=np.uint64)
    assert (
        read_stripes(
            disks[:columns], stored[:columns], mixes[:columns], first, count, out, sums, WEIGHTS
        )
        == -1
    )
    expected = np.array(
        [disks[n % columns][n // columns] for n in range(first, first + count)], dtype=np.uint64
    ).reshape(count, WORDS_PER_BLOCK)
    assert np.array_equal(out, expected)
    assert np.array_equal(sums, _einsum_sums(expected))


def test_reading_stripes_stops_at_a_block_that_fails_its_checksum() -> None:
    disks, stored, mixes = _group(7, 3, rows=4)
    disks[1][2, 5] ^= np.uint64(1 << 40)  # logical block 2 * 3 + 1 = 7
    out = np.zeros((12, WORDS_PER_BLOCK), dtype=np.uint64)
    sums = np.zeros(12, dtype=np.uint64)
    assert read_stripes(disks[:3], stored[:3], mixes[:3], 0, 12, out, sums, WEIGHTS) == 7
    assert read_stripes(disks[:3], stored[:3], mixes[:3], 8, 4, out, sums, WEIGHTS) == -1


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    stripes=st.integers(1, 4),
    columns=st.integers(1, 4),
    chunk=st.integers(1, 3),
    first_row=st.integers(0, 3),
    summed=st.booleans(),
)
def test_writing_stripes_lays_out_columns_parity_and_checksums(
    seed: int, stripes: int, columns: int, chunk: int, first_row: int, summed: bool
) -> None:
    rows = stripes * chunk
    blocks = _words(seed, stripes * columns * chunk)  # logical order: stripe, column, chunk row
    disks, stored, mixes = _group(seed + 1, columns, rows=first_row + rows + 1)
    before = [disk.copy() for disk in disks]
    given = _einsum_sums(blocks) if summed else np.zeros(0, dtype=np.uint64)
    write_stripes(blocks, given, summed, disks, stored, mixes, first_row, rows, chunk, WEIGHTS)
    laid_out = blocks.reshape(stripes, columns, chunk, WORDS_PER_BLOCK)
    parity = np.bitwise_xor.reduce(laid_out, axis=1).reshape(rows, WORDS_PER_BLOCK)
    written = slice(first_row, first_row + rows)
    for j, disk in enumerate(disks):
        expected = before[j].copy()
        expected[written] = parity if j == columns else laid_out[:, j].reshape(rows, -1)
        assert np.array_equal(disk, expected)  # and no other row changed
        assert np.array_equal(stored[j], _einsum_sums(disk) ^ mixes[j])  # every checksum valid
