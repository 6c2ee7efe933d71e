"""The CF protocol: how the modules of the cluster's nodes talk to each other.

In the seed, an N-module (or another D-module) issues file-system commands to a D-module through
the *CF interface*: a CF encoder wraps each command as a message and sends it as a **local
procedure call (LPC)** when the D-module lives on the same node, or as a **remote procedure call
(RPC)** over the cluster switching fabric when it lives on another node; the CF decoder on the
D-module side unwraps and executes it. This module is that interface, in three parts, bottom up:

1. **Messages and frames.** :class:`CFRequest` and :class:`CFReply` are encoded to bytes (a magic
   word, a JSON header, a binary payload). Every message really is encoded and decoded, so byte
   counts are honest and a real network could carry the same frames. A typed error raised on the
   serving side travels back by class name and is raised again, as the same class, on the caller.
2. **Transports.** :class:`Transport` is the one method a carrier of frames must offer
   (``send(source, target, frame) -> reply frame``). :class:`SimulatedFabric` is the first
   implementation: it calls the target node's endpoint in-process, decides LPC or RPC by whether
   source and target are the same node, counts messages and bytes of each, and advances a
   simulated clock by a latency model (no wall clock). A node can be marked *down*: a frame sent
   to it raises :class:`xvol.errors.UnavailableError` and reaches nothing.
3. **Endpoints.** :class:`CFClient` is the encoder side a module uses to call another node;
   :func:`serve_frame` is the decoder side a node attaches to the transport.

Uses: the standard library (json, struct) and :mod:`xvol.errors`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from xvol import errors as xerrors
from xvol.errors import InvalidArgumentError, UnavailableError, XvolError

# --------------------------------------------------------------------------------------------
# Messages and frames
# --------------------------------------------------------------------------------------------

_MAGIC = b"XCF1"
_HEADER = struct.Struct(">4sI")


@dataclass(frozen=True)
class CFRequest:
    """One command for a node: which service (``"dmodule"``, ``"rdb"``, ``"ping"``), which volume
    (a volume ID, or ``""``), which method, JSON arguments and a binary payload."""

    service: str
    volume: str
    method: str
    args: Mapping[str, Any] = field(default_factory=dict)
    payload: bytes = b""


@dataclass(frozen=True)
class CFReply:
    """The answer to a :class:`CFRequest`: a JSON result and a payload, or an error (class name
    and message)."""

    result: Any = None
    payload: bytes = b""
    error_type: str | None = None
    error_message: str = ""


def _frame(header: Mapping[str, Any], payload: bytes) -> bytes:
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return _HEADER.pack(_MAGIC, len(text)) + text + payload


def _unframe(frame: bytes) -> tuple[dict[str, Any], bytes]:
    if len(frame) < _HEADER.size:
        raise InvalidArgumentError("CF frame is shorter than its header")
    magic, length = _HEADER.unpack_from(frame)
    if magic != _MAGIC or _HEADER.size + length > len(frame):
        raise InvalidArgumentError("not a CF frame (bad magic word or header length)")
    try:
        header = json.loads(frame[_HEADER.size : _HEADER.size + length])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"CF frame header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise InvalidArgumentError("CF frame header is not a JSON object")
    return header, bytes(frame[_HEADER.size + length :])


def encode_request(request: CFRequest) -> bytes:
    """The frame of ``request``."""
    header = {
        "service": request.service,
        "volume": request.volume,
        "method": request.method,
        "args": dict(request.args),
    }
    return _frame(header, request.payload)


def decode_request(frame: bytes) -> CFRequest:
    """The request carried by ``frame``; :class:`InvalidArgumentError` if it is not one."""
    header, payload = _unframe(frame)
    try:
        return CFRequest(
            service=str(header["service"]),
            volume=str(header["volume"]),
            method=str(header["method"]),
            args=dict(header["args"]),
            payload=payload,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"CF request frame lacks a field: {exc}") from exc


def encode_reply(reply: CFReply) -> bytes:
    """The frame of ``reply``."""
    header = {
        "result": reply.result,
        "error_type": reply.error_type,
        "error_message": reply.error_message,
    }
    return _frame(header, reply.payload)


def decode_reply(frame: bytes) -> CFReply:
    """The reply carried by ``frame``."""
    header, payload = _unframe(frame)
    error_type = header.get("error_type")
    return CFReply(
        result=header.get("result"),
        payload=payload,
        error_type=None if error_type is None else str(error_type),
        error_message=str(header.get("error_message", "")),
    )


def _error_classes() -> Iterator[type[XvolError]]:
    stack: list[type[XvolError]] = [XvolError]
    while stack:
        cls = stack.pop()
        yield cls
        stack.extend(cls.__subclasses__())


def error_from_reply(reply: CFReply) -> XvolError:
    """The typed error a reply carries, as the same class the server raised (or the closest
    kit class when the caller does not know it)."""
    for cls in _error_classes():
        if cls.__name__ == reply.error_type:
            try:
                return cls(reply.error_message)
            except TypeError:
                break
    return xerrors.XvolError(f"{reply.error_type}: {reply.error_message}")


def reply_for_error(exc: XvolError) -> CFReply:
    """The reply that carries ``exc`` back to the caller."""
    return CFReply(error_type=type(exc).__name__, error_message=str(exc))


# --------------------------------------------------------------------------------------------
# Transports
# --------------------------------------------------------------------------------------------


class Transport(Protocol):
    """A carrier of CF frames between nodes. Contract: ``send`` delivers ``frame`` to node
    ``target`` and returns its reply frame, or raises :class:`UnavailableError` having delivered
    nothing."""

    def send(self, source: str, target: str, frame: bytes) -> bytes:
        """Deliver one request frame and return the reply frame."""
        ...


Endpoint = Callable[[bytes], bytes]
"""A node's decoder side: takes a request frame, returns a reply frame (never raises)."""


