"""cashews' Redis backend on jobcached, unchanged: cache decorators, rate limits and locks.

cashews' fixed-window rate limit is a script (INCRBY, then PEXPIRE on the first hit), its
sliding-window one a script over a sorted set (ZREMRANGEBYSCORE, ZCOUNT, ZADD, PEXPIRE), its
lock SET NX PX released by a script that compares the owner's value: each must trigger exactly
where it does on redis-server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from cashews import Cache
from cashews.exceptions import LockedError, RateLimitError

from tests.conftest import ServerProcess

#: cashews 7 closes its redis-py client with the deprecated `close()` (redis-py 5 wants
#: `aclose()`): the library's own warning, not this server's.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")


def run_with_cache(server: ServerProcess, scenario: Callable[[Cache], Awaitable[None]]) -> None:
    """Run one scenario on a fresh cashews cache backed by the server's db 0."""
    async def main() -> None:
        cache = Cache()
        cache.setup(f"redis://127.0.0.1:{server.port}/0", client_side=False)
        await cache.clear()
        try:
            await scenario(cache)
        finally:
            await cache.close()

    asyncio.run(main())


async def outcomes(call: Callable[[], Awaitable[int]], times: int) -> list[int | str]:
    seen: list[int | str] = []
    for _ in range(times):
        try:
            seen.append(await call())
        except RateLimitError:
            seen.append("limited")
    return seen


def test_cashews_cache_decorators_store_and_serve(server: ServerProcess) -> None:
    async def scenario(cache: Cache) -> None:
        calls: list[int] = []

        @cache(ttl="1m", key="square:{x}")
        async def square(x: int) -> int:
            calls.append(x)
            return x * x

        assert [await square(3), await square(3), await square(4)] == [9, 9, 16]
        assert calls == [3, 4]
        assert 0 < await cache.get_expire("square:3") <= 60
        assert sorted([key async for key in cache.scan("square:*")]) == ["square:3",
                                                                          "square:4"]
        await cache.delete_match("square:*")
        assert await square(3) == 9
        assert calls == [3, 4, 3]

        await cache.set("doc", {"a": [1, 2]}, expire=60)
        assert await cache.get("doc") == {"a": [1, 2]}
        assert await cache.incr("hits") == 1
        assert await cache.incr("hits") == 2
        assert await cache.get_many("doc", "missing") == ({"a": [1, 2]}, None)

    run_with_cache(server, scenario)


@pytest.mark.parametrize("decorator", ["rate_limit", "slice_rate_limit"])
def test_cashews_rate_limit_triggers_past_the_limit(server: ServerProcess, decorator: str
                                                    ) -> None:
    async def scenario(cache: Cache) -> None:
        @getattr(cache, decorator)(limit=3, period="1m")
        async def limited() -> int:
            return 1

        assert await outcomes(limited, 5) == [1, 1, 1, "limited", "limited"]

    run_with_cache(server, scenario)


def test_cashews_lock_excludes_a_second_holder_until_released(server: ServerProcess) -> None:
    async def scenario(cache: Cache) -> None:
        async with cache.lock("resource", expire=10):
            assert await cache.is_locked("resource")
            with pytest.raises(LockedError):
                async with cache.lock("resource", expire=10, wait=False):
                    pytest.fail("a second holder entered the lock")
        assert not await cache.is_locked("resource")

        runs: list[int] = []

        @cache.locked(ttl="10s", key="guarded")
        async def guarded() -> int:
            runs.append(1)
            await asyncio.sleep(0.05)
            return 7

        assert await asyncio.gather(guarded(), guarded()) == [7, 7]
        assert runs == [1, 1]
        assert not await cache.is_locked("guarded")

    run_with_cache(server, scenario)
