"""Pipelines of multibulk requests (what redis-benchmark and client libraries send) through the
Protocol with a fake transport: every command must see the state its predecessors left, even
though the whole read is framed at once and the common case skips dispatch's checks."""

from __future__ import annotations

import asyncio

from jobcached.commands.registry import lookup
from jobcached.config import Config
from jobcached.server.state import LATENCY_SLOTS, REJECTED, calls_of
from tests.unit.net.test_protocol import connect


def multibulk(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def pipeline(*commands: tuple[bytes, ...]) -> bytes:
    return b"".join(multibulk(*c) for c in commands)


def test_a_transaction_in_one_read() -> None:
    protocol, transport, _ = connect()
    protocol.data_received(pipeline((b"MULTI",), (b"SET", b"k", b"v"), (b"INCR", b"n"),
                                    (b"EXEC",), (b"GET", b"k")))
    assert transport.writes == [b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:1\r\n$1\r\nv\r\n"]


def test_subscribe_mode_starts_at_the_next_command_of_the_read() -> None:
    protocol, transport, _ = connect()
    protocol.data_received(pipeline((b"SUBSCRIBE", b"ch"), (b"GET", b"k"), (b"PING",)))
    assert transport.writes == [
        b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
        b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
        b"RESET are allowed in this context\r\n"
        b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"]


def test_authentication_takes_effect_within_a_read() -> None:
    config = Config()
    config.requirepass = "pw"
    protocol, transport, _ = connect(config)
    protocol.data_received(pipeline((b"GET", b"k"), (b"AUTH", b"pw"), (b"SET", b"k", b"v"),
                                    (b"GET", b"k")))
    assert transport.writes == [b"-NOAUTH Authentication required.\r\n+OK\r\n+OK\r\n"
                                b"$1\r\nv\r\n"]


def test_client_reply_modes_in_one_read() -> None:
    protocol, transport, _ = connect()
    protocol.data_received(pipeline((b"CLIENT", b"REPLY", b"OFF"), (b"SET", b"a", b"1"),
                                    (b"CLIENT", b"REPLY", b"ON"), (b"INCR", b"a"),
                                    (b"CLIENT", b"REPLY", b"SKIP"), (b"INCR", b"a"),
                                    (b"GET", b"a")))
    assert transport.writes == [b"+OK\r\n:2\r\n$1\r\n3\r\n"]


def test_errors_in_a_pipeline_do_not_stop_it() -> None:
    protocol, transport, state = connect()
    protocol.data_received(pipeline((b"NOPE", b"x"), (b"GET",), (b"sEt", b"k", b"v"),
                                    (b"LPUSH", b"k", b"x"), (b"get", b"k")))
    assert transport.writes == [
        b"-ERR unknown command 'NOPE', with args beginning with: 'x' \r\n"
        b"-ERR wrong number of arguments for 'get' command\r\n"
        b"+OK\r\n"
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        b"$1\r\nv\r\n"]
    assert state.stats.total_commands_processed == 5
    assert state.stats.total_error_replies == 3
    assert state.errorstats == {"ERR": 2, "WRONGTYPE": 1}


def test_every_pipelined_command_is_counted_and_timed() -> None:
    protocol, _, state = connect()
    set_cmd = lookup(b"SET")
    assert set_cmd is not None
    calls_before = calls_of(state.command_stats[set_cmd])
    protocol.data_received(pipeline(*[(b"SET", b"k", b"v")] * 16))
    assert calls_of(state.command_stats[set_cmd]) - calls_before == 16
    assert state.stats.total_commands_processed == 16
    histogram = state.command_stats[set_cmd]
    assert sum(histogram[:LATENCY_SLOTS]) == 16 and histogram[REJECTED] == 0
    assert protocol.session is not None and protocol.session.last_command == "set"


def test_a_lowered_bulk_limit_applies_to_the_rest_of_the_read() -> None:
    async def scenario() -> None:
        protocol, transport, _ = connect()
        protocol.data_received(pipeline((b"CONFIG", b"SET", b"proto-max-bulk-len", b"1mb"),
                                        (b"SET", b"k", b"x" * 2_000_000)))
        assert transport.writes == [b"+OK\r\n-ERR Protocol error: invalid bulk length\r\n"]

    asyncio.run(scenario())
