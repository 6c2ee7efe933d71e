"""``xvol mirror``: a seeded teaching simulator of disaster-recovery mirroring.

It plays one small scenario on two in-process sites and prints it as a numbered timeline: clients
write, delete and snapshot files at the primary site ``A``; the mirroring coordinator of the
remote site ``B`` initializes the mirror and updates it every few operations (each update takes a
consistent snapshot ``mirror.B.<ID>`` at ``A`` and sends its block diff); an update may be *cut* by
a link failure part-way; a *disaster* may end the mirroring (in the middle of an update or
between two), after which ``B`` fails over (the seed's break), clients write at ``B`` and, cut
off, at ``A`` too; when ``A`` returns, its resync (the seed's resync process) runs a dry run and
then preserves, rolls back, reverses and transfers. For the events that matter it asks a
question: which snapshot do clients at ``B`` see now, how many blocks does an update send per
member volume, which members had committed a cut update's target, which snapshot is the common
base, what would the resync discard and preserve, which writes are split brain. With ``-c`` it
prints the answers, read from the real reference stack after each event (the coordinator's
results, the dry run's plan, what each site's clients read), never from a separate formula.
Like OSTEP's homework simulators it echoes its parameters first, and every run is a pure
function of them (the seed included)::

    xvol mirror -s 8 -x 50 -c

Uses: :mod:`.site` (``build_site``, ``SitePair``), :mod:`.coordinator`
(``MirroringCoordinator``), :mod:`.resync` (``Resync``), :mod:`.link` (``LinkError``),
:mod:`.replication` (``TransferProgress``, to place a cut), random.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, field

from xvol.errors import InvalidArgumentError
from xvol.reference.mirror.coordinator import MirroringCoordinator, UpdateResult
from xvol.reference.mirror.link import LinkError
from xvol.reference.mirror.replication import TransferProgress
from xvol.reference.mirror.resync import PRESERVED_MANIFEST, Resync, ResyncPlan, ResyncResult
from xvol.reference.mirror.site import Site, SitePair, build_site, snapshot_files
from xvol.reference.storage.block import BLOCK_SIZE

VS, XV = "vs1", "xv"
FILE_NAMES = 5
"""Clients use the paths ``/f0`` .. ``/f4``, so writes often replace a file."""
BATCH_BLOCKS = 4
"""Blocks per batch request; a transfer checkpoints after every batch."""
FIRST_WRITES = 2
"""Writes at ``A`` before the mirror is initialized (not counted in ``-n``)."""
VOLUME_BLOCKS = 512
"""Blocks of each member volume."""

# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameters:
    """One scenario. ``cut`` and ``disaster`` are percentages (0-100); ``resync`` is
    ``preserve``, ``discard`` or ``none``."""

    seed: int = 0
    ops: int = 6
    interval: int = 2
    cut: int = 25
    disaster: int = 100
    after: int = 3
    data_constituents: int = 2
    resync: str = "preserve"

    def check(self) -> None:
        """:class:`InvalidArgumentError` naming the first parameter out of range."""
        if not 0 <= self.ops <= 40:
            raise InvalidArgumentError(f"-n (operations at A) must be in 0..40, got {self.ops}")
        if not 1 <= self.interval <= 40:
            raise InvalidArgumentError(
                f"-u (update interval) must be in 1..40, got {self.interval}"
            )
        if not 0 <= self.cut <= 100:
            raise InvalidArgumentError(f"-x is a percentage (0..100), got {self.cut}")
        if not 0 <= self.disaster <= 100:
            raise InvalidArgumentError(f"-d is a percentage (0..100), got {self.disaster}")
        if not 0 <= self.after <= 20:
            raise InvalidArgumentError(
                f"-a (operations after the failover) must be in 0..20, got {self.after}"
            )
        if not 1 <= self.data_constituents <= 4:
            raise InvalidArgumentError(
                f"-D (data constituents) must be in 1..4, got {self.data_constituents}"
            )
        if self.resync not in ("preserve", "discard", "none"):
            raise InvalidArgumentError(f"-r must be preserve, discard or none, got {self.resync!r}")


# --------------------------------------------------------------------------------------------
# The timeline
# --------------------------------------------------------------------------------------------


@dataclass
class Event:
    """One numbered event: who acted (``A``, ``B`` or ``""`` for the link), what happened (the
    scenario, printed with or without ``-c``), the question it asks (``""``: none) and the
    answers read from the reference right after it (printed instead of the question with
    ``-c``). Life cycle: made when the event starts; its answers are appended once it ends."""

    number: int
    actor: str
    text: str
    question: str = ""
    answers: list[str] = field(default_factory=list)


@dataclass
class Simulation:
    """A finished scenario: its events, the two sites, the coordinator of the current
    destination (B's, or A's after a resync), and what the resync planned and did."""

    params: Parameters
    pair: SitePair
    events: list[Event]
    coordinator: MirroringCoordinator
    disaster: bool = False
    plan: ResyncPlan | None = None
    resync: ResyncResult | None = None
    written: dict[str, int] = field(default_factory=dict)
    """Snapshot name -> the event at which A took it."""

    @property
    def a(self) -> Site:
        """The primary site (the mirror of B after a resync)."""
        return self.pair.site("A")

    @property
    def b(self) -> Site:
        """The remote site (the primary after a failover)."""
        return self.pair.site("B")


def version_of(data: bytes) -> str:
    """The event that wrote ``data`` (every payload starts with ``e<event>:``), or ``?``."""
    head = data.split(b":", 1)[0]
    return head[1:].decode() if head.startswith(b"e") and head[1:].isdigit() else "?"


def show_files(files: dict[str, bytes]) -> str:
    """``/f0@3 /f2@7``: each path with the event that wrote its content."""
    return " ".join(f"{p}@{version_of(d)}" for p, d in sorted(files.items())) or "(no files)"


def presented(site: Site) -> str:
    """What the site's clients read: the snapshot a mirror redirects to, or the live volume."""
    if (VS, XV) in site.redirects:
        sid = site.redirects[(VS, XV)]
        if sid is None:
            return "nothing yet (a mirror without a complete snapshot)"
        name = site.jobs.get(VS, XV, sid).name
        return f"{name} (read-only): {show_files(site.files(VS, XV))}"
    return f"its live volume (read-write): {show_files(site.files(VS, XV))}"


