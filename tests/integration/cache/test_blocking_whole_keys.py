"""Clients blocked on keys woken by writes of whole keys, against jobcached and redis-server
alike: Redis signals a key when it is added to a database (dbAdd), whatever the command, so
RENAME, COPY (also into another database), MOVE, RESTORE, SORT ... STORE and the STORE
commands of sorted sets wake a waiter when they add the key, and wake nobody when they
replace the value of a key that exists (dbOverwrite).

Same harness as test_blocking.py: clients block in threads and the test waits until the server
lists them as running their command before it writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.test_blocking import WAIT_SECONDS, Target

#: name -> a write that adds the list `dst` (in database 1 for the DB forms), from `src`
ADD_A_LIST: dict[str, Callable[[redis.Redis], Any]] = {
    "RENAME": lambda r: r.rename("src", "dst"),
    "COPY": lambda r: r.copy("src", "dst"),
    "RESTORE": lambda r: r.execute_command("RESTORE", "dst", 0, r.dump("src")),
    "SORT STORE": lambda r: r.sort("src", alpha=True, store="dst"),
    "COPY DB": lambda r: r.copy("src", "dst", destination_db="1"),
    "MOVE": lambda r: (r.rename("src", "dst"), r.move("dst", 1)),
}


@pytest.fixture(params=["jobcached", "redis"])
def target(request: pytest.FixtureRequest, server: ServerProcess,
           redis_server: RedisServerProcess) -> Iterator[Target]:
    port = server.port if request.param == "jobcached" else redis_server.port
    t = Target(port, request.param)
    t.client().flushall()
    yield t
    t.close()


def start_in(target: Target, db: int, name: str, call: Callable[[redis.Redis], Any]) -> Any:
    """`Target.start` for a client of database `db`."""
    r = target.client(name, db=db)
    future = target.pool.submit(call, r)
    target.wait_for(lambda: target.last_command(name) is not None, f"{name} to block")
    return future


@pytest.mark.parametrize("how", ADD_A_LIST)
def test_a_key_added_whole_wakes_its_waiter(target: Target, how: str) -> None:
    admin = target.clients[0]
    db = 1 if how in ("COPY DB", "MOVE") else 0
    waiting = start_in(target, db, "w", lambda r: r.blpop(["dst"], 0))
    admin.rpush("src", "a", "b")
    ADD_A_LIST[how](admin)
    assert waiting.result(WAIT_SECONDS) == (b"dst", b"a")


@pytest.mark.parametrize("how", ["SORT STORE", "ZUNIONSTORE"])
def test_a_value_stored_over_an_existing_key_wakes_nobody(target: Target, how: str) -> None:
    admin = target.clients[0]
    if how == "SORT STORE":
        waiting = target.start("w", lambda r: r.blpop(["dst"], 0))
        admin.rpush("src", "a")
        admin.set("dst", "a string")
        assert admin.sort("src", alpha=True, store="dst") == 1
        expected: Any = (b"dst", b"again")
    else:
        waiting = target.start("w", lambda r: r.bzpopmin(["dst"], 0))
        admin.zadd("src", {"a": 1})
        admin.set("dst", "a string")
        assert admin.zunionstore("dst", ["src"]) == 1
        expected = (b"dst", b"again", 2.0)
    time.sleep(0.1)
    assert not waiting.done()  # the key existed: its new value is not signalled
    admin.delete("dst")  # a key added again is
    if how == "SORT STORE":
        admin.rpush("dst", "again")
    else:
        admin.zadd("dst", {"again": 2})
    assert waiting.result(WAIT_SECONDS) == expected
