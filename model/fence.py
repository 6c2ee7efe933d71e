"""The fence model: consistent snapshots of an expandable volume under concurrent clients.

What it models (seed: consistency group, logical fence, deferred I/O requests). An expandable
volume has a namespace volume ``NS`` (directory entries and redirector files), the object
location store ``OLS`` and data constituents ``DC1..DCn``. Clients run operations (create,
write, delete, migrate, read-named, read-raw) as step sequences, one member volume per step,
in the order :func:`xvol.vocabulary.operation_steps` gives for the configured step discipline.
A snapshot job fences the volumes stage by stage in the configured :data:`FenceOrder` (the
volumes of one stage in any interleaving), captures each volume (a per-volume snapshot: which
names, locations and data that volume holds then), and unfences them in reverse stage order:

* ``HELD`` (the seed's consistency group): every fence is held until every volume is captured;
  the snapshot is committed; then the volumes are unfenced;
* ``ROLLING``: each volume is captured and unfenced right after its own fence.

A client step that reaches a fenced volume is deferred (the fence queues it) and resumes after
that volume is unfenced. The snapshot may fail at any point before commit; the volumes fenced
so far are then unfenced, in reverse order; finally the consistency group is deleted.

Properties (names as the reports use them):

* ``integrity``: snapshot referential integrity. For every object named in the captured
  namespace, the captured OLS lists it, and the captured data constituent it points to holds
  its data (checked as soon as the volumes involved are captured).
* ``named-availability``: no request admitted by the namespace (its first step is a namespace
  step) while a volume further along its path is fenced is then deferred mid-operation: the
  seed's "the request will not be serviced properly because the data constituent volume is
  still fenced".
* ``raw-availability``: the same for raw access by object ID, admitted by the OLS slow path.
* ``no-lost-request``: no deferred request runs twice, and when the job ends (group deleted) no
  deferred request still waits on a fenced volume.
* ``unfence-on-failure``: when the job ends, no volume is fenced, even if the snapshot failed.

Knobs: the fence order (any stages over the volume names; the instance's ``stage`` table), the
fence mode, the step discipline, and two protocol bugs (``Bug``) that show the last two
properties are not vacuous. Modelling choices: one operation per object at a time (a client
locks the object), operations run on client slots that are reused, initially some objects
exist. Uses only the model core (:mod:`xvol.model.logic`) and :mod:`xvol.vocabulary`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from xvol.errors import InvalidArgumentError
from xvol.model.logic import (
    BOOL,
    INT,
    Action,
    DomainSort,
    EnumSort,
    Expr,
    Instance,
    Invariant,
    Property,
    Symbol,
    System,
    Update,
    and_,
    eq,
    forall,
    implies,
    ite,
    le,
    lit,
    lt,
    ne,
    not_,
    or_,
    var,
)
from xvol.vocabulary import (
    STEP_ROLE,
    FenceMode,
    FenceOrder,
    OperationKind,
    StepDiscipline,
    StepKind,
    VolumeRole,
    check_fence_order,
    format_fence_order,
    operation_steps,
    volume_names,
)
from xvol.vocabulary import (
    Action as Label,
)

PROPERTIES = (
    "integrity",
    "named-availability",
    "raw-availability",
    "no-lost-request",
    "unfence-on-failure",
)


class Bug(StrEnum):
    """Deliberate protocol bugs, to show that properties can fail."""

    NO_UNFENCE_ON_FAILURE = "no-unfence-on-failure"  # a failed job deletes the group, fences kept
    RETRY_DEFERRED = "retry-deferred"  # a client retries a deferred step; the queue runs it too


@dataclass(frozen=True)
class FenceConfig:
    """The knobs of the protocol that change its actions (the fence order lives in the
    instance, as each volume's stage)."""

    mode: FenceMode = FenceMode.HELD
    discipline: StepDiscipline = StepDiscipline.WRITE_AHEAD
    bugs: frozenset[Bug] = field(default_factory=frozenset)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "discipline": self.discipline.value,
            "bugs": sorted(b.value for b in self.bugs),
        }


