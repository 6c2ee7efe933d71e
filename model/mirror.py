"""The mirror model: disaster-recovery mirroring, failover and resync of an expandable volume.

What it models (seed: mirroring coordinator at the destination, source proxy, destination
volume data structure with the source-ID mapping, mirroring data structure, transfer blocks,
resync, N-module redirect). Two sites: ``A``, the primary, and ``B``, the remote location where
the mirroring coordinator runs. The expandable volume has the member volumes ``NS``, ``OLS``,
``DC1..DCn`` (the sort ``Vol``: the source's volume list, as the source proxy reports it). The
destination was built when the source had fewer data constituents: the last ``missing`` of them
were added at the source after the baseline, so ``B`` lacks them until a resize.

Abstraction of content. Snapshots are named by *generations* ``g0, g1, ...`` (the sort ``Gen``;
``none`` is the empty image of a volume that holds nothing yet). A generation is taken once, by
one site, as a consistent snapshot of every member volume that site has, and ``member(g, v)``
is its volume list (the seed's snapshot configuration: "a list of all the volumes included
within the snapshot"); so a generation's image of a volume is one fixed content wherever a copy
of it lives. The active file system of volume ``v`` at site ``s`` is ``base(s, v)`` (the
generation it was last set to: by a snapshot, a transfer, a failover or a rollback) plus
``dirty(s, v)`` (local writes not yet in any snapshot). Two volumes hold identical content iff
they have the same base and neither is dirty. A ghost ``dw(v)`` says that ``B``'s active image of
``v`` still holds the writes acknowledged at ``B`` after failover; ``acked(v)`` that some were.

Life cycle (the global ``mode``; each resync step is one action, as the seed's blocks):

* ``mirror``: the primary takes snapshots (``g1..gk``, a bounded number) and writes; the
  coordinator resizes ``B`` to the source's volume list, creates a relationship per volume, and
  transfers the newest snapshot volume by volume (each volume independently); ``publish``
  updates ``B``'s snapshot table and points the N-module's redirect at a snapshot complete on
  every volume. Reads at ``B`` see the published snapshot, never the half-transferred active
  file system.
* ``disaster`` (mode ``lost``): the primary is gone; transfers in flight stop.
* ``failover`` (mode ``failover``): break; ``B`` becomes read-write, presenting the newest
  snapshot complete on every volume; clients write at ``B`` (acknowledged writes).
* ``primary-return``, then the resync: ``common-snapshot`` (the newest snapshot both sites hold
  on every volume), ``preserve`` (keep the old primary's divergent data in a snapshot, when
  configured), ``rollback`` (restore ``A`` to the common snapshot; newer snapshots of ``A``
  are deleted), ``reverse`` (``B`` takes the transfer snapshot and the relationships are
  reversed and confirmed), per-volume ``transfer`` from ``B`` to ``A``, ``notify`` (mode
  ``synced``). While the reverse transfer runs, ``A``'s N-module redirects reads to the common
  snapshot. ``B``'s clients are quiesced from the primary's return on (a final update).

Properties (the names reports use):

* ``failover-consistent``: while ``B`` is read-write, its image of every volume derives from one
  snapshot generation, which ``B`` holds on every member volume of it;
* ``resync-identical``: every volume whose resync transfer has completed holds identical content
  at both sites (so after ``notify``, the whole expandable volume);
* ``no-lost-destination-write``: a write acknowledged at ``B`` after failover stays in ``B``'s
  image;
* ``relationship-before-transfer``: a volume is transferred only over a relationship;
* ``preserve-keeps-divergent``: whatever a rollback discards on ``A`` was preserved first;
* ``redirect-consistent``: while a transfer is in flight, reads at the destination (``B`` before
  failover, ``A`` during resync) see one snapshot, consistent on every volume.

Knobs: ``preserve`` (off violates ``preserve-keeps-divergent`` by design), the number of source
snapshots, and protocol bugs (:class:`Bug`), each of which must break the properties
:data:`EXPECTED_VIOLATIONS` names and no other. Left out (each would be a new action, not a new
abstraction): expanding ``B`` while it is read-write (so ``A`` never needs a resize), writes at
``B`` during the reverse transfer, the dry run that lists what a rollback would discard,
snapshot retention and deletion at the source, a second disaster during resync, and the link
itself (loss, throttling, resume). Uses only the model core (:mod:`xvol.model.logic`) and
:mod:`xvol.vocabulary`; never the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from xvol.errors import InvalidArgumentError
from xvol.model.logic import (
    BOOL,
    TRUE,
    Action,
    DomainSort,
    EnumSort,
    Expr,
    Instance,
    Invariant,
    Property,
    Sort,
    Symbol,
    System,
    Update,
    and_,
    eq,
    exists,
    forall,
    implies,
    is_in,
    ite,
    lit,
    ne,
    not_,
    or_,
    var,
)
from xvol.vocabulary import Action as Label
from xvol.vocabulary import volume_names

PROPERTIES = (
    "failover-consistent",
    "resync-identical",
    "no-lost-destination-write",
    "relationship-before-transfer",
    "preserve-keeps-divergent",
    "redirect-consistent",
)


class Bug(StrEnum):
    """Deliberate protocol bugs, each expected to break the properties :data:`EXPECTED_VIOLATIONS`
    names (the suite checks both directions)."""

    PER_VOLUME_COMMON = "per-volume-common"  # each volume picks its own newest common snapshot
    SKIP_ROLLBACK = "skip-rollback"  # resync transfers onto the unrestored old primary
    SKIP_RESIZE = "skip-resize"  # B's volume table stands for the source's volume list
    NO_REDIRECT = "no-redirect"  # reads at the destination go to the active file system
    NO_REVERSE = "no-reverse"  # relationships keep the old direction during resync
    NO_CONFIRM = "no-confirm"  # transfers do not check that the volume has a relationship


PRESERVE_OFF = "preserve-off"
"""The name reports give the configuration ``preserve=False`` (a knob, not a bug)."""

EXPECTED_VIOLATIONS: dict[str, frozenset[str]] = {
    "correct": frozenset(),
    Bug.PER_VOLUME_COMMON.value: frozenset({"redirect-consistent"}),
    Bug.SKIP_ROLLBACK.value: frozenset({"resync-identical"}),
    Bug.SKIP_RESIZE.value: frozenset({"failover-consistent", "redirect-consistent"}),
    Bug.NO_REDIRECT.value: frozenset({"redirect-consistent"}),
    Bug.NO_REVERSE.value: frozenset({"failover-consistent", "no-lost-destination-write"}),
    Bug.NO_CONFIRM.value: frozenset({"relationship-before-transfer"}),
    PRESERVE_OFF: frozenset({"preserve-keeps-divergent"}),
}
"""Which properties each variant must violate (on an instance where the source has at least
one data constituent more than the destination, ``missing >= 1``); all others must hold."""


@dataclass(frozen=True)
class MirrorConfig:
    """The protocol's knobs: ``preserve`` the old primary's divergent data before rollback;
    the source may take ``snapshots`` snapshots after the baseline ``g0`` (the state bound);
    ``bugs`` to inject."""

    preserve: bool = True
    snapshots: int = 1
    bugs: frozenset[Bug] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.snapshots < 1:
            raise InvalidArgumentError(f"need snapshots >= 1, got {self.snapshots}")

    @property
    def name(self) -> str:
        """``correct``, a bug's name, ``preserve-off``, or several joined by ``+``."""
        parts = sorted(b.value for b in self.bugs)
        if not self.preserve:
            parts.append(PRESERVE_OFF)
        return "+".join(parts) or "correct"

    def to_json(self) -> dict[str, Any]:
        return {
            "preserve": self.preserve,
            "snapshots": self.snapshots,
            "bugs": sorted(b.value for b in self.bugs),
        }


