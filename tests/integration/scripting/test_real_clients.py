"""Libraries that need scripts, unchanged, against a real jobcached process.

Each of these failed at its first EVAL/EVALSHA before scripting existed: redis-py's Lock
(release and extend are scripts; kombu and so Celery take one at worker start), redis-py's
`register_script` (EVALSHA, then SCRIPT LOAD on NOSCRIPT), and `limits`' rate-limit strategies
(every one is a Lua script).
"""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
import redis.asyncio
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage as AsyncRedisStorage
from limits.aio.strategies import FixedWindowRateLimiter as AsyncFixedWindow
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindow
from limits.storage import RedisStorage
from limits.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from redis.exceptions import LockError, LockNotOwnedError

from tests.conftest import ServerProcess


def test_redis_py_lock_acquire_extend_release(server: ServerProcess) -> None:
    client = server.client()
    lock = client.lock("resource", timeout=5, blocking_timeout=0.5)
    assert lock.acquire()
    assert client.lock("resource", blocking_timeout=0.1).acquire() is False
    assert lock.extend(10)
    assert 5_000 < client.pttl("resource") <= 15_000
    assert lock.reacquire()
    assert 4_000 < client.pttl("resource") <= 5_000
    lock.release()
    assert client.exists("resource") == 0
    with pytest.raises(LockError):
        lock.release()


def test_redis_py_lock_expires_and_cannot_be_released_by_a_stranger(server: ServerProcess
                                                                    ) -> None:
    client = server.client()
    lock = client.lock("short", timeout=0.2)
    assert lock.acquire()
    time.sleep(0.35)
    other = client.lock("short", timeout=5)
    assert other.acquire(blocking=False)
    with pytest.raises(LockNotOwnedError):
        lock.release()
    other.release()


def test_redis_py_lock_as_context_manager_from_threads(server: ServerProcess) -> None:
    client = server.client()
    client.delete("counter")
    for _ in range(20):
        with client.lock("ctx", timeout=5, blocking_timeout=2):
            client.incr("counter")
    assert client.get("counter") == b"20"


def test_redis_py_asyncio_lock(server: ServerProcess) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis(port=server.port)
        lock = client.lock("async-resource", timeout=5, blocking_timeout=0.5)
        assert await lock.acquire()
        assert await client.lock("async-resource", blocking_timeout=0.1).acquire() is False
        assert await lock.extend(5, replace_ttl=True)
        assert 4_000 < await client.pttl("async-resource") <= 5_000
        await lock.release()
        assert await client.exists("async-resource") == 0
        await client.aclose()

    asyncio.run(scenario())


def test_register_script_falls_back_to_script_load_on_noscript(server: ServerProcess) -> None:
    client = server.client()
    client.script_flush()
    incr_by = client.register_script(
        "return redis.call('incrby', KEYS[1], ARGV[1])")
    client.delete("n")
    assert incr_by(keys=["n"], args=[5]) == 5  # NOSCRIPT, SCRIPT LOAD, EVALSHA
    assert client.script_exists(incr_by.sha) == [True]
    assert incr_by(keys=["n"], args=[2]) == 7  # EVALSHA straight away
    pipe = client.pipeline()
    incr_by(keys=["n"], args=[1], client=pipe)
    pipe.get("n")
    client.script_flush()
    assert pipe.execute() == [8, b"8"]  # the pipeline loads missing scripts first


def test_limits_fixed_moving_and_sliding_windows(server: ServerProcess) -> None:
    storage = RedisStorage(f"redis://127.0.0.1:{server.port}")
    assert storage.check()
    per_minute = RateLimitItemPerMinute(3)
    for strategy in (FixedWindowRateLimiter(storage), MovingWindowRateLimiter(storage),
                     SlidingWindowCounterRateLimiter(storage)):
        name = type(strategy).__name__
        assert [strategy.hit(per_minute, name) for _ in range(4)] == [True, True, True, False]
        assert strategy.test(per_minute, name) is False
        stats = strategy.get_window_stats(per_minute, name)
        assert stats.remaining == 0
        strategy.clear(per_minute, name)
        assert strategy.hit(per_minute, name)
    storage.reset()
    storage.storage.close()


def test_limits_moving_window_frees_slots_as_time_passes(server: ServerProcess) -> None:
    storage = RedisStorage(f"redis://127.0.0.1:{server.port}")
    limiter = MovingWindowRateLimiter(storage)
    per_second = RateLimitItemPerSecond(2)
    assert limiter.hit(per_second, "slide") and limiter.hit(per_second, "slide")
    assert not limiter.hit(per_second, "slide")
    time.sleep(1.1)
    assert limiter.hit(per_second, "slide")
    storage.storage.close()


def test_limits_asyncio_strategies(server: ServerProcess) -> None:
    async def scenario() -> None:
        storage = AsyncRedisStorage(f"async+redis://127.0.0.1:{server.port}",
                                     implementation="redispy")
        per_minute = RateLimitItemPerMinute(2)
        for strategy in (AsyncFixedWindow(storage), AsyncMovingWindow(storage)):
            key = "async-" + type(strategy).__name__
            hits = [await strategy.hit(per_minute, key) for _ in range(3)]
            assert hits == [True, True, False]
        await storage.reset()
        await storage.bridge.storage.aclose()  # limits has no close of its own

    asyncio.run(scenario())
