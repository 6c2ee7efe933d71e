"""``xvol bench resync-plan``: the resync dry run, reading every file against reading the changes.

The scenario is the seed's resync after a failover: site A holds an expandable volume of
``--files`` files (``--size`` bytes each, in ten directories) mirrored to site B; B fails over;
then each site changes ``--changes`` files (writes into existing files, one file created, one
deleted) and the link comes back. The dry run at A (:meth:`~xvol.reference.mirror.resync.Resync.
plan`) must list A's changes since the common snapshot and B's. It runs with both change finders
(:mod:`xvol.reference.mirror.divergence`):

* ``scan`` (the baseline, what the dry run did before): read every file of the common snapshot
  and of the live volume, at both sites;
* ``diff``: ask each member volume which of its files changed (copy-on-write inode-file and
  directory blocks), then read only the files that may differ.

Both plans must be equal (else the run fails). For each method the table shows the wall time of
the whole dry run (best of ``--repeats``, both sites in one process), the disk blocks both
clusters read during it (the disks' I/O counters), and the file contents both sites read and
their bytes, and the namespace names walked (from the change finder at each site). The ratios
are scan / diff, measured in the same run. Expected shape: the scan's reads grow with the volume,
the diff's file reads with the changes; what the diff still does per file is one walk of the
namespace's names and GOIDs at each site (a redirector block per file, no data), because no
structure of the seed maps a changed object's GOID back to its paths.

Uses: rich, the mirroring layer (sites, coordinator, resync, change finder), the cluster's
node storage (disk counters); errors.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from xvol.errors import InvalidArgumentError
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.mirror.coordinator import MirroringCoordinator
from xvol.reference.mirror.divergence import CHANGE_METHODS, ChangeMethod, divergence
from xvol.reference.mirror.resync import Resync, ResyncPlan
from xvol.reference.mirror.site import Site, SitePair, build_site

VS, XV = "vs1", "xv"
DIRECTORIES = 10


@dataclass(frozen=True)
class Row:
    """One change finder's dry run: best wall seconds, disk blocks read by both clusters, file
    contents read at both sites and their bytes, namespace names walked at both sites."""

    method: ChangeMethod
    seconds: float
    disk_blocks: int
    files_read: int
    bytes_read: int
    names_walked: int


def disk_reads(site: Site) -> int:
    """Blocks read so far by every disk of ``site``'s nodes."""
    total = 0
    for node in site.cluster.nodes.values():
        storage = node.dmodule.storage
        if isinstance(storage, AggregateStorage):
            for group in storage.aggregate.raid_groups:
                total += sum(disk.counters.reads for disk in group.disks)
    return total


def build(files: int, size: int, changes: int, seed: int) -> tuple[SitePair, Resync]:
    """Sites A and B after a mirror, a failover and ``changes`` changed files at each site;
    the resync of A from B, ready for its dry run."""
    if files < 2 * changes + 2:
        raise InvalidArgumentError("--files must be at least twice --changes plus 2")
    blocks = max(1024, files * (-(-size // 4096) + 1) + 512)  # per member volume
    a = build_site("A", seed=seed, data_constituents=2, volume_blocks=blocks)
    b = build_site("B", seed=seed + 1, volume=None)
    pair = SitePair(a, b, bandwidth=1e9)
    xv = a.cluster.expandable(VS, XV)
    for d in range(DIRECTORIES):
        xv.mkdir(f"/d{d}")
    paths = [f"/d{i % DIRECTORIES}/f{i:05d}" for i in range(files)]
    for i, path in enumerate(paths):
        xv.create(path, bytes([i % 251]) * size)
    co_b = MirroringCoordinator(b, pair.link("B", "A"))
    pair.run(co_b.initialize(VS, XV))
    pair.disaster()
    co_b.failover(VS, XV)
    for site, offset in ((a, 0), (b, changes)):
        live = site.cluster.expandable(VS, XV)
        for k in range(changes - 2):
            live.write(paths[offset + k], 100, f"{site.name} changed {k}".encode())
        live.create(f"/d0/new-at-{site.name}", b"new" * 100)
        live.delete(paths[-1 - offset])
    pair.reconnect()
    return pair, Resync(MirroringCoordinator(a, pair.link("A", "B")), VS, XV)


def measure(
    files: int, size: int, changes: int, seed: int, repeats: int, progress: Callable[[str], None]
) -> tuple[list[Row], ResyncPlan]:
    """Build the scenario, run the dry run with each change finder ``repeats`` times; the rows
    and the plan (the same for both, checked)."""
    progress(f"building two sites with {files} files of {size} bytes")
    pair, resync = build(files, size, changes, seed)
    a, b = pair.site("A"), pair.site("B")
    plans: dict[ChangeMethod, ResyncPlan] = {}
    rows = []
    for method in CHANGE_METHODS[::-1]:  # the baseline first
        progress(f"dry run with the {method} change finder")
        best, blocks = float("inf"), 0
        for _ in range(repeats):
            reads = disk_reads(a) + disk_reads(b)
            start = time.perf_counter()
            plans[method] = pair.run(resync.plan(method=method))
            best = min(best, time.perf_counter() - start)
            blocks = disk_reads(a) + disk_reads(b) - reads
        common = plans[method].common
        assert common is not None
        here = divergence(a, VS, XV, common, method=method)
        there = divergence(b, VS, XV, b.jobs.get(VS, XV, common.name), method=method)
        rows.append(
            Row(
                method,
                best,
                blocks,
                here.files_read + there.files_read,
                here.bytes_read + there.bytes_read,
                here.names_walked + there.names_walked,
            )
        )
    if plans["diff"] != plans["scan"]:
        raise AssertionError("the two change finders planned different resyncs")
    return rows, plans["diff"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``xvol bench resync-plan``."""
    parser.add_argument("--files", type=int, default=300, help="files in the volume (300)")
    parser.add_argument("--size", type=int, default=8192, help="bytes per file (8192)")
    parser.add_argument(
        "--changes", type=int, default=5, help="files changed at each site (5, at least 2)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--repeats", type=int, default=3, help="timing rounds (best taken)")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print the table and the scan / diff ratios."""
    if args.changes < 2 or args.repeats < 1 or args.size < 1:
        raise InvalidArgumentError("--changes must be >= 2, --repeats and --size >= 1")
    console = Console(width=max(Console().width, 100))
    console.print(
        f"resync dry run: {args.files} files of {args.size} bytes, {args.changes} changed at "
        f"each site, seed {args.seed}, best of {args.repeats}"
    )
    with console.status("starting") as status:
        rows, plan = measure(
            args.files, args.size, args.changes, args.seed, args.repeats, status.update
        )
    table = Table(title="resync dry run: read every file (scan) vs read the changes (diff)")
    for column in ("method", "dry run ms", "disk blocks read", "files read", "bytes read",
                   "names walked"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row.method,
            f"{row.seconds * 1e3:.1f}",
            f"{row.disk_blocks:,}",
            f"{row.files_read:,}",
            f"{row.bytes_read:,}",
            f"{row.names_walked:,}",
        )
    console.print(table)
    scan, diff = rows
    console.print(
        f"the same plan ({len(plan.discarded_paths)} discarded, {len(plan.source_changes)} "
        f"changed at the source); scan / diff: time {scan.seconds / diff.seconds:.1f}x, disk "
        f"blocks {scan.disk_blocks / max(1, diff.disk_blocks):.1f}x, files read "
        f"{scan.files_read / max(1, diff.files_read):.1f}x"
    )
    return 0


__all__ = ["Row", "build", "configure_parser", "disk_reads", "measure", "run"]