# --------------------------------------------------------------------------------------------
# Vocabulary of the model
# --------------------------------------------------------------------------------------------

VOL = DomainSort("Vol")
OBJ = DomainSort("Obj")
OP = DomainSort("Client")
KIND = EnumSort("Kind", tuple(k.value for k in OperationKind))
STATUS = EnumSort("Status", ("idle", "fenced", "released"))
PHASE = EnumSort("Phase", ("running", "committed", "failed"))
STEP = EnumSort("StepKind", tuple(s.value for s in StepKind))
REASON = EnumSort("Reason", ("injected",))

# rigid: fixed by the instance
ns = Symbol("ns", (), VOL)
ols = Symbol("ols", (), VOL)
stage = Symbol("stage", (VOL,), INT)  # position of the volume's stage in the fence order
home = Symbol("home", (OBJ,), VOL)  # where an initially present object lives
present = Symbol("present", (OBJ,), BOOL)  # whether the object exists initially
obj0 = Symbol("obj0", (), OBJ)  # the value idle client registers hold

# the snapshot job
status = Symbol("status", (VOL,), STATUS)
taken = Symbol("taken", (VOL,), BOOL)  # captured (per-volume snapshot taken)
phase = Symbol("phase", (), PHASE)
ended = Symbol("ended", (), BOOL)  # consistency group deleted
# the live volumes
named = Symbol("named", (OBJ,), BOOL)  # NS: directory entry + redirector
listed = Symbol("listed", (OBJ,), BOOL)  # OLS: object ID recorded
loc = Symbol("loc", (OBJ,), VOL)  # OLS: location of the object
data = Symbol("data", (OBJ, VOL), BOOL)  # DC: the object's bytes on that volume
# the captured snapshot
snap_named = Symbol("snap_named", (OBJ,), BOOL)
snap_listed = Symbol("snap_listed", (OBJ,), BOOL)
snap_loc = Symbol("snap_loc", (OBJ,), VOL)
snap_data = Symbol("snap_data", (OBJ, VOL), BOOL)
# clients: one operation per slot at a time
busy = Symbol("busy", (OBJ,), BOOL)
active = Symbol("active", (OP,), BOOL)
kind = Symbol("kind", (OP,), KIND)
obj = Symbol("obj", (OP,), OBJ)
src = Symbol("src", (OP,), VOL)
dst = Symbol("dst", (OP,), VOL)
pc = Symbol("pc", (OP,), INT)  # index of the next step
deferred = Symbol("deferred", (OP,), BOOL)  # queued by a fence
dpc = Symbol("dpc", (OP,), INT)  # the queued step's index
dvol = Symbol("dvol", (OP,), VOL)  # the fenced volume it waits on
blocked = Symbol("blocked", (OP,), BOOL)  # admitted while a volume on its path was fenced
dup = Symbol("dup", (), BOOL)  # some step ran twice

RIGID = (ns, ols, stage, home, present, obj0)
STATE = (
    status,
    taken,
    phase,
    ended,
    named,
    listed,
    loc,
    data,
    snap_named,
    snap_listed,
    snap_loc,
    snap_data,
    busy,
    active,
    kind,
    obj,
    src,
    dst,
    pc,
    deferred,
    dpc,
    dvol,
    blocked,
    dup,
)

_c, _c2 = var("c", OP), var("c2", OP)
_o = var("o", OBJ)
_v, _w = var("v", VOL), var("w", VOL)
_d = var("d", VOL)


def _k(k: OperationKind) -> Expr:
    return lit(k.value, KIND)


def _st(value: str) -> Expr:
    return lit(value, STATUS)


def _ph(value: str) -> Expr:
    return lit(value, PHASE)


def fenced(v: Expr) -> Expr:
    """Volume ``v`` is fenced now."""
    return eq(status(v), _st("fenced"))


def is_dc(v: Expr) -> Expr:
    """``v`` is a data constituent."""
    return and_(ne(v, ns()), ne(v, ols()))


