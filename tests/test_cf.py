"""The CF protocol: frames round-trip, LPC and RPC are told apart and counted, typed errors
travel back as the same class, a node marked down refuses and nothing reaches it."""

from __future__ import annotations

import pytest

from xvol.errors import InvalidArgumentError, NotFoundError, UnavailableError
from xvol.reference.cluster.cf import (
    CFClient,
    CFReply,
    CFRequest,
    LatencyModel,
    SimulatedFabric,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    serve_frame,
)


def _fabric() -> tuple[SimulatedFabric, list[CFRequest]]:
    fabric = SimulatedFabric(LatencyModel(lpc_seconds=1e-6, rpc_seconds=1e-4))
    seen: list[CFRequest] = []

    def handler(request: CFRequest) -> CFReply:
        seen.append(request)
        if request.method == "missing":
            raise NotFoundError("no such thing")
        return CFReply(result={"echo": request.args}, payload=request.payload[::-1])

    for node in ("n1", "n2"):
        fabric.attach(node, lambda frame, h=handler: serve_frame(frame, h))
    return fabric, seen


def test_request_and_reply_frames_round_trip() -> None:
    request = CFRequest("dmodule", "vs/xv/DC1", "read", {"goid": 5, "n": [1, 2]}, b"\x00\xff")
    assert decode_request(encode_request(request)) == request
    reply = CFReply(result=[1, "a"], payload=b"xyz")
    assert decode_reply(encode_reply(reply)) == reply


def test_same_node_is_lpc_other_node_is_rpc_and_both_are_counted() -> None:
    fabric, seen = _fabric()
    client = CFClient("n1", fabric)
    reply = client.call("n1", CFRequest("dmodule", "", "x", {"a": 1}, b"abc"))
    assert reply.payload == b"cba" and reply.result == {"echo": {"a": 1}}
    client.call("n2", CFRequest("dmodule", "", "x", {}, b"12345"))
    counters = fabric.counters
    assert (counters.lpc_messages, counters.rpc_messages) == (1, 1)
    assert counters.rpc_bytes > 5 and counters.lpc_bytes > 3
    assert fabric.clock.now == pytest.approx(1e-6 + 1e-4 + counters.rpc_bytes / 1.25e9)
    assert len(seen) == 2


def test_typed_errors_come_back_as_the_same_class() -> None:
    fabric, _ = _fabric()
    with pytest.raises(NotFoundError, match="no such thing"):
        CFClient("n1", fabric).call("n2", CFRequest("dmodule", "", "missing"))


def test_a_node_marked_down_refuses_and_its_handler_never_runs() -> None:
    fabric, seen = _fabric()
    fabric.set_down("n2", True)
    with pytest.raises(UnavailableError):
        CFClient("n1", fabric).call("n2", CFRequest("dmodule", "", "x"))
    assert seen == [] and fabric.counters.refused == 1
    fabric.set_down("n2", False)
    CFClient("n1", fabric).call("n2", CFRequest("dmodule", "", "x"))
    assert len(seen) == 1


def test_garbage_frames_get_an_error_reply_not_an_exception() -> None:
    reply = decode_reply(serve_frame(b"nonsense", lambda r: CFReply()))
    assert reply.error_type == "InvalidArgumentError"
    with pytest.raises(InvalidArgumentError):
        decode_request(b"XCF1\x00\x00\x00\x05{}")
