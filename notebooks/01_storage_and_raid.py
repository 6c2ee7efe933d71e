# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 1. Disks, checksums and RAID
#
# The seed's storage system rests on *mass storage devices* grouped into *RAID groups*; one or
# more RAID groups form an *aggregate*, and the aggregate hands each *volume* its own block
# space. Everything higher up (the namespace volume, the object location store, the data
# constituents of an expandable volume) is stored in blocks of such volumes, so this bottom layer
# decides what survives a failed disk.
#
# This notebook walks up the bottom three layers of `xvol.reference.storage`:
#
# 1. a **disk** (`MemoryDisk`): fixed 4 KiB blocks, each stored with a checksum that is checked
#    on every read, I/O counters, and injectable faults;
# 2. a **RAID group** (`RaidGroup`): RAID-4, RAID-5 and RAID-DP (row-diagonal parity) that
#    reconstruct blocks of failed disks, rebuild onto spares, and scrub silent corruption;
# 3. an **aggregate** (`Aggregate`): RAID groups pooled into one block space that hands out named
#    volume spaces.
#
# Change `SEED`, `LEVEL` or `DATA_DISKS` below and run again: every cell recomputes its answer,
# and the `assert` lines state what must stay true whatever you pick.

# %%
import itertools

import numpy as np

from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.storage.block import BLOCK_SIZE
from xvol.reference.storage.checksum import WEIGHTS, content_sums
from xvol.reference.storage.disk import ChecksumMismatchError, DiskFailedError, MemoryDisk
from xvol.reference.storage.raid import RaidDataLossError, RaidGroup

SEED = 7
LEVEL = "dp"  # "4", "5" or "dp"
DATA_DISKS = 4
BLOCKS_PER_DISK = 16
rng = np.random.default_rng(SEED)

# %% [markdown]
# ## A disk never returns wrong bytes
#
# A disk stores a 64-bit checksum beside every block (the checksum mixes in the block number, so
# a block written to the wrong place is caught too). A *silent bit flip* changes the stored bytes
# but not the checksum: the next read notices and raises instead of returning the damaged block.

# %%
disk = MemoryDisk("demo.d0", 8)
payload = bytes(rng.integers(0, 256, BLOCK_SIZE, dtype=np.uint8))
disk.write_block(3, payload)
assert disk.read_block(3) == payload
print(disk, "| counters:", disk.counters)

disk.flip_bit(3, bit=12345)  # corrupt the medium, leave the checksum alone
try:
    disk.read_block(3)
except ChecksumMismatchError as err:
    print("read after bit flip ->", type(err).__name__ + ":", err)
else:
    raise AssertionError("a corrupted block was returned")

disk.fail()
try:
    disk.read_block(0)
except DiskFailedError as err:
    print("read after fail()   ->", type(err).__name__ + ":", err)

# %% [markdown]
# ## A RAID group: data that outlives its disks
#
# `RaidGroup.in_memory(level, data_disks, blocks_per_disk)` builds a group on fresh memory disks:
# `data_disks` data columns plus one parity disk (RAID-4/5) or two (RAID-DP: row parity and
# diagonal parity over a prime `p`). The group exposes only its *data* blocks as one block space.

# %%
group = RaidGroup.in_memory(LEVEL, DATA_DISKS, BLOCKS_PER_DISK)
data = rng.integers(0, 256, (group.block_count, BLOCK_SIZE), dtype=np.uint8)
everything = np.arange(group.block_count, dtype=np.int64)
group.write_blocks(everything, data)
print(group)
print("disks:", [d.name for d in group.disks])
print("tolerates", group.tolerance, "failed disk(s); last write:", group.last_write)
for block in range(4):
    print(f"logical block {block} lives on (disk slot, disk block) {group.locate(block)}")

# %% [markdown]
# ### Reads in degraded mode, and what they cost
#
# Fail a data disk and read one logical block that lived on it. The group reads the surviving
# blocks of that block's codeword and XORs them back together. **Question:** how many disk reads
# does one degraded read cost, compared with a healthy read?


