"""GETL / SETL against a real server, and the client's get_or_compute: a stampede of 200
readers computes once; any change to the key during the fill makes its SETL fail."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from jobcached_client import AsyncClient, Client

from tests.conftest import ServerProcess
from tests.integration.cache.test_strings import Local


def test_stampede_of_200_readers_computes_once(server: ServerProcess) -> None:
    computed = 0

    async def fill() -> bytes:
        nonlocal computed
        computed += 1
        await asyncio.sleep(0.1)
        return b"expensive"

    async def main() -> list[object]:
        clients = [AsyncClient(port=server.port) for _ in range(200)]
        try:
            return await asyncio.gather(*(c.get_or_compute("stampede", fill, 60)
                                          for c in clients))
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))

    results = asyncio.run(main())
    assert computed == 1
    assert set(results) == {b"expensive"}
    r = server.client()
    assert r.get("stampede") == b"expensive" and 0 < r.pttl("stampede") <= 60_000


def test_delete_during_the_fill_makes_setl_fail(server: ServerProcess) -> None:
    r = server.client()
    kind, token = r.execute_command("GETL", "filled")
    assert kind == b"lease"
    waiting = r.execute_command("GETL", "filled")
    assert waiting[0] == b"wait" and 9_000 < waiting[1] <= 10_000  # lease-ttl: 10 s
    r.delete("filled")
    assert r.execute_command("SETL", "filled", token, "stale") is None
    assert r.get("filled") is None
    # the delete also freed the key for the next reader
    kind, token = r.execute_command("GETL", "filled")
    assert kind == b"lease"
    assert r.execute_command("SETL", "filled", token, "fresh", "PX", 5000) == b"OK"
    assert r.execute_command("GETL", "filled") == b"fresh"
    assert r.execute_command("SETL", "filled", token, "again") is None  # filled once


def test_client_returns_but_does_not_store_an_invalidated_fill(server: ServerProcess) -> None:
    client = Client(port=server.port)
    other = server.client()

    def fill() -> str:
        other.set("raced", "newer")  # a write lands while the value is computed
        return "older"

    assert client.get_or_compute("raced", fill) == "older"
    assert other.get("raced") == b"newer"
    client.close()


@pytest.mark.parametrize("change", [
    ("SET", "k", "x"), ("INCR", "k"), ("DEL", "k"), ("UNLINK", "k"), ("FLUSHDB",),
    ("FLUSHALL",), ("SWAPDB", 0, 1),
])
def test_every_change_invalidates(server: ServerProcess, change: tuple[object, ...]) -> None:
    r = server.client()
    r.delete("k")
    _, token = r.execute_command("GETL", "k")
    r.execute_command(*change)
    assert r.execute_command("SETL", "k", token, "v") is None


def test_lease_runs_out_and_expiry_frees_it(server: ServerProcess) -> None:
    r = server.client()
    _, token = r.execute_command("GETL", "short", "TTL", 50)
    time.sleep(0.08)
    kind, second = r.execute_command("GETL", "short")
    assert kind == b"lease" and second != token
    assert r.execute_command("SETL", "short", token, "late") is None


def test_errors(server: ServerProcess) -> None:
    r = server.client()
    r.rpush("alist", "x")
    for args, error in [(("GETL", "alist"), "WRONGTYPE Operation against a key holding the "
                                             "wrong kind of value"),
                        (("GETL", "k", "TTL", 0), "TTL must be positive"),
                        (("GETL", "k", "BOGUS", 1), "syntax error"),
                        (("SETL", "k", "t", "v", "PX", 0),
                         "invalid expire time in 'setl' command"),
                        (("SETL", "k", "t", "v", "EX", 1), "syntax error")]:
        with pytest.raises(redis.ResponseError) as raised:
            r.execute_command(*args)
        assert str(raised.value) == error


def test_effects_are_plain_sets_and_leases_are_not_replicated() -> None:
    local = Local()
    now = local.clock.now_ms()
    before = local.state.backlog.count
    kind, token = local("GETL", "k")
    assert kind == b"lease" and local.state.backlog.count == before  # nothing propagated
    assert local.effects("SETL", "k", token, "v", "PX", "500") == [
        [b"SET", b"k", b"v", b"PXAT", b"%d" % (now + 500)]]
    local.clock.advance(500)  # the value expires: the next reader gets a new lease
    assert local("GETL", "k")[0] == b"lease"
