# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 3. The expandable volume: namespace, object location store, handles
#
# The seed's *expandable volume* (its "InfiniteVol") is one namespace spread over many volumes
# on many cluster nodes:
#
# * the **namespace volume** (`NS`) holds the directory tree; each object's directory entry points
#   to a **redirector file** that holds the object's global object ID (GOID);
# * the **object location store** (`OLS`) maps each GOID to a *location ID* (which data
#   constituent holds it) and a policy ID;
# * the **data constituents** (`DC1`, `DC2`, ...) hold the objects' bytes.
#
# A path therefore resolves in three hops: path -> redirector (GOID) -> OLS (location) -> data
# constituent. Clients may keep a **multilevel object handle** (GOID, location ID, policy ID): with
# a valid location they skip the OLS (*fast path*); after a migration the location is stale, the
# access falls back to the OLS (*slow path*) and returns a fresh handle with the same GOID.
#
# Every client operation is a *sequence of steps*, one member volume per step. The order of those
# steps is what makes consistent snapshots possible (notebook 4), so we look at it closely here.
#
# The cluster below is built by `build_cluster`: nodes with N-modules (the way in), D-modules
# (which own member volumes) and a replicated database holding the volume table.

# %%
from xvol.reference.access.nas import NasClient
from xvol.reference.cluster.cluster import build_cluster
from xvol.reference.repository.handles import ForgedHandleError, format_goid
from xvol.vocabulary import (
    NAMESPACE_VOLUME,
    OperationKind,
    StepDiscipline,
    StepKind,
    operation_steps,
)

SEED = 3
NODES = 2
DATA_CONSTITUENTS = 3  # at least 2, so that an object can migrate

cluster = build_cluster(
    nodes=NODES, data_constituents=DATA_CONSTITUENTS, seed=SEED, volume_blocks=512
)
nas = NasClient(cluster, "vs1", user="root", node="node1")
xv = cluster.expandable("vs1")
print("expandable volume", xv.name, "of vserver vs1; members:", sorted(xv.members))
print("volume table (vserver, volume, member -> volume ID):")
for vserver, name, member in cluster.volume_table():
    node, _ = cluster.member_location(vserver, name, member.name)
    role = member.role.value
    print(f"  {vserver} {name} {member.name:4s} {role:9s} -> {member.volume_id} on {node}")

# %% [markdown]
# ## Create some files and follow one path through the layers

# %%
nas.mkdir("/docs")
handles = {}
for i, name in enumerate(["alpha", "beta", "gamma", "delta"]):
    handles[f"/docs/{name}"] = nas.create(
        f"/docs/{name}", f"contents of {name} ".encode() * (i + 1)
    )
for path, handle in handles.items():
    print(f"{path:12s} -> GOID {format_goid(handle.goid)} on DC{handle.location_id}")
print("readdir /docs:", [e.name for e in nas.readdir("/docs")])

# the placement policy (round robin by default) spread the objects over the constituents
used = {h.location_id for h in handles.values()}
assert len(used) == min(len(handles), DATA_CONSTITUENTS)

# %%
path = "/docs/beta"
# hop 1: the namespace volume. Its tree lives under /root; the object's entry is a redirector file.
ns_files = cluster.mounted("vs1", "xv", "NS").files
redirector = ns_files.read("/root" + path, 0, 64)
locator, _ = xv.access.call(NAMESPACE_VOLUME, "lookup", {"path": path})
print("redirector file bytes:", redirector.hex(" ", 4))
print("  = magic", redirector[:4], "and GOID", format_goid(locator["goid"]))
# hop 2: the OLS maps the GOID to a location
location = xv.locate(locator["goid"])
print("OLS record:", location)
# hop 3: the data constituent, owned by some node's D-module
member = f"DC{location.location_id}"
node, volume_id = cluster.member_location("vs1", "xv", member)
print(f"{member} is volume {volume_id} on {node}")
assert redirector[:4] == b"XRDR"
assert locator["goid"] == handles[path].goid == location.goid
assert nas.read(path) == b"contents of beta " * 2

# %% [markdown]
# ## Fast path, slow path, and a migration
#
# `RepositoryCounters` count how data was reached. A handle whose location is right goes straight
# to the data constituent. **Question:** after the object migrates to another data constituent,
# what happens to a read through the old handle, and what does the client get back?


# %%
def counters() -> tuple[int, int, int]:
    c = xv.counters
    return c.fast_path, c.slow_path, c.stale


handle = handles[path]
before = counters()
data, fresh = nas.read_object(handle)
after = counters()
print("read with a valid handle: (fast, slow, stale) went", before, "->", after)
assert after[0] == before[0] + 1 and after[1] == before[1]

target = next(k for k in xv.data_constituents() if k != handle.location_id)
moved = nas.migrate(handle, target)
print(f"migrated {path} from DC{handle.location_id} to DC{target}: new handle {moved}")
assert nas.read(path) == data  # the name did not change