def variant(name: str, snapshots: int = 1) -> MirrorConfig:
    """The configuration a report calls ``name`` (``correct``, ``preserve-off`` or a bug)."""
    if name == "correct":
        return MirrorConfig(snapshots=snapshots)
    if name == PRESERVE_OFF:
        return MirrorConfig(preserve=False, snapshots=snapshots)
    try:
        return MirrorConfig(snapshots=snapshots, bugs=frozenset({Bug(name)}))
    except ValueError:
        raise InvalidArgumentError(
            f"unknown mirror variant {name!r}; known: {sorted(EXPECTED_VIOLATIONS)}"
        ) from None


# --------------------------------------------------------------------------------------------
# Vocabulary of the model
# --------------------------------------------------------------------------------------------

SITE = EnumSort("Site", ("A", "B"))
VOL = DomainSort("Vol")
MODE = EnumSort(
    "Mode",
    (
        "mirror",
        "lost",
        "failover",
        "returned",
        "common",
        "preserved",
        "rolledback",
        "reversed",
        "synced",
    ),
)
B_READ_WRITE = (
    "failover",
    "returned",
    "common",
    "preserved",
    "rolledback",
    "reversed",
    "synced",
)  # modes after the break: B serves clients from its active file system
RESYNC_IN_FLIGHT = ("rolledback", "reversed")  # A is the destination of the reverse transfer

NONE = "none"


