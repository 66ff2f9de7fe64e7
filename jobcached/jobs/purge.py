"""Purges: QUEUE.PURGE and DLQ.PURGE delete many jobs, a slice at a time.

Why slices: deleting a million jobs takes seconds of Python, and the event loop serves nobody
while it runs. A `Purge` is therefore a small state machine the command layer steps once per
loop turn (`step(limit)`), replying when it is done; other clients are served between steps.
In a transaction (MULTI/EXEC), where nothing may run in between, the command layer runs it to
the end at once (`run`).

Theory of operation
-------------------
The candidates are chosen when the purge begins, from the per-queue index (`ReadyQueue.by_state`,
and the ready lists for the queued ones), so finding them costs what they are, not every job
in memory: a purge of a queue that does not exist, or that holds no waiting job, touches
nothing. A slice deletes the candidates that still
qualify when their turn comes: still in memory (the same object, not a job restored since) and
still in a state the purge deletes (a job leased, canceled or acked meanwhile is left alone,
as it would have been had it moved just before the purge; one leased and failed back to
retrying before its slice is waiting again, and goes). Jobs that arrive while a purge runs
(pushed, or a finished job requeued by JOB.RETRY or DLQ.REQUEUE) are *not* purged: a purge
deletes what was there when it was asked for, so it always ends, even while producers keep
pushing. Two purges of one queue at once each delete what the other has not reached yet.

Each slice is one `delete` record (`JobEngine.delete`), logged and replicated like any other, so
a crash in the middle of a purge leaves the slices already done deleted and the rest intact:
a client that got no reply may purge again. After each slice the queue's ready lists drop the
entries of the jobs just deleted, which hold their last reference, so memory is freed as the
purge goes rather than in one pause at the next fetch.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from itertools import chain
from typing import TYPE_CHECKING

from jobcached.jobs.model import Job, State

if TYPE_CHECKING:
    from jobcached.jobs.engine import JobEngine

#: Jobs a slice deletes: large enough that the per-slice costs (a record, a loop turn) stay
#: small beside the deletes, small enough that a slice holds the loop for a few ms only.
PURGE_SLICE_JOBS = 1_000
#: Ids one sweep of the engine's id list looks at: about 3 ms (a lookup of an id whose job is
#: gone misses the CPU caches: ~0.6 us), plus the list move that closes the gap (1 ms for a
#: million ids), paid per window, not per id.
SWEEP_WINDOW_IDS = 5_000
#: The states QUEUE.PURGE deletes: jobs waiting to run.
WAITING_STATES = (State.PENDING, State.QUEUED, State.RETRYING)


class Purge:
    """One purge in progress (see the module docstring)."""

    def __init__(self, engine: JobEngine, candidates: list[Job | None],
                 qualifies: Callable[[Job], bool]) -> None:
        self._engine = engine
        self._candidates = candidates
        self._qualifies = qualifies
        self._next = 0
        #: jobs deleted so far: the reply
        self.deleted = 0

    @property
    def done(self) -> bool:
        return self._next >= len(self._candidates)

    def step(self, limit: int = PURGE_SLICE_JOBS) -> bool:
        """Delete the next `limit` candidates that still qualify; True once all are done."""
        engine = self._engine
        jobs = engine.jobs
        candidates = self._candidates
        start, self._next = self._next, min(self._next + limit, len(candidates))
        chosen = [job for job in candidates[start:self._next]
                  if job is not None and jobs.get(job.id) is job and self._qualifies(job)]
        # Let go of this slice's jobs now: held to the end, the last slice would free them all
        # in one pause as long as the purge was meant to avoid.
        candidates[start:self._next] = [None] * (self._next - start)
        queues = {job.queue for job in chosen}
        engine.delete([job.id for job in chosen])
        self.deleted += len(chosen)
        for name in queues:
            queue = engine.queues.get(name)
            if queue is not None:
                queue.drop_stale(2 * limit)
        return self.done

    def run(self) -> int:
        """Run to the end at once; returns the number of jobs deleted."""
        while not self.step():
            pass
        return self.deleted


def queue_purge(engine: JobEngine, queue: str) -> Purge:
    """QUEUE.PURGE: the jobs of `queue` that wait to run (pending, queued, retrying)."""
    ready = engine.queues.get(queue)
    if ready is None:
        return Purge(engine, [], _never)
    candidates: list[Job | None] = [*ready.by_state[State.PENDING].values(), *ready.in_order(),
                                    *ready.by_state[State.RETRYING].values()]
    return Purge(engine, candidates, lambda job: job.state in WAITING_STATES)


def dlq_purge(engine: JobEngine, queue: str | None = None,
              older_ms: int | None = None) -> Purge:
    """DLQ.PURGE: the dead jobs (of `queue`, or of every queue) dead for at least `older_ms`
    (None: all of them)."""
    cutoff_ms = engine.clock.now_ms() - older_ms if older_ms is not None else None
    candidates: list[Job | None] = list(chain.from_iterable(  # any order: no sort needed
        ready.by_state[State.DEAD].values() for name, ready in engine.queues.items()
        if queue is None or name == queue))

    def qualifies(job: Job) -> bool:
        return job.state is State.DEAD and (cutoff_ms is None or job.finished_ms <= cutoff_ms)

    return Purge(engine, candidates, qualifies)


def dead_jobs(engine: JobEngine, queue: str | None = None,
              limit: int | None = None) -> list[Job]:
    """The dead jobs in memory, of one queue or of all, oldest death first; at most `limit`.

    They come from the index, so no other job is looked at; a `limit` (DLQ.LIST's COUNT)
    keeps the `limit` oldest with a bounded heap instead of sorting them all."""
    if queue is not None:
        ready = engine.queues.get(queue)
        if ready is None:
            return []
        found: Iterable[Job] = ready.by_state[State.DEAD].values()
    else:
        found = chain.from_iterable(ready.by_state[State.DEAD].values()
                                    for ready in engine.queues.values())
    if limit is not None:
        return heapq.nsmallest(limit, found, key=_death_order)
    return sorted(found, key=_death_order)


def sweep_ids(ids: list[str], alive: Mapping[str, object], start: int) -> tuple[int, int]:
    """Drop the ids of deleted jobs from one window of the engine's id list (JOB.LIST's order),
    in place; returns (ids dropped, where the next window starts).

    The engine calls this after a delete while deleted ids are half its list. Rebuilding the
    whole list at once paused the loop for 40 ms per 200k ids, half way through any big purge;
    a window at a time, the same work is spread over the deletes that follow."""
    if start >= len(ids):
        start = 0
    end = start + SWEEP_WINDOW_IDS
    kept = list(filter(alive.__contains__, ids[start:end]))
    removed = min(end, len(ids)) - start - len(kept)
    ids[start:end] = kept
    end = start + len(kept)
    return removed, end if end < len(ids) else 0


def _death_order(job: Job) -> tuple[int, str]:
    return job.finished_ms, job.id


def _never(job: Job) -> bool:
    return False
