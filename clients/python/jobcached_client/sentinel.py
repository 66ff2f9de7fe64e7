"""Connection pools that follow the leader Redis Sentinel names (`jobcached+sentinel://`).

Why: under Sentinel the leader's address changes at each failover. redis-py's
`SentinelConnectionPool` asks the sentinels for the leader whenever it opens a connection, and
turns a `-READONLY` reply (the old leader came back as a follower) into a ConnectionError that
drops the connection. What it does not do is wait for the failover: a command sent while the
leader is down fails after redis-py's few default retries. These pools retry connection errors
and timeouts for about a minute, with a short backoff, so a producer's push or a Worker's ack
waits for the new leader instead of failing; pass `retry=` to choose otherwise.

redis-py's connections re-ask the sentinels only in `connect()`, but a command retried on the
same connection reconnects through `connect_check_health()`, to the address it had: the dead
leader, until the retries run out. `LeaderConnection` (and its asyncio twin) asks there too.

A command retried this way may run twice (it reached the old leader, the reply did not come
back): a job pushed twice, unless pushed with an idempotency key (`key=`).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio.retry as aioretry
import redis.asyncio.sentinel as aiosentinel
import redis.backoff
import redis.retry
import redis.sentinel

from jobcached_client.urls import SentinelTarget

#: Attempts of a command while the leader cannot be reached, and the backoff between them
#: (seconds, doubling from the first to the cap): about a minute in all, which spans a
#: failover with Sentinel's default down-after-milliseconds (30 s) and its election.
FAILOVER_RETRIES = 60
RETRY_FIRST_SECONDS = 0.1
RETRY_CAP_SECONDS = 1.0


class LeaderConnection(redis.sentinel.SentinelManagedConnection):
    """A connection to the leader that asks the sentinels where it is before each reconnect."""

    def connect_check_health(self, check_health: bool = True,
                             retry_socket_connect: bool = True) -> None:
        if self._sock is None:
            self.host, self.port = self.connection_pool.get_master_address()
        super().connect_check_health(check_health=check_health,
                                     retry_socket_connect=retry_socket_connect)


class AsyncLeaderConnection(aiosentinel.SentinelManagedConnection):
    """`LeaderConnection` for redis.asyncio."""

    async def connect_check_health(self, check_health: bool = True,
                                   retry_socket_connect: bool = True) -> None:
        if not self.is_connected:
            self.host, self.port = await self.connection_pool.get_master_address()
        await super().connect_check_health(check_health=check_health,
                                           retry_socket_connect=retry_socket_connect)


class AsyncLeaderPool(aiosentinel.SentinelConnectionPool):
    """redis-py's asyncio Sentinel pool, which also closes its connections to the sentinels
    when it disconnects (the client's `aclose()`): redis.asyncio warns of any left open."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        for asked in self.sentinel_manager.sentinels:
            await asked.aclose()


def _backoff() -> redis.backoff.ExponentialBackoff:
    return redis.backoff.ExponentialBackoff(cap=RETRY_CAP_SECONDS, base=RETRY_FIRST_SECONDS)


def _connection_settings(target: SentinelTarget, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The settings of each connection to a leader: the URL's, then the caller's."""
    settings: dict[str, Any] = {"db": target.db}
    if target.username is not None:
        settings["username"] = target.username
    if target.password is not None:
        settings["password"] = target.password
    settings.update(kwargs)
    return settings


def _sentinel_settings(target: SentinelTarget, settings: dict[str, Any]) -> dict[str, Any]:
    """How to talk to the sentinels themselves: their password, the leaders' socket timeouts."""
    mine = {k: v for k, v in settings.items() if k in ("socket_timeout",
                                                         "socket_connect_timeout")}
    if target.sentinel_password is not None:
        mine["password"] = target.sentinel_password
    return mine


def sync_pool(target: SentinelTarget, **kwargs: Any) -> redis.sentinel.SentinelConnectionPool:
    """A pool of connections to the leader the sentinels of `target` name now."""
    settings = _connection_settings(target, kwargs)
    settings.setdefault("retry", redis.retry.Retry(_backoff(), FAILOVER_RETRIES))
    manager = redis.sentinel.Sentinel(
        list(target.sentinels), sentinel_kwargs=_sentinel_settings(target, settings))
    return redis.sentinel.SentinelConnectionPool(
        target.service, manager, is_master=True, connection_class=LeaderConnection, **settings)


def async_pool(target: SentinelTarget,
               **kwargs: Any) -> aiosentinel.SentinelConnectionPool:
    """As `sync_pool`, for `redis.asyncio`."""
    settings = _connection_settings(target, kwargs)
    settings.setdefault("retry", aioretry.Retry(_backoff(), FAILOVER_RETRIES))
    manager = aiosentinel.Sentinel(
        list(target.sentinels), sentinel_kwargs=_sentinel_settings(target, settings))
    return AsyncLeaderPool(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        target.service, manager, is_master=True, connection_class=AsyncLeaderConnection,
        **settings)


def async_pool_like(pool: redis.sentinel.SentinelConnectionPool,
                    settings: dict[str, Any]) -> aiosentinel.SentinelConnectionPool:
    """An asyncio pool asking the same sentinels for the same service as a sync one (what a
    Worker made from a sync client uses), with the connection `settings` given."""
    manager = pool.sentinel_manager
    addresses = tuple((s.connection_pool.connection_kwargs["host"],
                       s.connection_pool.connection_kwargs["port"]) for s in manager.sentinels)
    password = manager.sentinel_kwargs.get("password")
    target = SentinelTarget(addresses, pool.service_name, sentinel_password=password)
    return async_pool(target, **settings)
