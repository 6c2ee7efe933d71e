# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 2. The write-anywhere volume, consistency points and snapshots
#
# In the seed, every constituent of an expandable volume (the namespace volume, the volume that
# holds the object location store, each data constituent) is an ordinary *volume* managed by a
# *write anywhere file system*. Two properties of that file system carry the whole design:
#
# * a **consistency point** (CP) writes every changed block to a *new* place and then switches the
#   root, so it never overwrites a block the last CP references: a crash reopens at the last CP;
# * a **snapshot** is just a kept root pointer ("virtually, by using a pointer"), so it shares every
#   unchanged block with the active file system, and the *difference* between two snapshots is
#   exactly the blocks one references and the other does not. That difference is what block
#   replication (disaster-recovery mirroring) sends to the other site.
#
# This notebook runs `xvol.reference.volume` on a volume space carved from an in-memory aggregate
# (notebook 1). A small wrapper records which blocks the volume reads and writes, so that we can
# check the claims above instead of taking them on trust.

# %%
import random

import matplotlib.pyplot as plt
import numpy as np

from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.storage.block import BLOCK_SIZE, BlockNumbers, Blocks, VolumeSpace
from xvol.reference.volume.diff import diff_snapshots, full_scan_diff, replicate
from xvol.reference.volume.layout import FIRST_DATA_BLOCK, FileType
from xvol.reference.volume.volume import Volume

SEED = 11
rng = random.Random(SEED)


class RecordingSpace:
    """A VolumeSpace that passes every call to ``inner`` and records the block numbers touched."""

    def __init__(self, inner: VolumeSpace) -> None:
        self.inner = inner
        self.written: list[int] = []
        self.reads = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def block_count(self) -> int:
        return self.inner.block_count

    def read_block(self, number: int) -> bytes:
        self.reads += 1
        return self.inner.read_block(number)

    def read_blocks(self, numbers: BlockNumbers) -> Blocks:
        self.reads += len(numbers)
        return self.inner.read_blocks(numbers)

    def write_block(self, number: int, data: bytes) -> None:
        self.written.append(number)
        self.inner.write_block(number, data)

    def write_blocks(self, numbers: BlockNumbers, data: Blocks) -> None:
        self.written.extend(int(n) for n in numbers)
        self.inner.write_blocks(numbers, data)

    def resize(self, block_count: int) -> None:
        self.inner.resize(block_count)


aggregate = Aggregate.create_in_memory("dp", 4, 4096, name="aggr0")
space = RecordingSpace(aggregate.create_space("vol1", 6000))
vol = Volume.create(space, "vol1")
print(vol.name, "| blocks:", vol.block_count, "| CP:", vol.cp)
print(vol.usage())

# %% [markdown]
# ## Consistency points write anywhere
#
# We write some files, commit a CP, and note every block the active file system references
# (a baseline diff of a snapshot lists exactly those blocks; we delete the snapshot again so
# that nothing but the active file system holds them). Then we change the files and commit the
# next CP. **Question:** how many of the blocks that CP wrote were blocks the previous CP
# referenced? (Blocks below `FIRST_DATA_BLOCK` are the two alternating superblock regions; the CP
# writes the one *not* holding the current root.)


# %%
def random_bytes(n: int) -> bytes:
    return rng.randbytes(n)


vol.mkdir("/docs")
for name in ("a", "b", "c"):
    vol.write_file(f"/docs/{name}", random_bytes(rng.randint(1, 40) * BLOCK_SIZE))
vol.sync()

vol.create_snapshot("probe")
live_before = set(diff_snapshots(vol, None, "probe").numbers.tolist())
vol.delete_snapshot("probe")

space.written.clear()
vol.write("/docs/a", 0, b"new first block".ljust(BLOCK_SIZE, b"."))
vol.write_file("/docs/d", random_bytes(5 * BLOCK_SIZE))
vol.unlink("/docs/b")
print("dirty data blocks before the CP:", vol.dirty_blocks)
cp = vol.consistency_point()
written = set(space.written)
overwritten_live = written & live_before
print(f"CP {cp} wrote {len(written)} blocks; the previous CP referenced {len(live_before)}")
print("superblock-region blocks written:", sorted(n for n in written if n < FIRST_DATA_BLOCK))
print("blocks of the previous CP that were overwritten:", sorted(overwritten_live))
assert not overwritten_live

# %% [markdown]
# Because nothing live was overwritten, a crash between two CPs is harmless: the blocks on the
# space still describe the last CP. Simulate one: buffer a change without a CP, then throw the
# `Volume` object away and open the space again.

# %%
vol.write_file("/docs/unsaved", b"lost in the crash")
assert vol.exists("/docs/unsaved")
reopened = Volume.open(space)
print("after the crash, CP", reopened.cp, "files:", [e.name for e in reopened.readdir("/docs")])
assert not reopened.exists("/docs/unsaved")
assert reopened.read("/docs/a", 0, 15) == b"new first block"
vol = reopened

# %% [markdown]
# ## Snapshots share blocks; what a snapshot costs
#
# A snapshot freezes a CP. Right after it is taken it costs (almost) nothing: it shares all of
# its blocks with the active file system. As the active file system moves on, the snapshot keeps
# the old blocks alive. `usage().snapshot_only` counts blocks only snapshots hold;
# `snapshot_exclusive_blocks(name)` counts what deleting that one snapshot would free.

# %%
big = rng.randbytes(400 * BLOCK_SIZE)
vol.write_file("/big", big)
s1 = vol.create_snapshot("s1")
print(s1)
print("right after s1:", vol.usage(), "| s1 exclusive:", vol.snapshot_exclusive_blocks("s1"))
assert vol.snapshot_exclusive_blocks("s1") == 0 and vol.usage().snapshot_only == 0