def gen_values(snapshots: int) -> tuple[str, ...]:
    """``none``, the baseline ``g0``, the source's ``g1..g<snapshots>``, and one generation for
    the destination's resync snapshot; in creation order (a later value is newer)."""
    return (NONE, *(f"g{i}" for i in range(snapshots + 2)))


original = Symbol("original", (VOL,), BOOL)  # rigid: B had v before the source's expansion


@dataclass(frozen=True)
class _Vocabulary:
    """The state symbols, built for one generation sort. Invariants the protocol keeps (and the
    candidate invariants below state): generations after ``last`` are untaken (no member, no
    copy); A always has every volume, B has those ``sized``; ``view`` is complete at B."""

    gen: Sort
    mode: Symbol  # the life-cycle phase above
    sized: Symbol  # Vol -> Bool: B has the volume (destination volume table, source-ID mapped)
    rel: Symbol  # Vol -> Bool: a mirroring relationship exists for the volume
    snap: Symbol  # Site, Vol, Gen -> Bool: the site holds generation g of the volume
    member: Symbol  # Gen, Vol -> Bool: v is in generation g's volume list
    base: Symbol  # Site, Vol -> Gen: the generation the active file system starts from
    dirty: Symbol  # Site, Vol -> Bool: local writes since base, in no snapshot
    last: Symbol  # Gen: the newest generation taken (by either site)
    view: Symbol  # Gen: the snapshot B's N-module redirects reads to (published)
    shown: Symbol  # Gen: the generation B presents after failover (ghost, for proofs)
    chosen: Symbol  # Gen: the expandable volume's common snapshot (none if per-volume)
    cv: Symbol  # Vol -> Gen: the common snapshot each volume is restored to
    pres: Symbol  # Vol -> Bool: A's pre-rollback image of v is kept in the preserve snapshot
    gone: Symbol  # Vol -> Bool: the rollback discarded data of v on A
    dw: Symbol  # Vol -> Bool: B's image of v holds the acknowledged destination writes
    acked: Symbol  # Vol -> Bool: a write to v was acknowledged at B after failover
    xfer: Symbol  # Vol -> Bool: v was transferred in the current direction (this session)

    def state(self) -> tuple[Symbol, ...]:
        return (
            self.mode,
            self.sized,
            self.rel,
            self.snap,
            self.member,
            self.base,
            self.dirty,
            self.last,
            self.view,
            self.shown,
            self.chosen,
            self.cv,
            self.pres,
            self.gone,
            self.dw,
            self.acked,
            self.xfer,
        )


def _vocabulary(gen: Sort) -> _Vocabulary:
    return _Vocabulary(
        gen=gen,
        mode=Symbol("mode", (), MODE),
        sized=Symbol("sized", (VOL,), BOOL),
        rel=Symbol("rel", (VOL,), BOOL),
        snap=Symbol("snap", (SITE, VOL, gen), BOOL),
        member=Symbol("member", (gen, VOL), BOOL),
        base=Symbol("base", (SITE, VOL), gen),
        dirty=Symbol("dirty", (SITE, VOL), BOOL),
        last=Symbol("last", (), gen),
        view=Symbol("view", (), gen),
        shown=Symbol("shown", (), gen),
        chosen=Symbol("chosen", (), gen),
        cv=Symbol("cv", (VOL,), gen),
        pres=Symbol("pres", (VOL,), BOOL),
        gone=Symbol("gone", (VOL,), BOOL),
        dw=Symbol("dw", (VOL,), BOOL),
        acked=Symbol("acked", (VOL,), BOOL),
        xfer=Symbol("xfer", (VOL,), BOOL),
    )


_v, _w = var("v", VOL), var("w", VOL)
_s = var("s", SITE)
A, B = lit("A", SITE), lit("B", SITE)


