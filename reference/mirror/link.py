"""The inter-site link: typed messages between a destination-side caller and a source-side
endpoint, with a simulated implementation on SimPy time and a direct in-process one.

In the seed the mirroring coordinator at the remote location talks to the primary location only
through a *source proxy* that formats what is sent and received, and the block replication
protocol (the seed's SpinNP) is "a collection of methods" called over connections, encapsulated
as a local procedure call (LPC) on the same node or a remote procedure call (RPC) to another.
This module is that connection, and nothing more: it moves :class:`Message` s and knows nothing of
volumes. The rule from DESIGN.md holds here: the protocols above talk to a :class:`Link`, never to
a simulator, so a real transport between two processes slots in (:mod:`.transport`, TCP).

Structures, bottom up:

* :class:`Message`: a typed, immutable record with a size on the wire (:meth:`Message.wire_size`:
  a fixed header plus the payload). Every request is answered by exactly one reply message; a
  typed error raised by the endpoint travels back as an :class:`ErrorReply` and is raised again
  at the caller, so ``NotFoundError`` at the source is ``NotFoundError`` at the destination.
  Requests must be *idempotent* (a retransmitted request may reach the endpoint twice).
* :class:`Endpoint`: the source side, one method ``handle(request) -> reply``.
* *processes*: the caller side is written as generator functions (SimPy style). A call is
  ``reply = yield from channel.request(message)``; a caller that wants several requests in flight
  (a window) uses ``pending = channel.start(message)`` and later
  ``reply = yield from pending.result()``. A link without a time model never yields, so the same
  generator runs to completion under :func:`run_sync`; on a :class:`SimulatedLink` it runs as a
  SimPy process (``env.process(...)``). The socket transport of :mod:`.transport` blocks in
  the call and never yields either, so the protocols do not change.
* :data:`WIRE_TYPES`: the dataclasses a byte transport may carry (messages and the records in
  them), declared with :func:`wire_types` by the module that defines the messages.
* :class:`Channel`: one relationship's view of a link (seed: a mirroring relationship between a
  source and a destination volume), with its own throttle (max bytes/s on top of the link's
  bandwidth) and its own counters. Many channels share one link.
* :class:`DirectLink`: calls the endpoint in place (the seed's LPC): no time, no loss; it still
  counts messages and bytes. Used by the throughput benchmark and by in-process tests.
* :class:`SimulatedLink`: the seed's RPC across sites on SimPy time. Each direction is one wire
  (full duplex) that carries one message at a time in FIFO order: a message occupies its wire
  for ``wire_size / bandwidth`` seconds and arrives ``latency`` seconds later (propagation is
  pipelined: the next message may start at once). Loss: each message put on the wire is lost
  with probability ``loss`` (a seeded ``random.Random``). **Lost messages are retransmitted** by
  the link, as a reliable transport would: the caller's request is sent again ``rto`` seconds
  after the lost attempt, up to ``max_retries`` times (each counted in
  :attr:`LinkStats.retransmissions`); only when every attempt is lost does the caller see a
  :class:`LinkTimeoutError`. A *cut* (:class:`Cut`: from a simulated time, at the k-th message,
  or once N bytes were put on the wire; or :meth:`SimulatedLink.cut_now`) models the disaster:
  the message that crosses the cut and every later one is lost, and the caller sees
  :class:`LinkDownError` after its retransmissions time out. :meth:`SimulatedLink.restore`
  brings the link back (the sites reconnect), so a transfer can resume.

Calls in flight when a link fails. The caller that sees a :class:`LinkError` must be able to
account for everything its requests did, so the simulated link resets its *connection* the
moment one call fails (every retransmission lost): every other call in flight on the link fails
at that same instant with the same kind of error (counted in :attr:`LinkStats.resets`), and a
request of the reset connection that has not reached the endpoint never will, even if the link
comes back a moment later (the far side drops it; its SimPy process is interrupted). A request
that crossed *before* the failure may have executed (its reply was lost): that is why every
request is idempotent, and why the coordinator asks again on its next attempt. A caller that
leaves for another reason (a corrupt batch) cancels what it still has in flight
(:meth:`Pending.cancel`): a cancelled request that has not crossed never executes. So after a
caller failed, no request it sent executes at the far side later in simulated time. Links
without a time model (:class:`DirectLink`, the socket transport) complete each call before the
next starts, so nothing of theirs is ever in flight when a caller fails.

Counters (:class:`LinkStats`, per link and per channel): messages and bytes put on the wire
(both directions, retransmissions included), messages lost, retransmissions, replies delivered;
:meth:`Link.now` is the simulated time.

Uses: simpy, random, :mod:`xvol.errors`. Nothing of the storage stack.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import simpy

from xvol.errors import InvalidArgumentError, StateError, UnavailableError, XvolError

T = TypeVar("T")

Process = Generator[Any, Any, T]
"""A caller-side process: a generator that may yield SimPy events and returns a ``T``."""

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class LinkError(UnavailableError):
    """The link could not carry a request and its reply; nothing was changed at the caller."""


class LinkDownError(LinkError):
    """The link is cut (the other site is unreachable): every retransmission was lost."""


class LinkTimeoutError(LinkError):
    """Every transmission of a request (or of its reply) was lost on a link that is up."""


# --------------------------------------------------------------------------------------------
# Messages and endpoints
# --------------------------------------------------------------------------------------------


class Message:
    """Base of every message: immutable record, sized on the wire.

    Subclasses are frozen dataclasses; they override :meth:`payload_size` when they carry more
    than a few scalar fields (which the fixed header covers)."""

    HEADER_BYTES: ClassVar[int] = 64
    """Bytes of framing, type tag and scalar fields every message costs."""

    def payload_size(self) -> int:
        """Bytes beyond the header (block data, arrays)."""
        return 0

    def wire_size(self) -> int:
        """Bytes this message occupies on the wire."""
        return self.HEADER_BYTES + self.payload_size()


@dataclass(frozen=True)
class ErrorReply(Message):
    """The endpoint refused a request with a typed error; the caller raises ``error`` again.

    In process the exception object travels as is; a byte transport would send its class name
    (a class of :mod:`xvol.errors` or a subclass) and message and rebuild it."""

    error: XvolError

    def payload_size(self) -> int:
        """The error text."""
        return len(str(self.error).encode())


WIRE_TYPES: dict[str, type[Any]] = {}
"""Dataclasses a byte transport may carry, by ``module.qualname`` (see :mod:`.transport`):
message types and the records they contain. Only these are ever rebuilt from bytes."""


def wire_types(*classes: type[Any]) -> None:
    """Let byte transports carry instances of these dataclasses."""
    for cls in classes:
        WIRE_TYPES[f"{cls.__module__}.{cls.__qualname__}"] = cls


class Endpoint(Protocol):
    """The source side of a link: answers each request with one reply (or raises a typed
    :class:`~xvol.errors.XvolError`, which the link turns into an :class:`ErrorReply`)."""

    def handle(self, request: Message) -> Message:
        """The reply to ``request``; must be idempotent for retransmitted requests."""
        ...


wire_types(ErrorReply)


def _answer(endpoint: Endpoint, request: Message) -> Message:
    """What the endpoint replies, typed errors included (other exceptions are bugs and
    propagate)."""
    try:
        return endpoint.handle(request)
    except XvolError as error:
        return ErrorReply(error)


# --------------------------------------------------------------------------------------------
# Counters, pending calls, channels and the link interface
# --------------------------------------------------------------------------------------------


@dataclass
class LinkStats:
    """Counters of a link or of one channel. Invariant: ``lost <= messages`` and every
    retransmission follows a lost message."""

    messages: int = 0
    bytes: int = 0
    lost: int = 0
    retransmissions: int = 0
    replies: int = 0
    resets: int = 0
    """Connection resets: a call failed and every other call in flight failed with it."""

    def count(self, size: int) -> None:
        """One message of ``size`` bytes put on the wire."""
        self.messages += 1
        self.bytes += size


class Pending(Protocol):
    """A request in flight; :meth:`result` waits for its reply."""

    def result(self) -> Process[Message]:
        """The reply (raises the endpoint's typed error, or a :class:`LinkError`)."""
        ...

    def cancel(self) -> None:
        """Give up on the call: a request that has not reached the far side never will (one
        that has may have executed), and :meth:`result` raises a :class:`LinkError`. No effect
        on a call that has finished."""
        ...


@dataclass
class _Done:
    """A call that completed when it was started (no time model)."""

    outcome: Message | LinkError

    def result(self) -> Process[Message]:
        return _unwrap(self.outcome)
        yield  # pragma: no cover  (makes this a generator that never yields)

    def cancel(self) -> None:
        """Nothing to cancel: the call finished when it started."""


def _unwrap(outcome: Message | LinkError) -> Message:
    if isinstance(outcome, LinkError):
        raise outcome
    if isinstance(outcome, ErrorReply):
        raise outcome.error
    return outcome


class Link(ABC):
    """The interface the protocols see: channels over which requests travel.

    Subclasses implement :meth:`_start` and :meth:`now`."""

    def __init__(self) -> None:
        self.stats = LinkStats()
        self._channels: dict[str, Channel] = {}

    def channel(self, name: str, *, throttle: float | None = None) -> Channel:
        """The channel ``name`` (created on first use; ``throttle`` in bytes/s, None: the
        link's bandwidth only). Asking again returns the same channel, with ``throttle``
        applied when given."""
        if throttle is not None and throttle <= 0:
            raise InvalidArgumentError(f"throttle must be > 0 bytes/s, got {throttle}")
        found = self._channels.get(name)
        if found is None:
            found = Channel(self, name, throttle)
            self._channels[name] = found
        elif throttle is not None:
            found.throttle = throttle
        return found

    @abstractmethod
    def now(self) -> float:
        """The link's clock in seconds (simulated time; 0.0 for links without a time model)."""

    @property
    def timed(self) -> bool:
        """Whether the link has a time model (rates and ETAs are meaningful)."""
        return False

    def wait(self, seconds: float) -> Process[None]:
        """Let ``seconds`` of the link's time pass (a schedule's sleep); :class:`StateError` on
        a link without a clock."""
        raise StateError(f"{type(self).__name__} has no clock: it cannot wait {seconds} s")
        yield  # pragma: no cover - makes this a generator like the timed version

    @abstractmethod
    def _start(self, request: Message, channel: Channel) -> Pending:
        """Send ``request`` on ``channel``; the pending reply."""


class Channel:
    """One relationship's use of a link: a name, an optional throttle and counters.

    Life cycle: made by :meth:`Link.channel`; lives as long as the link."""

    def __init__(self, link: Link, name: str, throttle: float | None) -> None:
        self.link = link
        self.name = name
        self.throttle = throttle
        """Max bytes per second this channel may put on each wire (None: no limit)."""
        self.stats = LinkStats()
        self._next_slot = [0.0, 0.0]  # throttle pacing, per direction

    def start(self, request: Message) -> Pending:
        """Send ``request`` now; the reply is collected with ``yield from pending.result()``."""
        return self.link._start(request, self)

    def request(self, request: Message) -> Process[Message]:
        """Send ``request`` and wait for its reply."""
        reply = yield from self.start(request).result()
        return reply

    def now(self) -> float:
        """The link's clock."""
        return self.link.now()


def run_sync(process: Process[T]) -> T:
    """Run a caller process on a link without a time model to its end; :class:`StateError` if
    it waits on simulated time (it belongs in a SimPy environment)."""
    try:
        next(process)
    except StopIteration as stop:
        result: T = stop.value
        return result
    process.close()
    raise StateError("this process waits on simulated time: run it with env.process(...)")


# --------------------------------------------------------------------------------------------
# The direct link (the seed's LPC)
# --------------------------------------------------------------------------------------------


class DirectLink(Link):
    """Calls the endpoint in place: no time, no loss, no copies; counts messages and bytes."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__()
        self.endpoint = endpoint

    def now(self) -> float:
        """Always 0.0: the direct link has no clock."""
        return 0.0

    def _start(self, request: Message, channel: Channel) -> Pending:
        reply = _answer(self.endpoint, request)
        for stats in (self.stats, channel.stats):
            stats.count(request.wire_size())
            stats.count(reply.wire_size())
            stats.replies += 1
        return _Done(reply)


# --------------------------------------------------------------------------------------------
# The simulated link (the seed's RPC between sites)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cut:
    """When the link goes down for good (until :meth:`SimulatedLink.restore`): at simulated
    time ``at_time``, at the ``at_message``-th message put on the wire (1-based, that message
    is lost), or at the message during which the bytes put on the wire exceed ``after_bytes``.
    Messages and bytes count over the link's life (its :class:`LinkStats`, retransmissions and
    both directions included), so a cut "k messages from now" is ``stats.messages + k``. The
    first condition met counts; all None: never."""

    at_time: float | None = None
    at_message: int | None = None
    after_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.at_time is not None and self.at_time < 0:
            raise InvalidArgumentError(f"cut time must be >= 0, got {self.at_time}")
        if self.at_message is not None and self.at_message < 1:
            raise InvalidArgumentError(f"cut message must be >= 1, got {self.at_message}")
        if self.after_bytes is not None and self.after_bytes < 0:
            raise InvalidArgumentError(f"cut bytes must be >= 0, got {self.after_bytes}")


@dataclass(eq=False)
class _SimCall:
    """A request in flight on a simulated link: the SimPy process that carries it, the
    connection (``epoch``) it was sent on, and whether its process has started and whether its
    caller cancelled it. Life cycle: made by :meth:`SimulatedLink._start` -> carried by
    :meth:`SimulatedLink._exchange` -> finished with a reply or a :class:`LinkError`."""

    link: SimulatedLink
    number: int
    epoch: int
    process: simpy.Process | None = None
    started: bool = False
    cancelled: bool = False

    def result(self) -> Process[Message]:
        outcome = yield self.process
        return _unwrap(outcome)

    def cancel(self) -> None:
        """Give up on the call (see :meth:`Pending.cancel`)."""
        self.link._cancel(self)


FORWARD, BACKWARD = 0, 1
"""Wire directions: destination -> source (requests), source -> destination (replies)."""


@dataclass
class SimulatedLink(Link):
    """A link on SimPy simulated time with bandwidth, latency, seeded loss and a cut.

    ``bandwidth`` in bytes/s per direction, ``latency`` one-way in seconds, ``loss`` the
    probability that one transmission is lost, ``rto`` the retransmission timeout (seconds
    after a lost transmission), ``max_retries`` retransmissions per request before the caller
    sees a :class:`LinkError`. The endpoint answers in zero simulated time.
    """

    env: simpy.Environment
    endpoint: Endpoint
    bandwidth: float
    latency: float = 0.0
    loss: float = 0.0
    seed: int = 0
    rto: float = 1.0
    max_retries: int = 3
    cut: Cut = field(default_factory=Cut)
    tamper: Callable[[Message], Message] | None = None
    """Fault injection for tests: applied to every reply as it crosses the wire."""

    def __post_init__(self) -> None:
        super().__init__()
        if self.bandwidth <= 0:
            raise InvalidArgumentError(f"bandwidth must be > 0 bytes/s, got {self.bandwidth}")
        if self.latency < 0 or self.rto <= 0 or self.max_retries < 0:
            raise InvalidArgumentError("latency must be >= 0, rto > 0 and max_retries >= 0")
        if not 0.0 <= self.loss < 1.0:
            raise InvalidArgumentError(f"loss must be in [0, 1), got {self.loss}")
        self._rng = random.Random(self.seed)
        self._wires = (simpy.Resource(self.env, 1), simpy.Resource(self.env, 1))
        self._down_since: float | None = None
        self._epoch = 0  # the connection; a reset starts a new one
        self._calls = 0
        self._in_flight: dict[int, _SimCall] = {}  # by call number: deterministic order

    # -- state of the link ----------------------------------------------------------------

    def now(self) -> float:
        """Simulated seconds."""
        return float(self.env.now)

    @property
    def timed(self) -> bool:
        """A simulated link has a clock."""
        return True

    def wait(self, seconds: float) -> Process[None]:
        """Let ``seconds`` of simulated time pass."""
        if seconds < 0:
            raise InvalidArgumentError(f"cannot wait a negative time ({seconds} s)")
        yield self.env.timeout(seconds)

    @property
    def is_down(self) -> bool:
        """Whether the link is cut now."""
        at_time = self.cut.at_time
        if self._down_since is None and at_time is not None and self.env.now >= at_time:
            self._down_since = at_time
        return self._down_since is not None

    def cut_now(self) -> None:
        """Take the link down from now on."""
        if self._down_since is None:
            self._down_since = self.now()

    def restore(self) -> None:
        """Bring the link back up and forget the configured cut (the sites reconnect)."""
        self._down_since = None
        self.cut = Cut()

    # -- carrying one request -------------------------------------------------------------

    def _start(self, request: Message, channel: Channel) -> Pending:
        call = _SimCall(self, self._calls, self._epoch)
        self._calls += 1
        self._in_flight[call.number] = call
        call.process = self.env.process(self._exchange(request, channel, call))
        return call

    def _exchange(
        self, request: Message, channel: Channel, call: _SimCall
    ) -> Process[Message | LinkError]:
        """Carry ``request`` and its reply for ``call``; returns the reply or the
        :class:`LinkError` the caller will see (never raises it inside SimPy). The first call
        to fail resets the connection (see the module text)."""
        call.started = True
        try:
            outcome = yield from self._carry(request, channel, call)
        except simpy.Interrupt as stop:
            cause = stop.cause if isinstance(stop.cause, LinkError) else LinkError("interrupted")
            outcome = type(cause)(f"{type(request).__name__} on channel {channel.name!r}: {cause}")
        finally:
            self._in_flight.pop(call.number, None)
        if isinstance(outcome, LinkError) and not call.cancelled and call.epoch == self._epoch:
            self._reset(outcome)
        return outcome

    def _carry(
        self, request: Message, channel: Channel, call: _SimCall
    ) -> Process[Message | LinkError]:
        """The attempts of one call: transmit, answer, transmit back; retransmit lost ones."""
        for attempt in range(self.max_retries + 1):
            if call.cancelled or call.epoch != self._epoch:
                return self._abandoned(request, channel, call)
            if attempt:
                self.stats.retransmissions += 1
                channel.stats.retransmissions += 1
            arrived = yield from self._transmit(request, channel, FORWARD)
            if arrived and (call.cancelled or call.epoch != self._epoch):
                return self._abandoned(request, channel, call)  # the far side drops it
            if arrived:
                reply = _answer(self.endpoint, request)
                if self.tamper is not None:
                    reply = self.tamper(reply)
                arrived = yield from self._transmit(reply, channel, BACKWARD)
                if arrived:
                    self.stats.replies += 1
                    channel.stats.replies += 1
                    return reply
            yield self.env.timeout(self.rto)
        if self.is_down:
            return LinkDownError(
                f"link down since t={self._down_since:.3f}s: {type(request).__name__} on "
                f"channel {channel.name!r} was lost after {self.max_retries} retransmissions"
            )
        return LinkTimeoutError(
            f"{type(request).__name__} on channel {channel.name!r} lost "
            f"{self.max_retries + 1} times (loss {self.loss})"
        )

    def _abandoned(self, request: Message, channel: Channel, call: _SimCall) -> LinkError:
        """The error of a call that was cancelled or whose connection was reset."""
        what = f"{type(request).__name__} on channel {channel.name!r}"
        if call.cancelled:
            return LinkError(f"{what} was cancelled by its caller")
        return LinkDownError(f"{what}: the connection was reset when another call failed")

    def _reset(self, error: LinkError) -> None:
        """Start a new connection: every call still in flight fails now with ``error``'s kind
        of error, and none of their requests reaches the endpoint any more."""
        self._epoch += 1
        self.stats.resets += 1
        kind = type(error)
        cause = kind(f"the connection was reset at t={self.now():.3f}s ({error})")
        for call in list(self._in_flight.values()):
            self._interrupt(call, cause)

    def _cancel(self, call: _SimCall) -> None:
        """Cancel ``call`` (no effect once it has finished)."""
        if call.number not in self._in_flight:
            return
        call.cancelled = True
        self._interrupt(call, LinkError("cancelled by its caller"))

    def _interrupt(self, call: _SimCall, cause: LinkError) -> None:
        """Stop ``call``'s process at its next step with ``cause``; a process not yet started
        sees its cancel or reset when it starts."""
        process = call.process
        if (
            call.started
            and process is not None
            and process.is_alive
            and process is not self.env.active_process
        ):
            process.interrupt(cause)

    def _transmit(self, message: Message, channel: Channel, direction: int) -> Process[bool]:
        """Put one message on the wire ``direction`` after the channel's throttle allows it;
        returns whether it arrives (False: lost on the wire or by the cut).

        The throttle paces whole messages: a message may start when the previous one's slot
        (its size / throttle) has passed, and it arrives no earlier than the end of its own
        slot, so even a transfer of a single message moves at most ``throttle`` bytes/s."""
        size = message.wire_size()
        paced_until = self.now()
        if channel.throttle is not None:
            start = max(self.now(), channel._next_slot[direction])
            paced_until = start + size / channel.throttle
            channel._next_slot[direction] = paced_until
            if start > self.now():
                yield self.env.timeout(start - self.now())
        with self._wires[direction].request() as slot:
            yield slot
            for stats in (self.stats, channel.stats):
                stats.count(size)
            self._check_cut()
            lost = self.is_down or (self.loss > 0 and self._rng.random() < self.loss)
            yield self.env.timeout(size / self.bandwidth)
        if paced_until > self.now():
            yield self.env.timeout(paced_until - self.now())
        if self.latency:
            yield self.env.timeout(self.latency)
        if lost or self.is_down:
            self.stats.lost += 1
            channel.stats.lost += 1
            return False
        return True

    def _check_cut(self) -> None:
        """Apply a message- or byte-count cut to the message just counted."""
        cut, stats = self.cut, self.stats
        if (cut.at_message is not None and stats.messages >= cut.at_message) or (
            cut.after_bytes is not None and stats.bytes > cut.after_bytes
        ):
            self.cut_now()


__all__ = [
    "BACKWARD",
    "FORWARD",
    "WIRE_TYPES",
    "Channel",
    "Cut",
    "DirectLink",
    "Endpoint",
    "ErrorReply",
    "Link",
    "LinkDownError",
    "LinkError",
    "LinkStats",
    "LinkTimeoutError",
    "Message",
    "Pending",
    "Process",
    "SimulatedLink",
    "run_sync",
    "wire_types",
]