# --------------------------------------------------------------------------------------------
# Client operations
# --------------------------------------------------------------------------------------------


def step_volume(k: OperationKind, s: StepKind, c: Expr) -> Expr:
    """The member volume step ``s`` of client ``c``'s operation (of kind ``k``) touches."""
    role = STEP_ROLE[s]
    if role is VolumeRole.NAMESPACE:
        return ns()
    if role is VolumeRole.OLS:
        return ols()
    if s is StepKind.DATA_COPY or (s is StepKind.DATA_WRITE and k is OperationKind.CREATE):
        return dst(c)
    return src(c)


def _effect(k: OperationKind, s: StepKind, c: Expr) -> list[Update]:
    """What step ``s`` of client ``c``'s operation (kind ``k``) changes on its volume."""
    o = obj(c)
    vol = step_volume(k, s, c)
    if s in (StepKind.DATA_WRITE, StepKind.DATA_COPY):
        return [Update.point(data, (o, vol), lit(True))]
    if s is StepKind.DATA_REMOVE:
        return [Update.point(data, (o, vol), lit(False))]
    if s is StepKind.OLS_INSERT:
        return [Update.point(listed, (o,), lit(True)), Update.point(loc, (o,), dst(c))]
    if s is StepKind.OLS_UPDATE:
        return [Update.point(loc, (o,), dst(c))]
    if s is StepKind.OLS_REMOVE:
        return [Update.point(listed, (o,), lit(False))]
    if s is StepKind.NAMESPACE_LINK:
        return [Update.point(named, (o,), lit(True))]
    if s is StepKind.NAMESPACE_UNLINK:
        return [Update.point(named, (o,), lit(False))]
    return []  # lookups and reads change nothing


def _advance(k: OperationKind, i: int, steps: Sequence[StepKind], c: Expr) -> list[Update]:
    """After step ``i``: the next index, or on the last step the slot is freed (registers
    reset so that idle slots are equal states)."""
    if i + 1 < len(steps):
        return [Update.point(pc, (c,), lit(i + 1))]
    return [
        Update.point(pc, (c,), lit(0)),
        Update.point(active, (c,), lit(False)),
        Update.point(busy, (obj(c),), lit(False)),
        Update.point(kind, (c,), _k(OperationKind.READ_NAMED)),
        Update.point(obj, (c,), obj0()),
        Update.point(src, (c,), ns()),
        Update.point(dst, (c,), ns()),
        Update.point(blocked, (c,), lit(False)),
    ]


def _admission(k: OperationKind, steps: Sequence[StepKind], c: Expr) -> list[Update]:
    """On the first step: remember whether a volume further along the path is fenced."""
    later = [fenced(step_volume(k, s, c)) for s in steps[1:]]
    return [Update.point(blocked, (c,), or_(*later) if later else lit(False))]


def _when(condition: Expr, updates: list[Update]) -> list[Update]:
    """The updates, applied only where ``condition`` (over the pre-state) holds."""
    return [Update(u.symbol, u.vars, ite(condition, u.value, u.symbol(*u.vars))) for u in updates]


def _step_show(k: OperationKind, s: StepKind, c: Expr) -> tuple[tuple[str, Expr], ...]:
    return (("op", c), ("step", lit(s.value, STEP)), ("volume", step_volume(k, s, c)))


