"""A real transport for the link interface: messages encoded as bytes and carried over a TCP
socket between two processes (or threads), proving that the protocols above
(:mod:`.replication`, later the mirroring coordinator) run unchanged on a network.

Two parts:

* the **codec** (:func:`encode`, :func:`decode`): a message is a frozen dataclass whose fields
  are None, bool, int, float, str, UUID, tuples, numpy arrays or other allowed dataclasses. The
  encoding is one JSON header (fields by name; every dataclass tagged with its registered type
  name; every array replaced by a reference to a raw buffer with its dtype and shape) followed
  by the raw array buffers, so block data is never converted to text. Only the types listed in
  :data:`~.link.WIRE_TYPES` (by :func:`~.link.wire_types`) are rebuilt, never arbitrary
  classes. An :class:`~.link.ErrorReply` carries
  the error's class name and text and is rebuilt as that class of the :mod:`xvol.errors`
  hierarchy (or its nearest constructible base).
* the **socket transport**: :class:`SocketLink` is the caller side (a :class:`~.link.Link` whose
  calls block and never yield, so processes run under :func:`~.link.run_sync`);
  :class:`SocketServer` serves an :class:`~.link.Endpoint` on a listening socket, one thread
  per connection. Frames are an 8-byte length and the encoded message. A broken connection
  is a :class:`~.link.LinkDownError` at the caller. This transport has no window (one request
  at a time per link) and no throttle; it is tested on 127.0.0.1 only. A call completes before
  the next starts, so when a caller fails nothing it sent is still in flight: a request that
  failed may have executed at the server (its reply was lost), never later.

Uses: json, socket, struct, threading, numpy, :mod:`.link`, the records of
:mod:`xvol.reference.volume` that replication messages carry, :mod:`xvol.errors`.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
import threading
import uuid
from typing import Any

import numpy as np

from xvol import errors
from xvol.errors import IntegrityError, InvalidArgumentError, XvolError
from xvol.reference.mirror.link import (
    WIRE_TYPES,
    Channel,
    Endpoint,
    ErrorReply,
    Link,
    LinkDownError,
    Message,
    Pending,
    _answer,
    _Done,
)

# --------------------------------------------------------------------------------------------
# The codec
# --------------------------------------------------------------------------------------------


def _encode_value(value: object, buffers: list[bytes]) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, uuid.UUID):
        return {"__uuid__": str(value)}
    if isinstance(value, np.ndarray):
        buffers.append(np.ascontiguousarray(value).tobytes())
        return {"__array__": len(buffers) - 1, "dtype": value.dtype.str, "shape": value.shape}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode_value(item, buffers) for item in value]}
    if isinstance(value, XvolError):
        return {"__error__": _type_name(type(value)), "text": str(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = _type_name(type(value))
        if name not in WIRE_TYPES:
            raise InvalidArgumentError(f"the codec does not carry {name}; see link.wire_types")
        fields = {
            f.name: _encode_value(getattr(value, f.name), buffers)
            for f in dataclasses.fields(value)
        }
        return {"__type__": name, "fields": fields}
    raise InvalidArgumentError(f"the codec cannot encode a {type(value).__name__}")


def _type_name(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def encode(message: Message) -> bytes:
    """The bytes of ``message``: header length, JSON header, raw array buffers."""
    buffers: list[bytes] = []
    body = _encode_value(message, buffers)
    sizes = [len(b) for b in buffers]
    head = json.dumps({"message": body, "sizes": sizes}, separators=(",", ":")).encode()
    return b"".join([struct.pack("<I", len(head)), head, *buffers])


def _decode_value(raw: object, buffers: list[memoryview]) -> object:
    if not isinstance(raw, dict):
        if isinstance(raw, list):
            raise IntegrityError("malformed message: a bare list")
        return raw
    if "__uuid__" in raw:
        return uuid.UUID(str(raw["__uuid__"]))
    if "__array__" in raw:
        buffer = buffers[int(raw["__array__"])]
        array = np.frombuffer(buffer, dtype=np.dtype(str(raw["dtype"]))).copy()
        return array.reshape(tuple(int(n) for n in raw["shape"]))
    if "__tuple__" in raw:
        return tuple(_decode_value(item, buffers) for item in raw["__tuple__"])
    if "__error__" in raw:
        return _rebuild_error(str(raw["__error__"]), str(raw["text"]))
    if "__type__" in raw:
        cls = WIRE_TYPES.get(str(raw["__type__"]))
        if cls is None:
            raise IntegrityError(f"message names an unknown type {raw['__type__']!r}")
        fields = {k: _decode_value(v, buffers) for k, v in dict(raw["fields"]).items()}
        return cls(**fields)
    raise IntegrityError("malformed message: an untagged object")


def _rebuild_error(name: str, text: str) -> XvolError:
    """The error class ``name`` (an XvolError subclass loaded in this process) with ``text``,
    or its nearest base that takes one message."""
    found: type[XvolError] = XvolError
    stack: list[type[XvolError]] = [XvolError]
    while stack:
        cls = stack.pop()
        if _type_name(cls) == name:
            found = cls
            break
        stack.extend(cls.__subclasses__())
    for cls in found.__mro__:
        if isinstance(cls, type) and issubclass(cls, XvolError):
            try:
                return cls(text)
            except TypeError:
                continue
    return errors.XvolError(text)


def decode(data: bytes | memoryview) -> Message:
    """The message ``data`` encodes; :class:`IntegrityError` if it is malformed."""
    view = memoryview(data)
    try:
        (head_len,) = struct.unpack_from("<I", view, 0)
        head = json.loads(bytes(view[4 : 4 + head_len]))
        at = 4 + head_len
        buffers = []
        for size in head["sizes"]:
            buffers.append(view[at : at + int(size)])
            at += int(size)
        if at != len(view):
            raise IntegrityError(f"message has {len(view) - at} trailing bytes")
        message = _decode_value(head["message"], buffers)
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise IntegrityError(f"malformed message: {exc}") from exc
    if not isinstance(message, Message):
        raise IntegrityError(f"decoded a {type(message).__name__}, not a message")
    return message


# --------------------------------------------------------------------------------------------
# Frames over a socket
# --------------------------------------------------------------------------------------------

MAX_FRAME = 1 << 30


def _send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack("<Q", len(payload)) + payload)


def _recv_exact(sock: socket.socket, count: int) -> bytes:
    out = bytearray(count)
    view = memoryview(out)
    got = 0
    while got < count:
        n = sock.recv_into(view[got:], count - got)
        if n == 0:
            raise ConnectionError("connection closed mid-frame")
        got += n
    return bytes(out)


def _recv_frame(sock: socket.socket) -> bytes:
    (length,) = struct.unpack("<Q", _recv_exact(sock, 8))
    if length > MAX_FRAME:
        raise ConnectionError(f"frame of {length} bytes exceeds the limit")
    return _recv_exact(sock, length)


class SocketServer:
    """Serves ``endpoint`` on ``host:port`` (port 0: any free port; see :attr:`address`).

    Life cycle: construct (binds and listens) -> :meth:`start` (a daemon thread accepts
    connections, one thread each) -> :meth:`close`."""

    def __init__(self, endpoint: Endpoint, host: str = "127.0.0.1", port: int = 0) -> None:
        self.endpoint = endpoint
        self._listener = socket.create_server((host, port))
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._lock = threading.Lock()  # the endpoint serves one request at a time
        self._threads: list[threading.Thread] = []
        self._closed = False

    def start(self) -> SocketServer:
        """Start accepting connections; returns self."""
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    request = decode(_recv_frame(conn))
                except (ConnectionError, OSError):
                    return
                except IntegrityError as error:
                    _send_frame(conn, encode(ErrorReply(error)))
                    continue
                with self._lock:
                    reply = _answer(self.endpoint, request)
                try:
                    _send_frame(conn, encode(reply))
                except OSError:
                    return

    def close(self) -> None:
        """Stop accepting; open connections end when their clients close."""
        self._closed = True
        self._listener.close()


class SocketLink(Link):
    """The caller side over TCP: each call sends one frame and blocks for the reply frame.
    No clock (:meth:`now` is 0.0), no window, no throttle; counts messages and bytes of the
    encoded frames."""

    def __init__(self, address: tuple[str, int], *, timeout: float = 30.0) -> None:
        super().__init__()
        self._sock = socket.create_connection(address, timeout=timeout)

    def now(self) -> float:
        """Always 0.0: this transport keeps no clock (no wall clock in the kit's logic)."""
        return 0.0

    def _start(self, request: Message, channel: Channel) -> Pending:
        payload = encode(request)
        try:
            _send_frame(self._sock, payload)
            answer = _recv_frame(self._sock)
        except (OSError, ConnectionError) as exc:
            return _Done(LinkDownError(f"connection to the source site failed: {exc}"))
        reply = decode(answer)
        for stats in (self.stats, channel.stats):
            stats.count(len(payload) + 8)
            stats.count(len(answer) + 8)
            stats.replies += 1
        return _Done(reply)

    def close(self) -> None:
        """Close the connection."""
        self._sock.close()


__all__ = ["SocketLink", "SocketServer", "decode", "encode"]
