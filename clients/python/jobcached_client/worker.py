"""The Worker runtime: fetch jobs, run their handlers, keep their leases, ack or fail them.

    worker = Worker(client, queues=["emails"], concurrency=20)

    @worker.task("send_email")          # jobs of type "send_email" (a type defaults to its queue)
    async def send_email(payload, job):  # `job` is optional: a JobContext
        ...
        return {"sent": True}           # stored as the job's result

    worker.run()                        # until SIGTERM / SIGINT

Theory of operation. One asyncio loop does everything but run sync handlers:

- **Fetching.** One loop asks for as many jobs as there are free slots (`concurrency` minus
  running jobs) with a short server-side BLOCK, so a worker never holds jobs it cannot start
  and notices a stop request within `FETCH_BLOCK_SECONDS`.
- **Running.** An async handler runs as a task; a sync one in a thread pool of `concurrency`
  threads. Completion is a done-callback, not a supervising task, to keep the per-job cost low.
- **Leases.** Each running job is heartbeaten (JOB.BEAT) every lease/3, the lease being the time
  from fetch to the deadline the server gave. `canceled` in reply means JOB.CANCEL was called:
  the async task is cancelled, a sync handler finds `job.cancelled` true. A STALE reply (the lease
  ran out and the job went to another worker) is handled the same way.
- **Outcomes.** The return value is serialized and sent with JOB.ACK; an exception becomes
  JOB.FAIL with its class name and traceback. Acks, fails and `job.log(...)` lines go through
  an outbox that one task sends, in order, as pipelines: a burst of short jobs costs one round
  trip, not one each, and a job's log lines always reach the server before its ack.
- **Shutdown** (SIGTERM/SIGINT or `stop()`): stop fetching, let running jobs finish for up to
  `grace` seconds (a second signal ends the wait), then fail the rest with RETRYIN 0 so another
  worker runs them at once, and send the outbox before closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import redis

from jobcached_client import commands as cmd
from jobcached_client.aio import AsyncClient
from jobcached_client.client import Client
from jobcached_client.commands import Call, Duration
from jobcached_client.handlers import Handler, JobContext, Running
from jobcached_client.model import Job, State, text
from jobcached_client.tracing import job_span

log = logging.getLogger("jobcached_client.worker")

#: How long one fetch waits on the server for a job: the longest a stop request waits for
#: the fetch in flight to return (a cancelled fetch could lose jobs leased to it).
FETCH_BLOCK_SECONDS = 1.0
#: Retry delays after the server could not be reached (doubling, capped).
RECONNECT_MIN_SECONDS = 0.1
RECONNECT_MAX_SECONDS = 5.0
#: How often an ack or fail is tried before it is left to the lease to expire.
SEND_ATTEMPTS = 5
#: Lease assumed when a deadline looks wrong (clocks far apart): JOB.PUSH's default TIMEOUT.
FALLBACK_LEASE_SECONDS = 60.0
#: Error types this runtime reports on its own (as `ERRTYPE`).
NO_HANDLER = "NoHandler"
SHUTDOWN = "WorkerShutdown"

F = TypeVar("F", bound=Callable[..., Any])
#: A command waiting in the outbox, and what to do with its reply (None: nothing).
Outgoing = tuple[Call[Any], Callable[[Any], None] | None]


class Worker:
    """Runs registered handlers for the jobs of some queues; see the module docstring.

    `grace` and `lease` are seconds (`lease` may be a timedelta; None: each job's own
    TIMEOUT)."""

    def __init__(self, client: Client | AsyncClient | str, queues: Iterable[str] | None = None,
                 *, concurrency: int = 10, grace: float = 30.0, name: str | None = None,
                 lease: Duration | None = None) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.client = client
        self.queues = list(queues) if queues is not None else None
        self.concurrency = concurrency
        self.grace = grace
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.lease = lease
        self.handlers: dict[str, Handler] = {}
        self.processed = 0  # jobs acked
        self.failed = 0  # attempts failed
        self.threads_left_running = 0  # sync handlers still busy after their job was handed back
        self._running: dict[str, Running] = {}
        self._outbox: list[Outgoing] = []
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async: AsyncClient | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._wake: asyncio.Event | None = None  # a slot freed up, or a stop request
        self._force: asyncio.Event | None = None  # a second stop request: end the grace
        self._outbox_ready: asyncio.Event | None = None
        self._closing = False

    # --- registration ----------------------------------------------------------------

    def task(self, type: str | Callable[..., Any] | None = None) -> Any:
        """Register a handler for jobs of `type` (default: the function's name)."""
        if callable(type):  # used bare: @worker.task
            return self.task(None)(type)

        def register(fn: F) -> F:
            self.register(type or fn.__name__, fn)
            return fn
        return register

    def register(self, type: str, fn: Callable[..., Any]) -> None:
        self.handlers[type] = Handler.of(fn)

    # --- running and stopping --------------------------------------------------------

    def run(self) -> None:
        """Run until SIGTERM or SIGINT (or `stop()`), then shut down gracefully."""
        asyncio.run(self._serve_with_signals())

    async def _serve_with_signals(self) -> None:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, self.stop)
        try:
            await self.serve()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    def stop(self) -> None:
        """Ask the worker to shut down (from any thread); a second call ends the grace."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._stop_requested = True
            return
        _on_loop(loop, self._request_stop)

    def _request_stop(self) -> None:
        assert self._wake is not None and self._force is not None
        if self._stop_requested:
            self._force.set()
        self._stop_requested = True
        self._wake.set()

    async def serve(self) -> None:
        """Fetch and run jobs until `stop()`; then drain (see the module docstring)."""
        if not self.handlers:
            raise RuntimeError("no handlers: register one with @worker.task(type)")
        queues = self.queues or sorted(self.handlers)
        self._loop = asyncio.get_running_loop()
        self._wake, self._force = asyncio.Event(), asyncio.Event()
        self._outbox_ready = asyncio.Event()
        self._closing = False
        owned = not isinstance(self.client, AsyncClient)
        self._async = self._open_client()
        self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="jobcached-job")
        flusher = asyncio.create_task(self._flush_outbox())
        log.info("worker %s: fetching from %s (concurrency %d)", self.name, ", ".join(queues),
                 self.concurrency)
        try:
            await self._fetch_loop(queues)
            await self._drain()
        finally:
            self._closing = True
            self._outbox_ready.set()
            await flusher
            self._executor.shutdown(wait=False, cancel_futures=True)
            if owned:
                await self._async.aclose()
            self._stop_requested = False  # the worker may serve again
            log.info("worker %s: stopped (%d acked, %d failed)", self.name, self.processed,
                     self.failed)

    def _open_client(self) -> AsyncClient:
        if isinstance(self.client, AsyncClient):
            return self.client
        if isinstance(self.client, Client):
            return AsyncClient.like(self.client)
        return AsyncClient.from_url(self.client)

    @property
    def running_jobs(self) -> list[str]:
        """The ids of the jobs running now."""
        return list(self._running)

    async def _fetch_loop(self, queues: list[str]) -> None:
        assert self._async is not None and self._wake is not None
        delay = RECONNECT_MIN_SECONDS
        while not self._stop_requested:
            free = self.concurrency - len(self._running)
            if free <= 0:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                jobs = await self._async.jobs.fetch(queues, count=free, block=FETCH_BLOCK_SECONDS,
                                                    lease=self.lease, worker=self.name)
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
                log.warning("worker %s: fetch failed (%s); retrying in %.1fs", self.name, exc,
                            delay)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                continue
            delay = RECONNECT_MIN_SECONDS
            for job in jobs:
                self._start(job)

    async def _drain(self) -> None:
        """Give running jobs `grace` seconds, then hand the rest back to the server."""
        assert self._wake is not None and self._force is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace
        if self._running:
            log.info("worker %s: waiting up to %.1fs for %d running jobs", self.name,
                     self.grace, len(self._running))
        while self._running and not self._force.is_set() and loop.time() < deadline:
            self._wake.clear()
            waits = [asyncio.ensure_future(self._wake.wait()),
                     asyncio.ensure_future(self._force.wait())]
            await asyncio.wait(waits, timeout=deadline - loop.time(),
                               return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()
        await asyncio.sleep(0)  # let done-callbacks of jobs that just finished run first
        for running in list(self._running.values()):
            if running.future is not None and running.future.done():
                continue
            log.warning("worker %s: job %s did not finish within the grace period; "
                        "handing it back", self.name, running.job.id)
            running.abandoned = True
            self._stop_beats(running)
            running.context.cancel_event.set()
            if isinstance(running.future, asyncio.Task):
                running.future.cancel()
            else:
                self.threads_left_running += 1  # Python cannot stop a thread
            self._send(cmd.fail(running.job, "the worker shut down before the job finished",
                                errtype=SHUTDOWN, retry_in=0))
            del self._running[running.job.id]
        await asyncio.sleep(0)

    # --- one job ---------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        assert self._loop is not None
        handler = self.handlers.get(job.type)
        if handler is None:
            known = ", ".join(sorted(self.handlers))
            self._fail(job, f"no handler for job type '{job.type}' on worker {self.name} "
                            f"(it handles: {known})", NO_HANDLER, "")
            return
        try:
            payload = job.payload
        except Exception as exc:  # the serializer could not read it: the job cannot run
            self._fail(job, f"payload could not be decoded: {exc}", type(exc).__name__,
                       _trace(exc))
            return
        context = JobContext(job, self)
        running = Running(job, context, self._lease_seconds(job))
        self._running[job.id] = running
        args = functools.partial(handler.fn, payload, job=context) if handler.wants_job \
            else functools.partial(handler.fn, payload)
        if handler.is_async:
            running.future = self._loop.create_task(_traced_async(job, args))
        else:
            running.future = self._loop.run_in_executor(
                self._executor, functools.partial(_traced_sync, job, args))
        running.future.add_done_callback(functools.partial(self._finished, running))
        running.beat = self._loop.call_later(running.lease_seconds / 3, self._beat, running)

    def _lease_seconds(self, job: Job) -> float:
        if self.lease is not None:
            return cmd.ms(self.lease, "lease") / 1000
        if job.deadline is None:
            return FALLBACK_LEASE_SECONDS
        lease = job.deadline.timestamp() - time.time()
        return lease if 0 < lease <= 24 * 3600 else FALLBACK_LEASE_SECONDS

    def _finished(self, running: Running, future: asyncio.Future[Any]) -> None:
        self._stop_beats(running)
        if self._running.get(running.job.id) is running:
            del self._running[running.job.id]
        if self._wake is not None:
            self._wake.set()
        if running.abandoned or running.stopped:
            return
        job = running.job
        if future.cancelled():
            self._fail(job, "the handler was cancelled", "CancelledError", "")
            return
        exc = future.exception()
        if exc is not None:
            self._fail(job, str(exc) or type(exc).__name__, type(exc).__name__, _trace(exc))
            return
        assert self._async is not None
        try:
            call = cmd.ack(self._async.serializer, job, result=future.result())
        except Exception as error:  # the result could not be serialized
            self._fail(job, f"the result could not be serialized: {error}",
                       type(error).__name__, _trace(error))
            return
        self.processed += 1
        self._send(call)

    def _fail(self, job: Job, message: str, errtype: str, trace: str) -> None:
        self.failed += 1
        self._send(cmd.fail(job, message, errtype=errtype, trace=trace),
                   functools.partial(_log_failure, job, f"{errtype}: {message}"))

    def _stop(self, running: Running, why: str) -> None:
        """The server no longer wants this attempt's outcome: stop the handler."""
        log.info("job %s: %s; stopping its handler", running.job.id, why)
        running.stopped = True
        running.context.cancel_event.set()
        if running.future is not None and not running.future.done():
            running.future.cancel()  # only an async task notices; a sync one reads job.cancelled

    # --- heartbeats ------------------------------------------------------------------

    def _beat(self, running: Running) -> None:
        running.beat = asyncio.ensure_future(self._send_beat(running))

    async def _send_beat(self, running: Running) -> None:
        assert self._async is not None and self._loop is not None
        next_in = running.lease_seconds / 3
        try:
            deadline = await self._async.jobs.beat(running.job)
        except redis.ResponseError as exc:
            if str(exc).startswith("STALE"):
                self._stop(running, "its lease was lost")
                return
            log.warning("job %s: heartbeat refused: %s", running.job.id, exc)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("job %s: heartbeat failed: %s", running.job.id, exc)
            next_in = min(next_in, 1.0)
        else:
            if deadline is None:
                self._stop(running, "it was canceled")
                return
        if running.job.id in self._running and not running.stopped:
            running.beat = self._loop.call_later(next_in, self._beat, running)

    @staticmethod
    def _stop_beats(running: Running) -> None:
        if running.beat is not None:
            running.beat.cancel()
            running.beat = None

    # --- the outbox: acks and fails, sent in pipelines -------------------------------

    def send_soon(self, call: Call[Any]) -> None:
        """Send a command with the acks and fails, from any thread (`JobContext.log`)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the worker is not running")
        # A closed loop means a sync handler outlived the shutdown: its job was handed back,
        # so the server would refuse the command anyway.
        with contextlib.suppress(RuntimeError):
            _on_loop(loop, self._send, call)

    def _send(self, call: Call[Any], on_reply: Callable[[Any], None] | None = None) -> None:
        """Queue `call` for the outbox; `on_reply` gets the server's (non-error) reply."""
        assert self._outbox_ready is not None
        self._outbox.append((call, on_reply))
        self._outbox_ready.set()

    async def _flush_outbox(self) -> None:
        assert self._outbox_ready is not None
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            batch, self._outbox = self._outbox, []
            if batch:
                await self._send_batch(batch)
            if self._closing and not self._outbox:
                return

    async def _send_batch(self, batch: list[Outgoing]) -> None:
        assert self._async is not None
        delay = RECONNECT_MIN_SECONDS
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                async with self._async.pipeline(transaction=False) as pipe:
                    for call, _ in batch:
                        pipe.execute_command(*call.args)
                    replies = await pipe.execute(raise_on_error=False)
                break
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if attempt == SEND_ATTEMPTS:
                    log.error("worker %s: could not send %d acks/fails (%s); their leases "
                              "will expire and the jobs run again", self.name, len(batch), exc)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
        for (call, on_reply), reply in zip(batch, replies, strict=True):
            if isinstance(reply, Exception):
                log.warning("%s %s: %s", call.args[0], call.args[1], reply)
            elif on_reply is not None:
                on_reply(reply)