def _client_actions(config: FenceConfig) -> list[Action]:
    actions: list[Action] = []
    for k in OperationKind:
        steps = operation_steps(k, config.discipline)
        actions.append(_begin(k))
        for i, s in enumerate(steps):
            vol = step_volume(k, s, _c)
            at = and_(active(_c), eq(kind(_c), _k(k)), eq(pc(_c), lit(i)))
            run = _effect(k, s, _c) + _advance(k, i, steps, _c)
            if i == 0:
                run += _admission(k, steps, _c)
            name = f"{k.value}.{i}"
            show = _step_show(k, s, _c)
            actions.append(
                Action(
                    f"step:{name}",
                    (_c,),
                    and_(at, not_(deferred(_c)), not_(fenced(vol))),
                    tuple(run),
                    Label.STEP.value,
                    show,
                )
            )
            actions.append(
                Action(
                    f"defer:{name}",
                    (_c,),
                    and_(at, not_(deferred(_c)), fenced(vol)),
                    (
                        Update.point(deferred, (_c,), lit(True)),
                        Update.point(dpc, (_c,), lit(i)),
                        Update.point(dvol, (_c,), vol),
                    ),
                    Label.DEFER.value,
                    show,
                )
            )
            actions.append(
                Action(
                    f"resume:{name}",
                    (_c,),
                    and_(at, deferred(_c), eq(dpc(_c), lit(i)), not_(fenced(dvol(_c)))),
                    (
                        *run,
                        Update.point(deferred, (_c,), lit(False)),
                        Update.point(dpc, (_c,), lit(0)),
                        Update.point(dvol, (_c,), ns()),
                    ),
                    Label.RESUME.value,
                    show,
                )
            )
            if Bug.RETRY_DEFERRED in config.bugs:
                # the client gives up waiting and sends the step again; the queue keeps it
                actions.append(
                    Action(
                        f"retry:{name}",
                        (_c,),
                        and_(at, deferred(_c), eq(dpc(_c), lit(i)), not_(fenced(vol))),
                        tuple(run),
                        Label.STEP.value,
                        show,
                    )
                )
    # a queued step whose operation already moved past it: running it again is a duplicate
    stale = or_(not_(active(_c)), ne(pc(_c), dpc(_c)))
    actions.append(
        Action(
            "resume:stale",
            (_c,),
            and_(deferred(_c), not_(fenced(dvol(_c))), stale),
            (
                Update.point(deferred, (_c,), lit(False)),
                Update.point(dpc, (_c,), lit(0)),
                Update.point(dvol, (_c,), ns()),
                Update.const(dup, lit(True)),
            ),
            Label.RESUME.value,
            (("op", _c), ("volume", dvol(_c))),
        )
    )
    return actions


def _begin(k: OperationKind) -> Action:
    """A client slot starts an operation of kind ``k`` on an object."""
    free = and_(not_(active(_c)), not_(deferred(_c)), not_(busy(_o)))
    placed = k in (OperationKind.CREATE, OperationKind.MIGRATE)
    if k is OperationKind.CREATE:
        pre = and_(not_(named(_o)), not_(listed(_o)), is_dc(_d))
    elif k is OperationKind.MIGRATE:
        pre = and_(listed(_o), is_dc(_d), ne(_d, loc(_o)))
    elif k is OperationKind.READ_RAW:
        pre = listed(_o)
    else:
        pre = named(_o)
    source = _d if k is OperationKind.CREATE else loc(_o)
    target = _d if placed else loc(_o)
    updates = (
        Update.point(active, (_c,), lit(True)),
        Update.point(kind, (_c,), _k(k)),
        Update.point(obj, (_c,), _o),
        Update.point(src, (_c,), source),
        Update.point(dst, (_c,), target),
        Update.point(pc, (_c,), lit(0)),
        Update.point(blocked, (_c,), lit(False)),
        Update.point(busy, (_o,), lit(True)),
    )
    params = (_c, _o, _d) if placed else (_c, _o)
    show: tuple[tuple[str, Expr], ...] = (("op", _c), ("kind", _k(k)), ("object", _o))
    if placed:
        show += (("location", _d),)
    return Action(f"begin:{k.value}", params, and_(free, pre), updates, Label.BEGIN.value, show)


# --------------------------------------------------------------------------------------------
# The snapshot job
# --------------------------------------------------------------------------------------------


