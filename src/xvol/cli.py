"""The ``xvol`` command: one entry point whose subcommands call into every half of the kit.

This is the roof of the house: it may import anything, but it imports each subcommand's module
only to build the parser and to run it. A subcommand is listed here only once it works end to
end. Each subcommand module provides two functions::

    configure_parser(parser: argparse.ArgumentParser) -> None
    run(args: argparse.Namespace) -> int        # the process exit status

Typed kit errors (:class:`xvol.errors.XvolError`) end the command with a one-line message and exit
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import cast

from xvol import __version__
from xvol.errors import XvolError


@dataclass(frozen=True)
class Subcommand:
    """A subcommand: its name, one line of help and the module that implements it."""

    name: str
    summary: str
    module: str


COMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        "raid",
        "teaching RAID simulator: layout, requests, per-disk I/O, failures (seeded)",
        "xvol.reference.storage.raid_simulator",
    ),
    Subcommand(
        "verify",
        "verify the protocol models: verdict matrix, derived rules, proofs for every n",
        "xvol.verification.cli",
    ),
    Subcommand(
        "volume",
        "teaching write-anywhere volume simulator: CPs, snapshots, block diffs (seeded)",
        "xvol.reference.volume.volume_simulator",
    ),
    Subcommand(
        "mirror",
        "teaching mirroring simulator: updates, cuts, failover, resync dry run (seeded)",
        "xvol.reference.mirror.mirror_simulator",
    ),
    Subcommand(
        "serve",
        "web service (named and raw object access) on an embedded expandable-volume cluster",
        "xvol.reference.access.serve",
    ),
    Subcommand(
        "demo",
        "narrated disaster-recovery scenario on two sites: mirror, disaster, failover, resync",
        "xvol.reference.mirror.demo",
    ),
    Subcommand(
        "experiment",
        "experiments: parameter sweeps -> tidy CSV + provenance JSON + figures",
        "xvol.experiments.cli",
    ),
    Subcommand(
        "reproduce",
        "regenerate every result: verification reports, experiments, paper figures",
        "xvol.reproduce",
    ),
)

BENCHMARKS: tuple[Subcommand, ...] = (
    Subcommand(
        "raid",
        "RAID-DP/5/4 encode and reconstruct throughput against memcpy and zfec",
        "xvol.experiments.bench.raid",
    ),
    Subcommand(
        "verify",
        "verification time vs n and clients: z3 fixed, z3 parametric, explicit engine",
        "xvol.experiments.bench.verify",
    ),
    Subcommand(
        "diff",
        "block-level snapshot diff time vs volume size: birth walk, maps, full scan",
        "xvol.experiments.bench.diff",
    ),
    Subcommand(
        "transfer",
        "block replication update throughput: in process vs memcpy, simulated link vs code",
        "xvol.experiments.bench.transfer",
    ),
    Subcommand(
        "resync-plan",
        "resync dry run: read every file vs read only what changed since the common snapshot",
        "xvol.experiments.bench.resync_plan",
    ),
)


def _load(spec: Subcommand) -> ModuleType:
    return importlib.import_module(spec.module)


def _add_subcommands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    specs: Sequence[Subcommand],
) -> None:
    for spec in specs:
        module = _load(spec)
        parser = subparsers.add_parser(
            spec.name,
            help=spec.summary,
            description=(module.__doc__ or spec.summary).strip().split("\n\n")[0],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure_parser(parser)
        parser.set_defaults(_run=module.run)


def build_parser() -> argparse.ArgumentParser:
    """The full ``xvol`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="xvol",
        description="Research kit for an expandable storage volume and its disaster-recovery "
        "mirror: reference stack, state model, experiments.",
    )
    parser.add_argument("--version", action="version", version=f"xvol {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_subcommands(subparsers, COMMANDS)
    bench = subparsers.add_parser(
        "bench",
        help="benchmarks: figures and ratios against a baseline measured in the same run",
        description="Benchmarks. Each prints a table of figures and ratios against a baseline "
        "measured in the same run.",
    )
    bench_subparsers = bench.add_subparsers(title="benchmarks", metavar="BENCHMARK")
    _add_subcommands(bench_subparsers, BENCHMARKS)
    bench.set_defaults(_run=lambda _args: _usage(bench))
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xvol`` command with ``argv`` (default: the process arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    runner = cast("Callable[[argparse.Namespace], int] | None", getattr(args, "_run", None))
    if runner is None:
        return _usage(parser)
    try:
        return runner(args)
    except XvolError as exc:
        print(f"xvol: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
