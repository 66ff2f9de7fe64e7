"""Long and hostile scripts against a real server: -BUSY, SCRIPT KILL, UNKILLABLE, SHUTDOWN
NOSAVE, memory and recursion bounds, and scripts inside MULTI/EXEC.

`busy-reply-threshold` is lowered to 100 ms so a runaway script turns the server busy fast.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.conftest import RawClient, ServerProcess

BUSY_TEXT = ("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN "
             "NOSAVE.")


@pytest.fixture
def busy_server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """A server of its own: a test that fails may leave a script running."""
    return start_server("--busy-reply-threshold", "100")


def connected(server: ServerProcess) -> redis.Redis:
    """A client whose connection is open already: redis-py's connect handshake (CLIENT
    SETINFO) would get -BUSY if it ran while a script is busy."""
    client = server.client()
    client.ping()
    return client


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run `call` in a thread; its result (or exception) lands in the returned list."""
    result: list[Any] = []

    def target() -> None:
        try:
            result.append(call())
        except Exception as exc:  # the reply under test may be an error
            result.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, result


def wait_busy(client: redis.Redis, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.ping()
        except redis.ResponseError as exc:
            assert str(exc) == BUSY_TEXT
            return
        time.sleep(0.02)
    raise AssertionError("the server never answered -BUSY")


def test_runaway_script_makes_others_busy_until_killed(busy_server: ServerProcess) -> None:
    runner, other = connected(busy_server), connected(busy_server)
    thread, result = in_background(lambda: runner.eval("while true do end", 0))
    wait_busy(other)
    with pytest.raises(redis.ResponseError, match=r"^BUSY Redis is busy running a script"):
        other.get("k")
    assert other.script_kill()
    thread.join(5)
    assert isinstance(result[0], redis.ResponseError)
    assert str(result[0]).startswith("Script killed by user with SCRIPT KILL... script: ")
    assert str(result[0]).endswith(", on @user_script:1.")
    assert other.ping()
    assert runner.ping()


def test_kill_stops_a_script_that_catches_errors(busy_server: ServerProcess) -> None:
    runner, other = connected(busy_server), connected(busy_server)
    script = "while true do pcall(function() while true do end end) end"
    thread, result = in_background(lambda: runner.eval(script, 0))
    wait_busy(other)
    other.script_kill()
    thread.join(5)
    assert not thread.is_alive()
    assert "Script killed by user" in str(result[0])


def test_kill_stops_a_loop_inside_a_coroutine(busy_server: ServerProcess) -> None:
    runner, other = connected(busy_server), connected(busy_server)
    script = "local co = coroutine.wrap(function() while true do end end) co()"
    thread, result = in_background(lambda: runner.eval(script, 0))
    wait_busy(other)
    other.script_kill()
    thread.join(5)
    assert "Script killed by user" in str(result[0])


def test_script_kill_without_script_is_notbusy(busy_server: ServerProcess) -> None:
    with pytest.raises(redis.ResponseError, match=r"No scripts in execution right now\."):
        busy_server.client().script_kill()


def test_long_script_finishes_and_replies_after_busy(busy_server: ServerProcess) -> None:
    runner, other = connected(busy_server), connected(busy_server)
    script = ("local t = redis.call('time') local start = t[1] * 1000000 + t[2] "
              "local n = 0 while true do n = n + 1 if n % 100000 == 0 then "
              "local now = redis.call('time') "
              "if now[1] * 1000000 + now[2] - start > 400000 then return n end end end")
    thread, result = in_background(lambda: runner.eval(script, 0))
    wait_busy(other)
    thread.join(5)
    assert isinstance(result[0], int) and result[0] > 0
    assert other.ping()


def test_script_that_wrote_is_unkillable_and_shutdown_nosave_stops_the_server(
        start_server: Callable[..., ServerProcess]) -> None:
    proc = start_server("--busy-reply-threshold", "100")
    runner, other = connected(proc), connected(proc)
    thread, result = in_background(
        lambda: runner.eval("redis.call('set', 'x', '1') while true do end", 0))
    wait_busy(other)
    with pytest.raises(redis.ResponseError, match="UNKILLABLE Sorry the script already"):
        other.script_kill()
    other.shutdown(nosave=True)  # redis-py returns once the connection closes
    assert proc.proc.wait(15) == 0
    thread.join(5)
    assert isinstance(result[0], redis.ConnectionError)


def test_memory_hog_gets_oom_and_server_survives(server: ServerProcess) -> None:
    client = server.client()
    for script in ("local t = {} for i = 1, 1e9 do t[i] = i end",
                   "return string.rep('x', 2^30)",
                   "local s = 'x' while true do s = s .. s end"):
        with pytest.raises(redis.ResponseError, match="Script exceeded the Lua memory limit"):
            client.eval(script, 0)
    assert client.eval("return 'alive'", 0) == b"alive"


def test_deep_recursion_is_an_error(server: ServerProcess) -> None:
    client = server.client()
    with pytest.raises(redis.ResponseError, match="stack overflow"):
        client.eval("local function f(n) return 1 + f(n + 1) end return f(1)", 0)
    with pytest.raises(redis.ResponseError, match="stack overflow"):
        client.eval("local t = setmetatable({}, {}) getmetatable(t).__index = function(s, k) "
                    "return s[k .. 'x'] end return t.a", 0)
    assert client.ping()


def test_transactions_while_busy(busy_server: ServerProcess) -> None:
    runner, watcher = connected(busy_server), connected(busy_server)
    other = RawClient(busy_server.port)
    thread, result = in_background(lambda: runner.eval("while true do end", 0))
    wait_busy(watcher)
    other.transcript(b"MULTI\r\n", b"+OK\r\n")
    other.transcript(b"GET k\r\n", b"-" + BUSY_TEXT.encode() + b"\r\n")
    other.transcript(b"EXEC\r\n", b"-EXECABORT Transaction discarded because of: "
                     + BUSY_TEXT.encode() + b"\r\n")
    other.transcript(b"HELLO 2\r\n", b"*16\r\n")  # allowed while busy
    other.close()
    watcher.script_kill()
    thread.join(5)
    assert "Script killed" in str(result[0])


def test_eval_inside_multi_exec(server: ServerProcess) -> None:
    client = server.client()
    pipe = client.pipeline(transaction=True)
    pipe.set("m", "1")
    pipe.eval("return redis.call('incr', KEYS[1])", 1, "m")
    pipe.eval("return redis.call('blpop', 'nolist', 0)", 0)
    pipe.get("m")
    replies = pipe.execute(raise_on_error=False)
    assert replies[:2] == [True, 2]
    assert "This Redis command is not allowed from script" in str(replies[2])
    assert replies[3] == b"2"


def test_runaway_script_inside_exec_is_stopped(busy_server: ServerProcess) -> None:
    client = busy_server.client()
    pipe = client.pipeline(transaction=True)
    pipe.eval("while true do end", 0)
    pipe.ping()
    started = time.monotonic()
    replies = pipe.execute(raise_on_error=False)
    assert time.monotonic() - started < 3
    assert "ran longer than busy-reply-threshold inside MULTI/EXEC" in str(replies[0])
    assert replies[1] is True