class _Builder:
    """Expressions over one vocabulary: generation order, completeness, consistent images."""

    def __init__(self, config: MirrorConfig) -> None:
        self.config = config
        self.values = gen_values(config.snapshots)
        self.gen = EnumSort("Gen", self.values)
        self.x = _vocabulary(self.gen)
        self.g, self.h = var("g", self.gen), var("h", self.gen)

    def bug(self, bug: Bug) -> bool:
        return bug in self.config.bugs

    def gl(self, value: str) -> Expr:
        return lit(value, self.gen)

    def mode_in(self, *values: str) -> Expr:
        return is_in(self.x.mode(), values)

    def set_mode(self, value: str) -> Update:
        return Update.const(self.x.mode, lit(value, MODE))

    def newer(self, a: Expr, b: Expr) -> Expr:
        """Generation ``a`` was (or will be) taken after ``b``."""
        vs = self.values
        return or_(
            *(
                and_(eq(a, self.gl(vs[i])), eq(b, self.gl(vs[j])))
                for i in range(len(vs))
                for j in range(i)
            )
        )

    def succ(self, a: Expr) -> Expr:
        """The generation after ``a`` (the last one maps to itself; guards prevent its use)."""
        vs = self.values
        value: Expr = self.gl(vs[-1])
        for i in range(len(vs) - 2, -1, -1):
            value = ite(eq(a, self.gl(vs[i])), self.gl(vs[i + 1]), value)
        return value

    def taken(self, g: Expr) -> Expr:
        """Generation ``g`` exists: it is not ``none`` and not after ``last``."""
        return and_(ne(g, self.gl(NONE)), not_(self.newer(g, self.x.last())))

    def has(self, site: Expr, v: Expr) -> Expr:
        """The site has volume ``v`` (A has every source volume; B those it was sized to)."""
        return or_(eq(site, A), self.x.sized(v))

    def complete_at_b(self, g: Expr) -> Expr:
        """The coordinator judges generation ``g`` complete at B: transferred on every volume
        of its volume list. Under ``skip-resize`` it compares with B's own volume table, not the
        source's volume information, so volumes B lacks are not missed."""
        x = self.x
        on = and_(x.member(g, _v), x.sized(_v)) if self.bug(Bug.SKIP_RESIZE) else x.member(g, _v)
        return and_(self.taken(g), forall((_v,), implies(on, and_(x.sized(_v), x.snap(B, _v, g)))))

    def image_ok(self, site: Expr, read: Callable[[Expr], Expr]) -> Expr:
        """Reading volume ``v`` at ``site`` returns generation ``read(v)``, and these form one
        consistent snapshot: some generation's image on each of its member volumes (held by the
        site), and nothing on the others."""
        x, g = self.x, self.g
        return exists(
            (g,),
            and_(
                ne(g, self.gl(NONE)),
                forall(
                    (_v,),
                    ite(
                        x.member(g, _v),
                        and_(self.has(site, _v), x.snap(site, _v, g), eq(read(_v), g)),
                        eq(read(_v), self.gl(NONE)),
                    ),
                ),
            ),
        )

    def image_of(self, g: Expr, v: Expr) -> Expr:
        """Generation ``g``'s image of ``v``: ``g`` for a member, the empty image otherwise."""
        return ite(self.x.member(g, v), g, self.gl(NONE))


# --------------------------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------------------------


def _mirror_actions(b: _Builder) -> list[Action]:
    """Mirroring: snapshots and writes at the primary, the coordinator's update blocks."""
    x, g = b.x, b.g
    mirror = b.mode_in("mirror")
    new = b.succ(x.last())
    source_last = b.gl(b.values[-2])  # the source's last allowed generation
    at_a = eq(_s, A)
    snapshot = Action(
        "snapshot",
        (),
        and_(mirror, ne(x.last(), source_last)),
        (
            Update.const(x.last, new),
            Update(x.snap, (_s, _v, g), or_(x.snap(_s, _v, g), and_(at_a, eq(g, new)))),
            Update(x.member, (g, _v), or_(x.member(g, _v), eq(g, new))),
            Update(x.base, (_s, _v), ite(at_a, new, x.base(_s, _v))),
            Update(x.dirty, (_s, _v), and_(not_(at_a), x.dirty(_s, _v))),
        ),
        Label.SNAPSHOT.value,
        (("site", A), ("snapshot", new)),
    )
    write = Action(
        "source-write",
        (_v,),
        and_(mirror, not_(x.dirty(A, _v))),
        (Update.point(x.dirty, (A, _v), TRUE),),
        Label.SOURCE_WRITE.value,
        (("volume", _v),),
    )
    relate = Action(
        "create-relationship",
        (_v,),
        and_(mirror, x.sized(_v), not_(x.rel(_v))),
        (Update.point(x.rel, (_v,), TRUE),),
        Label.CREATE_RELATIONSHIP.value,
        (("volume", _v),),
    )
    related = TRUE if b.bug(Bug.NO_CONFIRM) else x.rel(_v)
    transfer = Action(
        "transfer",
        (_v,),
        and_(mirror, x.member(x.last(), _v), x.sized(_v), not_(x.snap(B, _v, x.last())), related),
        (
            Update.point(x.snap, (B, _v, x.last()), TRUE),
            Update.point(x.base, (B, _v), x.last()),
            Update.point(x.xfer, (_v,), TRUE),
        ),
        Label.TRANSFER.value,
        (("volume", _v), ("snapshot", x.last()), ("source", A)),
    )
    publish = Action(
        "publish",
        (g,),
        and_(b.mode_in("mirror", "lost"), b.complete_at_b(g), b.newer(g, x.view())),
        (Update.const(x.view, g),),
        Label.PUBLISH.value,
        (("snapshot", g),),
    )
    disaster = Action("disaster", (), mirror, (b.set_mode("lost"),), Label.DISASTER.value, ())
    actions = [snapshot, write, relate, transfer, publish, disaster]
    if not b.bug(Bug.SKIP_RESIZE):
        actions.insert(
            2,
            Action(
                "resize",
                (),
                and_(mirror, exists((_v,), not_(x.sized(_v)))),
                (Update.const(x.sized, TRUE),),
                Label.RESIZE.value,
                (("site", B),),
            ),
        )
    return actions


