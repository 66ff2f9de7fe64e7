"""Per-queue job index and ready lists: every job of a queue by state, and the queued ones in
the order they run (highest priority first, FIFO within a priority).

The index (`ReadyQueue.by_state`) maps each state that commands look up by queue to the
queue's jobs in that state (id -> Job, in the order they entered it): pending and retrying,
which QUEUE.PURGE deletes, and dead, which DLQ.* lists, requeues and purges. So a command
about one queue or one state costs what it touches, never a walk over every job. The queued
jobs are already in the ready lists, which QUEUE.PURGE reads for them (`in_order`); a second
index of them cost about 50 bytes per queued job. The other states (queued, running,
succeeded, canceled) are only counted (`tally`): every job passes through running and
succeeded, and filing it there too cost about a fifth of a push-fetch-ack cycle for nothing a
command reads. QUEUE.STATS reads `counts`, the sizes of both.

The engine keeps both in its apply path (`_apply_put`, `_move`, `_forget`, through `file`,
`refile` and `unfile`), which WAL replay runs too, so the index is rebuilt by the replay
itself and cannot disagree with the jobs it indexes (tests compare it with a full scan after
random operations and restarts).

Each priority level is a deque of the jobs themselves; the levels present are kept sorted.
Removing a job that was canceled or purged while queued is lazy: its entry stays in the deque
and is skipped when it reaches the front. So push, pop and cancel are all O(1) amortized (plus
a bisect when a new level appears). An entry is live when its job is queued and it is the
job's newest entry: a job canceled and requeued before its old entry reached the front has
two, and `Job.ready_entries` counts them, so the old one is skipped and the job keeps its new
place. (Entries were `(sequence number, job)` pairs before: the pair and its number were 95
of the 785 bytes a queued job took.)

The queue also carries the per-queue counters behind QUEUE.STATS and the metrics. The activity
counters (`pushed` ... `lease_expired`, and the two duration histograms) describe what this
process did since it started: the engine bumps them in its public methods, never in `_apply`,
so replaying the log at start does not count history a second time (Prometheus reads a restart
as a counter reset, as for any process).
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field

from jobcached.jobs.limits import QueueLimit
from jobcached.jobs.model import Job, State

#: Slots of a duration histogram: a duration of v ms is counted in slot v.bit_length() (so
#: v < 2**slot ms), which makes recording one integer op; 64 slots hold any int64. The slot
#: after them holds the sum of the durations in ms.
HISTOGRAM_SLOTS = 64
#: A module name for the state `pop` tests: `State.QUEUED` costs an EnumType.__getattr__ round
#: trip on Python 3.11, on every job fetched.
QUEUED = State.QUEUED
#: The states whose jobs the index files by id (see the module docstring).
INDEXED_STATES = (State.PENDING, State.RETRYING, State.DEAD)


def new_histogram() -> list[int]:
    return [0] * (HISTOGRAM_SLOTS + 1)


def observe_ms(histogram: list[int], duration_ms: int) -> None:
    if duration_ms < 0:  # a clock stepped back must not index from the end
        duration_ms = 0
    histogram[duration_ms.bit_length()] += 1
    histogram[-1] += duration_ms


@dataclass(slots=True)
class ReadyQueue:
    """The queued jobs of one queue, plus what QUEUE.STATS reports about it."""

    name: str
    paused: bool = False
    #: QUEUE.LIMIT's concurrency and rate limits (jobs/limits.py); None when it has none
    limit: QueueLimit | None = None
    processed: int = 0  # acked
    failed: int = 0  # failed attempts, lease expiries included
    #: the index: indexed state -> {job id: Job} of this queue's jobs (module docstring)
    by_state: dict[State, dict[str, Job]] = field(
        default_factory=lambda: {state: {} for state in INDEXED_STATES})
    #: how many of its jobs are in each state that is not indexed
    tally: dict[State, int] = field(default_factory=lambda: {
        state: 0 for state in State if state not in INDEXED_STATES})
    # activity since this process started (see the module docstring)
    pushed: int = 0
    fetched: int = 0  # leases handed out
    succeeded: int = 0
    failed_attempts: int = 0  # JOB.FAIL and lease expiries
    retried: int = 0  # failed attempts that will run again (moved to retrying)
    dead: int = 0  # failed attempts with no retry left
    canceled: int = 0
    requeued: int = 0  # JOB.RETRY and DLQ.REQUEUE
    lease_expired: int = 0
    wait_ms: list[int] = field(default_factory=new_histogram)  # queued -> leased
    run_ms: list[int] = field(default_factory=new_histogram)  # leased -> acked
    _levels: dict[int, deque[Job]] = field(default_factory=dict)
    _order: list[int] = field(default_factory=list)  # negated priorities, ascending

    @property
    def counts(self) -> dict[State, int]:
        """How many of the queue's jobs are in each state (QUEUE.STATS, INFO, metrics)."""
        by_state, tally = self.by_state, self.tally
        return {state: len(by_state[state]) if state in by_state else tally[state]
                for state in State}

    def file(self, job: Job, state: State) -> None:
        """A job of this queue came into memory in `state`."""
        jobs = self.by_state.get(state)
        if jobs is None:
            self.tally[state] += 1
        else:
            jobs[job.id] = job

    def unfile(self, job: Job, state: State) -> None:
        """A job of this queue in `state` left memory."""
        jobs = self.by_state.get(state)
        if jobs is None:
            self.tally[state] -= 1
        else:
            del jobs[job.id]

    def refile(self, job: Job, old: State, new: State) -> None:
        """A job of this queue moved from `old` to `new` (the engine's `_move`, every
        transition of every job: so the two halves are inlined, not calls)."""
        by_state = self.by_state
        jobs = by_state.get(old)
        if jobs is None:
            self.tally[old] -= 1
        else:
            del jobs[job.id]
        jobs = by_state.get(new)
        if jobs is None:
            self.tally[new] += 1
        else:
            jobs[job.id] = job

    def push(self, job: Job) -> None:
        job.ready_entries += 1
        level = self._levels.get(job.priority)
        if level is None:
            level = self._levels[job.priority] = deque()
            bisect.insort(self._order, -job.priority)
        level.append(job)

    def pop(self) -> Job | None:
        """The next job to run, or None; stale entries are dropped on the way."""
        while self._order:
            priority = -self._order[0]
            level = self._levels[priority]
            while level:
                job = level.popleft()
                left = job.ready_entries = job.ready_entries - 1
                if left == 0 and job.state is QUEUED:
                    return job
            del self._levels[priority]
            self._order.pop(0)
        return None

    def in_order(self) -> list[Job]:
        """The queued jobs in the order `pop` would hand them out (tests compare it): each
        job at its newest entry."""
        out: list[Job] = []
        for negated in self._order:
            seen: set[int] = set()
            newest_first = []
            for job in reversed(self._levels[-negated]):
                if id(job) not in seen:
                    seen.add(id(job))
                    if job.state is QUEUED:
                        newest_first.append(job)
            out += reversed(newest_first)
        return out

    def oldest(self) -> Job | None:
        """The queued job that has waited longest (for queue lag), without removing it.

        Stale entries in front of a level are dropped on the way (`pop` would skip them
        anyway), so after a purge or mass cancel this pays for them once, not at every
        QUEUE.STATS or INFO."""
        self.drop_stale()
        best: Job | None = None
        for level in self._levels.values():
            if level:
                job = level[0]
                if best is None or job.enqueued_ms < best.enqueued_ms:
                    best = job
        return best

    def drop_stale(self, limit: int | None = None) -> int:
        """Drop entries of jobs no longer queued from the front of every level, at most
        `limit` of them (None: all there are); returns how many were dropped.

        The entries hold the last reference to a deleted job, so this is also what frees a
        purged job's memory: a sliced purge calls it per slice, to free as it goes rather
        than in one long pause when the queue is next popped."""
        dropped = 0
        for level in self._levels.values():
            while level and (limit is None or dropped < limit):
                job = level[0]
                if job.ready_entries == 1 and job.state is QUEUED:
                    break
                level.popleft()
                job.ready_entries -= 1
                dropped += 1
        return dropped
