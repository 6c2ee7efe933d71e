# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 6. Mirroring, failover and resync
#
# The seed keeps a **disaster-recovery mirror** of an expandable volume at a second site. The
# **mirroring coordinator** runs on the M-host of the *destination* cluster and reaches the primary
# only through a **source proxy**. One update follows the seed's blocks: list the source volumes,
# create and **resize** the destination to match, assign **source IDs**, create or **confirm one
# relationship per volume** (fields A-J), **transfer** each volume's snapshot as a block diff,
# **copy the configuration** of the snapshot into the destination's snapshot table, and **notify
# the N-module**, which redirects clients to the newest snapshot complete on every volume.
#
# When the primary is lost, the destination **fails over** (the mirror is *broken* and becomes
# read-write). When the primary returns, a **resync** finds the newest snapshot common to every
# volume at both sites, keeps what the old primary wrote since then (a *preserved* volume),
# rolls it back, reverses the relationships, and transfers what the new primary wrote.
#
# Both sites live in this process; a SimPy clock times the link between them, so every time
# printed below is *simulated* seconds and is the same on every run.

# %%
import pandas as pd

from xvol.reference.mirror.coordinator import MirroringCoordinator
from xvol.reference.mirror.link import LinkError
from xvol.reference.mirror.relationships import MirrorConfig
from xvol.reference.mirror.resync import PRESERVED_MANIFEST, NoCommonSnapshotError, Resync
from xvol.reference.mirror.site import (
    ReadOnlyMirrorError,
    SitePair,
    SnapshotHeldError,
    build_site,
)

VS, XV = "vs1", "xv"

primary = build_site("A", seed=6, data_constituents=2)  # NS, OLS, DC1, DC2
remote = build_site("B", seed=7, volume=None)  # an empty cluster
pair = SitePair(primary, remote, bandwidth=4e6, latency=0.02)  # 4 MB/s, 20 ms one way
for i in range(6):
    primary.write(VS, XV, f"/doc{i}", f"version 1 of doc {i}\n".encode() * 800)
[m.name for m in primary.members(VS, XV)]

# %% [markdown]
# ## Initialize: the baseline transfer
#
# `initialize` creates the destination volume with the same number of constituents, writes one
# relationship per member volume, takes a consistent snapshot at the source (through the source
# proxy: the snapshot job manager fences NS, then OLS, then the data constituents) and transfers
# every block of it. Afterwards B is a **read-only mirror**.

# %%
# batches of 8 blocks, 2 in flight (defaults: 64 and 4), so that a small cut shows a resume
coordinator = MirroringCoordinator(remote, pair.link("B", "A"), batch_blocks=8, window=2)
first = pair.run(coordinator.initialize(VS, XV, config=MirrorConfig(throttle=None)))
print(
    f"baseline '{first.snapshot.name}': {first.records_sent} blocks, "
    f"{first.wire_bytes / 1e6:.2f} MB on the wire, {first.seconds:.3f} s simulated"
)
assert remote.files(VS, XV) == primary.files(VS, XV)
try:
    remote.write(VS, XV, "/nope", b"x")
except ReadOnlyMirrorError as refused:
    print("B refuses writes:", refused)

# %% [markdown]
# The **relationship table** (the seed's mirroring data structure, fields A-J) has one row per
# member volume: destination cluster, volume, repository and vserver (A-D), the same for the
# source (E-H), the kind (I) and the configuration (J: schedule, allowed clients, throttle).

# %%
rows = [r.to_json() for r in coordinator.tables.relationships(VS, XV)]
pd.DataFrame(rows)[
    [
        "member",
        "dest_cluster",
        "dest_vserver",
        "source_cluster",
        "source_volume_id",
        "dest_volume_id",
        "kind",
    ]
]

# %% [markdown]
# ## Updates send block diffs only
#
# An update transfers, per volume, the blocks born since the common snapshot. Rewrite one file
# and see which members send what: the data constituent holding the object sends its changed
# blocks, the namespace and the OLS send little or nothing.

