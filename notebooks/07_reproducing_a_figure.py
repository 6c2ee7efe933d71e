# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 7. Reproducing a figure
#
# Every figure in the paper comes from one experiment module in `experiments/`, and one command
# regenerates it: `xvol experiment run NAME` (or all of them: `xvol reproduce`). This notebook
# takes one experiment apart to show what that command does, so that you can trust a figure,
# re-measure one point of it, or add an experiment of your own:
#
# 1. an experiment is a **declaration**: a parameter grid (quick and full), a pure function that
#    measures one point, figure functions, and the numbers the paper quotes;
# 2. every point gets a **seed derived from its parameters**, never from the order in which
#    workers finish, so a point measures the same on any worker of any machine;
# 3. the records form a **tidy frame** (one row per observation), and counts are separated from
#    wall-clock timings, so that the CSV and the count figures are identical from run to run.
#
# We use E7a, RAID reconstruction: how many disk reads RAID-4, RAID-5 and RAID-DP spend to rebuild
# failed disks. (Running it in a notebook writes no file; the command writes CSV, JSON and figures.)

# %%
from concurrent.futures import ThreadPoolExecutor

from xvol.experiments import registry
from xvol.experiments.framework import (
    SerialExecutor,
    collect,
    derive_seed,
    draw_figure,
)

for experiment in registry.experiments():
    print(f"{experiment.name:24} {experiment.title}")

# %%
e7a = registry.get("raid-reconstruction")
print(e7a.measures)
print(f"quick grid: {len(e7a.quick)} points, full grid: {len(e7a.full)} points")
print("parameters:", e7a.parameters)
print("first quick point:", dict(e7a.quick[0]))

# %% [markdown]
# ## One point, by hand
#
# A point is a plain dictionary of parameters. Its seed is a hash of the experiment's name, the
# parameters and the base seed: rerun the same point anywhere and it draws the same random bytes,
# fails the same disks, and counts the same reads.

# %%
point = dict(e7a.quick[0])
seed = derive_seed(e7a.name, point, e7a.default_seed)
rows = e7a.point(point, seed)
print(f"seed {seed}")
for r in rows:
    print(f"  {r['operation']:12} disk reads {r['disk_reads']:5}  per block {r['reads_per_block']}")


# %%
def counts(records):
    """The records without their wall-clock columns."""
    return [{k: v for k, v in r.items() if k not in e7a.timing_columns} for r in records]


assert counts(e7a.point(point, seed)) == counts(rows)  # equal but for the wall-clock columns

# %% [markdown]
# ## The whole grid, on two different executors
#
# `collect` runs every point on an executor and gathers the records in *grid order*, whatever
# order they finish in. Run the quick grid serially and on a thread pool: the deterministic
# columns agree exactly.

# %%
serial = collect(e7a, e7a.quick, e7a.default_seed, SerialExecutor())
with ThreadPoolExecutor(max_workers=2) as pool:
    threaded = collect(e7a, e7a.quick, e7a.default_seed, pool)
deterministic = [c for c in serial.columns if c not in e7a.timing_columns]
assert serial[deterministic].equals(threaded[deterministic])
print(serial[["level", "data_disks", "failure", "operation", "reads_per_block"]].head(8))

# %% [markdown]
# ## The figure and the numbers the paper quotes
#
# The same figure function that `xvol reproduce` calls draws the frame (the paper's copy comes
# from the full grid). The paper's text never types a number: it quotes macros that the
# experiment computes from the frame, written to `paper/generated/numbers.tex`.

# %%
figure = draw_figure(e7a.figures[0], serial)
print("figure:", e7a.figures[0].name, "paper:", e7a.figures[0].paper)
numbers = e7a.paper_numbers(serial) if e7a.paper_numbers else {}
for name, text in numbers.items():
    print(f"\\newcommand{{\\{name}}}{{{text}}}")

# %%
largest = int(numbers["ESevenALargestD"])
assert float(numbers["ESevenARebuildOneReads"]) == largest  # D survivors per rebuilt block

# %% [markdown]
# **Exercises.**
# 1. Change the base seed (`collect(e7a, e7a.quick, 7, SerialExecutor())`): which columns
#    change, and why do the I/O counts not?
# 2. Run `xvol experiment run raid-reconstruction --quick --out /tmp/e7a` and open the JSON
#    sidecar: find the commit, the package versions and the command that produced the CSV.
# 3. Write a point function of your own (see the docstring of `experiments/framework.py`).