before = counters()
data2, fresh = nas.read_object(handle)  # the OLD handle
after = counters()
print("read with the stale handle: (fast, slow, stale) went", before, "->", after)
print("fresh handle returned:", fresh)
assert data2 == data
assert after[2] == before[2] + 1 and after[1] == before[1] + 1  # stale, then slow path
assert fresh.goid == handle.goid and fresh.location_id == target

# %% [markdown]
# Handles travel as signed text, so a client cannot forge one for an object it was never given:

# %%
text = nas.handle_text(fresh)
print("handle text:", text)
forged = text[:-1] + ("0" if text[-1] != "0" else "1")
try:
    nas.read_object(forged)
except ForgedHandleError as err:  # a PermissionDeniedError
    print("forged handle ->", type(err).__name__ + ":", err)
else:
    raise AssertionError("a forged handle was accepted")

# %% [markdown]
# ## Growing the volume: add a data constituent
#
# The M-host (management) adds a data constituent to the running volume: a new member volume on
# the least loaded node, a new VLDB row, a new volume-table row. New objects can land on it;
# old objects stay where they are until migrated.

# %%
k = cluster.mhost().add_data_constituent("vs1", "xv")
print(f"added DC{k} on", cluster.member_location("vs1", "xv", f"DC{k}")[0])
print("data constituents now:", xv.data_constituents())
new_handles = [
    nas.create(f"/docs/new{i}", b"x" * 100) for i in range(2 * len(xv.data_constituents()))
]
print("new objects went to:", sorted(h.location_id for h in new_handles))
assert k in {h.location_id for h in new_handles}
report = xv.check_references()
print(report)
assert report.ok

# %% [markdown]
# ## Operations are step sequences
#
# `operation_steps(kind, discipline)` is the one table the reference's scheduler and the z3 model
# (notebook 5) both follow. Under the seed's **write-ahead** discipline an object's data and
# location exist before any name points to it, and a name disappears before what it points to.

# %%
for discipline in StepDiscipline:
    print(discipline.value)
    for kind in OperationKind:
        steps = " -> ".join(s.value for s in operation_steps(kind, discipline))
        print(f"  {kind.value:11s} {steps}")
assert operation_steps(OperationKind.CREATE)[-1] is StepKind.NAMESPACE_LINK
assert operation_steps(OperationKind.DELETE)[0] is StepKind.NAMESPACE_UNLINK

# %% [markdown]
# ## The scheduler interleaves operations
#
# Operations can be submitted without running (`xv.submit(kind, xv.op_create(...))`); the
# scheduler then picks, with its seeded generator, which operation takes its next step. Between
# steps the repository can be *between* states. **Question:** in which intermediate states can
# a name point to nothing (a *dangling name*), and in which can an object exist without a name
# (an *orphan*)? We stop after every single step and ask `check_references()`.

# %%
first_event = len(xv.scheduler.events)
ops = [
    xv.submit(
        OperationKind.CREATE, xv.op_create("/docs/epsilon", b"e" * 50), label="/docs/epsilon"
    ),
    xv.submit(OperationKind.CREATE, xv.op_create("/docs/zeta", b"z" * 50), label="/docs/zeta"),
    xv.submit(OperationKind.DELETE, xv.op_delete("/docs/alpha"), label="/docs/alpha"),
]
seen = []
while xv.run_pending(max_steps=1):
    r = xv.check_references()
    seen.append(r)
    event = xv.scheduler.events[-1]
    print(
        f"{event!s:55s} dangling names: {len(r.dangling_names)}  orphans: "
        f"{len(r.orphan_objects)}  unnamed: {len(r.unnamed_objects)}"
    )
assert all(not r.dangling_names for r in seen)  # write-ahead never exposes a dangling name
assert any(r.orphan_objects or r.unnamed_objects for r in seen)  # but garbage can appear mid-way
assert xv.check_references().ok  # and is gone when every operation has finished
for op_id in ops:
    xv.scheduler.forget(op_id)

# %% [markdown]
# The same experiment on a second expandable volume that uses the **namespace-first**
# discipline (link the name first, unlink it last): now intermediate states *do* show dangling
# names (a name whose GOID the OLS does not know) and dangling locations (an OLS record whose
# data constituent lacks the object). Both end up consistent; the difference only matters to
# someone who looks in the middle, and a snapshot is exactly such a someone. Notebook 4 follows
# that thread.

# %%
cluster.mhost().create_expandable_volume(
    "vs1", "nf", data_constituents=2, discipline=StepDiscipline.NAMESPACE_FIRST, volume_blocks=512
)
nf = cluster.expandable("vs1", "nf")
nf.create("/old", b"old")
nf_ops = [
    nf.submit(OperationKind.CREATE, nf.op_create("/new", b"new"), label="/new"),
    nf.submit(OperationKind.DELETE, nf.op_delete("/old"), label="/old"),
]
dangling_seen = 0
while nf.run_pending(max_steps=1):
    r = nf.check_references()
    dangling_seen += bool(r.dangling_names)
    print(
        f"{nf.scheduler.events[-1]!s:55s} dangling names: {len(r.dangling_names)}  "
        f"dangling locations: {len(r.dangling_locations)}"
    )
assert dangling_seen > 0
assert nf.check_references().ok
