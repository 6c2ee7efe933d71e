"""Tests of the inter-site link (xvol.reference.mirror.link): the direct link answers in place
and counts; the simulated link's time is exactly size/bandwidth plus latency per hop; seeded
loss is retransmitted deterministically, and exhausted retries, cuts (by time, message count,
bytes) end in typed LinkErrors; restore brings a cut link back; a channel's throttle bounds its
rate in simulated time; typed endpoint errors travel back as the same type."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.errors import InvalidArgumentError, NotFoundError, StateError, UnavailableError
from xvol.reference.mirror.link import (
    Cut,
    DirectLink,
    LinkDownError,
    LinkError,
    LinkTimeoutError,
    Message,
    Process,
    SimulatedLink,
    run_sync,
)


@dataclass(frozen=True)
class Ping(Message):
    payload: int
    reply_payload: int = 0
    fail: bool = False

    def payload_size(self) -> int:
        return self.payload


@dataclass(frozen=True)
class Pong(Message):
    payload: int

    def payload_size(self) -> int:
        return self.payload


class Echo:
    def __init__(self) -> None:
        self.calls = 0

    def handle(self, request: Message) -> Message:
        self.calls += 1
        assert isinstance(request, Ping)
        if request.fail:
            raise NotFoundError("no such thing at the source")
        return Pong(request.reply_payload)


def run(env: simpy.Environment, process: Process[Message]) -> Message:
    proc = env.process(process)
    env.run(proc)
    result: Message = proc.value
    return result


def test_direct_link_answers_in_place_and_counts_both_messages() -> None:
    echo = Echo()
    link = DirectLink(echo)
    channel = link.channel("r1")
    reply = run_sync(channel.request(Ping(100, 200)))
    assert isinstance(reply, Pong) and reply.payload == 200
    size = 2 * Message.HEADER_BYTES + 300
    assert (link.stats.messages, link.stats.bytes, link.stats.replies) == (2, size, 1)
    assert (channel.stats.messages, channel.stats.bytes) == (2, size)
    assert link.now() == 0.0 and not link.timed


def test_typed_endpoint_error_is_raised_again_at_the_caller() -> None:
    with pytest.raises(NotFoundError, match="no such thing"):
        run_sync(DirectLink(Echo()).channel("r").request(Ping(0, fail=True)))
    env = simpy.Environment()
    link = SimulatedLink(env, Echo(), bandwidth=1000.0)
    with pytest.raises(NotFoundError):
        run(env, link.channel("r").request(Ping(0, fail=True)))


def test_run_sync_refuses_a_process_that_waits_on_simulated_time() -> None:
    env = simpy.Environment()
    link = SimulatedLink(env, Echo(), bandwidth=1000.0)
    with pytest.raises(StateError, match="simulated time"):
        run_sync(link.channel("r").request(Ping(10)))


def test_simulated_round_trip_takes_transmission_plus_latency_each_way() -> None:
    env = simpy.Environment()
    link = SimulatedLink(env, Echo(), bandwidth=1000.0, latency=0.5)
    request = Ping(936, 1936)  # 1000 bytes out, 2000 bytes back
    reply = run(env, link.channel("r").request(request))
    assert isinstance(reply, Pong)
    assert env.now == pytest.approx(1.0 + 0.5 + 2.0 + 0.5)
    assert link.now() == env.now and link.timed


def test_one_wire_per_direction_serialises_concurrent_messages() -> None:
    env = simpy.Environment()
    link = SimulatedLink(env, Echo(), bandwidth=1000.0, latency=0.0)
    channel = link.channel("r")
    ends: list[float] = []

    def one() -> Process[None]:
        yield from channel.request(Ping(936))
        ends.append(float(env.now))

    for _ in range(3):
        env.process(one())
    env.run()
    # each request occupies the forward wire 1 s; replies (64 B) follow on the other wire
    assert ends == pytest.approx([1.064, 2.064, 3.064])


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), loss=st.floats(0.05, 0.4))
def test_seeded_loss_is_retransmitted_deterministically(seed: int, loss: float) -> None:
    def once() -> tuple[int, int, int, float]:
        env = simpy.Environment()
        link = SimulatedLink(
            env, Echo(), bandwidth=1e6, latency=0.01, loss=loss, seed=seed, max_retries=50
        )
        channel = link.channel("r")

        def many() -> Process[None]:
            for _ in range(30):
                reply = yield from channel.request(Ping(100, 100))
                assert isinstance(reply, Pong)

        env.process(many())
        env.run()
        stats = link.stats
        assert stats.replies == 30
        # every lost transmission made its request go again
        assert stats.retransmissions == stats.lost
        # a lost request costs one message, a lost reply two (its request was delivered)
        assert 60 + stats.lost <= stats.messages <= 60 + 2 * stats.lost
        return stats.messages, stats.lost, stats.retransmissions, float(env.now)

    assert once() == once()


def test_all_attempts_lost_raises_link_timeout_after_the_retries() -> None:
    env = simpy.Environment()
    link = SimulatedLink(env, Echo(), bandwidth=1e6, loss=0.999, seed=1, rto=2.0, max_retries=2)
    with pytest.raises(LinkTimeoutError) as info:
        run(env, link.channel("r").request(Ping(0)))
    assert isinstance(info.value, UnavailableError)
    assert link.stats.retransmissions == 2 and link.stats.lost == 3
    assert env.now >= 3 * 2.0


@pytest.mark.parametrize(
    "cut",
    [Cut(at_message=3), Cut(after_bytes=2 * 64 + 10), Cut(at_time=0.25)],
    ids=["message", "bytes", "time"],
)
def test_cut_link_raises_link_down_and_restore_brings_it_back(cut: Cut) -> None:
    env = simpy.Environment()
    echo = Echo()
    link = SimulatedLink(env, echo, bandwidth=1000.0, rto=0.5, max_retries=1, cut=cut)
    channel = link.channel("r")
    assert isinstance(run(env, channel.request(Ping(0))), Pong)  # 2 messages, 0.128 s
    with pytest.raises(LinkDownError, match="link down"):
        run(env, channel.request(Ping(0)))
    assert link.is_down
    calls = echo.calls
    link.restore()
    assert not link.is_down
    assert isinstance(run(env, channel.request(Ping(0))), Pong)
    assert echo.calls == calls + 1


def test_cut_now_loses_a_message_already_on_the_wire() -> None:
    env = simpy.Environment()
    link = SimulatedLink(env, Echo(), bandwidth=100.0, rto=1.0, max_retries=0)
    proc = env.process(link.channel("r").request(Ping(936)))  # 10 s on the wire
    env.run(until=5.0)
    link.cut_now()
    with pytest.raises(LinkDownError):
        env.run(proc)


def test_throttle_bounds_a_channel_rate_in_simulated_time() -> None:
    env = simpy.Environment()
    link = SimulatedLink(env, Echo(), bandwidth=1e6, latency=0.001)
    slow = link.channel("slow", throttle=10_000.0)
    fast = link.channel("fast")
    finished: dict[str, float] = {}

    def send(channel_name: str) -> Process[None]:
        channel = link.channel(channel_name)
        for _ in range(20):
            yield from channel.request(Ping(936))
        finished[channel_name] = float(env.now)

    env.process(send("slow"))
    env.process(send("fast"))
    env.run()
    forward = 20 * 1000
    # at most throttle * t + one message may have left on the throttled channel
    assert finished["slow"] >= (forward - 1000) / 10_000.0
    assert forward <= 10_000.0 * finished["slow"] + 1000
    assert finished["fast"] < 0.1 < finished["slow"]
    assert fast.stats.messages == slow.stats.messages == 40


def test_bad_parameters_are_refused() -> None:
    env = simpy.Environment()
    with pytest.raises(InvalidArgumentError):
        SimulatedLink(env, Echo(), bandwidth=0.0)
    with pytest.raises(InvalidArgumentError):
        SimulatedLink(env, Echo(), bandwidth=1.0, loss=1.0)
    with pytest.raises(InvalidArgumentError):
        Cut(at_message=0)
    with pytest.raises(InvalidArgumentError):
        DirectLink(Echo()).channel("r", throttle=-1.0)


def test_tamper_hook_changes_replies_in_flight() -> None:
    env = simpy.Environment()
    link = SimulatedLink(
        env, Echo(), bandwidth=1e6, tamper=lambda m: Pong(7) if isinstance(m, Pong) else m
    )
    reply = run(env, link.channel("r").request(Ping(0, 1)))
    assert isinstance(reply, Pong) and reply.payload == 7


def test_a_failed_call_resets_the_link_and_no_request_in_flight_executes_later() -> None:
    """Calls in flight at a cut: once one call fails (every retransmission lost), every other
    call in flight on the link fails at that instant, and a request that had not reached the
    endpoint never does, even when the link comes back at once."""
    env = simpy.Environment()
    echo = Echo()
    link = SimulatedLink(env, echo, bandwidth=1e4, rto=1.0, max_retries=2)
    channel = link.channel("r")
    outcome: dict[str, object] = {}

    def caller() -> Process[None]:
        first = channel.start(Ping(0))
        yield env.timeout(1.5)
        second = channel.start(Ping(0))  # a window: two requests in flight
        try:
            yield from first.result()
        except LinkDownError:
            outcome["failed_at"] = float(env.now)
            link.restore()  # the sites reconnect at the very moment the caller gave up
        try:
            yield from second.result()
        except LinkDownError as error:
            outcome["second"] = (float(env.now), str(error))

    link.cut_now()
    env.process(caller())
    env.run(until=20.0)
    failed_at = outcome["failed_at"]
    assert isinstance(failed_at, float)
    assert echo.calls == 0  # nothing sent before the failure executed afterwards
    second = outcome["second"]
    assert isinstance(second, tuple) and second[0] == failed_at and "reset" in second[1]
    assert link.stats.resets == 1
    assert isinstance(run(env, channel.request(Ping(0))), Pong)  # a new call goes through
    assert echo.calls == 1


def test_a_cancelled_call_never_reaches_the_endpoint() -> None:
    env = simpy.Environment()
    echo = Echo()
    link = SimulatedLink(env, echo, bandwidth=100.0, latency=0.5)
    channel = link.channel("r")
    pending = channel.start(Ping(936))  # 10 s on the wire
    env.run(until=4.0)
    pending.cancel()
    env.run(until=30.0)
    assert echo.calls == 0
    with pytest.raises(LinkError, match="cancelled"):
        run(env, pending.result())
    done = channel.start(Ping(0))
    assert isinstance(run(env, done.result()), Pong)
    done.cancel()  # no effect on a finished call
    assert echo.calls == 1
    DirectLink(echo).channel("d").start(Ping(0)).cancel()  # a call without time: no-op
