"""What the Worker keeps per handler and per running job, and what a handler sees (`job`).

A handler is called as `handler(payload)`, or `handler(payload, job=JobContext)` when it has a
parameter named `job` (or `**kwargs`). `async def` handlers (and objects with an async
`__call__`) run as tasks on the worker's loop; others in its thread pool.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobcached_client import commands as cmd
from jobcached_client.model import Job

if TYPE_CHECKING:
    from jobcached_client.worker import Worker

_EVENT_LOCK = threading.Lock()


class JobContext:
    """What a handler gets as its `job` parameter: the job's identity, a cancel signal, and
    `log` for progress lines readers can follow (`client.jobs.follow(id)`)."""

    def __init__(self, job: Job, worker: Worker) -> None:
        self.id: str = job.id
        self.queue: str = job.queue
        self.type: str = job.type
        self.attempt: int = job.attempt
        self.priority: int = job.priority
        self.meta: dict[str, str] = job.meta
        self.deadline: datetime | None = job.deadline
        self.raw_payload: bytes = job.raw_payload
        self.worker = worker
        self._token = job.token  # this attempt's lease, which JOB.LOG needs
        self._cancelled: threading.Event | None = None  # made on first use: most jobs never do

    @property
    def cancelled(self) -> bool:
        """True once the job was canceled (or its lease lost): a sync handler should stop and
        return, since the worker will neither ack nor fail it. A plain bool, so that
        `if job.cancelled:` means what it says; to wait for it, use `cancel_event`."""
        return self._cancelled is not None and self._cancelled.is_set()

    @property
    def cancel_event(self) -> threading.Event:
        """The `threading.Event` behind `cancelled`, for handlers that wait on it
        (`job.cancel_event.wait(5)` sleeps up to 5 s, waking early on cancel)."""
        if self._cancelled is None:
            with _EVENT_LOCK:  # the loop (on cancel) and a handler thread may both get here
                if self._cancelled is None:
                    self._cancelled = threading.Event()
        return self._cancelled

    def log(self, *lines: str | bytes) -> None:
        """Append lines (one argument, one line) to the job's log, without waiting: they go
        out with the worker's next batch of acks and fails, ahead of this job's own ack, so
        they never arrive after the job ended. Safe from async and sync handlers alike."""
        self.worker.send_soon(cmd.log(self.id, lines, token=self._token))

    def __repr__(self) -> str:
        return f"<JobContext {self.type} {self.id} attempt {self.attempt}>"


@dataclass(frozen=True)
class Handler:
    fn: Callable[..., Any]
    is_async: bool
    wants_job: bool

    @classmethod
    def of(cls, fn: Callable[..., Any]) -> Handler:
        params = inspect.signature(fn).parameters.values()
        wants_job = any(p.name == "job" or p.kind is p.VAR_KEYWORD for p in params)
        # also an object whose class defines `async def __call__`
        is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
        return cls(fn, is_async, wants_job)


class Running:
    """One job this worker is running."""

    __slots__ = ("abandoned", "beat", "context", "future", "job", "lease_seconds", "stopped")

    def __init__(self, job: Job, context: JobContext, lease_seconds: float) -> None:
        self.job = job
        self.context = context
        self.lease_seconds = lease_seconds
        self.future: asyncio.Future[Any] | None = None
        self.beat: asyncio.TimerHandle | asyncio.Task[None] | None = None
        self.stopped = False  # canceled or lease lost: neither ack nor fail
        self.abandoned = False  # failed at shutdown: its outcome no longer counts