def _snapshot_actions(config: FenceConfig) -> list[Action]:
    held = config.mode is FenceMode.HELD
    running = eq(phase(), _ph("running"))
    earlier_done = forall(
        (_w,),
        implies(
            lt(stage(_w), stage(_v)),
            ne(status(_w), _st("idle")) if held else eq(status(_w), _st("released")),
        ),
    )
    later_unfenced = forall((_w,), implies(lt(stage(_v), stage(_w)), not_(fenced(_w))))
    all_fenced = forall((_w,), ne(status(_w), _st("idle")))
    show_v = (("volume", _v),)
    fence = Action(
        "fence",
        (_v,),
        and_(running, eq(status(_v), _st("idle")), earlier_done),
        (Update.point(status, (_v,), _st("fenced")),),
        Label.FENCE.value,
        show_v,
    )
    capture_guard = and_(running, fenced(_v), not_(taken(_v)))
    if held:
        # the seed takes the per-volume snapshots "at the same time", once all are fenced:
        # their contents are frozen, so the model captures them in stage order
        earlier_taken = forall((_w,), implies(lt(stage(_w), stage(_v)), taken(_w)))
        capture_guard = and_(capture_guard, all_fenced, earlier_taken)
    capture = Action(
        "capture",
        (_v,),
        capture_guard,
        (
            Update.point(taken, (_v,), lit(True)),
            Update(snap_named, (_o,), ite(eq(_v, ns()), named(_o), snap_named(_o))),
            Update(snap_listed, (_o,), ite(eq(_v, ols()), listed(_o), snap_listed(_o))),
            Update(snap_loc, (_o,), ite(eq(_v, ols()), loc(_o), snap_loc(_o))),
            Update(snap_data, (_o, _w), ite(eq(_w, _v), data(_o, _w), snap_data(_o, _w))),
        ),
        Label.CAPTURE.value,
        show_v,
    )
    after_failure = eq(phase(), _ph("failed"))
    if Bug.NO_UNFENCE_ON_FAILURE in config.bugs:
        after_failure = lit(False)
    if held:
        may_unfence = or_(eq(phase(), _ph("committed")), after_failure)
        unfence_guard = and_(may_unfence, later_unfenced)
    else:
        unfence_guard = or_(and_(running, taken(_v)), and_(after_failure, later_unfenced))
    unfence = Action(
        "unfence",
        (_v,),
        and_(not_(ended()), fenced(_v), unfence_guard),
        (Update.point(status, (_v,), _st("released")),),
        Label.UNFENCE.value,
        show_v,
    )
    done = (
        forall((_w,), taken(_w))
        if held
        else forall((_w,), and_(taken(_w), eq(status(_w), _st("released"))))
    )
    commit = Action(
        "commit",
        (),
        and_(running, done),
        (Update.const(phase, _ph("committed")),),
        Label.COMMIT.value,
        (),
    )
    fail = Action(
        "fail",
        (),
        running,
        (Update.const(phase, _ph("failed")),),
        Label.FAIL.value,
        (("reason", lit("injected", REASON)),),
    )
    nothing_fenced = forall((_w,), not_(fenced(_w)))
    may_end = nothing_fenced
    if Bug.NO_UNFENCE_ON_FAILURE in config.bugs:
        may_end = or_(nothing_fenced, eq(phase(), _ph("failed")))
    end = Action(
        "delete-group",
        (),
        and_(ne(phase(), _ph("running")), not_(ended()), may_end),
        (Update.const(ended, lit(True)),),
        Label.DELETE_GROUP.value,
        (),
    )
    return [fence, capture, unfence, commit, fail, end]


# --------------------------------------------------------------------------------------------
# Properties and candidate invariants
# --------------------------------------------------------------------------------------------


def _entry_kinds(discipline: StepDiscipline, role: VolumeRole) -> list[OperationKind]:
    return [k for k in OperationKind if STEP_ROLE[operation_steps(k, discipline)[0]] is role]


def _kind_in(c: Expr, kinds: Sequence[OperationKind]) -> Expr:
    return or_(*(eq(kind(c), _k(k)) for k in kinds))


