"""The mirror suite: the verdict matrix of the mirror/failover/resync model, by two engines.

For every configuration of :mod:`xvol.model.mirror` (the correct protocol, each bug, preserve
off) and every property, it states the expectation (:data:`~xvol.model.mirror.
EXPECTED_VIOLATIONS`: which properties that variant must violate; all others must hold) and
asks both engines:

* **z3** (:mod:`xvol.model.check`): bounded model checking by iterative deepening up to
  ``depth`` steps on an instance of ``n`` data constituents, so a violation comes with a
  shortest counterexample; a property it does not refute is then proved by an inductive
  invariant that Houdini finds among the model's candidates and that is re-checked obligation
  by obligation (init, each action, the implication) and once more as a single combined query.
  The proof is posed *parametrically* (the volume sort uninterpreted, any set of volumes
  added after the destination was built), so it holds for every ``n``; failing that, on the
  instance; failing both, the verdict stays ``bounded`` at ``depth``.
* **explicit** (:mod:`xvol.model.explicit`): breadth-first search of the instance's whole
  state graph with networkx; a violation comes with a shortest run, and an exhausted graph
  proves the property for that instance.
* **chc** (:mod:`xvol.model.chc`), a cross-check on the sample :data:`CHC_SAMPLE` only (the
  cells where Spacer was measured to end in about a second): constrained Horn clauses solved
  by z3's Spacer, its invariant re-checked by plain solvers, its counterexample replayed.
  It must not contradict the other two engines (:class:`ChcAgreement`); an answer of Spacer's
  that fails its check is a failure too, Spacer giving up is not.

Every counterexample is replayed on the concrete interpreter, minimised (parameters moved to
the first values of their sorts) and converted to the shared :class:`xvol.vocabulary.Trace`
format with mirror actions. A cell is ``ok`` when its verdict matches the expectation; the two
engines *agree* on a (variant, property, n) when both refute it with counterexamples of the same
length, or neither refutes it.

The registry (:mod:`xvol.verification.suites`) runs it as ``xvol verify --suite mirror``:
:func:`run` turns the matrix into registry cells, one statement per variant and a failure per
mismatch or disagreement. ``python -m xvol.verification.suite_mirror`` runs the matrix with every
knob (sizes, depth, variants) and prints it. Uses the model core, :mod:`xvol.model.mirror` and
the registry's records; nothing of the reference.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import Any

from xvol.errors import InvalidArgumentError
from xvol.model import chc
from xvol.model.check import (
    Limits,
    Obligation,
    Result,
    Verdict,
    bmc,
    check_combined,
    check_combined_all,
    check_implies,
    check_inductive,
    check_invariant,
    houdini,
)
from xvol.model.concrete import ConcreteSystem
from xvol.model.explicit import explore
from xvol.model.logic import Invariant, System
from xvol.model.mirror import (
    EXPECTED_VIOLATIONS,
    PROPERTIES,
    MirrorConfig,
    MirrorInstance,
    config_json,
    mirror_system,
    variant,
    variants,
)
from xvol.model.trace import minimise
from xvol.verification.suites import (
    Cell,
    Progress,
    SilentProgress,
    Statement,
    SuiteOptions,
    SuiteReport,
)
from xvol.vocabulary import Trace

NAME = "mirror"
DESCRIPTION = (
    "mirror/failover/resync model: correct protocol and bug toggles x properties, z3 and explicit"
)


CHC_SAMPLE: tuple[tuple[str, str], ...] = (
    ("correct", "no-lost-destination-write"),
    ("correct", "relationship-before-transfer"),
    ("correct", "preserve-keeps-divergent"),
    ("no-redirect", "redirect-consistent"),
    ("no-confirm", "relationship-before-transfer"),
)
"""(variant, property) cells the CHC engine cross-checks at n = 1: where Spacer was measured to
end within about a second. Left out (:data:`CHC_LEFT_OUT`): the others."""
CHC_LEFT_OUT = (
    "Spacer does not end within 6 s on failover-consistent (every variant but skip-resize), on "
    "redirect-consistent and resync-identical of most variants, nor on no-reverse's "
    "no-lost-destination-write; left out for time: the cells it ends in 2-6 s (skip-resize's "
    "two refutations, preserve-off's, the correct protocol's resync-identical) and the "
    "properties the other variants keep"
)
CHC_LIMITS = Limits(timeout_ms=30_000)


@dataclass(frozen=True)
class SuiteSettings:
    """What one run covers: the variants, the instance sizes per engine (``n`` data
    constituents, the last ``missing`` of them new at the source), the BMC depth, the
    generation bound, solver limits and the explicit engine's state cap; ``chc`` lists the
    (variant, property) cells the CHC engine cross-checks at the smallest z3 size."""

    variants: tuple[str, ...] = tuple(variants())
    z3_sizes: tuple[int, ...] = (1, 2)
    explicit_sizes: tuple[int, ...] = (1,)
    missing: int = 1
    depth: int = 10
    snapshots: int = 1
    limits: Limits = field(default_factory=Limits)
    max_states: int = 500_000
    prove: bool = True  # look for inductive invariants (else unrefuted cells stay bounded)
    workers: int = 1  # processes; each runs one (variant, engine) unit at a time
    chc: tuple[tuple[str, str], ...] = ()
    chc_limits: Limits = field(default_factory=lambda: CHC_LIMITS)

    def __post_init__(self) -> None:
        for name in self.variants:
            variant(name)  # raises on an unknown name
        for name, prop in self.chc:
            if name not in self.variants or prop not in PROPERTIES:
                raise InvalidArgumentError(
                    f"chc cell ({name}, {prop}) is not a variant and property of this run"
                )
        if self.chc and not self.z3_sizes:
            raise InvalidArgumentError("the chc cells are checked at the smallest z3 size")
        if self.depth < 0 or self.max_states < 1 or self.workers < 1:
            raise InvalidArgumentError("depth must be >= 0, max_states and workers >= 1")
        for n in (*self.z3_sizes, *self.explicit_sizes):
            MirrorInstance(n, self.missing)  # raises on a bad size

    def to_json(self) -> dict[str, Any]:
        return {
            "variants": list(self.variants),
            "z3_sizes": list(self.z3_sizes),
            "explicit_sizes": list(self.explicit_sizes),
            "missing": self.missing,
            "depth": self.depth,
            "snapshots": self.snapshots,
            "timeout_ms": self.limits.timeout_ms,
            "seed": self.limits.seed,
            "max_states": self.max_states,
            "prove": self.prove,
            "chc": [list(c) for c in self.chc],
            "chc_timeout_ms": self.chc_limits.timeout_ms,
        }


@dataclass(frozen=True)
class MirrorCell:
    """One verdict: a variant, a property, an engine, an instance size. ``expected`` is
    ``violated`` or ``holds``; ``scope`` says what a ``proved`` covers (``every n`` for a
    parametric proof, ``instance`` otherwise); ``trace`` is the minimised counterexample."""

    variant: str
    prop: str
    engine: str
    n: int
    missing: int
    expected: str
    verdict: Verdict
    depth: int | None  # steps searched (BMC depth, BFS levels)
    seconds: float
    method: str
    scope: str = "instance"
    states: int | None = None
    invariant: tuple[str, ...] = ()
    obligations: tuple[Obligation, ...] = ()
    trace: Trace | None = None
    rendered: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        """The verdict matches the expectation (a ``bounded`` or ``unknown`` verdict never
        confirms a violation; ``unknown`` never confirms that a property holds). The CHC
        engine is a cross-check: Spacer giving up claims nothing and is no mismatch, an
        answer of Spacer's that failed its check (method :data:`xvol.model.chc.REJECTED`)
        is one."""
        if self.engine == chc.ENGINE and self.verdict is Verdict.UNKNOWN:
            return self.method != chc.REJECTED
        if self.expected == "violated":
            return self.verdict is Verdict.VIOLATED
        return self.verdict in (Verdict.PROVED, Verdict.BOUNDED)

    @property
    def length(self) -> int | None:
        return len(self.trace.steps) if self.trace is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": NAME,
            "variant": self.variant,
            "property": self.prop,
            "engine": self.engine,
            "n": self.n,
            "missing": self.missing,
            "expected": self.expected,
            "verdict": self.verdict.value,
            "ok": self.ok,
            "depth": self.depth,
            "seconds": round(self.seconds, 3),
            "method": self.method,
            "scope": self.scope,
            "states": self.states,
            "invariant": list(self.invariant),
            "obligations": [o.to_json() for o in self.obligations],
            "trace": self.trace.to_json() if self.trace is not None else None,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Agreement:
    """Whether the two engines agree on one (variant, property, n)."""

    variant: str
    prop: str
    n: int
    z3: MirrorCell
    explicit: MirrorCell

    @property
    def agree(self) -> bool:
        a, b = self.z3, self.explicit
        if a.verdict is Verdict.UNKNOWN or b.verdict is Verdict.UNKNOWN:
            return False
        if b.verdict is Verdict.VIOLATED and a.verdict is Verdict.BOUNDED:
            # consistent only if z3 stopped short of explicit's shortest run
            return a.depth is not None and b.depth is not None and b.depth > a.depth
        if (a.verdict is Verdict.VIOLATED) != (b.verdict is Verdict.VIOLATED):
            return False
        return a.length == b.length

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "property": self.prop,
            "n": self.n,
            "z3": self.z3.verdict.value,
            "explicit": self.explicit.verdict.value,
            "z3_length": self.z3.length,
            "explicit_length": self.explicit.length,
            "agree": self.agree,
        }


@dataclass(frozen=True)
class ChcAgreement:
    """Whether the CHC engine's cell contradicts another engine's on the same (variant,
    property, n): one proves what the other refutes, Spacer's counterexample is shorter than
    the other's shortest, or no longer than a depth BMC searched without finding one
    (Spacer's runs need not be shortest; ``unknown`` claims nothing)."""

    chc: MirrorCell
    other: MirrorCell

    @property
    def agree(self) -> bool:
        a, b = self.chc, self.other
        if {a.verdict, b.verdict} == {Verdict.VIOLATED, Verdict.PROVED}:
            return False
        if a.verdict is not Verdict.VIOLATED or a.depth is None or b.depth is None:
            return True
        if b.verdict is Verdict.VIOLATED:
            return a.depth >= b.depth
        return not (b.verdict is Verdict.BOUNDED and a.depth <= b.depth)

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.chc.variant,
            "property": self.chc.prop,
            "n": self.chc.n,
            "chc": self.chc.verdict.value,
            "chc_depth": self.chc.depth,
            "other": self.other.engine,
            "other_verdict": self.other.verdict.value,
            "other_depth": self.other.depth,
            "agree": self.agree,
        }


