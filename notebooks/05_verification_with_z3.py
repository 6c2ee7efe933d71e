# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 5. Verifying the fence protocol with z3
#
# Notebook 4 showed, with hand-written interleavings, that the seed's consistent snapshots stay
# referentially whole, and that rolling fences or namespace-first operations break them. Random
# interleavings found the bad cases only now and then. A **model checker** settles the question
# for *every* interleaving of a small instance: it either proves a property (here with an
# inductive invariant that z3 checks obligation by obligation) or returns a **shortest
# counterexample**.
#
# `xvol.model.fence` is a transition-system model of the protocol: the namespace volume `NS`,
# the `OLS`, data constituents `DC1..DCn`; clients whose operations follow
# `xvol.vocabulary.operation_steps` (the same table as the reference's scheduler); a snapshot
# job that fences in a given order, captures, and unfences in reverse. Its properties:
#
# * `integrity`: every name in the captured namespace has its OLS record and its data;
# * `named-availability` / `raw-availability`: a request admitted at the namespace (or at the
#   OLS, for raw access) is never deferred mid-operation by a volume further along its path
#   (the seed: "the request will not be serviced properly because the data constituent volume is
#   still fenced");
# * `no-lost-request`: no deferred request runs twice or is left waiting;
# * `unfence-on-failure`: when the job ends, nothing is fenced, even if it failed.
#
# Knobs: the fence order, the fence mode (held / rolling), the step discipline (write-ahead /
# namespace-first), and two deliberate protocol bugs. Two independent engines answer: z3 and an
# explicit-state breadth-first explorer (networkx) that never touches z3.

# %%
from itertools import permutations

from xvol.model.check import Result, Verdict, bmc, verify
from xvol.model.explicit import explore
from xvol.model.fence import (
    PROPERTIES,
    Bug,
    FenceConfig,
    FenceInstance,
    config_json,
    fence_system,
)
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.snapshots.interleave import Interleaving
from xvol.reference.snapshots.snapshot_access import SnapshotAccessLayer, integrity_violations
from xvol.reference.snapshots.snapshot_coordinator import SnapshotJobManager
from xvol.vocabulary import (
    Action,
    FenceMode,
    OperationKind,
    StepDiscipline,
    TraceStep,
    format_fence_order,
    seed_fence_order,
    serial_order,
)

DEPTH = 10  # BMC depth: counterexamples up to this many steps are searched
SHAPE = {"objects": 1, "clients": 1, "present": 1}  # one object, one client, object exists


def check(
    config: FenceConfig, instance: FenceInstance, props: tuple[str, ...] = PROPERTIES
) -> dict[str, Result]:
    """The z3 verdict on each property (Houdini proof, else shortest counterexample by BMC)."""
    system = fence_system(config)
    return verify(system, instance.instance(), props, depth=DEPTH, candidates=system.invariants)


def show(results: dict[str, Result]) -> None:
    """One line per property: verdict, how it was reached, time."""
    for prop, r in results.items():
        how = f"depth {r.depth}" if r.verdict is Verdict.VIOLATED else r.method
        print(f"  {prop:20s} {r.verdict.value:9s} ({how}, {r.seconds:.2f}s)")


# %% [markdown]
# ## The seed's configuration: proved
#
# One data constituent, the seed's fence order `NS < OLS < DC1`, held fences, write-ahead
# operations. z3 first prunes a list of candidate invariants (Houdini) to an inductive one, then
# checks three obligations: it holds initially, every action preserves it, and it implies the
# property.

# %%
seed_instance = FenceInstance(1, seed_fence_order(1), **SHAPE)
print("fence order:", format_fence_order(seed_instance.order))
seed_results = check(FenceConfig(), seed_instance)
show(seed_results)
proof = seed_results["integrity"]
helpers = [name for name in proof.invariant if name not in PROPERTIES]
print(
    f"\ninductive invariant: the {len(PROPERTIES)} properties and {len(helpers)} helper conjuncts"
)
print("helpers, e.g.:", helpers[:6])
for obligation in proof.obligations:
    print(" ", obligation.describe("integrity"))
assert all(r.verdict is Verdict.PROVED for r in seed_results.values())

# %% [markdown]
# ## Change one knob, watch a property fail
#
# ### Rolling fences
#
# **Question:** what is the shortest run in which rolling fences break snapshot integrity? The
# counterexample is printed step by step with the state each step changed.

# %%
rolling = FenceConfig(mode=FenceMode.ROLLING)
rolling_results = check(rolling, seed_instance)
show(rolling_results)
cex = rolling_results["integrity"].counterexample
print()
print(cex.render())
assert rolling_results["integrity"].verdict is Verdict.VIOLATED
labels = [(step.label, dict(step.args).get("volume")) for step in cex.steps]
assert labels[-1] == ("capture", "OLS")  # the OLS capture completes the broken pair ...
assert ("unfence", "NS") in labels  # ... after the namespace was already released
assert rolling_results["named-availability"].verdict is Verdict.VIOLATED

# %% [markdown]
# Read it against notebook 4: the namespace is captured while the object is still named, the
# namespace is unfenced (rolling!), a delete unlinks the name and removes the OLS record, and only
# then is the OLS captured. The captured namespace names an object the captured OLS does not list.
#
# ### Namespace-first operations, held fences

# %%
nf_results = check(FenceConfig(discipline=StepDiscipline.NAMESPACE_FIRST), seed_instance)
show(nf_results)
print()
print(nf_results["integrity"].counterexample.render())
assert nf_results["integrity"].verdict is Verdict.VIOLATED