def _log_failure(job: Job, error: str, reply: Any) -> None:
    """Say what a failed attempt means for its job, which only JOB.FAIL's reply tells: the
    job will run again, or it failed for good and waits in the dead-letter queue."""
    if text(reply) == State.DEAD.value:
        attempts = "1 attempt" if job.attempt == 1 else f"{job.attempt} attempts"
        log.warning("job %s (%s) failed permanently after %s; moved to the dead-letter queue "
                    "(DLQ.LIST, DLQ.REQUEUE): %s", job.id, job.type, attempts, error)
    else:
        log.info("job %s (%s) attempt %d failed; it will be retried: %s", job.id, job.type,
                 job.attempt, error)


def _on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    """Call `fn` on `loop`: at once from the loop's own thread, else as soon as it can."""
    try:
        here = asyncio.get_running_loop() is loop
    except RuntimeError:
        here = False
    if here:
        fn(*args)
    else:
        loop.call_soon_threadsafe(fn, *args)


async def _traced_async(job: Job, call: Callable[[], Any]) -> Any:
    """Run an async handler inside the job's trace span (see tracing.py)."""
    with job_span(job):
        return await call()


def _traced_sync(job: Job, call: Callable[[], Any]) -> Any:
    """Run a sync handler, in its worker thread, inside the job's trace span."""
    with job_span(job):
        return call()


def _trace(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))
