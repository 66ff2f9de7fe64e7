"""MEMORY, OBJECT REFCOUNT, LATENCY's event monitor, DEBUG, LOLWUT and LASTSAVE.

Shapes and error texts are compared with a real redis-server; figures (bytes, milliseconds)
are ours, so they are checked for plausibility, not equality.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.conftest import RedisServerProcess, ServerProcess


def reply_or_error(r: redis.Redis, *args: Any) -> Any:
    try:
        return r.execute_command(*args)
    except redis.ResponseError as exc:
        return f"error: {exc}"


def as_map(reply: Any) -> dict[bytes, Any]:
    """A map reply as a dict, whether it came as a RESP3 map or a flat RESP2 array."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


@pytest.fixture(scope="module")
def debug_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with DEBUG enabled for local clients (the tests' loopback ones) and the
    latency monitor at 1 ms."""
    proc = ServerProcess(tmp_path_factory.mktemp("debug"), "--enable-debug-command", "local",
                         "--latency-monitor-threshold", "1").wait_ready()
    yield proc
    proc.stop()


def test_debug_is_refused_by_default_like_redis(server: ServerProcess,
                                                redis_server: RedisServerProcess) -> None:
    for args in (("DEBUG", "SLEEP", "0"), ("DEBUG", "HELP"), ("DEBUG", "NOSUCH")):
        ours = reply_or_error(server.client(), *args)
        assert ours == reply_or_error(redis_server.client(), *args)
        assert ours.startswith("error: DEBUG command not allowed. If the enable-debug-command")


def test_debug_sleep_is_a_command_latency_event(debug_server: ServerProcess) -> None:
    r = debug_server.client()
    r.execute_command("LATENCY", "RESET")
    before = int(time.time())
    assert r.execute_command("DEBUG", "SLEEP", "0.01") in (b"OK", True)
    latest = {row[0]: row[1:] for row in r.execute_command("LATENCY", "LATEST")}
    at, last_ms, max_ms = latest[b"command"]
    assert before <= at <= time.time() + 1 and 10 <= last_ms <= max_ms
    history = r.execute_command("LATENCY", "HISTORY", "command")
    assert history[-1] == [at, last_ms]
    assert r.execute_command("LATENCY", "HISTORY", "never-seen") == []
    graph = r.execute_command("LATENCY", "GRAPH", "command").decode()
    assert graph.startswith(f"command - high {last_ms} ms, low {last_ms} ms")
    assert "latency spikes" in r.execute_command("LATENCY", "DOCTOR").decode()
    assert r.execute_command("LATENCY", "RESET", "command", "nothing") == 1
    assert r.execute_command("LATENCY", "LATEST") == []


def test_fast_commands_under_the_threshold_are_not_recorded(debug_server: ServerProcess) -> None:
    r = debug_server.client()
    r.execute_command("LATENCY", "RESET")
    for _ in range(20):
        r.get("k")
    assert r.execute_command("LATENCY", "LATEST") == []


def test_latency_replies_like_redis_when_off(server: ServerProcess,
                                             redis_server: RedisServerProcess) -> None:
    for args in (("LATENCY", "LATEST"), ("LATENCY", "HISTORY", "command"),
                 ("LATENCY", "GRAPH", "command"), ("LATENCY", "RESET"),
                 ("LATENCY", "HISTORY"), ("LATENCY", "NOSUCH")):
        assert reply_or_error(server.client(), *args) == reply_or_error(
            redis_server.client(), *args), args
    doctor = server.client().execute_command("LATENCY", "DOCTOR").decode()
    assert "Latency monitoring is disabled" in doctor


def test_debug_object_and_help(debug_server: ServerProcess) -> None:
    r = debug_server.client()
    r.set("obj", "hello")
    line = r.execute_command("DEBUG", "OBJECT", "obj")
    line = line.decode() if isinstance(line, bytes) else line
    assert re.fullmatch(r"Value at:0x[0-9a-f]+ refcount:1 encoding:embstr serializedlength:\d+ "
                        r"lru:\d+ lru_seconds_idle:\d+", line), line
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.execute_command("DEBUG", "OBJECT", "missing")
    with pytest.raises(redis.ResponseError, match=re.escape(
            "unknown subcommand or wrong number of arguments for 'nosuch'. Try DEBUG HELP.")):
        r.execute_command("DEBUG", "nosuch")
    help_lines = [line.decode() for line in r.execute_command("DEBUG", "HELP")]
    assert help_lines[0].startswith("DEBUG <subcommand>") and "SLEEP <seconds>" in help_lines
    for args in (("QUICKLIST-PACKED-THRESHOLD", "100"), ("CHANGE-REPL-ID",), ("JMAP",)):
        assert r.execute_command("DEBUG", *args) in (b"OK", True)


def test_debug_set_active_expire_stops_active_expiry(debug_server: ServerProcess) -> None:
    r = debug_server.client()
    r.flushall()
    assert r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0") in (b"OK", True)
    try:
        r.set("short", "v", px=1)
        time.sleep(0.3)  # three cron cycles: active expiry would have reclaimed it
        assert r.dbsize() == 1  # still stored (DBSIZE counts keys not yet reclaimed)
    finally:
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    deadline = time.monotonic() + 5
    while r.dbsize():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_object_refcount_and_memory_usage_like_redis(server: ServerProcess,
                                                     redis_server: RedisServerProcess) -> None:
    calls = [("OBJECT", "REFCOUNT", "small-int"), ("OBJECT", "REFCOUNT", "big-int"),
             ("OBJECT", "REFCOUNT", "text"), ("OBJECT", "REFCOUNT", "list"),
             ("OBJECT", "REFCOUNT", "missing"), ("MEMORY", "USAGE", "missing"),
             ("MEMORY", "USAGE", "text", "SAMPLES"), ("MEMORY", "USAGE", "text", "SAMPLES", "x"),
             ("MEMORY", "USAGE", "text", "SAMPLES", "-1"), ("MEMORY", "USAGE", "text", "OTHER"),
             ("MEMORY", "PURGE"), ("MEMORY", "NOSUCH"), ("MEMORY", "USAGE")]
    ours, theirs = server.client(), redis_server.client()
    for r in (ours, theirs):
        r.flushall()
        r.mset({"small-int": "123", "big-int": "12345", "text": "hello"})
        r.rpush("list", "a", "b")
    for call in calls:
        assert reply_or_error(ours, *call) == reply_or_error(theirs, *call), call
    for key in ("text", "list"):
        usage = ours.execute_command("MEMORY", "USAGE", key, "SAMPLES", "0")
        assert 50 < usage < 2000


def test_memory_stats_doctor_and_malloc_stats(server: ServerProcess,
                                              redis_server: RedisServerProcess) -> None:
    for protocol in (2, 3):
        ours = server.client(protocol=protocol)
        theirs = redis_server.client(protocol=protocol)
        ours.set("some", "value")
        theirs.set("some", "value")
        our_stats = as_map(ours.execute_command("MEMORY", "STATS"))
        their_stats = as_map(theirs.execute_command("MEMORY", "STATS"))
        assert list(our_stats) == list(their_stats)
        assert our_stats[b"keys.count"] == ours.dbsize()
        assert 0 < our_stats[b"dataset.bytes"] <= our_stats[b"total.allocated"]
    assert "Sam" in server.client().execute_command("MEMORY", "DOCTOR").decode()
    assert b"generation 0" in server.client().execute_command("MEMORY", "MALLOC-STATS")


def test_lastsave_and_lolwut(server: ServerProcess) -> None:
    r = server.client()
    assert abs(r.lastsave().timestamp() - time.time()) < 3600
    assert "Redis ver. " in r.lolwut().decode()
    assert "Redis ver. " in r.lolwut(5, 6, 7, 8).decode()
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.execute_command("LOLWUT", "VERSION", "x")