# %% [markdown]
# ### Every fence order
#
# **Question:** which of the six orders of `NS`, `OLS`, `DC1` keep which property under held
# fences and write-ahead operations? (Integrity holds for all of them: with held fences every
# capture happens while *all* volumes are fenced. What the order decides is *availability*:
# whether a request that got past one fence gets stuck at the next.) This sweep uses the
# explicit-state engine, which is quick on an instance this small; the next section checks that
# it agrees with z3.

# %%
held = fence_system(FenceConfig())
table = {}
for order in permutations(["NS", "OLS", "DC1"]):
    explored = explore(held, FenceInstance(1, serial_order(order), **SHAPE).instance(), PROPERTIES)
    table[" < ".join(order)] = explored.results
print(f"{'order':16s} " + " ".join(f"{p[:12]:>12s}" for p in PROPERTIES))
for order, results in table.items():
    print(f"{order:16s} " + " ".join(f"{results[p].verdict.value:>12s}" for p in PROPERTIES))
safe = [o for o, r in table.items() if all(x.verdict is Verdict.PROVED for x in r.values())]
print("orders that keep every property:", safe)
assert safe == ["NS < OLS < DC1"]
assert all(r["integrity"].verdict is Verdict.PROVED for r in table.values())
print()
print(table["OLS < NS < DC1"]["named-availability"].counterexample.render())

# %% [markdown]
# Fencing the OLS first lets a write pass the (still open) namespace and then wait at the fenced
# OLS, mid-operation: exactly the stuck request the seed's order avoids.
#
# ### Protocol bugs
#
# The last two properties would be worthless if they could not fail. A coordinator that forgets
# to unfence after a failed snapshot is caught by BMC alone (try `Bug.RETRY_DEFERRED` with
# `no-lost-request` and depth 7 too):

# %%
buggy = fence_system(FenceConfig(bugs=frozenset({Bug.NO_UNFENCE_ON_FAILURE})))
found = bmc(buggy, seed_instance.instance(), ["unfence-on-failure"], 4)["unfence-on-failure"]
print(found.counterexample.render())
assert found.verdict is Verdict.VIOLATED

# %% [markdown]
# ## A second opinion: the explicit-state engine
#
# The explicit engine enumerates every reachable state breadth first, evaluating the model on
# plain Python values. On a small instance it must agree with z3 on every verdict, and on the
# *length* of every shortest counterexample.

# %%
z3_results = {
    FenceConfig(): seed_results,
    rolling: rolling_results,
    FenceConfig(discipline=StepDiscipline.NAMESPACE_FIRST): nf_results,
}
for config, z in z3_results.items():
    x = explore(fence_system(config), seed_instance.instance(), PROPERTIES)
    label = f"{config.mode.value}/{config.discipline.value}"
    print(f"{label:26s} {x.states} states, {x.edges} edges, explored in {x.seconds:.2f}s")
    for p in PROPERTIES:
        xr, zr = x.results[p], z[p]
        print(f"    {p:20s} explicit {xr.verdict.value:9s} z3 {zr.verdict.value:9s}", end="")
        print(f" lengths {xr.depth} / {zr.depth}" if zr.verdict is Verdict.VIOLATED else "")
        assert xr.verdict == zr.verdict
        if zr.verdict is Verdict.VIOLATED:
            assert xr.depth == zr.depth

# %% [markdown]
# ## From the model back to the reference
#
# A counterexample is a trace in the shared vocabulary (`xvol.vocabulary.Trace`): the same step
# names the reference's scheduler and snapshot coordinator use. Replay the rolling-fence
# counterexample on a real cluster: model object `o1` (present at the start, on `DC1`) becomes
# the file `/o1`; the model's `begin(kind=delete)` submits a real delete. **Question:** is the
# reference snapshot broken the same way the model says?

# %%
trace = cex.to_trace("fence", config_json(rolling, seed_instance))
print("model trace:", dict(trace.config))
for step in trace.steps:
    print("  ", step)

cluster = Cluster(
    2, seed=0, storage_factory=lambda n: AggregateStorage.memory(n, level="4", data_disks=2)
)
cluster.mhost().create_vserver("vs1", ["root"])
cluster.mhost().create_expandable_volume("vs1", "xv", data_constituents=1, volume_blocks=256)
xv = cluster.expandable("vs1")
goid = xv.create("/o1", b"object one", location=1).goid  # the model's o1 exists initially


def begin(step: TraceStep) -> None:
    """Submit the operation a model BEGIN names, on the file of its object, under the model's
    operation ID."""
    kind = OperationKind(str(step.args["kind"]))
    path = "/" + str(step.args["object"])
    make = {
        OperationKind.CREATE: lambda: xv.op_create(path, b"created", location=1),
        OperationKind.WRITE: lambda: xv.op_replace(path, b"rewritten"),
        OperationKind.DELETE: lambda: xv.op_delete(path),
        OperationKind.READ_NAMED: lambda: xv.op_read(path, 0, 64),
        OperationKind.READ_RAW: lambda: xv.op_read_object(goid, 0, 64),
    }
    xv.submit(kind, make[kind](), op_id=str(step.args["op"]))


job = SnapshotJobManager(cluster).start("vs1", "xv", "from-model", mode=FenceMode.ROLLING)
run = Interleaving(xv, job)
run.replay(trace, begin)
run.finish()
print("reference events:")
for event in run.events:
    print(" ", event)
snapshot = SnapshotAccessLayer(cluster, "node1").open("vs1", "xv", "from-model")
violations = integrity_violations(snapshot.check_references())
print("reference snapshot violations:", violations)
assert violations and violations[0].startswith("dangling name /o1")
# the reference took the model's steps, in the model's order (BEGIN is a submit, not an event)
model_steps = [
    (s.action, s.args.get("volume")) for s in trace.steps if s.action is not Action.BEGIN
]
reference_steps = [(e.action, e.args.get("volume")) for e in run.events]
assert reference_steps[: len(model_steps)] == model_steps