def _failover_actions(b: _Builder) -> list[Action]:
    """Break: B presents the newest snapshot complete on every volume and takes writes."""
    x, g, h = b.x, b.g, b.h
    newest = forall((h,), implies(b.newer(h, g), not_(b.complete_at_b(h))))
    failover = Action(
        "failover",
        (g,),
        and_(b.mode_in("lost"), b.complete_at_b(g), newest),
        (
            b.set_mode("failover"),
            Update.const(x.shown, g),
            Update(
                x.base,
                (_s, _v),
                ite(and_(eq(_s, B), x.sized(_v)), b.image_of(g, _v), x.base(_s, _v)),
            ),
        ),
        Label.FAILOVER.value,
        (("snapshot", g),),
    )
    write = Action(
        "destination-write",
        (_v,),
        and_(b.mode_in("failover"), x.sized(_v), not_(x.acked(_v))),
        (
            Update.point(x.dirty, (B, _v), TRUE),
            Update.point(x.dw, (_v,), TRUE),
            Update.point(x.acked, (_v,), TRUE),
        ),
        Label.DESTINATION_WRITE.value,
        (("volume", _v),),
    )
    back = Action(
        "primary-return",
        (),
        b.mode_in("failover"),
        (b.set_mode("returned"),),
        Label.PRIMARY_RETURN.value,
        (),
    )
    return [failover, write, back]


