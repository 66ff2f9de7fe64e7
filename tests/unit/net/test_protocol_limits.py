"""Output held behind a pending reply is pending output: it shows in `omem`, uses the budget of
the next commands and is subject to the client output buffer limits. Fake transport, manual
clock, no sockets.

`HOLD` is a test command whose reply is a Deferred the test resolves (as a durable write's or
a blocked command's reply is), installed by patching the dispatcher's `execute` (what the
connections here are given).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jobcached.clock import ManualClock
from jobcached.commands import dispatch
from jobcached.config import Config
from jobcached.net.outlimit import OutputLimit, OutputLimiter, output_limit
from jobcached.net.replies import Deferred
from jobcached.server.connection import RespProtocol
from jobcached.server.state import ServerState
from tests.unit.net.test_protocol import FakeTransport, connect

CHUNK = b"x" * 65536
ECHO = b"*2\r\n$4\r\nECHO\r\n$65536\r\n" + CHUNK + b"\r\n"


@pytest.fixture
def hold(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[bool], Deferred]]:
    """`hold(blocking)`: the Deferred the next HOLD command replies with."""
    pending: list[Deferred] = []
    real = dispatch.execute

    def execute(session: Any, argv: list[bytes]) -> Any:
        if argv[0].upper() == b"HOLD":
            return pending.pop(0)
        return real(session, argv)

    def make(blocking: bool) -> Deferred:
        deferred = Deferred(blocking=blocking)
        pending.append(deferred)
        return deferred

    monkeypatch.setattr(dispatch, "execute", execute)
    yield make


def client_list_field(state: ServerState, name: str) -> int:
    line = next(iter(state.clients.values())).describe()
    return int(dict(f.split("=", 1) for f in line.split())[name])


def subscribe(protocol: RespProtocol, transport: FakeTransport) -> None:
    protocol.data_received(b"HELLO 3\r\nSUBSCRIBE c\r\n")
    transport.writes.clear()


def publish(state: ServerState, times: int = 1) -> None:
    for _ in range(times):
        state.pubsub.publish(b"c", CHUNK)


def test_a_blocked_client_gets_its_pushes_before_the_reply_it_waits_for(
        hold: Callable[[bool], Deferred]) -> None:
    protocol, transport, state = connect()
    subscribe(protocol, transport)
    blocked = hold(True)
    protocol.data_received(b"PING\r\nHOLD\r\n")
    publish(state)
    assert b"".join(transport.writes) == (
        b"+PONG\r\n>3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$65536\r\n" + CHUNK + b"\r\n")
    blocked.resolve(b"done")
    assert transport.writes[-1] == b"$4\r\ndone\r\n"
    assert client_list_field(state, "omem") == 0


def test_pushes_parked_behind_a_pending_reply_count_in_omem(
        hold: Callable[[bool], Deferred]) -> None:
    protocol, transport, state = connect()
    subscribe(protocol, transport)
    durable = hold(False)
    protocol.data_received(b"HOLD\r\n")
    publish(state, 10)
    assert transport.writes == [], "pushes wait behind the pending reply"
    # Redis splits pending output into its 16 KiB static buffer (obl) and the rest (omem)
    parked = client_list_field(state, "obl") + client_list_field(state, "omem")
    assert parked > 10 * len(CHUNK)
    assert client_list_field(state, "tot-mem") >= parked
    durable.resolve(b"ok")
    assert b"".join(transport.writes).startswith(b"$2\r\nok\r\n>3\r\n")
    assert client_list_field(state, "omem") == 0


def test_parked_pushes_hit_the_pubsub_hard_limit(hold: Callable[[bool], Deferred]) -> None:
    config = Config()
    config.client_output_buffer_limit_pubsub = 1024**2
    protocol, transport, state = connect(config)
    subscribe(protocol, transport)
    durable = hold(False)
    protocol.data_received(b"HOLD\r\n")
    publish(state, 15)
    assert not transport.closed
    publish(state, 2)
    assert transport.closed
    assert state.stats.client_output_buffer_limit_disconnections == 1
    durable.resolve(b"late")
    assert transport.writes == [], "nothing more is written to a closed client"


def test_replies_parked_behind_a_pending_reply_hit_the_normal_hard_limit(
        hold: Callable[[bool], Deferred]) -> None:
    config = Config()
    config.client_output_buffer_limit = 1024**2
    config.output_buffer_high_water = 64 * 1024**2  # let the whole pipeline run at once
    protocol, transport, state = connect(config)
    hold(False)
    protocol.data_received(b"HOLD\r\n" + ECHO * 20)
    assert transport.writes == []
    assert transport.closed
    assert state.stats.client_output_buffer_limit_disconnections == 1


def test_parked_replies_use_the_budget_of_later_commands(
        hold: Callable[[bool], Deferred]) -> None:
    """A pipeline behind a reply that stays pending must stop at the high-water mark, not
    park a budget's worth per read; it goes on once the pending reply is out."""
    config = Config()
    config.output_buffer_high_water = 256 * 1024
    protocol, transport, _ = connect(config)
    durable = hold(False)

    async def scenario() -> None:
        protocol.data_received(b"HOLD\r\n" + ECHO * 40)
        for _ in range(20):
            await asyncio.sleep(0)
        parked = protocol.output_buffer_bytes()
        assert 256 * 1024 < parked < 512 * 1024
        assert not transport.reading
        durable.resolve(b"ok")
        for _ in range(200):
            await asyncio.sleep(0)
        assert b"".join(transport.writes).count(CHUNK) == 40
        assert transport.reading

    asyncio.run(scenario())


def test_soft_limit_closes_after_soft_seconds_above_it() -> None:
    config = Config()
    config.client_output_buffer_limit_pubsub_soft = 512 * 1024
    config.client_output_buffer_limit_pubsub_soft_seconds = 2
    state = ServerState(config, clock := ManualClock())
    protocol = RespProtocol(state, dispatch.execute)
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    subscribe(protocol, transport)
    transport.buffered = 600 * 1024  # the client stopped reading
    publish(state)
    clock.advance(2000)
    publish(state)
    assert not transport.closed, "not more than soft-seconds yet"
    clock.advance(1)
    publish(state)
    assert transport.closed


def test_dropping_below_the_soft_limit_restarts_its_clock() -> None:
    limit = OutputLimit(hard_bytes=0, soft_bytes=100, soft_seconds=1)
    limiter = OutputLimiter()
    assert not limiter.exceeded(150, limit, now_ms=0)
    assert not limiter.exceeded(50, limit, now_ms=900)
    assert not limiter.exceeded(150, limit, now_ms=1500)
    assert not limiter.exceeded(150, limit, now_ms=2500)
    assert limiter.exceeded(150, limit, now_ms=2501)


def test_hard_limit_is_reached_at_its_value_and_zero_disables() -> None:
    limiter = OutputLimiter()
    assert limiter.exceeded(100, OutputLimit(100, 0, 0), now_ms=0)
    assert not limiter.exceeded(99, OutputLimit(100, 0, 0), now_ms=0)
    assert not limiter.exceeded(10**12, OutputLimit(0, 0, 0), now_ms=0)


def test_the_class_is_pubsub_while_subscribed() -> None:
    config = Config()
    assert output_limit(config, subscribed=True) == OutputLimit(32 * 1024**2, 8 * 1024**2, 60)
    assert output_limit(config, subscribed=False) == OutputLimit(1024**3, 0, 0)
