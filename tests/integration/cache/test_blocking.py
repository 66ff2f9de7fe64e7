"""Blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BZPOPMIN, BZPOPMAX, BZMPOP, BLMPOP) with real
clients.

Every scenario runs against jobcached and against redis-server 7.0 with the same assertions:
clients block in threads, and the test waits until the server lists them as having run their
blocking command (by client name) before it pushes, so the order of events is certain.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
import redis

from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.test_zsets import raw_replies

WAIT_SECONDS = 5.0


class Target:
    """One server under test and the clients a scenario opened on it."""

    def __init__(self, port: int, kind: str) -> None:
        self.port = port
        self.kind = kind
        self.clients: list[redis.Redis] = []
        self.pool = ThreadPoolExecutor(max_workers=8)

    def client(self, name: str = "", **kwargs: Any) -> redis.Redis:
        r = redis.Redis(port=self.port, socket_timeout=15, single_connection_client=True,
                        **kwargs)
        if name:
            r.client_setname(name)
        self.clients.append(r)
        return r

    def start(self, name: str, call: Callable[[redis.Redis], Any]) -> Future[Any]:
        """Run `call` on a new client named `name` in a thread; wait until it is blocked."""
        r = self.client(name)
        future = self.pool.submit(call, r)
        self.wait_for(lambda: self.last_command(name) is not None, f"{name} to block")
        return future

    def last_command(self, name: str) -> str | None:
        """The blocking command a client named `name` ran last (None until it did)."""
        admin = self.clients[0] if self.clients else self.client()
        for info in admin.client_list():
            if info.get("name") == name and info.get("cmd", "").startswith(("b", "B")):
                return str(info["cmd"])
        return None

    def connected(self, name: str) -> bool:
        admin = self.clients[0]
        return any(info.get("name") == name for info in admin.client_list())

    @staticmethod
    def wait_for(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.01)

    def close(self) -> None:
        for r in self.clients:
            r.close()  # a thread still blocked gets a connection error and ends
        self.pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(params=["jobcached", "redis"])
def target(request: pytest.FixtureRequest, server: ServerProcess,
           redis_server: RedisServerProcess) -> Iterator[Target]:
    port = server.port if request.param == "jobcached" else redis_server.port
    t = Target(port, request.param)
    admin = t.client()
    admin.flushall()
    yield t
    t.close()


def test_blpop_is_woken_by_a_push(target: Target) -> None:
    admin = target.clients[0]
    waiting = target.start("w1", lambda r: r.blpop(["q1", "q2"], 0))
    assert not waiting.done()
    assert admin.rpush("q2", "x", "y") == 2
    assert waiting.result(WAIT_SECONDS) == (b"q2", b"x")
    assert admin.lrange("q2", 0, -1) == [b"y"]


def test_brpop_fifo_across_clients(target: Target) -> None:
    admin = target.clients[0]
    first = target.start("first", lambda r: r.brpop(["q"], 0))
    second = target.start("second", lambda r: r.brpop(["q"], 0))
    admin.lpush("q", "a")
    assert first.result(WAIT_SECONDS) == (b"q", b"a")
    assert not second.done()
    admin.lpush("q", "b", "c")
    assert second.result(WAIT_SECONDS) == (b"q", b"b")
    assert admin.lrange("q", 0, -1) == [b"c"]


def test_one_push_serves_several_waiters_in_order(target: Target) -> None:
    admin = target.clients[0]
    waiters = [target.start(f"w{i}", lambda r: r.blpop(["q"], 0)) for i in range(3)]
    admin.rpush("q", "a", "b")
    assert waiters[0].result(WAIT_SECONDS) == (b"q", b"a")
    assert waiters[1].result(WAIT_SECONDS) == (b"q", b"b")
    assert not waiters[2].done()
    assert admin.exists("q") == 0
    admin.rpush("q", "c")
    assert waiters[2].result(WAIT_SECONDS) == (b"q", b"c")


def test_timeout_returns_nil(target: Target) -> None:
    r = target.client()
    started = time.monotonic()
    assert r.blpop(["nothing"], 0.2) is None
    assert r.brpop(["nothing"], 0.1) is None
    assert r.blmove("nothing", "dst", 0.1, "LEFT", "RIGHT") is None
    assert r.bzpopmin(["nothing"], 0.1) is None
    assert r.bzpopmax(["nothing"], 0.1) is None
    assert time.monotonic() - started >= 0.55
    assert r.exists("dst") == 0


def test_timeout_reply_bytes(target: Target) -> None:
    for resp3 in (False, True):
        replies = raw_replies(target.port, [("BLPOP", "n", "0.05"), ("BRPOP", "n", "0.05"),
                                            ("BLMOVE", "n", "d", "LEFT", "LEFT", "0.05"),
                                            ("BRPOPLPUSH", "n", "d", "0.05"),
                                            ("BZPOPMIN", "n", "0.05"), ("BZPOPMAX", "n", "0.05")],
                              resp3)
        assert replies == [b"_\r\n" if resp3 else b"*-1\r\n"] * 6


def test_disconnected_client_is_unregistered(target: Target) -> None:
    admin = target.clients[0]
    sock = socket.create_connection(("127.0.0.1", target.port), timeout=10)
    sock.sendall(b"CLIENT SETNAME gone\r\n")
    assert sock.recv(64) == b"+OK\r\n"
    sock.sendall(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n")
    target.wait_for(lambda: target.last_command("gone") is not None, "gone to block")
    sock.close()
    target.wait_for(lambda: not target.connected("gone"), "gone to disconnect")
    assert admin.rpush("q", "kept") == 1
    assert admin.lrange("q", 0, -1) == [b"kept"]
    later = target.start("later", lambda r: r.blpop(["q2"], 0))
    admin.rpush("q2", "served")
    assert later.result(WAIT_SECONDS) == (b"q2", b"served")


def test_blmove_is_woken_and_chains_to_another_waiter(target: Target) -> None:
    admin = target.clients[0]
    mover = target.start("mover", lambda r: r.blmove("src", "dst", 0, "RIGHT", "LEFT"))
    popper = target.start("popper", lambda r: r.blpop(["dst"], 0))
    admin.rpush("src", "a", "b")
    assert mover.result(WAIT_SECONDS) == b"b"
    assert popper.result(WAIT_SECONDS) == (b"dst", b"b")
    assert admin.lrange("src", 0, -1) == [b"a"]
    assert admin.exists("dst") == 0


def test_brpoplpush_is_woken(target: Target) -> None:
    admin = target.clients[0]
    mover = target.start("mover", lambda r: r.brpoplpush("src", "dst", 0))
    admin.lpush("src", "x")
    assert mover.result(WAIT_SECONDS) == b"x"
    assert admin.lrange("dst", 0, -1) == [b"x"]


def test_blmove_to_a_destination_of_the_wrong_type(target: Target) -> None:
    admin = target.clients[0]

    def move(r: redis.Redis) -> Any:
        try:
            return r.blmove("src", "dst", 0, "LEFT", "LEFT")
        except redis.ResponseError as exc:
            return str(exc)

    mover = target.start("mover", move)
    admin.set("dst", "string")
    admin.rpush("src", "x")
    assert "WRONGTYPE" in mover.result(WAIT_SECONDS)
    assert admin.lrange("src", 0, -1) == [b"x"]


def test_lmove_wakes_a_waiter(target: Target) -> None:
    admin = target.clients[0]
    waiting = target.start("w", lambda r: r.brpop(["dst"], 0))
    admin.rpush("src", "x")
    assert admin.lmove("src", "dst", "LEFT", "RIGHT") == b"x"
    assert waiting.result(WAIT_SECONDS) == (b"dst", b"x")


def test_bzpopmin_and_bzpopmax_are_woken(target: Target) -> None:
    admin = target.clients[0]
    low = target.start("low", lambda r: r.bzpopmin(["z1", "z2"], 0))
    high = target.start("high", lambda r: r.bzpopmax(["z2"], 0))
    admin.zadd("z2", {"a": 1, "b": 2, "c": 3})
    assert low.result(WAIT_SECONDS) == (b"z2", b"a", 1.0)
    assert high.result(WAIT_SECONDS) == (b"z2", b"c", 3.0)
    assert admin.zrange("z2", 0, -1) == [b"b"]
    incr = target.start("incr", lambda r: r.bzpopmax(["z3"], 0))
    admin.zincrby("z3", 2.5, "m")
    assert incr.result(WAIT_SECONDS) == (b"z3", b"m", 2.5)


def test_waiter_ignores_data_of_another_type(target: Target) -> None:
    admin = target.clients[0]
    waiting = target.start("w", lambda r: r.blpop(["k"], 0))
    admin.zadd("k", {"m": 1})
    time.sleep(0.05)
    assert not waiting.done()
    admin.delete("k")
    admin.rpush("k", "v")
    assert waiting.result(WAIT_SECONDS) == (b"k", b"v")


def test_blocked_client_runs_its_pipeline_after_being_served(target: Target) -> None:
    admin = target.clients[0]
    sock = socket.create_connection(("127.0.0.1", target.port), timeout=10)
    sock.sendall(b"CLIENT SETNAME piped\r\n")
    assert sock.recv(64) == b"+OK\r\n"
    sock.sendall(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n"
                 b"*2\r\n$4\r\nLLEN\r\n$1\r\nq\r\n*2\r\n$4\r\nECHO\r\n$5\r\nafter\r\n")
    target.wait_for(lambda: target.last_command("piped") is not None, "piped to block")
    admin.rpush("q", "a", "b")
    expected = b"*2\r\n$1\r\nq\r\n$1\r\na\r\n:1\r\n$5\r\nafter\r\n"
    data = b""
    while len(data) < len(expected):
        chunk = sock.recv(4096)
        assert chunk
        data += chunk
    sock.close()
    assert data == expected


def test_blocking_with_data_inside_exec(target: Target) -> None:
    r = target.client()
    with r.pipeline() as pipe:
        pipe.rpush("q", "a").blpop(["q"], 0).blpop(["q"], 0).blmove("q", "d", 0)
        assert pipe.execute() == [1, (b"q", b"a"), None, None]


def test_exec_serves_blocked_clients_after_the_whole_transaction(server: ServerProcess) -> None:
    # Redis serves clients blocked on keys a transaction fills once the whole EXEC has run.
    target = Target(server.port, "jobcached")
    try:
        admin = target.client()
        admin.delete("q")
        waiting = target.start("w", lambda r: r.blpop(["q"], 0))
        with admin.pipeline() as pipe:
            pipe.rpush("q", "a").llen("q")
            replies = pipe.execute()
        assert waiting.result(WAIT_SECONDS) == (b"q", b"a")
        assert replies == [1, 1]
    finally:
        target.close()


def test_blmove_in_multi_replies_nil_bulk(server: ServerProcess) -> None:
    replies = raw_replies(server.port, [("MULTI",), ("BLMOVE", "n", "d", "LEFT", "LEFT", "0"),
                                        ("EXEC",)], resp3=False)
    assert replies[-1] == b"*1\r\n$-1\r\n"


def test_rename_onto_a_blocked_key_serves_the_client(server: ServerProcess) -> None:
    target = Target(server.port, "jobcached")
    try:
        admin = target.client()
        admin.delete("dst", "src")
        waiting = target.start("w", lambda r: r.blpop(["dst"], 0))
        admin.rpush("src", "moved")
        for _ in range(200):  # wait until the client is blocked
            if admin.info("clients")["blocked_clients"]:
                break
            time.sleep(0.01)
        admin.rename("src", "dst")
        assert waiting.result(WAIT_SECONDS) == (b"dst", b"moved")
    finally:
        target.close()


# ------------------------------------------------------------------------------- BZMPOP, BLMPOP


def test_bzmpop_is_woken_by_a_zadd(target: Target) -> None:
    admin = target.clients[0]
    waiting = target.start(
        "w", lambda r: r.execute_command("BZMPOP", 0, 2, "z1", "z2", "MAX", "COUNT", 2))
    assert not waiting.done()
    admin.zadd("z2", {"a": 1, "b": 2, "c": 3})
    assert waiting.result(WAIT_SECONDS) == [b"z2", [[b"c", b"3"], [b"b", b"2"]]]
    assert admin.zrange("z2", 0, -1) == [b"a"]


def test_blmpop_is_woken_by_a_push(target: Target) -> None:
    admin = target.clients[0]
    waiting = target.start(
        "w", lambda r: r.execute_command("BLMPOP", 0, 2, "l1", "l2", "RIGHT", "COUNT", 5))
    admin.lpush("l1", "x", "y")
    assert waiting.result(WAIT_SECONDS) == [b"l1", [b"x", b"y"]]
    assert admin.exists("l1") == 0


def test_waiters_are_served_first_come_first_served(target: Target) -> None:
    admin = target.clients[0]
    first = target.start("first", lambda r: r.execute_command("BLMPOP", 0, 1, "q", "LEFT"))
    second = target.start(
        "second", lambda r: r.execute_command("BLMPOP", 0, 1, "q", "LEFT", "COUNT", 2))
    admin.rpush("q", "a")
    assert first.result(WAIT_SECONDS) == [b"q", [b"a"]]
    assert not second.done()
    admin.rpush("q", "b", "c", "d")
    assert second.result(WAIT_SECONDS) == [b"q", [b"b", b"c"]]
    zfirst = target.start("zfirst", lambda r: r.execute_command("BZMPOP", 0, 1, "z", "MIN"))
    zsecond = target.start("zsecond", lambda r: r.execute_command("BZMPOP", 0, 1, "z", "MIN"))
    admin.zadd("z", {"m": 1, "n": 2})
    assert zfirst.result(WAIT_SECONDS) == [b"z", [[b"m", b"1"]]]
    assert zsecond.result(WAIT_SECONDS) == [b"z", [[b"n", b"2"]]]


def test_a_store_wakes_bzmpop(target: Target) -> None:
    admin = target.clients[0]
    admin.zadd("src", {"a": 1, "b": 2})
    union = target.start("union", lambda r: r.execute_command("BZMPOP", 0, 1, "u", "MIN"))
    ranged = target.start("ranged", lambda r: r.execute_command("BZMPOP", 0, 1, "r", "MAX"))
    assert admin.execute_command("ZUNIONSTORE", "u", 1, "src", "WEIGHTS", 3) == 2
    assert union.result(WAIT_SECONDS) == [b"u", [[b"a", b"3"]]]
    assert admin.execute_command("ZRANGESTORE", "r", "src", 0, 0) == 1
    assert ranged.result(WAIT_SECONDS) == [b"r", [[b"a", b"1"]]]
    assert admin.exists("r") == 0


def test_timeout_returns_a_null_array(target: Target) -> None:
    r = target.client()
    started = time.monotonic()
    assert r.execute_command("BZMPOP", 0.1, 1, "nothing", "MIN") is None
    assert r.execute_command("BLMPOP", 0.1, 2, "nothing", "nada", "LEFT") is None
    assert time.monotonic() - started >= 0.19
    for resp3 in (False, True):
        replies = raw_replies(target.port, [("BZMPOP", "0.05", "1", "n", "MAX"),
                                            ("BLMPOP", "0.05", "1", "n", "RIGHT")], resp3)
        assert replies == [b"_\r\n" if resp3 else b"*-1\r\n"] * 2


def test_waiter_skips_a_key_of_another_type(target: Target) -> None:
    admin = target.clients[0]
    waiting = target.start("w", lambda r: r.execute_command("BLMPOP", 0, 1, "k", "LEFT"))
    admin.zadd("k", {"m": 1})
    time.sleep(0.05)
    assert not waiting.done()
    admin.delete("k")
    admin.rpush("k", "v")
    assert waiting.result(WAIT_SECONDS) == [b"k", [b"v"]]