def _properties(config: FenceConfig) -> tuple[Property, ...]:
    named_kinds = _entry_kinds(config.discipline, VolumeRole.NAMESPACE)
    raw_kinds = _entry_kinds(config.discipline, VolumeRole.OLS)
    sl = snap_loc(_o)
    integrity = forall(
        (_o,),
        implies(
            and_(taken(ns()), snap_named(_o), taken(ols())),
            and_(snap_listed(_o), implies(taken(sl), snap_data(_o, sl))),
        ),
    )
    return (
        Property("integrity", integrity),
        Property(
            "named-availability",
            forall((_c,), not_(and_(deferred(_c), blocked(_c), _kind_in(_c, named_kinds)))),
        ),
        Property(
            "raw-availability",
            forall((_c,), not_(and_(deferred(_c), blocked(_c), _kind_in(_c, raw_kinds)))),
        ),
        Property(
            "no-lost-request",
            and_(
                not_(dup()),
                forall((_c,), implies(and_(ended(), deferred(_c)), not_(fenced(dvol(_c))))),
            ),
        ),
        Property("unfence-on-failure", implies(ended(), forall((_v,), not_(fenced(_v))))),
    )


def _queued_volume(config: FenceConfig, c: Expr) -> Expr:
    """The volume of the step client ``c`` has queued (by its kind and ``dpc``)."""
    value: Expr = ns()
    for k in OperationKind:
        for i, s in enumerate(operation_steps(k, config.discipline)):
            value = ite(and_(eq(kind(c), _k(k)), eq(dpc(c), lit(i))), step_volume(k, s, c), value)
    return value