def _resync_actions(b: _Builder) -> list[Action]:
    """Resync after the primary's return, block by block."""
    x, g, h = b.x, b.g, b.h
    cfg = b.config

    def common(c: Expr) -> Expr:
        return and_(
            b.taken(c),
            forall((_v,), implies(x.member(c, _v), and_(x.snap(A, _v, c), x.snap(B, _v, c)))),
        )

    per_volume = b.bug(Bug.PER_VOLUME_COMMON)
    if per_volume:
        # each volume its own newest snapshot held at both sites
        own: Expr = b.gl(NONE)
        for value in b.values[1:]:
            gv = b.gl(value)
            own = ite(and_(x.snap(A, _v, gv), x.snap(B, _v, gv)), gv, own)
        choose = Action(
            "common-snapshot",
            (),
            b.mode_in("returned"),
            (
                b.set_mode("common"),
                Update.const(x.chosen, b.gl(NONE)),
                Update(x.cv, (_v,), own),
            ),
            Label.COMMON_SNAPSHOT.value,
            (("per-volume", TRUE),),
        )
    else:
        newest = forall((h,), implies(b.newer(h, g), not_(common(h))))
        choose = Action(
            "common-snapshot",
            (g,),
            and_(b.mode_in("returned"), common(g), newest),
            (
                b.set_mode("common"),
                Update.const(x.chosen, g),
                Update(x.cv, (_v,), b.image_of(g, _v)),
            ),
            Label.COMMON_SNAPSHOT.value,
            (("snapshot", g),),
        )
    actions = [choose]
    after = "common"
    if cfg.preserve:
        actions.append(
            Action(
                "preserve",
                (),
                b.mode_in("common"),
                (
                    b.set_mode("preserved"),
                    Update.const(x.pres, TRUE),
                ),
                Label.PRESERVE.value,
                (),
            )
        )
        after = "preserved"
    if not b.bug(Bug.SKIP_ROLLBACK):
        diverged = or_(ne(x.base(A, _v), x.cv(_v)), x.dirty(A, _v))
        actions.append(
            Action(
                "rollback",
                (),
                b.mode_in(after),
                (
                    b.set_mode("rolledback"),
                    Update(x.gone, (_v,), or_(x.gone(_v), diverged)),
                    Update(x.base, (_s, _v), ite(eq(_s, A), x.cv(_v), x.base(_s, _v))),
                    Update(x.dirty, (_s, _v), and_(ne(_s, A), x.dirty(_s, _v))),
                    Update(
                        x.snap,
                        (_s, _v, g),
                        and_(x.snap(_s, _v, g), or_(ne(_s, A), not_(b.newer(g, x.cv(_v))))),
                    ),
                ),
                Label.ROLLBACK.value,
                (("per-volume", TRUE),) if per_volume else (("snapshot", x.chosen()),),
            )
        )
        after = "rolledback"
    # the transfer snapshot at B (the new source); relationships reversed and confirmed
    new = b.succ(x.last())
    reversing = not b.bug(Bug.NO_REVERSE)
    reverse_updates = [
        b.set_mode("reversed"),
        Update.const(x.last, new),
        Update.const(x.shown, new),
        Update(
            x.snap, (_s, _v, g), or_(x.snap(_s, _v, g), and_(eq(_s, B), eq(g, new), x.sized(_v)))
        ),
        Update(x.member, (g, _v), or_(x.member(g, _v), and_(eq(g, new), x.sized(_v)))),
        Update(x.base, (_s, _v), ite(and_(eq(_s, B), x.sized(_v)), new, x.base(_s, _v))),
        Update(x.dirty, (_s, _v), and_(ne(_s, B), x.dirty(_s, _v))),
        Update.const(x.xfer, lit(False)),
    ]
    if not b.bug(Bug.NO_CONFIRM):
        reverse_updates.append(Update.const(x.rel, TRUE))
    actions.append(
        Action(
            "reverse",
            (),
            b.mode_in(after),
            tuple(reverse_updates),
            Label.REVERSE.value if reversing else Label.SNAPSHOT.value,
            (("snapshot", new),) if reversing else (("site", B), ("snapshot", new)),
        )
    )
    related = TRUE if b.bug(Bug.NO_CONFIRM) else x.rel(_v)
    pending = and_(b.mode_in("reversed"), not_(x.xfer(_v)), related)
    if reversing:
        # B -> A, incremental from the common snapshot: blocks A changed after it stay
        image = b.image_of(x.last(), _v)
        stale = and_(x.member(x.last(), _v), or_(ne(x.base(A, _v), x.cv(_v)), x.dirty(A, _v)))
        actions.append(
            Action(
                "transfer-back",
                (_v,),
                pending,
                (
                    Update.point(x.snap, (A, _v, x.last()), x.member(x.last(), _v)),
                    Update.point(x.base, (A, _v), image),
                    Update.point(x.dirty, (A, _v), stale),
                    Update.point(x.xfer, (_v,), TRUE),
                ),
                Label.TRANSFER.value,
                (("volume", _v), ("snapshot", x.last()), ("source", B)),
            )
        )
    else:
        # still A -> B: the old primary's image overwrites B's volume
        actions.append(
            Action(
                "transfer-back",
                (_v,),
                pending,
                (
                    Update.point(x.base, (B, _v), x.base(A, _v)),
                    Update.point(x.dirty, (B, _v), x.dirty(A, _v)),
                    Update.point(x.dw, (_v,), lit(False)),
                    Update.point(x.xfer, (_v,), TRUE),
                ),
                Label.TRANSFER.value,
                (("volume", _v), ("snapshot", x.base(A, _v)), ("source", A)),
            )
        )
    actions.append(
        Action(
            "notify",
            (),
            and_(b.mode_in("reversed"), forall((_v,), x.xfer(_v))),
            (b.set_mode("synced"),),
            Label.NOTIFY.value,
            (),
        )
    )
    return actions


# --------------------------------------------------------------------------------------------
# Properties and candidate invariants
# --------------------------------------------------------------------------------------------


def _properties(b: _Builder) -> tuple[Property, ...]:
    x = b.x
    redirect = not b.bug(Bug.NO_REDIRECT)

    def read_b(v: Expr) -> Expr:
        return b.image_of(x.view(), v) if redirect else x.base(B, v)

    def read_a(v: Expr) -> Expr:
        return x.cv(v) if redirect else x.base(A, v)

    identical = and_(eq(x.base(A, _v), x.base(B, _v)), not_(x.dirty(A, _v)), not_(x.dirty(B, _v)))
    return (
        Property(
            "failover-consistent",
            implies(b.mode_in(*B_READ_WRITE), b.image_ok(B, lambda v: x.base(B, v))),
        ),
        Property(
            "resync-identical",
            forall((_v,), implies(and_(b.mode_in("reversed", "synced"), x.xfer(_v)), identical)),
        ),
        Property("no-lost-destination-write", forall((_v,), implies(x.acked(_v), x.dw(_v)))),
        Property("relationship-before-transfer", forall((_v,), implies(x.xfer(_v), x.rel(_v)))),
        Property("preserve-keeps-divergent", forall((_v,), implies(x.gone(_v), x.pres(_v)))),
        Property(
            "redirect-consistent",
            and_(
                implies(b.mode_in("mirror", "lost"), b.image_ok(B, read_b)),
                implies(b.mode_in(*RESYNC_IN_FLIGHT), b.image_ok(A, read_a)),
            ),
        ),
    )