# %%
primary.write(VS, XV, "/doc3", b"version 2 of doc 3\n" * 800)
second = pair.run(coordinator.update(VS, XV))
pd.DataFrame(
    [
        {
            "member": m.member,
            "records in diff": m.records,
            "sent": m.records_sent,
            "wire bytes": m.wire_bytes,
        }
        for m in second.members
    ]
)

# %%
assert second.records_sent < first.records_sent / 4
assert remote.read(VS, XV, "/doc3") == primary.read(VS, XV, "/doc3")

# %% [markdown]
# **Question.** Why does the namespace volume send anything at all for a rewrite of an existing
# file? (Hint: what does a write do to the inode's modification time and to the consistency
# point that wrote it?)
#
# ## A cut transfer resumes, and B never shows a mix
#
# Cut the link in the middle of an update. Each member commits its new snapshot on its own, so
# B's active file systems hold a mix of old and new; clients at B read through the redirect to
# the *exported* snapshot, which moves only when every member has the new one. The retry resumes:
# members that committed are skipped, and a member cut mid-way restarts from its last
# checkpoint (written after every batch), not from zero.

# %%
for i in range(6):
    primary.write(VS, XV, f"/doc{i}", f"version 3 of doc {i}\n".encode() * 3000)
before = remote.files(VS, XV)
pair.disaster(after_bytes=200_000)
try:
    pair.run(coordinator.update(VS, XV))
except LinkError as cut:
    print("update cut:", cut)
assert remote.files(VS, XV) == before  # the previous snapshot, whole
pair.reconnect()
resumed = pair.run(coordinator.update(VS, XV))  # None: finish the cut update's target
pd.DataFrame(
    [
        {
            "member": m.member,
            "records in diff": m.records,
            "sent now": m.records_sent,
            "resumed from checkpoint": m.records_resumed,
            "already committed": m.skipped,
        }
        for m in resumed.members
    ]
)

# %%
assert sum(m.records_resumed for m in resumed.members) > 0
assert remote.files(VS, XV) == primary.files(VS, XV)

# %% [markdown]
# ## The volume grows: the destination is resized
#
# Add a data constituent at the source. The next update lists the source volumes, sees a member
# the destination lacks, creates it (the **resize**), confirms a new relationship for it, and only
# then transfers it.

# %%
primary.cluster.mhost().add_data_constituent(VS, XV)
primary.cluster.expandable(VS, XV).create("/on-dc3", b"new constituent\n" * 500, location=3)
grown = pair.run(coordinator.update(VS, XV))
print("members created at B by the resize:", grown.added)
assert [m.name for m in remote.members(VS, XV)] == [m.name for m in primary.members(VS, XV)]

# %% [markdown]
# ## Disaster and failover
#
# The primary goes dark with writes the mirror never received. **Failover** (the seed's break)
# restores every member of B to the exported snapshot and makes B read-write; its clients carry
# on from there.

# %%
primary.write(VS, XV, "/doc0", b"A wrote this after the last update\n" * 50)
primary.write(VS, XV, "/a-only", b"a file only A has\n" * 50)
pair.disaster()
failover = coordinator.failover(VS, XV)
print(f"B is read-write on '{failover.snapshot.name}'")
remote.write(VS, XV, "/doc1", b"B wrote this after failover\n" * 50)
remote.write(VS, XV, "/b-only", b"a file only B has\n" * 50)
acknowledged_at_b = remote.files(VS, XV)

# %% [markdown]
# ## The primary returns: dry run first
#
# Resync runs at the old primary A, which becomes the mirror of B. Its **dry run** finds the
# newest snapshot common to *every* volume at both sites and lists exactly what A would
# discard, what B changed, and whether both sides wrote (split brain). It changes nothing.

# %%
pair.reconnect()
back = MirroringCoordinator(primary, pair.link("A", "B"))
resync = Resync(back, VS, XV)
plan = pair.run(resync.plan())
print("common snapshot:", plan.common.name if plan.common else None)
print("A would discard:", plan.discarded_paths)
print("B changed:      ", plan.source_changes)
print("split brain:", plan.split_brain, "- changed on both sides:", plan.conflicting_paths)
assert plan.split_brain and "/a-only" in plan.discarded_paths

