"""Reports of suite runs: the JSON record list and a Markdown summary.

JSON: a list with one record per cell (``Cell.to_json``: suite, property, config, engine,
verdict, depth, seconds, method, expected, and for violations the shared trace). Markdown: per
suite the derived statements (with the counterexample that explains each unsafe case), the
failures, the parameterised proofs with every obligation, the CHC engine's cross-check (each
cell's verdict, Spacer's invariant and its re-check) and the verdict table. Uses only the
standard library and :mod:`xvol.verification.suites`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xvol.verification.suites import Cell, SuiteReport


def records(reports: Sequence[SuiteReport]) -> list[dict[str, Any]]:
    """Every cell of every report as a JSON record."""
    return [c.to_json() for r in reports for c in r.cells]


def write_json(reports: Sequence[SuiteReport], path: Path) -> None:
    path.write_text(json.dumps(records(reports), indent=1, sort_keys=True) + "\n")


def order_text(order: Any) -> str:
    if isinstance(order, list):
        return " < ".join(x if isinstance(x, str) else "{" + "|".join(x) + "}" for x in order)
    return str(order)


def config_text(config: dict[str, Any]) -> str:
    """One line naming a cell's configuration: a mirror variant, or a fence order and knobs."""
    if "variant" in config:
        return f"n={config.get('n')} missing={config.get('missing')} {config['variant']}"
    bugs = f" +{'+'.join(config['bugs'])}" if config.get("bugs") else ""
    return (
        f"n={config.get('n')} {order_text(config.get('order'))} "
        f"{config.get('mode')}/{config.get('discipline')}{bugs}"
    )


def markdown(reports: Sequence[SuiteReport]) -> str:
    lines: list[str] = ["# xvol verify", ""]
    for r in reports:
        lines += [f"## Suite `{r.name}` ({len(r.cells)} cells, {r.seconds:.1f} s)", ""]
        lines += [f"- {n}" for n in r.notes] + [""]
        lines += ["### Statements", ""]
        for s in r.statements:
            mark = "holds" if s.holds else "**FAILS**"
            lines.append(f"- {s.text} — {mark} on {s.checked} cells")
            if s.why:
                lines += ["", "  ```", *("  " + x for x in s.why.splitlines()), "  ```", ""]
        lines += ["", "### Failures", ""]
        lines += [f"- {f}" for f in r.failures] or ["- none"]
        proofs = [c for c in r.cells if c.method.startswith("parametric")]
        if proofs:
            lines += ["", "### Parameterised proofs (every n, every number of clients)", ""]
            for c in proofs:
                lines.append(f"- `{c.prop}`: **{c.verdict}** ({c.seconds:.2f} s); {c.detail}")
                lines.append(f"  - invariant: {', '.join(c.invariant)}")
                bad = [o for o in c.obligations if o["outcome"] != "valid"]
                kinds = Counter(str(o["kind"]) for o in c.obligations)
                lines.append(
                    f"  - re-check: {len(c.obligations)} obligations ("
                    + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
                    + f"); not valid: {bad or 'none'}"
                )
        lines += _chc_section(r.cells)
        lines += [
            "",
            "### Verdicts",
            "",
            "| property | configuration | engine | verdict | expected | depth | s |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in r.cells:
            lines.append(_row(c))
        lines.append("")
    return "\n".join(lines)


def _chc_section(cells: Sequence[Cell]) -> list[str]:
    """The CHC engine's cells: verdict, Spacer's invariant (a proof) and its re-check."""
    mine = [c for c in cells if c.engine == "chc"]
    if not mine:
        return []
    lines = ["", "### CHC engine (Spacer) cross-check", ""]
    for c in mine:
        depth = "" if c.depth is None else f" at depth {c.depth}"
        lines.append(
            f"- `{c.prop}` on {config_text(c.config)}: **{c.verdict}**{depth} "
            f"({c.seconds:.2f} s); {c.detail}"
        )
        if c.invariant:
            lines.append(f"  - invariant: {'; '.join(c.invariant)}")
        if c.obligations:
            bad = [o for o in c.obligations if o["outcome"] != "valid"]
            lines.append(
                f"  - re-check: {len(c.obligations)} plain-solver obligations (init, "
                f"{len(c.obligations) - 2} actions, implication); not valid: {bad or 'none'}"
            )
    return lines


def _row(c: Cell) -> str:
    depth = "-" if c.depth is None else str(c.depth)
    return (
        f"| {c.prop} | {config_text(c.config)} | {c.engine} | {c.verdict} | "
        f"{c.expected or ''} | {depth} | {c.seconds:.2f} |"
    )


def write_markdown(reports: Sequence[SuiteReport], path: Path) -> None:
    path.write_text(markdown(reports))