@dataclass
class Matrix:
    """Every cell of one run, the engines' agreement, and the settings that produced them."""

    settings: SuiteSettings
    cells: list[MirrorCell] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def agreements(self) -> list[Agreement]:
        by_key: dict[tuple[str, str, int], dict[str, MirrorCell]] = {}
        for c in self.cells:
            by_key.setdefault((c.variant, c.prop, c.n), {})[c.engine] = c
        return [
            Agreement(v, p, n, e["z3"], e["explicit"])
            for (v, p, n), e in sorted(by_key.items())
            if "z3" in e and "explicit" in e
        ]

    @property
    def chc_agreements(self) -> list[ChcAgreement]:
        """Each CHC cell against the z3 and the explicit cell of its (variant, property, n)."""
        others: dict[tuple[str, str, int], list[MirrorCell]] = {}
        for c in self.cells:
            if c.engine != chc.ENGINE:
                others.setdefault((c.variant, c.prop, c.n), []).append(c)
        return [
            ChcAgreement(c, o)
            for c in self.cells
            if c.engine == chc.ENGINE
            for o in others.get((c.variant, c.prop, c.n), [])
        ]

    @property
    def ok(self) -> bool:
        """Every cell matches its expectation and the engines agree everywhere."""
        return (
            all(c.ok for c in self.cells)
            and all(a.agree for a in self.agreements)
            and all(a.agree for a in self.chc_agreements)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": NAME,
            "settings": self.settings.to_json(),
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "cells": [c.to_json() for c in self.cells],
            "agreements": [a.to_json() for a in self.agreements],
            "chc_agreements": [a.to_json() for a in self.chc_agreements],
        }

    def table(self) -> str:
        """One line per variant and property: the expectation and each engine's verdict
        (``violated@L`` for a counterexample of ``L`` steps)."""
        rows = [("variant", "property", "expected", "z3", "explicit", "chc", "ok")]
        keys = sorted(
            {(c.variant, c.prop) for c in self.cells},
            key=lambda k: (self.settings.variants.index(k[0]), PROPERTIES.index(k[1])),
        )
        for v, p in keys:
            cells = [c for c in self.cells if (c.variant, c.prop) == (v, p)]
            shown = {
                e: " ".join(_short(c) for c in cells if c.engine == e) or "-"
                for e in ("z3", "explicit", chc.ENGINE)
            }
            ok = (
                all(c.ok for c in cells)
                and all(a.agree for a in self.agreements if (a.variant, a.prop) == (v, p))
                and all(
                    a.agree for a in self.chc_agreements if (a.chc.variant, a.chc.prop) == (v, p)
                )
            )
            rows.append(
                (
                    v,
                    p,
                    cells[0].expected,
                    shown["z3"],
                    shown["explicit"],
                    shown[chc.ENGINE],
                    "yes" if ok else "NO",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip() for r in rows
        )


def _short(c: MirrorCell) -> str:
    if c.verdict is Verdict.VIOLATED:
        return f"n{c.n}:violated@{c.length}"
    if c.verdict is Verdict.PROVED:
        return f"n{c.n}:proved({'all n' if c.scope == 'every n' else 'inst'})"
    return f"n{c.n}:{c.verdict.value}@{c.depth}"


# --------------------------------------------------------------------------------------------
# Running the cells
# --------------------------------------------------------------------------------------------


def _expected(name: str, prop: str) -> str:
    return "violated" if prop in EXPECTED_VIOLATIONS[name] else "holds"


def _trace(
    system: System, config: MirrorConfig, inst: MirrorInstance, r: Result
) -> tuple[Trace | None, str]:
    """The minimised counterexample of ``r`` as a shared trace, and as readable text."""
    if r.counterexample is None:
        return None, ""
    cex = minimise(ConcreteSystem(system, inst.instance()), r.counterexample, engine=r.engine)
    return cex.to_trace(NAME, config_json(config, inst)), cex.render()


@dataclass
class _Proof:
    """An inductive invariant found by Houdini, with its scope; ``None`` invariant: none."""

    scope: str
    invariant: list[Invariant] | None
    seconds: float


def _find_invariant(system: System, inst: MirrorInstance | None, limits: Limits) -> _Proof:
    start = time.perf_counter()
    survivors, decided = houdini(
        system, inst.instance() if inst else None, system.invariants, limits
    )
    scope = "instance" if inst else "every n"
    return _Proof(scope, survivors if decided else None, time.perf_counter() - start)


def _prove(
    system: System, inst: MirrorInstance | None, prop: str, proof: _Proof, limits: Limits
) -> tuple[bool, list[Obligation], float]:
    """Re-check the invariant for ``prop`` (parametrically when ``inst`` is ``None``): every
    obligation, then all of them once more as one combined query."""
    if not proof.invariant:
        return False, [], 0.0
    start = time.perf_counter()
    instance = inst.instance() if inst is not None else None
    obligations = check_invariant(system, instance, prop, proof.invariant, limits)
    if all(o.outcome == "valid" for o in obligations):
        obligations.append(check_combined(system, instance, prop, proof.invariant, limits))
    valid = all(o.outcome == "valid" for o in obligations)
    return valid, obligations, time.perf_counter() - start


def _prove_all(
    system: System, props: Sequence[str], proof: _Proof, limits: Limits
) -> dict[str, tuple[bool, list[Obligation], float]]:
    """:func:`_prove` parametrically for several properties, sharing what they share: the
    init and per-action obligations are the same queries for every property (posed once),
    each property adds its implication, and the combined re-check is posed once for all the
    properties whose obligations hold (unsat covers each of them: every property's own
    combined query is a sub-disjunction of it); if it is not ``valid``, each of them gets its
    own combined query, as :func:`_prove` poses it."""
    if not proof.invariant:
        return {p: (False, [], 0.0) for p in props}
    start = time.perf_counter()
    base = check_inductive(system, None, proof.invariant, limits)
    shared = time.perf_counter() - start
    out: dict[str, tuple[bool, list[Obligation], float]] = {}
    for p in props:
        implication = check_implies(system, None, proof.invariant, p, limits)
        out[p] = (False, [*base, implication], shared + implication.seconds)
    holding = [p for p in props if all(o.outcome == "valid" for o in out[p][1])]
    if not holding:
        return out
    together = check_combined_all(system, None, holding, proof.invariant, limits)
    for p in holding:
        _, obligations, seconds = out[p]
        combined = together
        if together.outcome != "valid":
            combined = check_combined(system, None, p, proof.invariant, limits)
        out[p] = (
            combined.outcome == "valid",
            [*obligations, combined],
            seconds + together.seconds + (combined.seconds if combined is not together else 0),
        )
    return out


def z3_cells(name: str, settings: SuiteSettings) -> list[MirrorCell]:
    """The z3 engine's cells for one variant: BMC per size, then one invariant proof per
    property it does not refute (parametric, the shared obligations posed once; on the
    instance as a fallback)."""
    config = variant(name, settings.snapshots)
    system = mirror_system(config)
    limits = settings.limits
    cells: list[MirrorCell] = []
    parametric: _Proof | None = None
    found = {
        n: bmc(
            system,
            MirrorInstance(n, settings.missing).instance(),
            PROPERTIES,
            settings.depth,
            limits,
        )
        for n in settings.z3_sizes
    }
    unrefuted = [
        p
        for p in PROPERTIES
        if any(found[n][p].verdict is Verdict.BOUNDED for n in settings.z3_sizes)
    ]
    checked: dict[str, tuple[bool, list[Obligation], float]] = {}  # parametric, per property
    if settings.prove and unrefuted:
        parametric = _find_invariant(system, None, limits)
        checked = _prove_all(system, unrefuted, parametric, limits)
    for n in settings.z3_sizes:
        inst = MirrorInstance(n, settings.missing)
        results = found[n]
        for prop in PROPERTIES:
            r = results[prop]
            expected = _expected(name, prop)
            if r.verdict is Verdict.VIOLATED:
                trace, text = _trace(system, config, inst, r)
                cells.append(
                    MirrorCell(
                        name,
                        prop,
                        "z3",
                        n,
                        settings.missing,
                        expected,
                        r.verdict,
                        r.depth,
                        r.seconds,
                        "bmc",
                        trace=trace,
                        rendered=text,
                    )
                )
                continue
            if r.verdict is Verdict.UNKNOWN or not settings.prove:
                cells.append(
                    MirrorCell(
                        name,
                        prop,
                        "z3",
                        n,
                        settings.missing,
                        expected,
                        r.verdict,
                        r.depth,
                        r.seconds,
                        "bmc",
                        detail=r.detail,
                    )
                )
                continue
            assert parametric is not None  # a parametric proof serves every size
            proved, obligations, seconds = checked[prop]
            proof = parametric
            if not proved:
                local = _find_invariant(system, inst, limits)
                proved, obligations, seconds = _prove(system, inst, prop, local, limits)
                proof = local
            if proved:
                assert proof.invariant is not None
                cells.append(
                    MirrorCell(
                        name,
                        prop,
                        "z3",
                        n,
                        settings.missing,
                        expected,
                        Verdict.PROVED,
                        settings.depth,
                        r.seconds + proof.seconds + seconds,
                        "houdini",
                        scope=proof.scope,
                        invariant=tuple(i.name for i in proof.invariant),
                        obligations=tuple(obligations),
                    )
                )
            else:
                cells.append(
                    MirrorCell(
                        name,
                        prop,
                        "z3",
                        n,
                        settings.missing,
                        expected,
                        Verdict.BOUNDED,
                        settings.depth,
                        r.seconds + seconds,
                        "bmc",
                        obligations=tuple(obligations),
                        detail=f"no violation in {settings.depth} steps; no inductive invariant "
                        "among the candidates",
                    )
                )
    return cells


def explicit_cells(name: str, settings: SuiteSettings) -> list[MirrorCell]:
    """The explicit engine's cells for one variant, one exploration per size."""
    config = variant(name, settings.snapshots)
    system = mirror_system(config)
    cells: list[MirrorCell] = []
    for n in settings.explicit_sizes:
        inst = MirrorInstance(n, settings.missing)
        found = explore(system, inst.instance(), PROPERTIES, max_states=settings.max_states)
        for prop in PROPERTIES:
            r = found.results[prop]
            trace, text = _trace(system, config, inst, r)
            cells.append(
                MirrorCell(
                    name,
                    prop,
                    "explicit",
                    n,
                    settings.missing,
                    _expected(name, prop),
                    r.verdict,
                    r.depth,
                    r.seconds,
                    r.method,
                    states=r.states,
                    trace=trace,
                    rendered=text,
                    detail=r.detail,
                )
            )
    return cells


def chc_cells(name: str, settings: SuiteSettings) -> list[MirrorCell]:
    """The CHC engine's cells for one variant: its properties in ``settings.chc``, at the
    smallest z3 size (one encoding, one Spacer query per property)."""
    props = [p for v, p in settings.chc if v == name]
    if not props:
        return []
    config = variant(name, settings.snapshots)
    system = mirror_system(config)
    inst = MirrorInstance(min(settings.z3_sizes), settings.missing)
    found = chc.prove_all(system, inst.instance(), props, settings.chc_limits)
    cells = []
    for prop in props:
        r = found[prop]
        trace, text = _trace(system, config, inst, r)
        cells.append(
            MirrorCell(
                name,
                prop,
                chc.ENGINE,
                inst.n,
                settings.missing,
                _expected(name, prop),
                r.verdict,
                r.depth,
                r.seconds,
                r.method,
                invariant=r.invariant,
                obligations=tuple(r.obligations),
                trace=trace,
                rendered=text,
                detail=r.detail,
            )
        )
    return cells


def _unit(name: str, engine: str, settings: SuiteSettings) -> list[MirrorCell]:
    """One unit of work: one variant on one engine (every size)."""
    if engine == chc.ENGINE:
        return chc_cells(name, settings)
    return z3_cells(name, settings) if engine == "z3" else explicit_cells(name, settings)


def run_matrix(
    settings: SuiteSettings = SuiteSettings(), progress: Progress | None = None
) -> Matrix:
    """Every cell of the suite: each variant x property, by each engine, at each size; in
    ``settings.workers`` processes (the cells come back in a fixed order either way)."""
    start = time.perf_counter()
    sink = progress or SilentProgress()
    units = [
        (name, engine)
        for name in settings.variants
        for engine, sizes in (("z3", settings.z3_sizes), ("explicit", settings.explicit_sizes))
        if sizes
    ]
    units += [
        (name, chc.ENGINE) for name in settings.variants if any(v == name for v, _ in settings.chc)
    ]
    sink.start(len(units), "mirror variants x engines")
    done: dict[tuple[str, str], list[MirrorCell]] = {}
    if settings.workers == 1:
        for name, engine in units:
            done[(name, engine)] = _unit(name, engine, settings)
            sink.advance(f"{name} ({engine})")
    else:
        with ProcessPoolExecutor(max_workers=settings.workers) as pool:
            futures = {
                pool.submit(_unit, name, engine, settings): (name, engine) for name, engine in units
            }
            for future in as_completed(futures):
                done[futures[future]] = future.result()
                sink.advance(f"{futures[future][0]} ({futures[future][1]})")
    report = Matrix(settings)
    for key in units:
        report.cells.extend(done[key])
    report.seconds = time.perf_counter() - start
    return report


# --------------------------------------------------------------------------------------------
# The registry's entry point (xvol verify --suite mirror)
# --------------------------------------------------------------------------------------------

QUICK = SuiteSettings(
    variants=("correct", "no-redirect", "no-confirm", "skip-resize"),
    z3_sizes=(1,),
    explicit_sizes=(1,),
    depth=5,
    max_states=3_000,
    prove=False,
    chc=(("correct", "relationship-before-transfer"), ("no-redirect", "redirect-consistent")),
)
"""The ``quick`` run: four variants whose counterexamples are at most 5 steps, BMC to depth 5
and a capped exploration, no invariant search (so unrefuted cells are ``bounded``), and two
cells of the CHC engine's sample."""


def settings_for(options: SuiteOptions) -> SuiteSettings:
    """The full matrix (z3 at n = 1, 2 with proofs; explicit at n = 1, 2), or :data:`QUICK`."""
    base = QUICK if options.quick else SuiteSettings(explicit_sizes=(1, 2), chc=CHC_SAMPLE)
    return replace(
        base,
        workers=max(1, options.workers),
        limits=Limits(timeout_ms=base.limits.timeout_ms, seed=options.seed),
        chc_limits=Limits(timeout_ms=base.chc_limits.timeout_ms, seed=options.seed),
    )


def run(options: SuiteOptions, progress: Progress) -> SuiteReport:
    """The mirror suite as the registry runs it: the verdict matrix as registry cells, one
    statement per variant (it violates exactly its expected properties, the engines agree),
    and every mismatch or disagreement as a failure."""
    matrix = run_matrix(settings_for(options), progress)
    return to_registry(matrix)


def to_registry(matrix: Matrix) -> SuiteReport:
    """The registry's records for ``matrix``."""
    cells = [
        Cell(
            suite=NAME,
            prop=c.prop,
            config=config_json(
                variant(c.variant, matrix.settings.snapshots), MirrorInstance(c.n, c.missing)
            ),
            engine=c.engine,
            verdict=c.verdict.value,
            depth=c.depth,
            seconds=c.seconds,
            method=c.method if c.verdict is not Verdict.PROVED else f"{c.method} ({c.scope})",
            expected="violated" if c.expected == "violated" else "proved",
            trace=c.trace.to_json() if c.trace is not None else None,
            rendered=c.rendered or None,
            states=c.states,
            invariant=list(c.invariant),
            obligations=[o.to_json() for o in c.obligations],
            detail=c.detail,
        )
        for c in matrix.cells
    ]
    failures = [
        f"{c.variant}/{c.prop} ({c.engine}, n={c.n}): expected {c.expected}, got {c.verdict.value}"
        + (f": {c.detail}" if c.method == chc.REJECTED else "")
        for c in matrix.cells
        if not c.ok
    ]
    failures += [
        f"{a.variant}/{a.prop} (n={a.n}): engines disagree: z3 {a.z3.verdict.value} "
        f"(length {a.z3.length}), explicit {a.explicit.verdict.value} "
        f"(length {a.explicit.length})"
        for a in matrix.agreements
        if not a.agree
    ]
    failures += [
        f"{a.chc.variant}/{a.chc.prop} (n={a.chc.n}): engines disagree: "
        f"{a.other.engine} {a.other.verdict.value} (depth {a.other.depth}), "
        f"chc {a.chc.verdict.value} (depth {a.chc.depth})"
        for a in matrix.chc_agreements
        if not a.agree
    ]
    statements = []
    for name in matrix.settings.variants:
        mine = [c for c in matrix.cells if c.variant == name]
        agree = [a for a in matrix.agreements if a.variant == name]
        broken = sorted(EXPECTED_VIOLATIONS[name])
        text = (
            f"{name} violates exactly {', '.join(broken)}"
            if broken
            else f"{name}: every property holds"
        )
        proved = sorted(
            {c.prop for c in mine if c.verdict is Verdict.PROVED and c.scope == "every n"}
        )
        why = f"proved for every n: {', '.join(proved)}" if proved else ""
        statements.append(
            Statement(
                suite=NAME,
                prop="*",
                text=text + "; the engines agree",
                holds=all(c.ok for c in mine) and all(a.agree for a in agree),
                checked=len(mine),
                why=why,
            )
        )
    notes = [
        f"instances: the last {matrix.settings.missing} data constituent(s) are new at the "
        "source (the destination needs a resize)",
        f"z3: BMC to depth {matrix.settings.depth}; proofs are Houdini invariants re-checked "
        "per obligation and as one combined query, parametric in the number of volumes",
    ]
    mine = [c for c in matrix.cells if c.engine == chc.ENGINE]
    if mine:
        pairs = matrix.chc_agreements
        decided = [c for c in mine if c.verdict in (Verdict.PROVED, Verdict.VIOLATED)]
        violated = sum(c.verdict is Verdict.VIOLATED for c in decided)
        statements.append(
            Statement(
                suite=NAME,
                prop="*",
                text=f"the CHC engine (Spacer; invariants re-checked by plain solvers, "
                f"counterexamples replayed) agrees with z3 and explicit on all {len(mine)} "
                f"sampled cells ({len(pairs)} comparisons): {len(decided)} decided "
                f"({len(decided) - violated} proved, {violated} violated), "
                f"{len(mine) - len(decided)} left undecided",
                holds=all(a.agree for a in pairs) and all(c.ok for c in mine),
                checked=len(mine),
            )
        )
        notes.append(
            f"chc: Spacer on {len(mine)} sampled cells at n = {mine[0].n}; left out: {CHC_LEFT_OUT}"
        )
    return SuiteReport(NAME, cells, statements, failures, matrix.seconds, notes)


# --------------------------------------------------------------------------------------------
# Command line (until the suite registry runs it): python -m xvol.verification.suite_mirror
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite, print the verdict matrix (and ``--traces``), write ``--json``; exit 0
    iff every cell matches its expectation and the engines agree."""
    parser = argparse.ArgumentParser(
        prog="python -m xvol.verification.suite_mirror", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--variant",
        action="append",
        choices=list(variants()),
        help="a variant to run (repeatable; default: all)",
    )
    parser.add_argument("--z3-n", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--explicit-n", type=int, nargs="*", default=[1])
    parser.add_argument("--missing", type=int, default=1)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--snapshots", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-prove", action="store_true", help="BMC and exploration only")
    parser.add_argument(
        "--chc", action="store_true", help="cross-check the CHC_SAMPLE cells with Spacer"
    )
    parser.add_argument("--traces", action="store_true", help="print every counterexample")
    parser.add_argument("--json", help="write the report as JSON to this file")
    args = parser.parse_args(argv)
    try:
        settings = SuiteSettings(
            variants=tuple(args.variant or variants()),
            z3_sizes=tuple(args.z3_n),
            explicit_sizes=tuple(args.explicit_n),
            missing=args.missing,
            depth=args.depth,
            snapshots=args.snapshots,
            workers=args.workers,
            prove=not args.no_prove,
            chc=tuple(c for c in CHC_SAMPLE if c[0] in (args.variant or variants()))
            if args.chc
            else (),
        )
    except InvalidArgumentError as exc:
        parser.error(str(exc))
    report = run_matrix(settings)
    if args.traces:
        seen = set()
        for c in report.cells:
            if c.rendered and (c.variant, c.prop) not in seen:
                seen.add((c.variant, c.prop))
                print(f"[{c.variant}, {c.engine}, n={c.n}] {c.rendered}\n")
    print(report.table())
    print(
        f"\n{'all cells as expected, engines agree' if report.ok else 'MISMATCH'} "
        f"({len(report.cells)} cells, {report.seconds:.1f} s)"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report.to_json(), out, indent=2, sort_keys=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
