"""Tests of reference/storage/raid.py: RAID-4, RAID-5 and RAID-DP return exactly the written
bytes under every failure set within tolerance, rebuild restores redundancy, scrub repairs,
and beyond tolerance they raise a typed error naming the failed disks; the bulk paths (runs,
content sums) leave the disks exactly as the general path does."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.errors import DataLossError, InvalidArgumentError, StateError
from xvol.reference.storage.block import BLOCK_SIZE, BlockSpace
from xvol.reference.storage.checksum import content_sums
from xvol.reference.storage.disk import MemoryDisk
from xvol.reference.storage.raid import (
    ParityCode,
    RaidDataLossError,
    RaidGroup,
    RaidLevel,
    smallest_prime_at_least,
)


def _data(seed: int, count: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, BLOCK_SIZE), dtype=np.uint8)


def _filled(
    level: RaidLevel, data_disks: int, seed: int, **kw: int
) -> tuple[RaidGroup, np.ndarray]:
    group = RaidGroup.in_memory(level, data_disks, kw.pop("blocks_per_disk", 24), **kw)  # type: ignore[arg-type]
    data = _data(seed, group.block_count)
    group.write_blocks(np.arange(group.block_count, dtype=np.int64), data)
    return group, data


def _fail(group: RaidGroup, slots: tuple[int, ...]) -> None:
    for slot in slots:
        group.disks[slot].fail()


def _unfail(group: RaidGroup, slots: tuple[int, ...]) -> None:
    for slot in slots:
        group.disks[slot]._failed = False  # test-only: bring the same disk back


def test_raid_group_is_a_block_space() -> None:
    space: BlockSpace = RaidGroup.in_memory("5", 3, 8)
    assert space.block_count == 24


def test_rdp_prime_is_the_smallest_prime_above_the_data_disks() -> None:
    assert RaidGroup.in_memory("dp", 7, 20).prime == 11
    assert RaidGroup.in_memory("dp", 6, 12).prime == 7
    assert RaidGroup.in_memory("dp", 4, 12).prime == 5
    assert smallest_prime_at_least(14) == 17
    with pytest.raises(InvalidArgumentError):
        RaidGroup.in_memory("dp", 7, 20, prime=7)
    with pytest.raises(InvalidArgumentError):
        RaidGroup.in_memory("dp", 3, 20, prime=9)


@settings(max_examples=12, deadline=None)
@given(
    level=st.sampled_from(["4", "5", "dp"]),
    data_disks=st.integers(1, 6),
    chunk=st.integers(1, 2),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_failure_set_within_tolerance_reads_back_the_written_bytes(
    level: RaidLevel, data_disks: int, chunk: int, seed: int
) -> None:
    group, data = _filled(level, data_disks, seed, chunk_blocks=chunk, blocks_per_disk=16)
    rng = np.random.default_rng(seed)
    for _ in range(3):  # some partial writes (additive and subtractive)
        numbers = rng.choice(group.block_count, rng.integers(1, 6), replace=False)
        new = _data(int(rng.integers(1 << 30)), numbers.size)
        group.write_blocks(numbers, new)
        data[numbers] = new
    everything = np.arange(group.block_count, dtype=np.int64)
    for size in range(group.tolerance + 1):
        for failed in itertools.combinations(range(len(group.disks)), size):
            _fail(group, failed)
            assert np.array_equal(group.read_blocks(everything), data), failed
            _unfail(group, failed)


@pytest.mark.parametrize("prime", [5, 7, 11, 13])
def test_rdp_survives_every_pair_of_failed_disks(prime: int) -> None:
    group, data = _filled("dp", prime - 1, prime, prime=prime, blocks_per_disk=prime - 1)
    everything = np.arange(group.block_count, dtype=np.int64)
    for pair in itertools.combinations(range(prime + 1), 2):
        _fail(group, pair)
        assert np.array_equal(group.read_blocks(everything), data), pair
        _unfail(group, pair)


def test_rdp_with_fewer_data_disks_than_p_minus_1_uses_virtual_zero_disks() -> None:
    group, data = _filled("dp", 2, 3, prime=7, blocks_per_disk=12)
    assert len(group.disks) == 4
    everything = np.arange(group.block_count, dtype=np.int64)
    for pair in itertools.combinations(range(4), 2):
        _fail(group, pair)
        assert np.array_equal(group.read_blocks(everything), data)
        _unfail(group, pair)


@settings(max_examples=10, deadline=None)
@given(level=st.sampled_from(["4", "5", "dp"]), seed=st.integers(0, 2**32 - 1))
def test_writes_while_degraded_are_readable_after_rebuild(level: RaidLevel, seed: int) -> None:
    group, data = _filled(level, 4, seed)
    rng = np.random.default_rng(seed)
    failed = tuple(int(x) for x in rng.choice(len(group.disks), group.tolerance, replace=False))
    _fail(group, failed)
    numbers = rng.choice(group.block_count, 10, replace=False)
    new = _data(seed + 1, 10)
    group.write_blocks(numbers, new)
    data[numbers] = new
    everything = np.arange(group.block_count, dtype=np.int64)
    assert np.array_equal(group.read_blocks(everything), data)
    for slot in failed:
        group.rebuild(slot, MemoryDisk(f"spare{slot}", group.blocks_per_disk))
    assert group.failed_disks == ()
    assert np.array_equal(group.read_blocks(everything), data)
    assert group.scrub().parity_mismatches == ()


@pytest.mark.parametrize("level", ["4", "5", "dp"])
def test_rebuild_restores_redundancy(level: RaidLevel) -> None:
    group, data = _filled(level, 4, 11)
    everything = np.arange(group.block_count, dtype=np.int64)
    _fail(group, (1,))
    report = group.rebuild(1, MemoryDisk("spare", group.blocks_per_disk))
    assert report.blocks_written == group.blocks_per_disk
    # after the rebuild the group tolerates its full number of new failures again
    _fail(group, tuple(range(2, 2 + group.tolerance)))
    assert np.array_equal(group.read_blocks(everything), data)


def test_rebuild_needs_a_failed_slot_and_a_fitting_spare() -> None:
    group, _ = _filled("5", 3, 1)
    with pytest.raises(StateError):
        group.rebuild(0, MemoryDisk("spare", group.blocks_per_disk))
    group.disks[0].fail()
    with pytest.raises(InvalidArgumentError):
        group.rebuild(0, MemoryDisk("spare", group.blocks_per_disk + 1))


@settings(max_examples=12, deadline=None)
@given(pair=st.sampled_from([(0, 1), (0, 4), (1, 5), (4, 5), (2, 3)]), seed=st.integers(0, 99))
def test_two_failed_disks_are_rebuilt_in_one_pass_reading_each_survivor_once(
    pair: tuple[int, int], seed: int
) -> None:
    """RAID-DP with four data disks: slots 4 and 5 are the row and the diagonal parity."""
    group, data = _filled("dp", 4, seed)
    _fail(group, pair)
    survivors = [disk for slot, disk in enumerate(group.disks) if slot not in pair]
    group.reset_counters()
    spares = {slot: MemoryDisk(f"spare{slot}", group.blocks_per_disk) for slot in pair}
    reports = group.rebuild_all(spares)
    assert [r.disk_index for r in reports] == sorted(pair)
    assert all(r.blocks_written == group.blocks_per_disk for r in reports)
    assert [disk.counters.reads for disk in survivors] == [group.blocks_per_disk] * 4
    assert group.failed_disks == () and group.scrub().parity_mismatches == ()
    everything = np.arange(group.block_count, dtype=np.int64)
    assert np.array_equal(group.read_blocks(everything), data)


def test_rebuild_all_refuses_bad_requests_and_changes_nothing() -> None:
    group, _ = _filled("dp", 3, 2)
    _fail(group, (0, 2))
    before = group.disks
    spare = MemoryDisk("spare", group.blocks_per_disk)
    with pytest.raises(InvalidArgumentError):
        group.rebuild_all({})
    with pytest.raises(InvalidArgumentError):
        group.rebuild_all({0: spare, 2: spare})  # one spare for two slots
    with pytest.raises(StateError):
        group.rebuild_all({0: spare, 1: MemoryDisk("other", group.blocks_per_disk)})
    _fail(group, (1,))  # three failures: beyond RAID-DP
    spares = {s: MemoryDisk(f"s{s}", group.blocks_per_disk) for s in (0, 1, 2)}
    with pytest.raises(RaidDataLossError):
        group.rebuild_all(spares)
    assert group.disks == before and not any(s.counters.writes for s in spares.values())


@pytest.mark.parametrize("level", ["4", "5", "dp"])
def test_latent_sector_errors_and_bit_flips_are_reconstructed_on_read(level: RaidLevel) -> None:
    group, data = _filled(level, 4, 5)
    group.disks[0].inject_latent_error(3)
    group.disks[2].flip_bit(7, 999)
    everything = np.arange(group.block_count, dtype=np.int64)
    assert np.array_equal(group.read_blocks(everything), data)
    for n in range(group.block_count):
        assert group.read_block(n) == data[n].tobytes()


@pytest.mark.parametrize("level", ["4", "5", "dp"])
def test_scrub_repairs_injected_bit_flips(level: RaidLevel) -> None:
    group, data = _filled(level, 4, 6)
    flips = [(0, 1), (1, 5), (len(group.disks) - 1, 9)]
    for slot, block in flips:
        group.disks[slot].flip_bit(block, 4242)
    report = group.scrub()
    assert sorted(report.repaired) == sorted(flips)
    assert report.parity_mismatches == ()
    again = group.scrub()
    assert again.repaired == () and again.parity_mismatches == ()
    for disk in group.disks:  # every block reads cleanly from its own disk now
        disk.read_blocks(np.arange(disk.block_count, dtype=np.int64))
    assert np.array_equal(group.read_blocks(np.arange(group.block_count)), data)


def test_scrub_reports_and_repairs_parity_that_disagrees_with_verified_data() -> None:
    group, _ = _filled("5", 3, 8)
    parity_disk, parity_block = group.parity_location(0)[0]
    group.disks[parity_disk].write_block(parity_block, bytes(BLOCK_SIZE))  # stale parity
    report = group.scrub()
    assert report.parity_mismatches == ((0, 0),)
    assert group.scrub().parity_mismatches == ()


@pytest.mark.parametrize("level", ["4", "5", "dp"])
def test_beyond_tolerance_raises_data_loss_naming_the_failed_disks(level: RaidLevel) -> None:
    group, _ = _filled(level, 3, 9)
    failed = tuple(range(group.tolerance + 1))
    _fail(group, failed)
    with pytest.raises(RaidDataLossError) as info:
        group.read_blocks(np.arange(group.block_count, dtype=np.int64))
    assert isinstance(info.value, DataLossError)
    assert set(info.value.failed_disks) == {group.disks[i].name for i in failed}
    for name in info.value.failed_disks:
        assert name in str(info.value)


def test_failed_degraded_write_beyond_tolerance_changes_nothing() -> None:
    group, _ = _filled("5", 3, 10)
    _fail(group, (0, 1))
    before = [d.counters.writes for d in group.disks]
    with pytest.raises(RaidDataLossError):
        group.write_blocks(np.arange(2, dtype=np.int64), _data(1, 2))
    assert [d.counters.writes for d in group.disks] == before


def test_full_stripe_write_reads_nothing() -> None:
    group = RaidGroup.in_memory("dp", 6, 12, prime=7)
    group.write_blocks(np.arange(group.blocks_per_stripe, dtype=np.int64), _data(1, 36))
    assert sum(d.counters.reads for d in group.disks) == 0
    assert [d.counters.writes for d in group.disks] == [6] * 8


def test_small_write_chooses_the_cheaper_parity_update() -> None:
    # RAID-5 with 6 data disks: 1 block -> subtractive (2 reads), 5 of 6 -> additive (1 read)
    group, _ = _filled("5", 6, 2, blocks_per_disk=4)
    group.reset_counters()
    group.write_block(0, bytes(BLOCK_SIZE))
    assert sum(d.counters.reads for d in group.disks) == 2
    assert sum(d.counters.writes for d in group.disks) == 2
    group.reset_counters()
    group.write_blocks(np.arange(5, dtype=np.int64), _data(3, 5))
    assert sum(d.counters.reads for d in group.disks) == 1
    assert sum(d.counters.writes for d in group.disks) == 6


def test_raid5_rotates_parity_and_raid4_does_not() -> None:
    raid5 = RaidGroup.in_memory("5", 3, 8)
    raid4 = RaidGroup.in_memory("4", 3, 8)
    assert {raid5.parity_location(3 * s)[0][0] for s in range(4)} == {0, 1, 2, 3}
    assert {raid4.parity_location(3 * s)[0][0] for s in range(4)} == {3}


def test_degraded_read_of_one_block_reads_only_its_row() -> None:
    group, data = _filled("dp", 6, 4, prime=7, blocks_per_disk=12)
    group.disks[1].fail()
    group.reset_counters()
    assert group.read_block(1) == data[1].tobytes()
    assert sum(d.counters.reads for d in group.disks) == 6  # 5 data + row parity


def test_parity_code_peeling_reproduces_encoding() -> None:
    code = ParityCode("dp", 4, 7)
    rng = np.random.default_rng(0)
    cw = rng.integers(0, 2**63, (3, code.rows, code.columns, 8), dtype=np.uint64)
    code.encode([cw[:, :, j] for j in range(4)], [cw[:, :, 4], cw[:, :, 5]])
    for equation in code.equations:
        acc = np.zeros((3, 8), dtype=np.uint64)
        for r, c in equation:
            acc ^= cw[:, r, c]
        assert not acc.any()
    cells = {(r, c) for r in range(code.rows) for c in range(code.columns)}
    lost = {(r, c) for (r, c) in cells if c in (0, 5)}
    steps = code.schedule(frozenset(cells - lost), frozenset(lost))
    assert steps is not None
    broken = cw.copy()
    for r, c in lost:
        broken[:, r, c] = 0
    code.apply(broken, steps)
    assert np.array_equal(broken, cw)
    assert code.schedule(frozenset(cells - lost - {(0, 1)}), frozenset(lost | {(0, 1)})) is None


def test_bad_arguments_raise_and_change_nothing() -> None:
    group, data = _filled("5", 3, 12)
    with pytest.raises(InvalidArgumentError):
        group.write_blocks(np.array([0, group.block_count]), _data(0, 2))
    with pytest.raises(InvalidArgumentError):
        group.write_block(0, b"short")
    with pytest.raises(InvalidArgumentError):
        RaidGroup([MemoryDisk("a", 4), MemoryDisk("b", 5)], "4")
    assert np.array_equal(group.read_blocks(np.arange(group.block_count)), data)


def test_rdp_counts_a_latent_error_plus_a_failed_disk_as_two_erasures() -> None:
    group, data = _filled("dp", 4, 13, prime=5, blocks_per_disk=8)
    group.disks[0].fail()
    for block in range(group.blocks_per_disk):
        group.disks[3].inject_latent_error(block)  # a whole second column of bad sectors
    group.disks[2].flip_bit(0, 1)  # and a third erasure in codeword 0 only
    everything = np.arange(group.block_count, dtype=np.int64)
    with pytest.raises(RaidDataLossError):
        group.read_blocks(everything)
    # codeword 1 (blocks 16..31) has only two erasures and still reads correctly
    assert np.array_equal(group.read_blocks(everything[16:]), data[16:])


def test_raid5_failed_disk_plus_latent_error_in_the_same_row_is_data_loss_not_garbage() -> None:
    group, data = _filled("5", 3, 14)
    disk, block = group.locate(0)
    group.disks[(disk + 1) % 4].fail()
    group.disks[disk].inject_latent_error(block)
    with pytest.raises(RaidDataLossError):
        group.read_block(0)
    assert group.read_block(5) == data[5].tobytes()


# -- the bulk paths: runs of logical blocks, content sums handed up and down ------------------


def _disk_state(group: RaidGroup) -> list[tuple[bytes, bytes]]:
    everything = np.arange(group.blocks_per_disk, dtype=np.int64)
    return [
        (disk.read_blocks(everything).tobytes(), disk.stored_checksums(everything).tobytes())
        for disk in group.disks
    ]


def _disjoint(runs: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    chosen, cursor = [], 0
    for start, length in sorted(runs):
        start = max(start, cursor)
        end = min(start + length, limit)
        if start < end:
            chosen.append((start, end))
            cursor = end
    return chosen


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    runs=st.lists(st.tuples(st.integers(0, 150), st.integers(1, 40)), min_size=1, max_size=4),
    summed=st.booleans(),
    chunk=st.sampled_from([1, 2]),
)
def test_raid4_runs_write_the_same_disks_as_the_general_path(
    seed: int, runs: list[tuple[int, int]], summed: bool, chunk: int
) -> None:
    bulk, data = _filled("4", 4, seed, blocks_per_disk=48, chunk_blocks=chunk)
    general, _ = _filled("4", 4, seed, blocks_per_disk=48, chunk_blocks=chunk)
    new = _data(seed + 1, bulk.block_count)
    chosen = _disjoint(runs, bulk.block_count)
    bulk.write_runs([(a, new[a:b], content_sums(new[a:b]) if summed else None) for a, b in chosen])
    numbers = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in chosen])[::-1].copy()
    general.write_blocks(numbers, new[numbers])  # descending: codeword by codeword
    expected = data.copy()
    expected[numbers] = new[numbers]
    everything = np.arange(bulk.block_count, dtype=np.int64)
    assert np.array_equal(bulk.read_blocks(everything), expected)
    assert _disk_state(bulk) == _disk_state(general)  # same bytes, parity and checksums
    report = bulk.scrub(repair=False)
    assert report.repaired == () and report.parity_mismatches == ()


def test_runs_that_share_a_partial_stripe_keep_its_parity() -> None:
    group, data = _filled("4", 4, 5, blocks_per_disk=8)
    new = _data(6, 8)
    group.write_runs([(1, new[1:3], None), (3, new[3:4], None), (5, new[5:7], None)])
    data[1:4], data[5:7] = new[1:4], new[5:7]
    assert np.array_equal(group.read_blocks(np.arange(group.block_count, dtype=np.int64)), data)
    assert group.scrub(repair=False).parity_mismatches == ()


def test_whole_stripe_runs_take_the_bulk_path_and_read_nothing() -> None:
    group = RaidGroup.in_memory("4", 4, 16)
    group.reset_counters()
    group.write_run(8, _data(1, 22), None)  # stripes 2..6, then half of stripe 7
    assert group.last_write.full_stripe == 5 and group.last_write.additive == 1
    reads = sum(disk.counters.reads for disk in group.disks)
    assert reads == 2  # only the unwritten half of stripe 7 (additive)


def test_reads_hand_up_the_content_sums_and_reconstruct_a_flipped_bit() -> None:
    group, data = _filled("4", 4, 7, blocks_per_disk=16)
    out, sums = group.read_run_summed(3, 40)
    assert np.array_equal(out, data[3:43]) and np.array_equal(sums, content_sums(out))
    disk, block = group.locate(10)
    group.disks[disk].flip_bit(block, 5)
    out, sums = group.read_run_summed(3, 40)  # the bulk read finds it and falls back
    assert np.array_equal(out, data[3:43]) and np.array_equal(sums, content_sums(out))
    numbers = np.array([10, 2, 33], dtype=np.int64)
    out, sums = group.read_blocks_summed(numbers)
    assert np.array_equal(out, data[numbers]) and np.array_equal(sums, content_sums(out))


@pytest.mark.parametrize("level", ["4", "5", "dp"])
def test_summed_writes_equal_plain_writes_at_every_level(level: RaidLevel) -> None:
    summed, _ = _filled(level, 4, 8, blocks_per_disk=12)
    plain, _ = _filled(level, 4, 8, blocks_per_disk=12)
    numbers = np.arange(5, 29, dtype=np.int64)
    new = _data(9, len(numbers))
    summed.write_blocks_summed(numbers, new, content_sums(new))
    plain.write_blocks(numbers, new)
    assert _disk_state(summed) == _disk_state(plain)
    with pytest.raises(InvalidArgumentError):
        summed.write_blocks_summed(numbers, new, content_sums(new)[:3])
    with pytest.raises(InvalidArgumentError):
        summed.write_run(summed.block_count - 2, new[:5], None)
    assert _disk_state(summed) == _disk_state(plain)