def candidate_invariants(b: _Builder) -> tuple[Invariant, ...]:
    """Candidate conjuncts of an inductive invariant (Houdini keeps the inductive subset). Each
    states one reason a property holds; which survive depends on the configuration."""
    x, g = b.x, b.g
    none = b.gl(NONE)
    props = tuple(Invariant(p.name, p.formula) for p in _properties(b))
    after_common = ("common", "preserved", "rolledback", "reversed", "synced")
    after_preserve = ("preserved", "rolledback", "reversed", "synced")
    return (
        *props,
        # generations
        Invariant("last-taken", ne(x.last(), none)),
        Invariant(
            "resync-generation-unused",
            implies(not_(b.mode_in("reversed", "synced")), ne(x.last(), b.gl(b.values[-1]))),
        ),
        Invariant(
            "untaken-empty",
            forall(
                (g, _v),
                implies(
                    b.newer(g, x.last()),
                    and_(not_(x.member(g, _v)), not_(x.snap(A, _v, g)), not_(x.snap(B, _v, g))),
                ),
            ),
        ),
        Invariant(
            "none-never-held",
            forall((_s, _v), and_(not_(x.snap(_s, _v, none)), not_(x.member(none, _v)))),
        ),
        Invariant(
            "copies-are-members", forall((_s, _v, g), implies(x.snap(_s, _v, g), x.member(g, _v)))
        ),
        Invariant("b-copies-sized", forall((_v, g), implies(x.snap(B, _v, g), x.sized(_v)))),
        Invariant("originals-sized", forall((_v,), implies(original(_v), x.sized(_v)))),
        Invariant(
            "unsized-empty-at-b",
            forall(
                (_v,),
                implies(not_(x.sized(_v)), and_(eq(x.base(B, _v), none), not_(x.dirty(B, _v)))),
            ),
        ),
        Invariant("g0-members", forall((_v,), eq(x.member(b.gl("g0"), _v), original(_v)))),
        # the mirror phase
        Invariant("view-complete", implies(b.mode_in("mirror", "lost"), b.complete_at_b(x.view()))),
        Invariant("view-taken", b.taken(x.view())),
        Invariant(
            "a-at-last",
            implies(
                b.mode_in("mirror", "lost", "failover", "returned"),
                forall((_v,), eq(x.base(A, _v), b.image_of(x.last(), _v))),
            ),
        ),
        Invariant(
            "a-holds-all",
            implies(
                b.mode_in("mirror", "lost", "failover", "returned"),
                forall((_v, g), implies(and_(x.member(g, _v), b.taken(g)), x.snap(A, _v, g))),
            ),
        ),
        Invariant(
            "b-mirror-clean",
            implies(
                b.mode_in("mirror", "lost"),
                forall((_v,), and_(not_(x.dirty(B, _v)), not_(x.acked(_v)), not_(x.dw(_v)))),
            ),
        ),
        Invariant(
            "b-base-held",
            implies(
                b.mode_in("mirror", "lost"),
                forall(
                    (_v,),
                    or_(
                        and_(eq(x.base(B, _v), none), not_(original(_v))),
                        x.snap(B, _v, x.base(B, _v)),
                    ),
                ),
            ),
        ),
        Invariant(
            "relations-sized",
            implies(
                not_(b.mode_in("reversed", "synced")),
                forall((_v,), implies(x.rel(_v), x.sized(_v))),
            ),
        ),
        Invariant(
            "no-gone-early",
            implies(
                not_(b.mode_in("rolledback", "reversed", "synced")), forall((_v,), not_(x.gone(_v)))
            ),
        ),
        # B after the break
        Invariant(
            "shown-image",
            implies(
                b.mode_in(*B_READ_WRITE),
                and_(
                    b.taken(x.shown()),
                    forall(
                        (_v,),
                        ite(
                            x.member(x.shown(), _v),
                            and_(
                                x.sized(_v), x.snap(B, _v, x.shown()), eq(x.base(B, _v), x.shown())
                            ),
                            eq(x.base(B, _v), none),
                        ),
                    ),
                ),
            ),
        ),
        Invariant("dw-acked", forall((_v,), eq(x.dw(_v), x.acked(_v)))),
        Invariant(
            "writes-only-failover",
            implies(b.mode_in("reversed", "synced"), forall((_v,), not_(x.dirty(B, _v)))),
        ),
        # the resync
        Invariant(
            "chosen-common",
            implies(
                b.mode_in(*after_common),
                and_(
                    b.taken(x.chosen()),
                    forall(
                        (_v,),
                        and_(
                            eq(x.cv(_v), b.image_of(x.chosen(), _v)),
                            implies(x.member(x.chosen(), _v), x.snap(A, _v, x.chosen())),
                        ),
                    ),
                ),
            ),
        ),
        Invariant("preserved-all", implies(b.mode_in(*after_preserve), forall((_v,), x.pres(_v)))),
        Invariant(
            "rolled-back",
            implies(
                b.mode_in("rolledback"),
                forall((_v,), and_(eq(x.base(A, _v), x.cv(_v)), not_(x.dirty(A, _v)))),
            ),
        ),
        Invariant(
            "untransferred-rolled-back",
            implies(
                b.mode_in("reversed"),
                forall(
                    (_v,), or_(x.xfer(_v), and_(eq(x.base(A, _v), x.cv(_v)), not_(x.dirty(A, _v))))
                ),
            ),
        ),
        Invariant(
            "b-at-transfer-snapshot",
            implies(
                b.mode_in("reversed", "synced"),
                forall((_v,), eq(x.base(B, _v), b.image_of(x.last(), _v))),
            ),
        ),
        Invariant(
            "transfer-snapshot-members",
            implies(
                b.mode_in("reversed", "synced"),
                forall((_v,), eq(x.member(x.last(), _v), x.sized(_v))),
            ),
        ),
        Invariant(
            "all-related-after-reverse",
            implies(b.mode_in("reversed", "synced"), forall((_v,), x.rel(_v))),
        ),
        Invariant(
            "synced-all-transferred", implies(b.mode_in("synced"), forall((_v,), x.xfer(_v)))
        ),
    )