def _members_text(result: UpdateResult) -> str:
    """``NS 2, OLS 0 (had it), DC1 3 (+4 resumed)``: blocks each member sent."""
    parts = []
    for m in result.members:
        if m.skipped:
            parts.append(f"{m.member} 0 (had it)")
        elif m.records_resumed:
            parts.append(f"{m.member} {m.records_sent} (+{m.records_resumed} resumed)")
        else:
            parts.append(f"{m.member} {m.records_sent}")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# Placing a cut inside an update
# --------------------------------------------------------------------------------------------


@dataclass
class LinkCutter:
    """Cuts both links part-way through one update, at a batch boundary of one member's
    transfer (the coordinator's progress callback). Armed with a member position ``start``
    and a ``fraction``: the cut lands in the first transfer, at a member position >= ``start``,
    that has blocks left to send, after ``fraction`` of its batches (0: before the first).
    Life cycle: :meth:`arm` -> one update runs -> :meth:`disarm`; ``fired`` and the cut
    member's ``done``/``total`` blocks say what happened."""

    pair: SitePair
    order: list[str] = field(default_factory=list)
    channels: dict[str, str] = field(default_factory=dict)
    start: int | None = None
    fraction: float = 0.0
    cut_at: int | None = None
    channel: str = ""
    fired: bool = False
    member: str = ""
    done: int = 0
    total: int = 0

    def arm(self, coordinator: MirroringCoordinator, start: int, fraction: float) -> None:
        """Cut the next update (see the class text)."""
        site = coordinator.site
        self.order = [m.name for m in site.members(VS, XV)]
        self.channels = {r.channel: r.member for r in coordinator.tables.relationships(VS, XV)}
        self.start, self.fraction = start, fraction
        self.cut_at, self.channel, self.fired = None, "", False
        self.member, self.done, self.total = "", 0, 0

    def disarm(self) -> None:
        """Cut nothing more."""
        self.start = None

    def __call__(self, progress: TransferProgress) -> None:
        if self.start is None or self.fired or progress.state != "running":
            return
        if progress.target is None:
            return
        if self.cut_at is None:  # the first report of a transfer that opened its diff
            member = self.channels.get(progress.relationship, "")
            left = progress.records_total - progress.records_done
            if member not in self.order or self.order.index(member) < self.start or left <= 0:
                return
            batches = -(-left // BATCH_BLOCKS)
            self.cut_at = progress.records_done + int(self.fraction * batches) * BATCH_BLOCKS
            self.channel, self.member = progress.relationship, member
        if progress.relationship == self.channel and progress.records_done >= self.cut_at:
            self.fired = True
            self.done, self.total = progress.records_done, progress.records_total
            self.pair.disaster()  # both links, now: the next request is lost


# --------------------------------------------------------------------------------------------
# The scenario
# --------------------------------------------------------------------------------------------


class _Run:
    """The state of one simulation while it runs (see :func:`simulate`)."""

    def __init__(self, params: Parameters) -> None:
        self.params = params
        self.rng = random.Random(params.seed)
        a = build_site(
            "A",
            seed=params.seed,
            data_constituents=params.data_constituents,
            volume_blocks=VOLUME_BLOCKS,
        )
        b = build_site("B", seed=params.seed + 1, volume=None)
        self.pair = SitePair(a, b, bandwidth=1e6, latency=0.001, seed=params.seed)
        self.cutter = LinkCutter(self.pair)
        self.co = self._coordinator(b, "A")
        self.sim = Simulation(params, self.pair, [], self.co)

    def _coordinator(self, site: Site, source: str) -> MirroringCoordinator:
        """The mirroring coordinator of ``site`` pulling from ``source`` (the cutter watches)."""
        return MirroringCoordinator(
            site,
            self.pair.link(site.name, source),
            batch_blocks=BATCH_BLOCKS,
            window=1,
            on_progress=self.cutter,
        )

    def event(self, actor: str, text: str, question: str = "") -> Event:
        """Append the next numbered event to the timeline and return it."""
        ev = Event(len(self.sim.events) + 1, actor, text, question)
        self.sim.events.append(ev)
        return ev

    # -- client operations ---------------------------------------------------------------------

    def write(self, site: Site) -> None:
        """A client writes one of the paths at ``site``, tagged with this event's number."""
        number = len(self.sim.events) + 1
        path = f"/f{self.rng.randrange(FILE_NAMES)}"
        size = self.rng.randint(1, 3) * BLOCK_SIZE - self.rng.randrange(0, 200)
        tag = f"e{number}:{path};".encode()
        site.write(VS, XV, path, (tag * (size // len(tag) + 1))[:size])
        handle = site.cluster.expandable(VS, XV).stat(path).handle
        where = "" if handle is None else f", object on DC{handle.location_id}"
        blocks = -(-size // BLOCK_SIZE)
        self.event(site.name, f"write {path} ({blocks} block{'s' * (blocks > 1)}{where})")

    def operation(self, site: Site) -> None:
        """A random client operation at ``site``: mostly writes, some deletes and snapshots."""
        files = sorted(site.files(VS, XV))
        choice = self.rng.random()
        if choice < 0.2:
            name = f"snap{len(self.sim.events) + 1}"
            site.snapshot(VS, XV, name)
            self.event(site.name, f"snapshot {name} (a user's snapshot)")
        elif choice < 0.35 and len(files) >= 2:
            path = self.rng.choice(files)
            site.delete(VS, XV, path)
            self.event(site.name, f"delete {path}")
        else:
            self.write(site)

    # -- updates -------------------------------------------------------------------------------

    def update(self, *, cut: bool = False, disaster: bool = False, first: bool = False) -> None:
        """B initializes or updates the mirror; ``cut``: the link fails part-way and comes back
        afterwards; ``disaster``: it fails part-way for good."""
        co, a, b = self.co, self.sim.a, self.sim.b
        verb = "initialize the mirror (baseline)" if first else "update"
        if disaster:
            text = f"{verb}; a DISASTER cuts the link part-way through it (A is unreachable)"
        elif cut:
            text = f"{verb}; the link fails part-way through it and comes back after it"
        else:
            text = verb
        question = (
            "what do B's clients see now, and which members had committed the target?"
            if cut or disaster
            else "which snapshot does it send, how many blocks per member, what do B's clients see?"
        )
        ev = self.event("B", text, question)
        taken = {r.name for r in a.snapshots(VS, XV)}
        if cut or disaster:
            self.cutter.arm(co, self.rng.randrange(len(a.members(VS, XV))), self.rng.random())
        process = co.initialize(VS, XV) if first else co.update(VS, XV)
        try:
            result = self.pair.run(process)
        except LinkError as error:
            self.cutter.disarm()
            self._cut_answers(ev, error, taken)
            if not disaster:
                self.pair.reconnect()
            return
        self.cutter.disarm()
        if disaster:
            self.pair.disaster()
        name = result.snapshot.name
        if name not in taken:
            self.sim.written[name] = ev.number
            origin = f"taken at A now (ID {result.snapshot.snapshot_id})"
        else:  # an update takes a new snapshot unless it resumes a cut update's target
            origin = f"the cut update's target, taken at A at event {self.sim.written.get(name)}"
        if cut or disaster:
            ev.answers.append("the link failed only after the update had finished")
        ev.answers.append(f"sends {name}, {origin}: {result.records_sent} blocks")
        ev.answers.append(f"  per member: {_members_text(result)}")
        if result.pruned:
            ev.answers.append(
                f"  prunes the mirror's older snapshots at both sites: {', '.join(result.pruned)}"
            )
        ev.answers.append(f"B's clients see {presented(b)}")

    def _cut_answers(self, ev: Event, error: LinkError, taken: set[str]) -> None:
        """Answer a cut update: its target, where the link failed, the members that committed
        the target, what B's clients see. ``taken``: A's snapshots before the update."""
        co, a, b = self.co, self.sim.a, self.sim.b
        group = co.tables.group(VS, XV)
        target = group.pending
        if target is None:
            ev.answers.append(f"the link failed before A took a snapshot: {error}")
        else:
            if target not in taken:
                self.sim.written[target] = ev.number
                ev.answers.append(f"A took {target} for it (ID {self._sid(a, target)})")
            else:
                ev.answers.append(
                    f"it resumed {target}, taken at A at event {self.sim.written.get(target)}"
                )
            row = a.jobs.get(VS, XV, target)
            committed = [
                v.member
                for v in row.volumes
                if v.uuid in {str(s.uuid) for s in b.volume(VS, XV, v.member).snapshots()}
            ]
            cutter = self.cutter
            if cutter.fired and cutter.done:
                ev.answers.append(
                    f"the link failed in {cutter.member}'s transfer after {cutter.done} of its "
                    f"{cutter.total} blocks (checkpointed; a retry resumes there)"
                )
            elif cutter.fired:
                ev.answers.append(
                    f"the link failed as {cutter.member}'s transfer began, before any of its "
                    f"{cutter.total} blocks arrived"
                )
            ev.answers.append(
                f"members that had committed {target}: {', '.join(committed) or 'none'}"
            )
        ev.answers.append(f"B's clients see {presented(b)}")

    @staticmethod
    def _sid(site: Site, name: str) -> int:
        """The snapshot ID of ``name`` at ``site``."""
        return site.jobs.get(VS, XV, name).snapshot_id

    # -- the disaster and after -----------------------------------------------------------------

    def failover(self) -> None:
        """B breaks the mirror and presents its exported snapshot read-write."""
        ev = self.event(
            "B",
            "failover (break the mirror: B becomes read-write)",
            "which snapshot does B present now, and with which files?",
        )
        result = self.co.failover(VS, XV)
        ev.answers.append(f"B restored {', '.join(result.members)} to {result.snapshot.name}")
        ev.answers.append(f"B's clients see {presented(self.sim.b)}")

    def resync(self) -> None:
        """A returns: the link comes back, A runs the resync dry run and (unless ``-r none``)
        the resync, and both sites are verified."""
        a, b = self.sim.a, self.sim.b
        self.pair.reconnect()
        self.event("", "A returns: the link between A and B is back up")
        co_a = self._coordinator(a, "B")
        resync = Resync(co_a, VS, XV)
        ev = self.event(
            "A",
            "resync dry run (A is to become the mirror of B)",
            "which snapshot is the common base? what would A discard (files, snapshots)?\n"
            "what did B change, and which writes are split brain?",
        )
        plan = self.pair.run(resync.plan())
        self.sim.plan = plan
        live_a, live_b = a.files(VS, XV), b.files(VS, XV)
        common = "none" if plan.common is None else plan.common.name
        ev.answers.append(f"common base: {common}")
        ev.answers.append(f"A would discard: {_changes(plan.discarded_paths, live_a)}")
        ev.answers.append(
            f"A would delete its snapshots: {', '.join(plan.discarded_snapshots) or 'none'}"
        )
        ev.answers.append(f"B changed: {_changes(plan.source_changes, live_b)}")
        if plan.split_brain:
            both = ", ".join(plan.conflicting_paths) or "none"
            ev.answers.append(f"split brain: both sites wrote since {common}; on both: {both}")
        else:
            ev.answers.append("no split brain: at most one site wrote since the common base")
        if self.params.resync == "none":
            return
        discard = self.params.resync == "discard"
        ev = self.event(
            "A",
            "resync" + (" with discard (A's divergent files are dropped)" if discard else ""),
            "what is preserved, how many blocks are sent, what do clients at A and B see?",
        )
        result = self.pair.run(resync.run(discard=discard))
        self.sim.resync, self.sim.coordinator = result, co_a
        if result.preserved is not None:
            kept = snapshot_files(a.open_snapshot(VS, result.preserved, "preserved"))
            kept.pop(PRESERVED_MANIFEST, None)
            ev.answers.append(f"preserved in {result.preserved}: {show_files(kept)}")
        elif plan.discarded_paths:
            ev.answers.append("nothing preserved: A's divergent files are discarded")
        else:
            ev.answers.append("nothing to preserve: A did not diverge")
        update = result.update
        ev.answers.append(
            f"A rolled back to {common}; relationships reversed (B -> A); sends "
            f"{update.snapshot.name}: {update.records_sent} blocks"
        )
        ev.answers.append(f"  per member: {_members_text(update)}")
        check = self.pair.run(co_a.verify(VS, XV))
        ev.answers.append(f"A's clients see {presented(a)}")
        ev.answers.append(f"B's clients see {presented(b)}")
        ev.answers.append(
            f"verify {check.snapshot} at both sites by leaf digests: "
            + ("equal" if check.equal else "DIFFERENT")
        )

    def lag(self) -> None:
        """No disaster: B asks how far behind A it is."""
        ev = self.event("B", "no disaster: B checks its lag", "how far behind A is B?")
        lag = self.pair.run(self.co.lag(VS, XV))
        ev.answers.append(f"B's clients see {presented(self.sim.b)}")
        ev.answers.append(
            f"A's snapshots newer than B's: {', '.join(lag.behind) or 'none'}; the members are "
            f"{lag.blocks} blocks behind A's newest snapshot"
        )
        ev.answers.append(f"A's clients see {presented(self.sim.a)}")


def _changes(paths: tuple[str, ...], live: dict[str, bytes]) -> str:
    """Changed paths with the event that wrote them, ``(deleted)`` for paths gone."""
    shown = [f"{p}@{version_of(live[p])}" if p in live else f"{p} (deleted)" for p in paths]
    return " ".join(shown) or "nothing"


def simulate(params: Parameters) -> Simulation:
    """Run the scenario of ``params`` on the reference stack (see the module text)."""
    params.check()
    run = _Run(params)
    rng, sim = run.rng, run.sim
    for _ in range(FIRST_WRITES):
        run.write(sim.a)
    run.update(first=True)
    disaster = rng.randrange(100) < params.disaster
    in_update = disaster and rng.random() < 0.5
    for i in range(1, params.ops + 1):
        run.operation(sim.a)
        if i % params.interval == 0 and not (in_update and i == params.ops):
            run.update(cut=rng.randrange(100) < params.cut)
    if not disaster:
        run.lag()
        return sim
    sim.disaster = True
    if in_update:
        run.update(disaster=True)
    else:
        run.pair.disaster()
        run.event("", "DISASTER: the link fails; A is unreachable from B")
    run.failover()
    for k in range(params.after):
        # B's clients write first; then each operation is at B or, cut off, at A
        run.operation(sim.b if k == 0 or rng.random() < 0.6 else sim.a)
    run.resync()
    return sim


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``xvol mirror`` (OSTEP-style short flags)."""
    parser.add_argument("-s", "--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "-n", "--ops", type=int, default=6, help="client operations at A before the disaster"
    )
    parser.add_argument(
        "-u", "--interval", type=int, default=2, help="B updates after every N operations"
    )
    parser.add_argument(
        "-x", "--cut", type=int, default=25, help="percent chance an update is cut (0-100)"
    )
    parser.add_argument(
        "-d", "--disaster", type=int, default=100, help="percent chance of a disaster (0-100)"
    )
    parser.add_argument(
        "-a", "--after", type=int, default=3, help="client operations after the failover"
    )
    parser.add_argument(
        "-D", "--data-constituents", type=int, default=2, help="data constituents (1-4)"
    )
    parser.add_argument(
        "-r",
        "--resync",
        default="preserve",
        help="when A returns: preserve (default), discard, or none (dry run only)",
    )
    parser.add_argument("-c", "--compute", action="store_true", help="compute the answers")


def report(sim: Simulation, compute: bool) -> list[str]:
    """The lines ``xvol mirror`` prints for ``sim``: parameters, the two sites, the timeline
    with its questions or (``compute``) their answers."""
    params = sim.params
    members = ", ".join(m.name for m in sim.a.members(VS, XV))
    lines = [
        f"ARG seed {params.seed}",
        f"ARG ops {params.ops}",
        f"ARG interval {params.interval}",
        f"ARG cut percent {params.cut}",
        f"ARG disaster percent {params.disaster}",
        f"ARG ops after failover {params.after}",
        f"ARG data constituents {params.data_constituents}",
        f"ARG resync {params.resync}",
        f"ARG compute {compute}",
        "",
        f"Site A (primary): expandable volume {VS}/{XV} with member volumes {members}",
        "(NS = namespace, OLS = object location store, DCk = data constituent k).",
        "Site B (remote): the mirror. Its mirroring coordinator asks A's source proxy for a",
        "consistent snapshot mirror.B.<ID> of every member and pulls the block diffs,",
        f"{BATCH_BLOCKS} blocks a batch, checkpointed. B's clients read the newest snapshot",
        "complete on every member. /f1@7 is file /f1 as event 7 wrote it.",
        "",
    ]
    for event in sim.events:
        actor = f"{event.actor}: " if event.actor else ""
        lines.append(f"{event.number:2d} {actor}{event.text}")
        if event.question:
            shown = event.answers if compute else event.question.split("\n")
            lines += [f"     {line}" for line in shown]
    if not compute:
        lines += ["", "Run with -c to see the answers."]
    return lines


def run(args: argparse.Namespace) -> int:
    """Print the scenario and its questions (answers with ``-c``). Exit status 0."""
    params = Parameters(
        seed=args.seed,
        ops=args.ops,
        interval=args.interval,
        cut=args.cut,
        disaster=args.disaster,
        after=args.after,
        data_constituents=args.data_constituents,
        resync=args.resync,
    )
    params.check()  # before anything is printed
    for line in report(simulate(params), args.compute):
        print(line)
    return 0


__all__ = [
    "Event",
    "LinkCutter",
    "Parameters",
    "Simulation",
    "configure_parser",
    "presented",
    "report",
    "run",
    "show_files",
    "simulate",
    "version_of",
]
