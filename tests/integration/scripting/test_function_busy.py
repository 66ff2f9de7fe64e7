"""A function running past busy-reply-threshold, on jobcached and on redis-server 7.0, with
the same transcript: -BUSY naming FUNCTION KILL, FUNCTION STATS showing the running function,
SCRIPT KILL refused for a function and FUNCTION KILL for an EVAL, UNKILLABLE after a write.

Both servers run with `busy-reply-threshold` 100 ms. The function that writes stops by itself
(after 700 ms of redis.call('TIME')), since it cannot be killed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.differential import raw_call
from tests.integration.scripting.test_busy import in_background

LIB = """#!lua name=spin
redis.register_function('spin', function(keys, args) while true do end end)
redis.register_function('write_then_spin', function(keys, args)
  redis.call('set', keys[1], args[1])
  local start = redis.call('time')
  while true do
    local now = redis.call('time')
    if (now[1] - start[1]) * 1000000 + now[2] - start[2] > 700000 then return 'done' end
  end
end)
"""


def wait_busy(client: redis.Redis, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = raw_call(client, "PING")
        if isinstance(reply, tuple):
            return
        time.sleep(0.02)
    raise AssertionError("the server never answered -BUSY")


def stats(client: redis.Redis) -> Any:
    """FUNCTION STATS with the running time blanked (it differs from run to run)."""
    reply = raw_call(client, "FUNCTION", "STATS")
    if isinstance(reply, dict):  # RESP3
        assert isinstance(reply[b"running_script"][b"duration_ms"], int)
        reply[b"running_script"][b"duration_ms"] = "<duration_ms>"
    elif isinstance(reply, list) and isinstance(reply[1], list):
        assert reply[1][4] == b"duration_ms" and isinstance(reply[1][5], int)
        reply[1][5] = "<duration_ms>"
    return reply


def transcript(client: Callable[[], redis.Redis]) -> list[Any]:
    """The scenario, as the replies a second client sees; `client()` gives a new client."""
    other = client()
    other.ping()
    seen: list[Any] = [raw_call(other, "FUNCTION", "FLUSH"), raw_call(other, "FUNCTION", "LOAD",
                                                                        LIB)]
    runner = client()
    runner.ping()
    thread, result = in_background(lambda: raw_call(runner, "FCALL", "spin", 1, "k", "a1"))
    wait_busy(other)
    seen += [raw_call(other, "GET", "k"), stats(other), raw_call(other, "SCRIPT", "KILL"),
             raw_call(other, "MULTI"), raw_call(other, "GET", "k"), raw_call(other, "EXEC"),
             raw_call(other, "FUNCTION", "KILL")]
    thread.join(5)
    seen += [result, raw_call(other, "FUNCTION", "STATS")]

    thread, result = in_background(lambda: raw_call(runner, "EVAL", "while true do end", 0))
    wait_busy(other)
    seen += [raw_call(other, "FUNCTION", "STATS"), raw_call(other, "FUNCTION", "KILL"),
             raw_call(other, "SCRIPT", "KILL")]
    thread.join(5)
    seen.append(result)

    thread, result = in_background(lambda: raw_call(runner, "FCALL", "write_then_spin", 1, "w",
                                                    "v"))
    wait_busy(other)
    seen += [raw_call(other, "FUNCTION", "KILL"), raw_call(other, "SCRIPT", "KILL")]
    thread.join(5)
    seen += [result, raw_call(other, "GET", "w"), raw_call(other, "FUNCTION", "KILL")]
    runner.close()
    other.close()
    return seen


@pytest.mark.parametrize("protocol", [2, 3])
def test_busy_function_transcript_matches_redis(
        start_server: Callable[..., ServerProcess], redis_server: RedisServerProcess,
        protocol: int) -> None:
    ours = start_server("--busy-reply-threshold", "100")
    reference = redis_server.client()
    reference.config_set("busy-reply-threshold", 100)
    try:
        theirs = transcript(lambda: redis_server.client(protocol=protocol))
    finally:
        reference.config_set("busy-reply-threshold", 5000)
    assert transcript(lambda: ours.client(protocol=protocol)) == theirs
