"""The asyncio Protocol driven by a fake transport: no sockets (uvicorn's approach)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jobcached.clock import ManualClock
from jobcached.commands import dispatch
from jobcached.commands.registry import load_all
from jobcached.config import Config
from jobcached.server.connection import RespProtocol, is_local_address
from jobcached.server.state import ServerState

load_all()


class FakeTransport:
    def __init__(self, peer: Any = ("127.0.0.1", 5555)) -> None:
        self.peer = peer
        self.writes: list[bytes] = []
        self.closed = False
        self.reading = True
        self.buffered = 0  # pretend bytes the client has not read yet

    def get_extra_info(self, name: str) -> Any:
        return {"peername": self.peer, "sockname": ("127.0.0.1", 7380)}.get(name)

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        self.high = high

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


def connect(config: Config | None = None, peer: Any = ("127.0.0.1", 5555)
            ) -> tuple[RespProtocol, FakeTransport, ServerState]:
    state = ServerState(config or Config(), ManualClock())
    protocol = RespProtocol(state, dispatch.execute)
    transport = FakeTransport(peer)
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport, state


def test_pipelined_commands_get_one_write() -> None:
    protocol, transport, _ = connect()
    protocol.data_received(b"PING\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\nPING\r\n")
    assert transport.writes == [b"+PONG\r\n$1\r\nx\r\n+PONG\r\n"]


def test_partial_command_waits_for_the_rest() -> None:
    protocol, transport, _ = connect()
    protocol.data_received(b"*2\r\n$4\r\nECHO\r\n$5\r\nhel")
    assert transport.writes == []
    protocol.data_received(b"lo\r\n")
    assert transport.writes == [b"$5\r\nhello\r\n"]


def test_protected_mode_denies_remote_clients_without_password() -> None:
    _, transport, state = connect(peer=("10.1.2.3", 4000))
    assert transport.writes[0].startswith(b"-DENIED ")
    assert transport.closed
    assert not state.clients


def test_protected_mode_off_or_password_set_admits_remote_clients() -> None:
    config = Config()
    config.protected_mode = False
    _, transport, _ = connect(config, peer=("10.1.2.3", 4000))
    assert not transport.closed
    config = Config()
    config.requirepass = "pw"
    protocol, transport, _ = connect(config, peer=("10.1.2.3", 4000))
    protocol.data_received(b"PING\r\n")
    assert transport.writes == [b"-NOAUTH Authentication required.\r\n"]


@pytest.mark.parametrize(("peer", "local"), [
    (("127.0.0.1", 1), True), (("127.5.5.5", 1), True), (("::1", 1, 0, 0), True),
    (("::ffff:127.0.0.1", 1, 0, 0), True), (("10.0.0.1", 1), False), (("::ffff:8.8.8.8", 1), False),
    ("", True), (None, True),
])
def test_local_addresses(peer: Any, local: bool) -> None:
    assert is_local_address(peer) is local


def test_maxclients_rejects_with_redis_error() -> None:
    config = Config()
    config.maxclients = 1
    state = ServerState(config, ManualClock())
    first = RespProtocol(state, dispatch.execute)
    first.connection_made(FakeTransport())  # type: ignore[arg-type]
    second = RespProtocol(state, dispatch.execute)
    transport = FakeTransport()
    second.connection_made(transport)  # type: ignore[arg-type]
    assert transport.writes == [b"-ERR max number of clients reached\r\n"]
    assert transport.closed


def test_output_backlog_pauses_reading_and_resumes() -> None:
    config = Config()
    config.output_buffer_high_water = 1000
    protocol, transport, _ = connect(config)

    async def scenario() -> None:
        protocol.data_received(b"PING\r\n" * 1000)  # 7000 bytes of replies wanted
        first = b"".join(transport.writes)
        assert 1000 < len(first) < 7000, "stop running commands once a batch crosses the mark"
        assert not transport.reading
        protocol.pause_writing()
        protocol.resume_writing()  # the client read: the rest runs
        for _ in range(20):
            await asyncio.sleep(0)
        assert b"".join(transport.writes) == b"+PONG\r\n" * 1000
        assert transport.reading

    asyncio.run(scenario())


def test_client_reply_off_and_skip() -> None:
    protocol, transport, _ = connect()
    protocol.data_received(b"CLIENT REPLY OFF\r\nPING\r\nCLIENT REPLY ON\r\nPING\r\n")
    protocol.data_received(b"CLIENT REPLY SKIP\r\nPING\r\nECHO x\r\n")
    assert b"".join(transport.writes) == b"+OK\r\n+PONG\r\n$1\r\nx\r\n"


def test_protocol_error_replies_then_closes() -> None:
    async def scenario() -> None:
        protocol, transport, state = connect()
        protocol.data_received(b"PING\r\n*1\r\n$-5\r\nPING\r\n")
        assert transport.writes == [b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"]
        await asyncio.sleep(0)
        assert transport.closed
        assert state.stats.protocol_errors == 1

    asyncio.run(scenario())
