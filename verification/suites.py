"""The suite registry and the records every suite produces.

A suite is one module of this package named ``suite_<name>.py`` (``suite_fence`` is the fence
protocol's). It defines ``NAME`` (str), ``DESCRIPTION`` (one line) and::

    run(options: SuiteOptions, progress: Progress) -> SuiteReport

The registry finds suites by that naming convention, so adding a suite is adding one module;
``xvol verify --suite`` offers exactly the suites that exist. A suite returns one :class:`Cell`
per (property, configuration, engine) with its verdict, and :class:`Statement` records: the
claims the suite derives from its cells (e.g. which fence orders are safe) and checks against
other cells; ``failures`` lists every check that did not hold (a disagreement between engines,
a cell contradicting a statement, an unexpected verdict). The CLI exits non-zero if any suite
reports a failure. Uses only the standard library and :mod:`xvol.model` records.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

from xvol.errors import InvalidArgumentError
from xvol.model.check import Result

PREFIX = "suite_"


@dataclass(frozen=True)
class SuiteOptions:
    """What the user asked for: ``quick`` runs a small subset in seconds (for tests)."""

    quick: bool = False
    workers: int = 2
    seed: int = 0
    earlier: tuple[SuiteReport, ...] = field(default=(), compare=False, repr=False)
    """Reports of the suites this run finished before (see :func:`run_order`)."""


class Progress(Protocol):
    """Where a suite reports progress: ``start(total)`` once, then ``advance(label)`` per
    finished unit of work."""

    def start(self, total: int, label: str) -> None: ...

    def advance(self, label: str, amount: int = 1) -> None: ...


class SilentProgress:
    """A progress sink that shows nothing (tests, JSON-only runs)."""

    def start(self, total: int, label: str) -> None:
        return None

    def advance(self, label: str, amount: int = 1) -> None:
        return None


@dataclass
class Cell:
    """One verdict: a property, a configuration, an engine. ``trace`` is the shared
    :class:`xvol.vocabulary.Trace` JSON of a violation; ``expected`` is the verdict the
    suite's statements predict for this cell, when they predict one."""

    suite: str
    prop: str
    config: dict[str, Any]
    engine: str
    verdict: str
    depth: int | None
    seconds: float
    method: str = ""
    expected: str | None = None
    trace: dict[str, Any] | None = None
    rendered: str | None = None
    states: int | None = None
    invariant: list[str] = field(default_factory=list)
    obligations: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "suite": self.suite,
            "property": self.prop,
            "config": self.config,
            "engine": self.engine,
            "verdict": self.verdict,
            "depth": self.depth,
            "seconds": round(self.seconds, 4),
            "method": self.method,
            "expected": self.expected,
        }
        if self.trace is not None:
            out["trace"] = self.trace
        if self.states is not None:
            out["states"] = self.states
        if self.invariant:
            out["invariant"] = self.invariant
        if self.obligations:
            out["obligations"] = self.obligations
        if self.detail:
            out["detail"] = self.detail
        return out

    @staticmethod
    def from_result(
        suite: str,
        config: dict[str, Any],
        r: Result,
        trace: Callable[[Result], dict[str, Any] | None],
    ) -> Cell:
        return Cell(
            suite=suite,
            prop=r.prop,
            config=config,
            engine=r.engine,
            verdict=r.verdict.value,
            depth=r.depth,
            seconds=r.seconds,
            method=r.method,
            trace=trace(r),
            rendered=r.counterexample.render() if r.counterexample else None,
            states=r.states,
            invariant=list(r.invariant),
            obligations=[o.to_json() for o in r.obligations],
            detail=r.detail,
        )


@dataclass
class Statement:
    """A claim derived from cells (``text``), and whether every cell it was checked against
    agrees (``holds``), with the evidence (``checked`` cells, ``why``)."""

    suite: str
    prop: str
    text: str
    holds: bool
    checked: int
    why: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "property": self.prop,
            "statement": self.text,
            "holds": self.holds,
            "checked_cells": self.checked,
            "why": self.why,
        }


@dataclass
class SuiteReport:
    """Everything one suite found."""

    name: str
    cells: list[Cell]
    statements: list[Statement]
    failures: list[str]
    seconds: float
    notes: list[str] = field(default_factory=list)


def available() -> list[str]:
    """The names of the suites that exist (modules ``suite_<name>`` of this package)."""
    import xvol.verification as package

    return sorted(
        m.name[len(PREFIX) :]
        for m in pkgutil.iter_modules(package.__path__)
        if m.name.startswith(PREFIX)
    )


def run_order(names: list[str]) -> list[str]:
    """The order to run suites ``names`` in: the conformance suite last, so that it can be
    handed the others' reports (``SuiteOptions.earlier``) and replay their counterexamples
    instead of searching for them again."""
    return sorted(names, key=lambda name: name == "conformance")


def load(name: str) -> ModuleType:
    """The module of suite ``name``."""
    if name not in available():
        raise InvalidArgumentError(f"no suite {name!r}; available: {', '.join(available())}")
    return importlib.import_module(f"xvol.verification.{PREFIX}{name}")