# %%
def disk_reads(g: RaidGroup) -> int:
    """Total block reads across the group's member disks since the last reset."""
    return sum(d.counters.reads for d in g.disks)


victim_block = 0
victim_slot, _ = group.locate(victim_block)

group.reset_counters()
assert group.read_block(victim_block) == data[victim_block].tobytes()
healthy_reads = disk_reads(group)

group.disks[victim_slot].fail()
group.reset_counters()
assert group.read_block(victim_block) == data[victim_block].tobytes()
degraded_reads = disk_reads(group)
print(f"healthy read of block {victim_block}: {healthy_reads} disk read(s)")
print(f"degraded read (disk slot {victim_slot} failed): {degraded_reads} disk read(s)")
assert healthy_reads == 1
assert degraded_reads == DATA_DISKS  # the other D-1 data cells of the row plus its row parity

# %% [markdown]
# Every block is still there, bit for bit:

# %%
assert np.array_equal(group.read_blocks(everything), data)
print("all", group.block_count, "blocks read back correctly with slot", victim_slot, "failed")

# %% [markdown]
# ### Rebuild onto a spare
#
# `rebuild(slot, spare)` reconstructs the whole failed disk onto a spare and puts the spare in its
# slot. **Question:** how many blocks are read from the survivors and written to the spare?

# %%
group.reset_counters()
spare = MemoryDisk("spare.0", BLOCKS_PER_DISK)
report = group.rebuild(victim_slot, spare)
rebuild_reads = disk_reads(group) - spare.counters.reads
print(report)
print(f"rebuild read {rebuild_reads} blocks from survivors, wrote {spare.counters.writes} to spare")
assert report.blocks_written == group.stripes * group.stripe_height == spare.counters.writes
assert rebuild_reads == DATA_DISKS * report.blocks_written  # each row: its D survivors, once
assert group.failed_disks == ()
assert np.array_equal(group.read_blocks(everything), data)

# %% [markdown]
# ## RAID-DP survives *any* two failures, and says so when it cannot
#
# Try every pair of disks in a fresh RAID-DP group: fail the pair, read everything, bring the
# disks back (`rebuild_all` onto two spares, in one pass that reads each survivor once: the RDP
# paper's optimal reconstruction). Then fail three disks: the group cannot reconstruct, and the
# typed `RaidDataLossError` names the failed disks instead of returning wrong data.

# %%
dp = RaidGroup.in_memory("dp", DATA_DISKS, BLOCKS_PER_DISK, name="dp")
dp_data = rng.integers(0, 256, (dp.block_count, BLOCK_SIZE), dtype=np.uint8)
dp_all = np.arange(dp.block_count, dtype=np.int64)
dp.write_blocks(dp_all, dp_data)
pairs = list(itertools.combinations(range(len(dp.disks)), 2))
for n, pair in enumerate(pairs):
    for slot in pair:
        dp.disks[slot].fail()
    assert np.array_equal(dp.read_blocks(dp_all), dp_data), pair
    dp.reset_counters()
    dp.rebuild_all({slot: MemoryDisk(f"spare.{n}.{slot}", BLOCKS_PER_DISK) for slot in pair})
    survivors = [d for slot, d in enumerate(dp.disks) if slot not in pair]
    assert all(d.counters.reads == BLOCKS_PER_DISK for d in survivors), pair  # each read once
print(f"RAID-DP, p={dp.prime}: all {len(pairs)} pairs of failed disks read back and were rebuilt")
print("in one pass that read every surviving block exactly once")

for slot in (0, 1, 2):
    dp.disks[slot].fail()
try:
    dp.read_blocks(dp_all)
except RaidDataLossError as err:
    print("three failures ->", err)
    assert len(err.failed_disks) == 3
else:
    raise AssertionError("three failures must be reported as data loss")

# %% [markdown]
# ## A silent bit flip, caught and repaired by scrub
#
# A bit flip on one disk does not stop reads: the checksum marks the block as an erasure and RAID
# rebuilds it from parity. But the bad copy stays on the disk until someone rewrites it. A
# **scrub** reads every codeword, rewrites blocks whose checksums fail, and checks that parity
# agrees with the verified data.

