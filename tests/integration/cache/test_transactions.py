"""MULTI / EXEC / DISCARD / WATCH against redis-server, and through redis-py pipelines."""

from __future__ import annotations

import redis

from tests.conftest import RedisServerProcess, ServerProcess
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


def test_unwatch_outside_multi(pair: Pair) -> None:
    pair.check("UNWATCH")
    pair.check("WATCH", "w")
    pair.check("UNWATCH")
    pair.check("UNWATCH")
    pair.check("UNWATCH", "extra")


def test_unwatch_forgets_watched_keys(pair: Pair, server: ServerProcess,
                                      redis_server: RedisServerProcess) -> None:
    pair.check("SET", "w", "1")
    pair.check("WATCH", "w", "v")
    pair.check("UNWATCH")
    ours, theirs = server.client(), redis_server.client()
    for other in (ours, theirs):
        other.set("w", "2")
        other.set("v", "2")
    pair.check("MULTI")
    pair.check("SET", "w", "3")
    pair.check("EXEC")  # not aborted: nothing is watched any more
    pair.check("GET", "w")
    ours.close()
    theirs.close()


def test_unwatch_inside_multi_is_queued(pair: Pair, server: ServerProcess,
                                        redis_server: RedisServerProcess) -> None:
    # Redis runs only EXEC, DISCARD, MULTI, WATCH, QUIT and RESET at once inside MULTI, so
    # UNWATCH is queued: it cannot save a transaction whose watched key already changed.
    pair.check("SET", "w", "1")
    pair.check("WATCH", "w")
    pair.check("MULTI")
    pair.check("UNWATCH")
    ours, theirs = server.client(), redis_server.client()
    ours.set("w", "2")
    theirs.set("w", "2")
    pair.check("SET", "w", "3")
    pair.check("EXEC")
    pair.check("GET", "w")
    pair.check("MULTI")
    pair.check("UNWATCH")
    pair.check("GET", "w")
    pair.check("EXEC")
    ours.close()
    theirs.close()
