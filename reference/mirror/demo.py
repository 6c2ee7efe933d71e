"""``xvol demo``: the whole disaster-recovery story on two in-process sites, narrated.

One seeded scenario, every step printed as it happens (rich), a summary table at the end:

1. two sites (clusters ``A`` and ``B``) joined by a simulated link (SimPy time, bandwidth,
   latency); clients write files at ``A``;
2. a consistent snapshot of the expandable volume is taken *while clients write*: the snapshot
   job's fences defer the client steps that reach fenced volumes (counted), none is lost;
3. the mirror is initialized (``B`` becomes a read-only mirror redirected to the snapshot);
4. more writes at ``A`` and an update (block diffs only);
5. more writes, and a disaster in the middle of the next update (the link is cut): ``B`` still
   presents the previous snapshot, whole;
6. failover: ``B`` becomes read-write on that snapshot; clients write at ``B``;
7. the primary returns; a dry run lists what ``A`` would lose and the split brain;
8. the resync preserves ``A``'s divergent files, rolls back, reverses, transfers; both sites
   verify equal, and every write acknowledged at ``B`` is at ``A``.

``--seed`` changes file names, sizes, the interleaving and where the link is cut. Each step
checks what it claims (e.g. that ``B`` never shows a mix of snapshots) and the command fails
with a typed error when a check does not hold.

Uses: rich, :mod:`.site`, :mod:`.coordinator`, :mod:`.resync`, the snapshots layer.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from xvol.errors import IntegrityError
from xvol.reference.mirror.coordinator import MirroringCoordinator
from xvol.reference.mirror.link import LinkError
from xvol.reference.mirror.resync import PRESERVED_MANIFEST, Resync
from xvol.reference.mirror.site import ReadOnlyMirrorError, Site, SitePair, build_site
from xvol.reference.snapshots.interleave import Interleaving
from xvol.reference.snapshots.snapshot_access import integrity_violations
from xvol.vocabulary import Action, OperationKind

VS, XV = "vs1", "xv"


@dataclass
class DemoReport:
    """What the scenario did, step by step: (step, what happened, simulated seconds)."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)
    checks: int = 0

    def add(self, step: str, what: str, seconds: float | None = None) -> None:
        self.rows.append((step, what, "" if seconds is None else f"{seconds:.3f}"))

    def check(self, ok: bool, claim: str) -> None:
        """Count a check; a failed one ends the demo with :class:`IntegrityError`."""
        if not ok:
            raise IntegrityError(f"demo check failed: {claim}")
        self.checks += 1


def _payload(rng: random.Random, tag: str) -> bytes:
    return (tag.encode() + b":") * rng.randrange(200, 3000)


def _write_some(site: Site, rng: random.Random, tag: str, count: int) -> list[str]:
    paths = []
    for _ in range(count):
        path = f"/{tag}-{rng.randrange(1000):03d}"
        site.write(VS, XV, path, _payload(rng, tag))
        paths.append(path)
    return sorted(set(paths))


def _committed(site: Site) -> tuple[str, ...]:
    """The newest per-volume snapshot of every member of the site's volume."""
    return tuple(
        str(site.volume(VS, XV, m.name).snapshots()[-1].uuid) for m in site.members(VS, XV)
    )


