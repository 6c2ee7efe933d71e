"""The explicit-state engine: breadth-first exploration of a small instance's state graph.

The second engine of the model. It evaluates a system's definitions on concrete Python values
(:mod:`xvol.model.concrete`), never through z3, and builds the reachable state graph as a
networkx ``DiGraph`` (nodes: states; edges: labelled actions). Breadth-first order makes the
first violating state found for a property one at minimal depth, so its path is a shortest
counterexample, as iterative deepening is for the z3 engine. An exploration that exhausts the
graph proves every property it did not refute *for that instance*; one that hits the state cap
(or the optional time budget, a resource limit that makes the verdict depend on the machine)
reports ``bounded`` at the last depth it finished. Uses networkx and the concrete interpreter.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from xvol.model.check import Result, Verdict
from xvol.model.concrete import ConcreteSystem, State
from xvol.model.logic import Instance, System
from xvol.model.trace import replay


@dataclass
class Exploration:
    """What one exploration found: the graph, per-property results, and its size."""

    graph: Any  # networkx.DiGraph
    results: dict[str, Result]
    states: int
    edges: int
    depth: int
    complete: bool
    seconds: float


def explore(
    system: System,
    instance: Instance,
    props: Sequence[str],
    *,
    max_states: int = 200_000,
    time_budget: float | None = None,
    keep_graph: bool = False,
) -> Exploration:
    """Explore the reachable states breadth first and judge every property in ``props``.

    ``violated`` results carry a shortest counterexample (replayed); the others are
    ``proved`` (graph exhausted) or ``bounded`` (cap reached; ``depth`` = levels finished)."""
    for p in props:
        system.property(p)
    start = time.perf_counter()
    concrete = ConcreteSystem(system, instance)
    graph = nx.DiGraph()
    init = concrete.initial()
    # the BFS tree: each state's parent, and the action and parameter values that led to it
    parent: dict[State, tuple[State, Any, tuple[Any, ...]] | None] = {init: None}
    found: dict[str, tuple[State, int]] = {}
    pending = list(props)

    def judge(state: State, level: int) -> None:
        for p in concrete.violations(state, pending):
            found[p] = (state, level)
            pending.remove(p)

    judge(init, 0)
    frontier = [init]
    level = 0
    edges = 0
    complete = True
    if keep_graph:
        graph.add_node(init)
    while frontier and pending:
        if len(parent) > max_states or (
            time_budget is not None and time.perf_counter() - start > time_budget
        ):
            complete = False
            break
        following: list[State] = []
        for state in frontier:
            for compiled, env, nxt in concrete.moves(state):
                edges += 1
                if keep_graph:
                    graph.add_edge(
                        state, nxt, action=compiled.action.name, params=compiled.params_of(env)
                    )
                if nxt in parent:
                    continue
                parent[nxt] = (state, compiled, env)
                following.append(nxt)
                if pending:
                    judge(nxt, level + 1)
        frontier = following
        if frontier:
            level += 1
    seconds = time.perf_counter() - start
    results: dict[str, Result] = {}
    for p in props:
        if p in found:
            state, depth = found[p]
            run = []
            while (link := parent[state]) is not None:
                state, compiled, env = link
                run.append((compiled.action.name, dict(compiled.params_of(env))))
            run.reverse()
            cex = replay(concrete, p, run, engine="explicit")
            results[p] = Result(
                p,
                Verdict.VIOLATED,
                depth,
                seconds,
                engine="explicit",
                method="bfs",
                counterexample=cex,
                states=len(parent),
            )
        elif complete and not frontier:
            results[p] = Result(
                p,
                Verdict.PROVED,
                level,
                seconds,
                engine="explicit",
                method="exhaustive",
                states=len(parent),
                detail=f"all {len(parent)} reachable states satisfy it",
            )
        elif complete:
            # stopped early only because every property was already refuted
            results[p] = Result(
                p,
                Verdict.BOUNDED,
                level,
                seconds,
                engine="explicit",
                method="bfs",
                states=len(parent),
            )
        else:
            results[p] = Result(
                p,
                Verdict.BOUNDED,
                level,
                seconds,
                engine="explicit",
                method="bfs",
                states=len(parent),
                detail=f"state cap reached at {len(parent)} states",
            )
    return Exploration(
        graph, results, len(parent), edges, level, complete and not frontier, seconds
    )
