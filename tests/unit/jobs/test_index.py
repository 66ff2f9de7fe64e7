"""The per-queue, per-state job index (`ReadyQueue.by_state`), the sliced purges built on it,
and the engine's running estimate of its jobs' memory (`JobEngine.used_memory`).

The property: whatever happens (pushes, leases, acks, failures, cancels, retries, time passing,
purges interleaved slice by slice with all of these, moves to the archive and back, restarts
that rebuild the engine from its log), the index holds exactly the jobs a full scan finds, filed
under their queue and state, a purge deletes only jobs that were waiting when it began, and
the memory total equals a full recount of `job_bytes` over the jobs in memory.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from jobcached.clock import ManualClock
from jobcached.errors import CommandError
from jobcached.jobs import purge as purges
from jobcached.jobs.engine import JobEngine, PushOptions
from jobcached.jobs.memory import job_bytes
from jobcached.jobs.model import Job, RetryPolicy, State
from jobcached.jobs.purge import Purge
from jobcached.jobs.ready import INDEXED_STATES
from jobcached.jobs.records import decode_record

QUEUES = ["a", "b"]
WAITING = {State.PENDING, State.QUEUED, State.RETRYING}


def scan(engine: JobEngine) -> dict[tuple[str, State], set[str]]:
    """The index as a full scan over every job would build it."""
    found: dict[tuple[str, State], set[str]] = {}
    for job in engine.jobs.values():
        if job.state in INDEXED_STATES:
            found.setdefault((job.queue, job.state), set()).add(job.id)
    return found


def scan_counts(engine: JobEngine) -> dict[str, dict[State, int]]:
    counts = {name: dict.fromkeys(State, 0) for name in engine.queues}
    for job in engine.jobs.values():
        counts[job.queue][job.state] += 1
    return counts


def indexed(engine: JobEngine) -> dict[tuple[str, State], set[str]]:
    found: dict[tuple[str, State], set[str]] = {}
    for name, queue in engine.queues.items():
        queued = [job.id for job in queue.in_order()]
        assert len(queued) == len(set(queued)), "a job twice in the ready lists"
        assert set(queued) == {job.id for job in engine.jobs.values()
                               if job.queue == name and job.state is State.QUEUED}
        for state, jobs in queue.by_state.items():
            for job_id, job in jobs.items():
                assert engine.jobs[job_id] is job, "the index holds a job memory does not"
                assert job.queue == name and job.state is state
                found.setdefault((name, state), set()).add(job_id)
    return found


class IndexMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.log: list[Any] = []
        self.engine = self._engine(0)
        self.pushed: list[str] = []
        self.leases: list[tuple[str, str]] = []
        #: a purge under way, the ids it may delete (waiting when it began) and its queue
        self.purge: Purge | None = None
        self.purgeable: set[str] = set()
        self.archived: dict[str, Job] = {}

    def _engine(self, seed: int) -> JobEngine:
        return JobEngine(self.clock, rng=random.Random(seed), sink=self.log.append,
                         default_lease_ms=1000, tick_ms=10, log_max_lines=5,
                         log_max_bytes=500)

    @rule(queue=st.sampled_from(QUEUES), delay=st.sampled_from([None, 50]),
          retries=st.integers(0, 2), priority=st.integers(0, 2), n=st.integers(1, 5),
          meta=st.dictionaries(st.text(max_size=5), st.text(max_size=40), max_size=2),
          key=st.sampled_from([None, "k1", "k2"]), after=st.booleans())
    def push(self, queue: str, delay: int | None, retries: int, priority: int, n: int,
             meta: dict[str, str], key: str | None, after: bool) -> None:
        for _ in range(n):
            parents = [self.pushed[-1]] if after and self.pushed[-1:] and \
                self.pushed[-1] in self.engine.jobs else []
            opts = PushOptions(delay_ms=delay, priority=priority, meta=meta,
                               key=key and f"{queue}:{key}",
                               after=parents, retry=RetryPolicy(retries, (20, 200)))
            job_id, created = self.engine.push(queue, b"p" * 10, opts)
            if created:
                self.pushed.append(job_id)

    @precondition(lambda self: self.leases)
    @rule(data=st.data(), lines=st.lists(st.binary(max_size=300), min_size=1, max_size=4))
    def log_lines(self, data: st.DataObject, lines: list[bytes]) -> None:
        job_id, token = data.draw(st.sampled_from(self.leases))
        with contextlib.suppress(CommandError):
            self.engine.log(job_id, token, lines)

    @rule(queue=st.sampled_from(QUEUES), count=st.integers(1, 4))
    def fetch(self, queue: str, count: int) -> None:
        self.leases += [(j.id, j.token) for j in self.engine.fetch([queue], count, 100, "w")]

    @precondition(lambda self: self.leases)
    @rule(data=st.data(), action=st.sampled_from(["ack", "fail", "noretry"]))
    def finish(self, data: st.DataObject, action: str) -> None:
        job_id, token = data.draw(st.sampled_from(self.leases))
        with contextlib.suppress(CommandError):  # a stale lease changes nothing
            if action == "ack":
                self.engine.ack(job_id, token, b"result" * data.draw(st.integers(0, 50)))
            else:
                self.engine.fail(job_id, token, "boom" * data.draw(st.integers(0, 50)),
                                 noretry=action == "noretry")

    @precondition(lambda self: self.pushed)
    @rule(data=st.data(), action=st.sampled_from(["cancel", "retry"]))
    def control(self, data: st.DataObject, action: str) -> None:
        job_id = data.draw(st.sampled_from(self.pushed))
        with contextlib.suppress(CommandError):
            getattr(self.engine, action)(job_id)

    @rule(ms=st.sampled_from([10, 60, 250, 1200]))
    def time_passes(self, ms: int) -> None:
        self.clock.advance(ms)
        self.engine.tick()

    @precondition(lambda self: self.purge is None)
    @rule(queue=st.sampled_from([*QUEUES, "nosuch"]))
    def start_purge(self, queue: str) -> None:
        self.purgeable = {j.id for j in self.engine.jobs.values()
                          if j.queue == queue and j.state in WAITING}
        self.purge = purges.queue_purge(self.engine, queue)

    @precondition(lambda self: self.purge is not None)
    @rule(limit=st.integers(1, 4))
    def purge_slice(self, limit: int) -> None:
        assert self.purge is not None
        before = set(self.engine.jobs)
        done = self.purge.step(limit)
        gone = before - set(self.engine.jobs)
        assert gone <= self.purgeable, "a purge deleted a job that was not waiting at its start"
        if done:
            self.purge = None

    @rule(queue=st.sampled_from([None, *QUEUES]))
    def dlq_purge(self, queue: str | None) -> None:
        dead = {j.id for j in self.engine.jobs.values()
                if j.state is State.DEAD and queue in (None, j.queue)}
        assert purges.dlq_purge(self.engine, queue).run() == len(dead)
        assert not dead & set(self.engine.jobs)

    @rule()
    def archive(self) -> None:
        found = self.engine.archivable(self.clock.now_ms() + 1, 3)
        self.engine.archived([(job, job.finished_ms) for job in found])
        self.archived.update((job.id, job) for job in found if job.id not in self.engine.jobs)

    @precondition(lambda self: self.archived)
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.archived)))
        job = self.archived.pop(job_id)
        self.engine.restore(Job.from_record(job.to_record()))
        self.engine.retry(job_id)  # as JOB.RETRY and DLQ.REQUEUE do: restore to run again

    @rule(seed=st.integers(0, 100))
    def restart(self, seed: int) -> None:
        fresh = self._engine(seed)
        fresh.sink = lambda record: None
        fresh.replay([decode_record(body) for body in self.log])
        fresh.sink = self.log.append
        assert indexed(fresh) == indexed(self.engine)
        assert fresh.used_memory == self.engine.used_memory
        self.engine = fresh
        self.purge = None  # the purge's client went with the old process

    @invariant()
    def index_equals_a_full_scan(self) -> None:
        assert indexed(self.engine) == scan(self.engine)
        assert {name: queue.counts for name, queue in self.engine.queues.items()} == \
            scan_counts(self.engine)

    @invariant()
    def memory_equals_a_full_recount(self) -> None:
        assert self.engine.used_memory == sum(map(job_bytes, self.engine.jobs.values()))

    @invariant()
    def dead_jobs_come_oldest_first(self) -> None:
        dead = purges.dead_jobs(self.engine)
        assert [j.id for j in dead] == [j.id for j in sorted(
            (j for j in self.engine.jobs.values() if j.state is State.DEAD),
            key=lambda j: (j.finished_ms, j.id))]
        assert purges.dead_jobs(self.engine, None, 2) == dead[:2]


IndexMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40,
                                          deadline=None)
TestIndexMachine = IndexMachine.TestCase


def test_a_purge_touches_only_its_queue_and_leaves_arrivals_alone() -> None:
    clock = ManualClock()
    engine = JobEngine(clock, rng=random.Random(1))
    for _ in range(5):
        engine.push("q", b"x")
        engine.push("other", b"x")
    purge = purges.queue_purge(engine, "q")
    assert purge.step(2) is False and purge.deleted == 2
    arrived, _ = engine.push("q", b"late")  # after the purge began: it stays
    assert purge.step(10) is True and purge.deleted == 5
    assert engine.queues["q"].counts[State.QUEUED] == 1 and arrived in engine.jobs
    assert engine.queues["other"].counts[State.QUEUED] == 5
    assert [j.id for j in engine.fetch(["q"], 10)] == [arrived]


def test_a_purge_of_a_queue_that_does_not_exist_is_done_at_once() -> None:
    engine = JobEngine(ManualClock())
    engine.push("q", b"x")
    purge = purges.queue_purge(engine, "nosuch")
    assert purge.done and purge.step() is True and purge.deleted == 0


def test_purge_slices_free_the_ready_entries_as_they_go() -> None:
    engine = JobEngine(ManualClock())
    for _ in range(10):
        engine.push("q", b"x")
    purge = purges.queue_purge(engine, "q")
    purge.step(4)
    levels = engine.queues["q"]._levels
    assert sum(len(level) for level in levels.values()) == 6  # the 4 deleted are dropped
    purge.run()
    assert sum(len(level) for level in levels.values()) == 0
    assert engine.queues["q"].oldest() is None


def test_a_job_that_ended_twice_in_one_millisecond_is_archived_once() -> None:
    """Found by the state machine above: archiving took such a job twice, and the second
    delete of its id raised KeyError in the archiver."""
    clock = ManualClock()
    engine = JobEngine(clock)
    job_id, _ = engine.push("q", b"x")
    engine.cancel(job_id)
    engine.retry(job_id)
    engine.cancel(job_id)
    found = engine.archivable(clock.now_ms() + 1, 10)
    assert [job.id for job in found] == [job_id]
    engine.archived([(job, job.finished_ms) for job in found])
    assert job_id not in engine.jobs and engine.used_memory == 0