# %% [markdown]
# ## Resync with preserve (the default)
#
# A's divergent files are copied into a **preserved** volume first, with a manifest of what was
# changed and deleted; then A is rolled back to the common snapshot, the relationships are
# reversed (B -> A), and B's changes are transferred. No write acknowledged at B is lost.

# %%
done = pair.run(resync.run())
assert primary.files(VS, XV) == acknowledged_at_b
kept = primary.open_snapshot(VS, done.preserved, "preserved")
print(kept.read(PRESERVED_MANIFEST).decode())
assert kept.read("/a-only").startswith(b"a file only A has")
check = pair.run(back.verify(VS, XV))
print(
    f"verify '{check.snapshot}' on {len(check.reports)} volumes by leaf digests "
    f"({check.blocks_compared} blocks covered, {check.wire_bytes} bytes on the wire): "
    f"equal = {check.equal}"
)
assert check.equal and check.blocks_compared > 0

# %% [markdown]
# ## Holds on the common base
#
# A relationship **holds** its common base snapshot at both sites (as `zfs hold` pins a
# snapshot, or as a mirror-owned snapshot is "busy"), so neither site can delete the snapshot
# the next update or resync starts from. The holds survive a failover on purpose: the exported
# snapshot is the common base a resync needs. Here A fails over once more (B must later resync
# from A), and B, the old source, refuses to delete its common base.

# %%
remote_back = MirroringCoordinator(remote, pair.link("B", "A"))
back.failover(VS, XV)  # A serves again; B must now resync from A
print("holds at B:", [(h.name, h.holder) for h in remote.holds(VS, XV)])
try:
    remote.delete_snapshot(VS, XV, remote.holds(VS, XV)[0].name)
except SnapshotHeldError as held:
    print("refused:", held)

# %% [markdown]
# ## No common snapshot: a clear error, and a baseline on request
#
# If the common snapshot is gone anyway (here an administrator releases the hold and deletes
# every snapshot at B), resync cannot roll back to it. It says so and offers a new baseline,
# which re-sends everything (after preserving B's files).

# %%
for hold in remote.holds(VS, XV):
    remote.release(VS, XV, hold.holder)
for row in remote.snapshots(VS, XV):
    remote.jobs.delete(VS, XV, row.name)
try:
    pair.run(Resync(remote_back, VS, XV).run())
except NoCommonSnapshotError as error:
    print("refused:", error)
baseline = pair.run(Resync(remote_back, VS, XV).run(baseline=True))
print(f"baseline resync sent {baseline.update.records_sent} blocks")
assert remote.files(VS, XV) == primary.files(VS, XV)

# %% [markdown]
# A live mirror can also be **re-baselined in place** (`update(..., baseline=True)`, the way
# back when the source lost the common base): every block is sent again into hidden staging
# volumes while B keeps serving its exported snapshot, and one local step swaps the new
# snapshot in once every member has it.

# %%
serving = remote.files(VS, XV)
primary.write(VS, XV, "/after-rebaseline", b"sent with the new baseline\n" * 20)
process = pair.env.process(remote_back.update(VS, XV, baseline=True))
steps, served_old = 0, 0
while process.is_alive:
    pair.env.step()
    steps += 1
    if steps % 20 == 0:  # a client reading at B now and then: the old snapshot or the new one
        seen = remote.files(VS, XV)
        assert seen in (serving, primary.files(VS, XV))
        served_old += seen == serving
assert served_old > 0
rebaseline = process.value
print(
    f"in-place baseline sent {rebaseline.records_sent} blocks and replaced "
    f"{', '.join(rebaseline.replaced)}"
)
assert rebaseline.baseline and remote.files(VS, XV) == primary.files(VS, XV)

# %% [markdown]
# **Exercises.**
# 1. Set `MirrorConfig(throttle=1e5)` at initialize and compare the simulated update times.
# 2. Cut the link at different byte counts and plot blocks re-sent on resume against the cut
#    point (experiment E3, `xvol experiment run interrupted-transfer`, does this at scale).
# 3. Run the resync with `discard=True` and check that no preserved volume appears.