# --------------------------------------------------------------------------------------------
# Systems and instances
# --------------------------------------------------------------------------------------------


def mirror_system(config: MirrorConfig = MirrorConfig()) -> System:
    """The mirror model under ``config``."""
    b = _Builder(config)
    x, g = b.x, b.g
    none, g0 = b.gl(NONE), b.gl("g0")
    first = and_(eq(g, g0), original(_v))
    init = (
        b.set_mode("mirror"),
        Update(x.sized, (_v,), original(_v)),
        Update(x.rel, (_v,), original(_v)),
        Update(x.snap, (_s, _v, g), first),
        Update(x.member, (g, _v), first),
        Update(x.base, (_s, _v), ite(original(_v), g0, none)),
        Update.const(x.dirty, lit(False)),
        Update.const(x.last, g0),
        Update.const(x.view, g0),
        Update.const(x.shown, g0),
        Update.const(x.chosen, none),
        Update.const(x.cv, none),
        Update.const(x.pres, lit(False)),
        Update.const(x.gone, lit(False)),
        Update.const(x.dw, lit(False)),
        Update.const(x.acked, lit(False)),
        Update(x.xfer, (_v,), original(_v)),
    )
    return System(
        name=f"mirror({config.name})",
        sorts=(SITE, VOL, MODE, b.gen),
        rigid=(original,),
        state=x.state(),
        init=init,
        actions=(*_mirror_actions(b), *_failover_actions(b), *_resync_actions(b)),
        properties=_properties(b),
        invariants=candidate_invariants(b),
    )


@dataclass(frozen=True)
class MirrorInstance:
    """A finite instance: ``n`` data constituents at the source, of which the last ``missing``
    were added after the destination was built (B lacks them until a resize)."""

    n: int = 1
    missing: int = 1

    def __post_init__(self) -> None:
        if self.n < 1 or not 0 <= self.missing <= self.n:
            raise InvalidArgumentError(
                f"need n >= 1 and 0 <= missing <= n, got n={self.n}, missing={self.missing}"
            )

    @property
    def volumes(self) -> tuple[str, ...]:
        return volume_names(self.n)

    def instance(self) -> Instance:
        volumes = self.volumes
        added = set(volumes[len(volumes) - self.missing :])
        return Instance({"Vol": volumes}, {"original": {(v,): v not in added for v in volumes}})

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "missing": self.missing}


def config_json(config: MirrorConfig, inst: MirrorInstance) -> dict[str, Any]:
    """The ``config`` record of reports and traces."""
    return {"variant": config.name, **inst.to_json(), **config.to_json()}


def variants() -> Sequence[str]:
    """Every configuration name the suite runs: ``correct``, each bug, ``preserve-off``."""
    return ("correct", *(b.value for b in Bug), PRESERVE_OFF)