@dataclass
class FabricCounters:
    """Messages and bytes (request plus reply) the fabric carried, by kind."""

    lpc_messages: int = 0
    rpc_messages: int = 0
    lpc_bytes: int = 0
    rpc_bytes: int = 0
    refused: int = 0  # frames to a node that is down

    def snapshot(self) -> dict[str, int]:
        """The counters as a plain dict (for reports)."""
        return {
            "lpc_messages": self.lpc_messages,
            "rpc_messages": self.rpc_messages,
            "lpc_bytes": self.lpc_bytes,
            "rpc_bytes": self.rpc_bytes,
            "refused": self.refused,
        }


@dataclass(frozen=True)
class LatencyModel:
    """Simulated cost of one message, in seconds: a fixed latency per LPC or RPC round trip plus,
    for RPC, the bytes of request and reply over the fabric's bandwidth."""

    lpc_seconds: float = 2e-6
    rpc_seconds: float = 100e-6
    rpc_bytes_per_second: float = 1.25e9

    def cost(self, *, remote: bool, nbytes: int) -> float:
        """Seconds one round trip of ``nbytes`` takes."""
        if not remote:
            return self.lpc_seconds
        return self.rpc_seconds + nbytes / self.rpc_bytes_per_second


class SimClock:
    """A counter of simulated time in seconds; only ever moves forward."""

    def __init__(self) -> None:
        self.now = 0.0

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise InvalidArgumentError("simulated time cannot go backwards")
        self.now += seconds


class SimulatedFabric:
    """The cluster switching fabric, simulated in-process.

    Invariants: every node has at most one endpoint; a frame to a node that is down or has no
    endpoint raises :class:`UnavailableError` and is counted as refused, nothing else; each
    delivered message adds its request and reply bytes to the LPC or RPC counters and advances
    the clock by the latency model.
    """

    def __init__(self, latency: LatencyModel | None = None, clock: SimClock | None = None) -> None:
        self.latency = latency or LatencyModel()
        self.clock = clock or SimClock()
        self.counters = FabricCounters()
        self._endpoints: dict[str, Endpoint] = {}
        self._down: set[str] = set()

    def attach(self, node: str, endpoint: Endpoint) -> None:
        """Make ``node`` reachable through ``endpoint``."""
        if node in self._endpoints:
            raise InvalidArgumentError(f"node {node!r} already has an endpoint")
        self._endpoints[node] = endpoint

    def set_down(self, node: str, down: bool) -> None:
        """Mark ``node`` as not answering (``down``) or answering again."""
        if node not in self._endpoints:
            raise xerrors.NotFoundError(f"no node {node!r} on the fabric")
        if down:
            self._down.add(node)
        else:
            self._down.discard(node)

    def is_up(self, node: str) -> bool:
        """Whether ``node`` answers."""
        return node in self._endpoints and node not in self._down

    def send(self, source: str, target: str, frame: bytes) -> bytes:
        """Deliver ``frame`` from ``source`` to ``target`` as LPC or RPC."""
        if not self.is_up(target) or not self.is_up(source):
            self.counters.refused += 1
            who = target if not self.is_up(target) else source
            raise UnavailableError(f"node {who!r} does not answer; nothing was sent")
        reply = self._endpoints[target](frame)
        nbytes = len(frame) + len(reply)
        remote = source != target
        if remote:
            self.counters.rpc_messages += 1
            self.counters.rpc_bytes += nbytes
        else:
            self.counters.lpc_messages += 1
            self.counters.lpc_bytes += nbytes
        self.clock.advance(self.latency.cost(remote=remote, nbytes=nbytes))
        return reply


# --------------------------------------------------------------------------------------------
# Endpoints
# --------------------------------------------------------------------------------------------


Handler = Callable[[CFRequest], CFReply]


def serve_frame(frame: bytes, handler: Handler) -> bytes:
    """The decoder side: decode ``frame``, run ``handler``, encode its reply; a typed error from
    the handler (or a malformed frame) becomes an error reply, never an exception."""
    try:
        reply = handler(decode_request(frame))
    except XvolError as exc:
        reply = reply_for_error(exc)
    return encode_reply(reply)


class CFClient:
    """The encoder side of one node's CF interface: sends requests to any node (itself included)
    and turns error replies back into typed errors."""

    def __init__(self, node: str, transport: Transport) -> None:
        self.node = node
        self.transport = transport

    def call(self, target: str, request: CFRequest) -> CFReply:
        """Send ``request`` to node ``target``; the reply, or the typed error it carries."""
        reply = decode_reply(self.transport.send(self.node, target, encode_request(request)))
        if reply.error_type is not None:
            raise error_from_reply(reply)
        return reply