# %%
g5 = RaidGroup.in_memory("5", DATA_DISKS, BLOCKS_PER_DISK, name="r5")
d5 = rng.integers(0, 256, (g5.block_count, BLOCK_SIZE), dtype=np.uint8)
all5 = np.arange(g5.block_count, dtype=np.int64)
g5.write_blocks(all5, d5)
slot, disk_block = g5.locate(5)
g5.disks[slot].flip_bit(disk_block, bit=int(rng.integers(0, 8 * BLOCK_SIZE)))
assert g5.read_block(5) == d5[5].tobytes()  # reconstructed, never the flipped bytes
scrub = g5.scrub()
print("scrub checked", scrub.codewords, "codewords; repaired (disk, block):", scrub.repaired)
assert scrub.repaired == ((slot, disk_block),)
assert g5.scrub().repaired == ()  # the second scrub finds nothing left to fix
assert g5.disks[slot].read_block(disk_block) == d5[5].tobytes()

# %% [markdown]
# ## An aggregate with volume spaces
#
# An aggregate pools RAID groups into one physical block space and carves named *volume spaces*
# out of it. A volume sees only its own block numbers `0..n-1`; the aggregate maps them through
# extents (runs of aggregate blocks). Growing the aggregate with another RAID group adds free space.

# %%
aggr = Aggregate.create_in_memory("dp", 4, 64, name="aggr0")
print(aggr)
ns = aggr.create_space("namespace", 40)
dc1 = aggr.create_space("data1", 60)
ns.write_block(0, b"root directory".ljust(BLOCK_SIZE, b"\0"))
print("spaces:", aggr.spaces(), "| extents:", {s: aggr.extents(s) for s in aggr.spaces()})
print("free blocks:", aggr.free_blocks)
dc1.resize(100)
aggr.add_raid_group()
print("after growing data1 and adding a RAID group:", aggr)
print("data1 extents:", aggr.extents("data1"))
assert ns.read_block(0).startswith(b"root directory")
assert aggr.used_blocks == 40 + 100

# %% [markdown]
# ## Why the inner loops are compiled
#
# The checksum of a block is defined in numpy terms: its 512 64-bit words times fixed odd weights,
# summed modulo 2**64 (`checksum.WEIGHTS`), then mixed with the block number. Moving a block
# through the stack in numpy would cost one pass over memory per step (copy out of the disk, sum
# to verify, XOR into parity, copy into the next disk), and once blocks no longer fit in the
# caches each pass costs about a `memcpy`. `reference/storage/kernels.py` fuses such steps into
# plain loops that numba compiles: the loops compute exactly the numpy definitions, which the
# cell below checks, and `xvol bench transfer` measures what the fusion buys end to end.

# %%
batch = rng.integers(0, 256, (2048, BLOCK_SIZE), dtype=np.uint8)  # 8 MiB
words = batch.view(np.uint64)
definition = np.einsum("ij,j->i", words, WEIGHTS)  # the content sum, as numpy states it
assert np.array_equal(content_sums(batch), definition)

r4 = RaidGroup.in_memory("4", 4, 1024, name="fused")
r4.write_blocks(np.arange(2048, dtype=np.int64), batch)  # whole stripes: the fused write
stripes = batch.reshape(-1, 4, BLOCK_SIZE).view(np.uint64)
parity = np.bitwise_xor.reduce(stripes, axis=1).view(np.uint8)  # row parity, as numpy states it
assert r4.disks[4].read_blocks(np.arange(512, dtype=np.int64)).tobytes() == parity.tobytes()
check = r4.scrub()  # reads every block against its checksum and every parity against its data
assert check.repaired == () and check.parity_mismatches == ()
print(f"{len(batch)} blocks: compiled content sums and fused parity equal the numpy definitions;")
print(f"scrub of {check.codewords} codewords found nothing to repair")