CHANGED = 100  # change this: how many blocks of /big to overwrite
for block in rng.sample(range(400), CHANGED):
    vol.write("/big", block * BLOCK_SIZE, rng.randbytes(BLOCK_SIZE))
s2 = vol.create_snapshot("s2")
exclusive = vol.snapshot_exclusive_blocks("s1")
print(f"after overwriting {CHANGED} blocks of /big and taking s2:", vol.usage())
print("s1 alone holds", exclusive, "blocks (the old data blocks plus old metadata)")
assert exclusive >= CHANGED
assert vol.snapshot("s1").read_file("/big") == big  # the old image is intact
assert vol.read_file("/big") != big

# %% [markdown]
# ## Block diff between snapshots, and what it costs
#
# The blocks `s2` references and `s1` does not are exactly what a mirror that already has `s1`
# needs. The kit finds them three ways, with one answer:
#
# * `method="birth"`: walk `s2`'s tree and descend only into pointers born after `s1`'s CP;
# * `method="maps"`: `s2`'s allocation bitmap AND NOT `s1`'s;
# * `full_scan_diff`: read and checksum every in-use block of both images (an rsync-like baseline).
#
# **Question:** how many blocks does each method read from the space? (The walk reads only the
# metadata on the changed paths, never the data blocks; the map diff reads nothing because the
# volume keeps its allocation bitmaps in memory, one bit per block.)


# %%
def reads_of(compute):
    before = space.reads
    result = compute()
    return result, space.reads - before


walk, walk_reads = reads_of(lambda: diff_snapshots(vol, "s1", "s2"))
maps, maps_reads = reads_of(lambda: diff_snapshots(vol, "s1", "s2", method="maps"))
scan, scan_reads = reads_of(lambda: full_scan_diff(vol, "s1", "s2"))
print(f"diff s1 -> s2: {len(walk.numbers)} blocks to send, {len(walk.freed)} freed")
print(f"  birth walk reads {walk_reads:5d} blocks")
print(f"  map diff reads   {maps_reads:5d} blocks")
print(f"  full scan reads  {scan_reads:5d} blocks")
assert np.array_equal(walk.numbers, maps.numbers)
assert np.array_equal(walk.numbers, scan.numbers)
assert walk_reads < scan_reads

# %% [markdown]
# The birth walk's cost follows the *change*, the full scan's the *volume*. Sweep the number of
# changed blocks of a 2000-block file and plot both (nothing is saved to disk):

# %%
sweep_space = RecordingSpace(aggregate.create_space("sweep", 2400))
sweep = Volume.create(sweep_space, "sweep")
sweep.write_file("/f", rng.randbytes(2000 * BLOCK_SIZE))
sweep.create_snapshot("base")
rows = []
for k, changed in enumerate((1, 4, 16, 64, 256)):
    for block in rng.sample(range(2000), changed):
        sweep.write("/f", block * BLOCK_SIZE, rng.randbytes(BLOCK_SIZE))
    sweep.create_snapshot(f"t{k}")
    before = sweep_space.reads
    d = diff_snapshots(sweep, f"t{k - 1}" if k else "base", f"t{k}")
    walk_cost = sweep_space.reads - before
    before = sweep_space.reads
    full_scan_diff(sweep, f"t{k - 1}" if k else "base", f"t{k}")
    rows.append((changed, len(d.numbers), walk_cost, sweep_space.reads - before))
    sweep.delete_snapshot(f"t{k - 1}" if k else "base")
print(f"{'changed':>8} {'to send':>8} {'walk reads':>11} {'scan reads':>11}")
for row in rows:
    print(f"{row[0]:8d} {row[1]:8d} {row[2]:11d} {row[3]:11d}")
assert all(walk < scan for _, _, walk, scan in rows)

fig, ax = plt.subplots(figsize=(5, 3))
ax.loglog([r[0] for r in rows], [r[2] for r in rows], "o-", label="birth walk")
ax.loglog([r[0] for r in rows], [r[3] for r in rows], "s-", label="full scan")
ax.loglog([r[0] for r in rows], [r[1] for r in rows], "k:", label="blocks to send")
ax.set_xlabel("changed data blocks")
ax.set_ylabel("blocks read to diff")
ax.legend()
plt.show()

# %% [markdown]
# ## Apply the diff on another volume, bit for bit
#
# A *replica* volume (a mirror destination) starts with no file system. Sending the baseline of
# `s1` and then the `s1 -> s2` diff reproduces both snapshots there: same names, same UUIDs, same
# block numbers, same bytes, and the checksums of every record are verified on the way in.

# %%
replica = Volume.create(aggregate.create_space("replica", 100), "replica", replica=True)
replica.space.resize(vol.block_count)  # the destination is grown to the source's size
replicate(vol, replica, None, "s1")
replicate(vol, replica, "s1", "s2")
print("replica snapshots:", replica.snapshots())
for info in vol.snapshots():
    assert replica.snapshot_info(info.uuid).cp == info.cp
    blocks = diff_snapshots(vol, None, info.name).numbers
    assert np.array_equal(vol.space.read_blocks(blocks), replica.space.read_blocks(blocks))
    src, dst = vol.snapshot(info.name), replica.snapshot(info.uuid)
    for path, stat in src.walk():
        if stat.type == FileType.REGULAR:
            assert src.read_file(path) == dst.read_file(path)
print("every block of s1 and s2 is identical on the replica")