def candidate_invariants(config: FenceConfig) -> tuple[Invariant, ...]:
    """Candidate conjuncts of inductive invariants, for Houdini to prune per configuration.
    Each states one reason a property holds; which survive depends on the knobs and order."""
    c, o, v, w = _c, _o, _v, _w
    kinds = list(OperationKind)
    length = {k: len(operation_steps(k, config.discipline)) for k in kinds}
    props = {p.name: p.formula for p in _properties(config)}
    named_kinds = _entry_kinds(config.discipline, VolumeRole.NAMESPACE)
    raw_kinds = _entry_kinds(config.discipline, VolumeRole.OLS)

    def op_is(k: OperationKind, *, at_least: int = 0) -> Expr:
        return and_(active(c), eq(kind(c), _k(k)), le(lit(at_least), pc(c)))

    create, migrate, delete = OperationKind.CREATE, OperationKind.MIGRATE, OperationKind.DELETE
    return (
        *(Invariant(name, formula) for name, formula in props.items()),
        # the job
        Invariant("ended-after-outcome", implies(ended(), ne(phase(), _ph("running")))),
        Invariant("taken-were-fenced", forall((v,), implies(taken(v), ne(status(v), _st("idle"))))),
        Invariant(
            "running-nothing-released",
            implies(eq(phase(), _ph("running")), forall((v,), ne(status(v), _st("released")))),
        ),
        Invariant(
            "captured-while-all-fenced",
            forall((v, w), implies(and_(taken(v), eq(phase(), _ph("running"))), fenced(w))),
        ),
        Invariant("ns-fenced-while-any", forall((v,), implies(fenced(v), fenced(ns())))),
        Invariant(
            "ols-fenced-while-dc", forall((v,), implies(and_(is_dc(v), fenced(v)), fenced(ols())))
        ),
        # the queue
        Invariant(
            "queued-at-pc", forall((c,), implies(deferred(c), and_(active(c), eq(dpc(c), pc(c)))))
        ),
        Invariant(
            "queued-volume",
            forall((c,), implies(deferred(c), eq(dvol(c), _queued_volume(config, c)))),
        ),
        Invariant(
            "named-never-blocked", forall((c,), implies(_kind_in(c, named_kinds), not_(blocked(c))))
        ),
        Invariant(
            "raw-never-blocked", forall((c,), implies(_kind_in(c, raw_kinds), not_(blocked(c))))
        ),
        # clients
        Invariant(
            "pc-in-range",
            forall(
                (c,),
                and_(
                    le(lit(0), pc(c)),
                    *(implies(eq(kind(c), _k(k)), lt(pc(c), lit(length[k]))) for k in kinds),
                ),
            ),
        ),
        Invariant(
            "idle-slot-reset",
            forall((c,), implies(not_(active(c)), and_(eq(pc(c), lit(0)), not_(blocked(c))))),
        ),
        Invariant("active-object-busy", forall((c,), implies(active(c), busy(obj(c))))),
        Invariant(
            "one-op-per-object",
            forall(
                (c, _c2), implies(and_(active(c), active(_c2), eq(obj(c), obj(_c2))), eq(c, _c2))
            ),
        ),
        Invariant("locations-are-dcs", forall((o,), is_dc(loc(o)))),
        Invariant(
            "registers-are-dcs",
            forall((c,), implies(active(c), and_(is_dc(src(c)), is_dc(dst(c))))),
        ),
        # write-ahead: names resolve in the live volumes
        Invariant(
            "names-resolve", forall((o,), implies(named(o), and_(listed(o), data(o, loc(o)))))
        ),
        Invariant("create-unnamed", forall((c,), implies(op_is(create), not_(named(obj(c)))))),
        Invariant(
            "create-unlisted",
            forall((c,), implies(and_(op_is(create), eq(pc(c), lit(0))), not_(listed(obj(c))))),
        ),
        Invariant(
            "create-wrote", forall((c,), implies(op_is(create, at_least=1), data(obj(c), dst(c))))
        ),
        Invariant(
            "create-inserted",
            forall(
                (c,),
                implies(op_is(create, at_least=2), and_(listed(obj(c)), eq(loc(obj(c)), dst(c)))),
            ),
        ),
        Invariant(
            "migrate-moves",
            forall(
                (c,),
                implies(
                    op_is(migrate),
                    and_(
                        ne(src(c), dst(c)),
                        listed(obj(c)),
                        implies(lt(pc(c), lit(2)), eq(loc(obj(c)), src(c))),
                    ),
                ),
            ),
        ),
        Invariant(
            "migrate-copied",
            forall((c,), implies(op_is(migrate, at_least=1), data(obj(c), dst(c)))),
        ),
        Invariant(
            "migrate-updated",
            forall((c,), implies(op_is(migrate, at_least=2), eq(loc(obj(c)), dst(c)))),
        ),
        Invariant(
            "delete-unlinked", forall((c,), implies(op_is(delete, at_least=1), not_(named(obj(c)))))
        ),
        # captured volumes are frozen while fenced
        Invariant(
            "ns-frozen",
            implies(and_(taken(ns()), fenced(ns())), forall((o,), eq(snap_named(o), named(o)))),
        ),
        Invariant(
            "ols-frozen",
            implies(
                and_(taken(ols()), fenced(ols())),
                forall((o,), and_(eq(snap_listed(o), listed(o)), eq(snap_loc(o), loc(o)))),
            ),
        ),
        Invariant(
            "dcs-frozen",
            forall(
                (v, o),
                implies(and_(taken(v), fenced(v), is_dc(v)), eq(snap_data(o, v), data(o, v))),
            ),
        ),
    )


# --------------------------------------------------------------------------------------------
# Systems and instances
# --------------------------------------------------------------------------------------------