def run_demo(seed: int = 0, *, files: int = 8, console: Console | None = None) -> DemoReport:
    """Run the scenario (see the module text); returns its report."""
    out = console or Console()
    rng = random.Random(seed)
    report = DemoReport()

    def say(step: str, text: str) -> None:
        out.print(f"[bold cyan]{step}[/] {text}")

    a = build_site("A", seed=seed, data_constituents=3)
    b = build_site("B", seed=seed + 1, volume=None)
    pair = SitePair(a, b, bandwidth=8e6, latency=0.01, seed=seed)
    say("setup", f"sites A (primary) and B (remote), 8 MB/s link, 10 ms latency, seed {seed}")

    written = _write_some(a, rng, "a", files)
    say("1 write", f"clients wrote {len(written)} files at A: {', '.join(written[:4])} ...")
    report.add("write at A", f"{len(written)} files")

    # -- a consistent snapshot under concurrent writes ---------------------------------------
    xv = a.cluster.expandable(VS, XV)
    concurrent = [f"/during-{i}" for i in range(4)]
    for path in concurrent:
        xv.submit(OperationKind.CREATE, xv.op_create(path, _payload(rng, "during")), label=path)
    job = a.jobs.start(VS, XV, "before-mirror")
    weave = Interleaving(xv, job, seed=seed)
    events = weave.run_random()
    events += weave.finish()
    deferred = sum(1 for e in events if e.action == Action.DEFER)
    snap = a.jobs.get(VS, XV, "before-mirror")
    view = a.open_snapshot(VS, XV, "before-mirror")
    report.check(
        not integrity_violations(view.check_references()),
        "the snapshot's namespace -> OLS -> data references are intact",
    )
    report.check(
        all(a.read(VS, XV, p) for p in concurrent), "every concurrent write completed after unfence"
    )
    say(
        "2 snapshot",
        f"'before-mirror' (ID {snap.snapshot_id}) over {len(snap.volumes)} volumes while "
        f"{len(concurrent)} creates ran: {deferred} client steps deferred at fences, none lost",
    )
    report.add("snapshot under writes", f"{len(snap.volumes)} volumes, {deferred} steps deferred")

    # -- initialize ------------------------------------------------------------------------------
    co_b = MirroringCoordinator(b, pair.link("B", "A"))
    first = pair.run(co_b.initialize(VS, XV))
    report.check(b.files(VS, XV) == a.files(VS, XV), "B equals A after initialize")
    say(
        "3 initialize",
        f"baseline of '{first.snapshot.name}': {first.records_sent} blocks, "
        f"{first.wire_bytes / 1e6:.2f} MB in {first.seconds:.3f} s simulated; B is a read-only "
        "mirror redirected to it",
    )
    report.add("initialize", f"{first.records_sent} blocks", first.seconds)

    # -- update ----------------------------------------------------------------------------------
    changed = _write_some(a, rng, "u", max(2, files // 3))
    second = pair.run(co_b.update(VS, XV))
    report.check(b.files(VS, XV) == a.files(VS, XV), "B equals A after update")
    say(
        "4 update",
        f"{len(changed)} more files at A; update '{second.snapshot.name}' sent "
        f"{second.records_sent} blocks (block diffs only) in {second.seconds:.3f} s",
    )
    report.add("update", f"{second.records_sent} blocks", second.seconds)

    # -- a disaster in the middle of an update --------------------------------------------------
    for path in changed + [f"/big-{i}" for i in range(4)]:
        a.write(VS, XV, path, b"big:" * rng.randrange(10_000, 20_000))
    before_cut = b.files(VS, XV)
    cut_after = rng.randrange(20_000, 150_000)  # the update sends >= 160 kB: cut inside it
    pair.disaster(after_bytes=cut_after)
    process = pair.env.process(co_b.update(VS, XV))
    mixes = commits = 0
    committed = _committed(b)
    while process.is_alive:
        pair.env.step()
        now = _committed(b)
        if now != committed:  # a member committed: read the whole mirror as a client would
            commits += 1
            committed = now
            mixes += b.files(VS, XV) != before_cut
    process.defused = True
    report.check(mixes == 0, "B shows the previous snapshot whole during the cut update")
    report.check(not process.ok and isinstance(process.value, LinkError), "the link was cut")
    pending = co_b.tables.group(VS, XV).pending
    say(
        "5 disaster",
        f"the link is cut after {cut_after} bytes in the middle of update '{pending}': "
        f"{process.value.__class__.__name__}; {commits} members had committed it, yet B "
        f"still presents '{second.snapshot.name}' whole",
    )
    report.add("disaster mid-update", f"cut after {cut_after} B", pair.now)
    divergent = _write_some(a, rng, "lost", 2)

    # -- failover --------------------------------------------------------------------------------
    try:
        b.write(VS, XV, "/refused", b"x")
        report.check(False, "a mirror refuses writes")
    except ReadOnlyMirrorError:
        report.check(True, "a mirror refuses writes")
    fail = co_b.failover(VS, XV)
    report.check(b.files(VS, XV) == before_cut, "B presents the exported snapshot after failover")
    acked = _write_some(b, rng, "b", 3)
    acknowledged = b.files(VS, XV)
    say(
        "6 failover",
        f"B is read-write on '{fail.snapshot.name}' ({len(fail.members)} members restored); "
        f"clients wrote {', '.join(acked)} at B. Meanwhile A (cut off) wrote "
        f"{', '.join(divergent)}",
    )
    report.add("failover", f"B read-write on {fail.snapshot.name}")

    # -- the primary returns: dry run and resync -------------------------------------------------
    pair.reconnect()
    co_a = MirroringCoordinator(a, pair.link("A", "B"))
    resync = Resync(co_a, VS, XV)
    plan = pair.run(resync.plan())
    say(
        "7 dry run",
        f"common snapshot '{plan.common.name if plan.common else None}'; A would discard "
        f"{len(plan.discarded_paths)} files ({', '.join(plan.discarded_paths[:5])}) and "
        f"{len(plan.discarded_snapshots)} snapshots; B changed {len(plan.source_changes)} files"
        + ("; [bold red]split brain[/]" if plan.split_brain else ""),
    )
    report.add("dry run", f"{len(plan.discarded_paths)} files would be discarded at A")
    done = pair.run(resync.run())
    report.check(a.files(VS, XV) == acknowledged, "every write acknowledged at B is at A")
    preserved = ""
    if done.preserved is not None:
        kept = a.open_snapshot(VS, done.preserved, "preserved")
        report.check(
            all(kept.read(p) for p in divergent), "A's divergent files are in the preserved volume"
        )
        report.check(bool(kept.read(PRESERVED_MANIFEST)), "the preserved manifest is readable")
        preserved = done.preserved
    say(
        "8 resync",
        f"A's divergent files preserved in '{preserved}', A rolled back to the common snapshot, "
        f"relationships reversed (B -> A), '{done.update.snapshot.name}' transferred: "
        f"{done.update.records_sent} blocks",
    )
    report.add("resync", f"{done.update.records_sent} blocks, preserved in {preserved}")

    check = pair.run(co_a.verify(VS, XV))
    report.check(check.equal, "both sites verify equal")
    say(
        "9 verify",
        f"'{check.snapshot}' compared on {len(check.reports)} volumes by leaf digests "
        f"({check.blocks_compared} blocks covered, {check.wire_bytes} bytes on the wire): "
        f"{'equal' if check.equal else 'DIFFERENT'}",
    )
    report.add("verify", "equal" if check.equal else "different")

    table = Table(title=f"xvol demo (seed {seed}): {report.checks} checks held")
    table.add_column("step")
    table.add_column("what happened")
    table.add_column("sim. s", justify="right")
    for row in report.rows:
        table.add_row(*row)
    out.print(table)
    return report


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``xvol demo``."""
    parser.add_argument("--seed", type=int, default=0, help="scenario seed (default 0)")
    parser.add_argument("--files", type=int, default=8, help="files written at first (default 8)")


def run(args: argparse.Namespace) -> int:
    """Run the narrated scenario."""
    if args.files < 1:
        from xvol.errors import InvalidArgumentError

        raise InvalidArgumentError("--files must be >= 1")
    run_demo(args.seed, files=args.files)
    return 0


__all__ = ["DemoReport", "configure_parser", "run", "run_demo"]
