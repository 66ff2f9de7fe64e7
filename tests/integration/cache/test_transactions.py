"""MULTI / EXEC / DISCARD / WATCH against redis-server, and through redis-py pipelines."""

from __future__ import annotations

import redis

from tests.conftest import ServerProcess
from tests.integration.cache.differential import Pair


def test_multi_exec_runs_the_queue(pair: Pair) -> None:
    pair.check("MULTI")
    pair.check("SET", "a", "1")
    pair.check("GET", "a")
    pair.check("EXEC")


def test_errors_while_queueing_abort(pair: Pair) -> None:
    pair.check("MULTI")
    pair.check("SET", "a")
    pair.check("NOSUCHCMD")
    pair.check("EXEC")
    pair.check("GET", "a")


def test_nesting_and_control_errors(pair: Pair) -> None:
    pair.check("EXEC")
    pair.check("DISCARD")
    pair.check("MULTI")
    pair.check("MULTI")
    pair.check("WATCH", "x")
    pair.check("DISCARD")


def test_watch_aborts_when_a_key_changes(pair: Pair, server: ServerProcess) -> None:
    pair.check("SET", "w", "1")
    pair.check("WATCH", "w")
    other = server.client()
    other.set("w", "2")
    pair.theirs.set("w", "2")
    pair.check("MULTI")
    pair.check("SET", "w", "3")
    pair.check("EXEC")
    pair.check("GET", "w")
    other.close()


def test_redis_py_transaction_pipeline(server: ServerProcess) -> None:
    r = server.client()
    with r.pipeline() as pipe:
        pipe.set("p1", "a").get("p1").exists("p1")
        assert pipe.execute() == [True, b"a", 1]

    def incr_by_hand(pipe: redis.client.Pipeline) -> None:
        value = pipe.get("counter")
        pipe.multi()
        pipe.set("counter", int(value or 0) + 1)

    r.transaction(incr_by_hand, "counter")
    assert r.get("counter") == b"1"
    r.close()