def fence_system(config: FenceConfig = FenceConfig(), *, seed_order: bool = False) -> System:
    """The fence model under ``config``. ``seed_order`` adds axioms fixing the seed's stages
    (NS first, OLS second, every data constituent after): with them a parameterised proof
    covers every number of data constituents and every order among them."""
    axioms: list[Expr] = [
        ne(ns(), ols()),
        forall((_o,), is_dc(home(_o))),
    ]
    if seed_order:
        axioms += [
            eq(stage(ns()), lit(0)),
            eq(stage(ols()), lit(1)),
            forall((_v,), implies(is_dc(_v), le(lit(2), stage(_v)))),
        ]
    init = (
        Update.const(status, _st("idle")),
        Update.const(taken, lit(False)),
        Update.const(phase, _ph("running")),
        Update.const(ended, lit(False)),
        Update(named, (_o,), present(_o)),
        Update(listed, (_o,), present(_o)),
        Update(loc, (_o,), home(_o)),
        Update(data, (_o, _v), and_(present(_o), eq(_v, home(_o)))),
        Update.const(snap_named, lit(False)),
        Update.const(snap_listed, lit(False)),
        Update(snap_loc, (_o,), home(_o)),
        Update.const(snap_data, lit(False)),
        Update.const(busy, lit(False)),
        Update.const(active, lit(False)),
        Update.const(kind, _k(OperationKind.READ_NAMED)),
        Update.const(obj, obj0()),
        Update.const(src, ns()),
        Update.const(dst, ns()),
        Update.const(pc, lit(0)),
        Update.const(deferred, lit(False)),
        Update.const(dpc, lit(0)),
        Update.const(dvol, ns()),
        Update.const(blocked, lit(False)),
        Update.const(dup, lit(False)),
    )
    bugs = "".join(f"+{b.value}" for b in sorted(config.bugs))
    return System(
        name=f"fence({config.mode.value}, {config.discipline.value}{bugs})",
        sorts=(VOL, OBJ, OP, KIND, STATUS, PHASE, STEP, REASON),
        rigid=RIGID,
        state=STATE,
        init=init,
        actions=(*_client_actions(config), *_snapshot_actions(config)),
        properties=_properties(config),
        axioms=tuple(axioms),
        invariants=candidate_invariants(config),
    )


@dataclass(frozen=True)
class FenceInstance:
    """A finite instance: ``n`` data constituents, a fence order, ``objects`` objects (the
    first ``present`` of them exist initially, spread over the data constituents) and
    ``clients`` concurrent client slots."""

    n: int
    order: FenceOrder
    objects: int = 2
    clients: int = 2
    present: int = 1

    def __post_init__(self) -> None:
        check_fence_order(self.order, volume_names(self.n))
        if self.objects < 1 or self.clients < 1 or not 0 <= self.present <= self.objects:
            raise InvalidArgumentError(
                f"need objects >= 1, clients >= 1 and 0 <= present <= objects, got "
                f"{self.objects}, {self.clients}, {self.present}"
            )

    def instance(self) -> Instance:
        volumes = volume_names(self.n)
        objects = tuple(f"o{i}" for i in range(1, self.objects + 1))
        stages = {v: i for i, st in enumerate(self.order) for v in st}
        rigid: dict[str, Any] = {
            "ns": volumes[0],
            "ols": volumes[1],
            "stage": {(v,): stages[v] for v in volumes},
            "home": {(o,): volumes[2 + i % self.n] for i, o in enumerate(objects)},
            "present": {(o,): i < self.present for i, o in enumerate(objects)},
            "obj0": objects[0],
        }
        return Instance(
            {
                "Vol": volumes,
                "Obj": objects,
                "Client": tuple(f"c{i}" for i in range(1, self.clients + 1)),
            },
            rigid,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "order": order_to_json(self.order),
            "objects": self.objects,
            "clients": self.clients,
            "present": self.present,
        }

    def describe(self) -> str:
        return format_fence_order(self.order)


def order_to_json(order: FenceOrder) -> list[Any]:
    """A fence order as report JSON: volume names, a nested list for a parallel stage."""
    out: list[Any] = []
    for st in order:
        names = sorted(st, key=_volume_key)
        out.append(names[0] if len(names) == 1 else names)
    return out


def order_from_json(value: Sequence[Any]) -> FenceOrder:
    """The inverse of :func:`order_to_json`."""
    return tuple(frozenset([x] if isinstance(x, str) else x) for x in value)


def _volume_key(name: str) -> tuple[int, int]:
    if name == "NS":
        return (0, 0)
    if name == "OLS":
        return (1, 0)
    return (2, int(name[2:]))


def config_json(config: FenceConfig, inst: FenceInstance) -> dict[str, Any]:
    """The ``config`` record of reports and traces."""
    return {**inst.to_json(), **config.to_json()}


def stage_map(order: FenceOrder) -> Mapping[str, int]:
    return {v: i for i, st in enumerate(order) for v in st}
