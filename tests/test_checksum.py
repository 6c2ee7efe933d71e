"""Tests of reference/storage/checksum.py: the per-block and batch checksums agree and detect
bit flips, word swaps and misplaced blocks; content sums pass through spaces with and without
the summed methods."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.errors import InvalidArgumentError
from xvol.reference.storage.block import BLOCK_SIZE
from xvol.reference.storage.checksum import (
    checksum_block,
    checksum_blocks,
    content_sums,
    mix_numbers,
    read_summed,
    write_summed,
    zero_block_checksums,
)


def _blocks(seed: int, count: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, BLOCK_SIZE), dtype=np.uint8)


def test_batch_checksums_equal_per_block_checksums() -> None:
    blocks = _blocks(1, 16)
    numbers = np.arange(100, 116, dtype=np.int64)
    batch = checksum_blocks(blocks, numbers)
    assert [int(x) for x in batch] == [
        checksum_block(blocks[i].tobytes(), 100 + i) for i in range(16)
    ]


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    bit=st.integers(0, 8 * BLOCK_SIZE - 1),
    number=st.integers(0, 2**40),
)
def test_every_single_bit_flip_changes_the_checksum(seed: int, bit: int, number: int) -> None:
    block = _blocks(seed, 1)
    before = checksum_block(block[0], number)
    block[0, bit // 8] ^= np.uint8(1 << (bit % 8))
    assert checksum_block(block[0], number) != before


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), i=st.integers(0, 511), j=st.integers(0, 511))
def test_swapping_two_different_words_changes_the_checksum(seed: int, i: int, j: int) -> None:
    block = _blocks(seed, 1)
    words = block.view(np.uint64)
    if i == j or words[0, i] == words[0, j]:
        return
    before = checksum_block(block[0], 7)
    words[0, [i, j]] = words[0, [j, i]]
    assert checksum_block(block[0], 7) != before


def test_the_block_number_is_mixed_in_so_misplaced_blocks_fail() -> None:
    blocks = _blocks(2, 64)
    numbers = np.arange(64, dtype=np.int64)
    right = checksum_blocks(blocks, numbers)
    swapped = checksum_blocks(blocks, numbers[::-1].copy())
    assert not np.any(right[:32] == swapped[:32])
    assert len(set(zero_block_checksums(np.arange(10_000, dtype=np.int64)).tolist())) == 10_000


def test_zero_blocks_have_the_precomputed_checksums() -> None:
    numbers = np.arange(5, dtype=np.int64)
    zeros = np.zeros((5, BLOCK_SIZE), dtype=np.uint8)
    assert np.array_equal(checksum_blocks(zeros, numbers), zero_block_checksums(numbers))


def test_wrong_shapes_are_rejected() -> None:
    with pytest.raises(InvalidArgumentError):
        checksum_block(b"short", 0)
    with pytest.raises(InvalidArgumentError):
        checksum_blocks(np.zeros((2, 100), dtype=np.uint8), np.arange(2, dtype=np.int64))
    with pytest.raises(InvalidArgumentError):
        checksum_blocks(np.zeros((2, BLOCK_SIZE), dtype=np.uint8), np.arange(3, dtype=np.int64))


def test_the_checksum_is_the_content_sum_mixed_with_the_block_number() -> None:
    blocks = _blocks(3, 32)
    numbers = np.arange(500, 532, dtype=np.int64)
    assert np.array_equal(
        checksum_blocks(blocks, numbers), content_sums(blocks) ^ mix_numbers(numbers)
    )
    strided = np.concatenate([blocks, blocks])[::2]  # rows 0, 2, ... of the doubled batch
    assert np.array_equal(content_sums(strided), content_sums(np.ascontiguousarray(strided)))


class _Plain:
    """A block space without the summed methods."""

    def __init__(self) -> None:
        self.data = np.zeros((16, BLOCK_SIZE), dtype=np.uint8)

    @property
    def block_count(self) -> int:
        return 16

    def read_block(self, number: int) -> bytes:
        return self.data[number].tobytes()

    def write_block(self, number: int, data: bytes) -> None:
        self.data[number] = np.frombuffer(data, dtype=np.uint8)

    def read_blocks(self, numbers: np.ndarray) -> np.ndarray:
        return self.data[numbers]

    def write_blocks(self, numbers: np.ndarray, data: np.ndarray) -> None:
        self.data[numbers] = data


def test_spaces_without_summed_methods_get_their_sums_computed() -> None:
    space = _Plain()
    blocks = _blocks(4, 3)
    numbers = np.array([2, 7, 9], dtype=np.int64)
    write_summed(space, numbers, blocks, content_sums(blocks))
    data, sums = read_summed(space, numbers)
    assert np.array_equal(data, blocks) and np.array_equal(sums, content_sums(blocks))
