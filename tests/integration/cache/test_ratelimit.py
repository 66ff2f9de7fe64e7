"""CL.THROTTLE against a real jobcached: redis-cell's reply shape, errors and stored state."""

from __future__ import annotations

import time

import pytest
import redis

from tests.conftest import RawClient, ServerProcess
from tests.integration.cache.test_strings import Local


def test_readme_example_and_burst(server: ServerProcess) -> None:
    r = server.client()
    assert r.execute_command("CL.THROTTLE", "user123", 15, 30, 60) == [0, 16, 15, -1, 2]
    for expected_remaining in range(14, -1, -1):
        reply = r.execute_command("cl.throttle", "user123", 15, 30, 60)
        assert reply[:4] == [0, 16, expected_remaining, -1]
    limited = r.execute_command("CL.THROTTLE", "user123", 15, 30, 60)
    assert limited[:3] == [1, 16, 0]
    assert 1 <= limited[3] <= 2 and 31 <= limited[4] <= 32


def test_state_is_an_ordinary_string_key_with_a_ttl(server: ServerProcess) -> None:
    r = server.client()
    before_ns = time.time_ns()
    r.execute_command("CL.THROTTLE", "limiter:a", 4, 1, 10, 2)  # 2 tokens at 10 s each
    tat = int(r.get("limiter:a"))
    assert before_ns + 19 * 10**9 < tat < time.time_ns() + 21 * 10**9
    assert 19_000 < r.pttl("limiter:a") <= 20_000
    assert r.type("limiter:a") == b"string"
    r.delete("limiter:a")  # deleting the key resets the limiter
    assert r.execute_command("CL.THROTTLE", "limiter:a", 4, 1, 10, 0) == [0, 5, 5, -1, 0]
    assert r.exists("limiter:a") == 0  # a peek on a fresh key stores nothing


def test_resp3_reply_is_the_same_array(server: ServerProcess) -> None:
    r = server.client(protocol=3)
    assert r.execute_command("CL.THROTTLE", "limiter:resp3", 1, 1, 1) == [0, 2, 1, -1, 1]


def test_key_is_declared_for_cluster_aware_clients(server: ServerProcess) -> None:
    raw = RawClient(server.port)
    raw.transcript(b"COMMAND GETKEYSANDFLAGS CL.THROTTLE k 1 2 3\r\n",
                   b"*1\r\n*2\r\n$1\r\nk\r\n*3\r\n+RW\r\n+access\r\n+update\r\n")
    raw.transcript(b"COMMAND GETKEYS GETL k\r\n", b"*1\r\n$1\r\nk\r\n")


@pytest.mark.parametrize(("args", "error"), [
    (("k", "x", 1, 1), "Cell error: Couldn't parse as integer: x"),
    (("k", 1, 1, "1.5"), "Cell error: Couldn't parse as integer: 1.5"),
    (("k", 1, 0, 60), "Cell error: Zero rates are not supported"),
    (("k", 1, 1, 60, -2), "Cell error: quantity must not be negative"),
    (("k", 1, 1), "Cell error: Usage: cl.throttle <key> <max_burst> <count per period> "
                  "<period> [<quantity>]"),
])
def test_errors(server: ServerProcess, args: tuple[object, ...], error: str) -> None:
    with pytest.raises(redis.ResponseError) as raised:
        server.client().execute_command("CL.THROTTLE", *args)
    assert str(raised.value) == error


def test_wrong_type_and_garbage_state(server: ServerProcess) -> None:
    r = server.client()
    r.rpush("limiter:list", "x")
    with pytest.raises(redis.ResponseError, match=r"^WRONGTYPE"):
        r.execute_command("CL.THROTTLE", "limiter:list", 1, 1, 1)
    r.set("limiter:text", "abc")
    with pytest.raises(redis.ResponseError, match=r"^Cell error: invalid digit found in string$"):
        r.execute_command("CL.THROTTLE", "limiter:text", 1, 1, 1)


def test_wire_bytes(server: ServerProcess) -> None:
    raw = RawClient(server.port)
    raw.transcript(b"CL.THROTTLE limiter:wire 0 1 1 0\r\n",
                   b"*5\r\n:0\r\n:1\r\n:1\r\n:-1\r\n:0\r\n")
    raw.transcript(b"CL.THROTTLE limiter:wire 0 0 1\r\n",
                   b"-Cell error: Zero rates are not supported\r\n")


def test_redis_cell_sequence_through_the_command_and_its_effects() -> None:
    """redis-cell's own case table (limit 5, 1 token/s) on a manual clock, through the
    command: replies in whole seconds, and the effects a replica gets carry absolute times."""
    local = Local()
    start = local.clock.now_ms()
    # (offset ms, quantity, reply)
    cases = [(0, 6, [1, 5, 5, -1, 0]), (0, 1, [0, 5, 4, -1, 1]), (0, 1, [0, 5, 3, -1, 2]),
             (0, 1, [0, 5, 2, -1, 3]), (0, 1, [0, 5, 1, -1, 4]), (0, 1, [0, 5, 0, -1, 5]),
             (0, 1, [1, 5, 0, 1, 5]), (3000, 1, [0, 5, 2, -1, 3]), (3100, 1, [0, 5, 1, -1, 4]),
             (4000, 1, [0, 5, 1, -1, 4]), (8000, 1, [0, 5, 4, -1, 1]),
             (9500, 1, [0, 5, 4, -1, 1]), (9500, 0, [0, 5, 4, -1, 1]),
             (9500, 2, [0, 5, 2, -1, 3]), (9500, 5, [1, 5, 2, 3, 3])]
    for offset, quantity, reply in cases:
        local.clock.advance(start + offset - local.clock.now_ms())
        before = local.state.backlog.count
        assert local("CL.THROTTLE", "cell", "4", "1", "1", str(quantity)) == reply, offset
        effects = local.state.backlog.last(local.state.backlog.count - before) if (
            local.state.backlog.count > before) else []
        if reply[0]:
            assert effects == []  # a refused request changes nothing
        else:
            tat = int(local("GET", "cell"))  # unix ns; the key lives until then (in ms)
            # an expired TAT key is reaped (and its DEL propagated) before the new one is set
            assert effects[-1] == [b"SET", b"cell", b"%d" % tat, b"PXAT",
                                   b"%d" % (tat // 1_000_000)]
            assert effects[:-1] in ([], [[b"DEL", b"cell"]])
