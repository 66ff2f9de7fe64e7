"""Job events: every state change of some jobs, read from pub/sub as `JobEvent`s.

The server publishes each transition of a job, as a small JSON message, on `__job__:<id>` and
`__queue__:<queue>`, and only while someone listens: a stream sees the changes made after its
subscription was confirmed, none before. So `Client.events(...)` subscribes before it returns,
and `AsyncClient.events(...)` when entered (`async with`) or first iterated; push the job after
that to see it from `queued` on.

    with client.events(queue="emails", timeout=5) as events:
        job_id = client.jobs.push("emails", {...})
        for event in events:                 # JobEvent(id, queue, old, new, attempt, time)
            if event.id == job_id and event.new.finished:
                break

A stream ends when `timeout` passes without an event (None: never) or when it is closed; the
context manager closes it, which gives its connection back.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

import redis
import redis.asyncio as aioredis

from jobcached_client.commands import Duration, ms
from jobcached_client.model import JobEvent

#: A server that has not confirmed a SUBSCRIBE within this is not answering at all.
SUBSCRIBE_TIMEOUT_SECONDS = 10.0
#: What redis-py's PubSub returns for a published message (as against a confirmation).
MESSAGE_TYPES = ("message", "pmessage")
CONFIRMATION_TYPES = ("subscribe", "psubscribe")


def subscription(job_id: str | None, queue: str | None) -> tuple[str, bool]:
    """The channel to listen on, and whether it is a pattern: one job, one queue, or all."""
    if job_id is not None and queue is not None:
        # Every change is published on both channels: listening to both would repeat it.
        raise ValueError("give job_id or queue, not both")
    if job_id is not None:
        return f"__job__:{job_id}", False
    if queue is not None:
        return f"__queue__:{queue}", False
    return "__queue__:*", True


def seconds(timeout: Duration | None) -> float | None:
    return None if timeout is None else ms(timeout, "timeout") / 1000


class JobEvents:
    """A stream of job events (sync): an iterator, and a context manager that closes it."""

    def __init__(self, client: redis.Redis, job_id: str | None = None,
                 queue: str | None = None, timeout: Duration | None = None) -> None:
        channel, is_pattern = subscription(job_id, queue)
        self.timeout = seconds(timeout)
        self._pubsub = client.pubsub()
        self._closed = False
        try:
            if is_pattern:
                self._pubsub.psubscribe(channel)
            else:
                self._pubsub.subscribe(channel)
            self._confirm()
        except BaseException:
            self.close()
            raise

    def _confirm(self) -> None:
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            message = self._pubsub.get_message(timeout=left)
            if message is not None and message["type"] in CONFIRMATION_TYPES:
                return
        raise redis.TimeoutError("the server did not confirm the subscription")

    def __iter__(self) -> JobEvents:
        return self

    def __next__(self) -> JobEvent:
        if self._closed:
            raise StopIteration
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            message = self._pubsub.get_message(timeout=left)
            if message is not None and message["type"] in MESSAGE_TYPES:
                return JobEvent.from_message(message["data"])
            if deadline is not None and time.monotonic() >= deadline:
                self.close()
                raise StopIteration

    def close(self) -> None:
        """Stop listening and give the connection back."""
        if not self._closed:
            self._closed = True
            self._pubsub.close()

    def __enter__(self) -> JobEvents:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


class AsyncJobEvents:
    """A stream of job events (asyncio): an async iterator and async context manager."""

    def __init__(self, client: aioredis.Redis, job_id: str | None = None,
                 queue: str | None = None, timeout: Duration | None = None) -> None:
        self._channel, self._is_pattern = subscription(job_id, queue)
        self.timeout = seconds(timeout)
        self._pubsub = client.pubsub()
        self._subscribed = False
        self._closed = False

    async def subscribe(self) -> None:
        """Listen from now on (entering the stream or iterating it does this too)."""
        if self._subscribed:
            return
        self._subscribed = True
        try:
            if self._is_pattern:
                await self._pubsub.psubscribe(self._channel)
            else:
                await self._pubsub.subscribe(self._channel)
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_SECONDS):
                while True:
                    message = await self._pubsub.get_message(timeout=None)
                    if message is not None and message["type"] in CONFIRMATION_TYPES:
                        return
        except TimeoutError:
            await self.aclose()
            raise redis.TimeoutError("the server did not confirm the subscription") from None
        except BaseException:
            await self.aclose()
            raise

    def __aiter__(self) -> AsyncJobEvents:
        return self

    async def __anext__(self) -> JobEvent:
        if self._closed:
            raise StopAsyncIteration
        await self.subscribe()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            message = await self._pubsub.get_message(timeout=left)
            if message is not None and message["type"] in MESSAGE_TYPES:
                return JobEvent.from_message(message["data"])
            if deadline is not None and time.monotonic() >= deadline:
                await self.aclose()
                raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop listening and give the connection back."""
        if not self._closed:
            self._closed = True
            await self._pubsub.aclose()

    async def __aenter__(self) -> AsyncJobEvents:
        await self.subscribe()
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None,
                        ) -> None:
        await self.aclose()
