"""A hypothesis state machine over the job engine, with a fake clock and simulated restarts.

Random sequences of push / fetch / ack / fail / beat / cancel / retry / time passing / restart
must keep four promises: only transitions the model's table allows (replay re-checks every
record against it); no job is ever lost; no job is held by two valid leases at once (a stale
token is always refused); and replaying the log reproduces exactly the same state.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from jobcached.clock import ManualClock
from jobcached.errors import CommandError, StaleLeaseError
from jobcached.jobs.engine import JobEngine, PushOptions
from jobcached.jobs.model import TRANSITIONS, RetryPolicy, State
from jobcached.jobs.records import decode_record

QUEUES = ["a", "b"]
ALLOWED = {(old, new) for table in TRANSITIONS.values() for old, new in table.items()}


def dump(engine: JobEngine) -> dict[str, Any]:
    return {job_id: job.to_record() for job_id, job in engine.jobs.items()}


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.log: list[dict[str, Any]] = []
        self.engine = self._new_engine(seed=0)
        self.pushed: set[str] = set()
        self.leases: list[tuple[str, str]] = []  # every (job id, token) ever handed out
        self.last_state: dict[str, State] = {}

    def _logged(self, body: bytes) -> None:
        self.log.append(decode_record(body))

    def _new_engine(self, seed: int) -> JobEngine:
        return JobEngine(self.clock, rng=random.Random(seed), sink=self._logged,
                         default_lease_ms=1000, tick_ms=10)

    @rule(queue=st.sampled_from(QUEUES), delay=st.sampled_from([None, 0, 50, 500]),
          retries=st.integers(0, 3), priority=st.integers(0, 2))
    def push(self, queue: str, delay: int | None, retries: int, priority: int) -> None:
        opts = PushOptions(delay_ms=delay, priority=priority,
                           retry=RetryPolicy(retries, (20, 200)))
        job_id, created = self.engine.push(queue, b"payload", opts)
        assert created
        self.pushed.add(job_id)

    @rule(queues=st.lists(st.sampled_from(QUEUES), min_size=1, max_size=2, unique=True),
          count=st.integers(1, 3), lease=st.sampled_from([None, 100, 5000]))
    def fetch(self, queues: list[str], count: int, lease: int | None) -> None:
        for job in self.engine.fetch(queues, count, lease, "w"):
            assert job.state is State.RUNNING
            self.leases.append((job.id, job.token))

    @precondition(lambda self: self.leases)
    @rule(data=st.data(), action=st.sampled_from(["ack", "fail", "noretry", "beat"]))
    def use_lease(self, data: st.DataObject, action: str) -> None:
        job_id, token = data.draw(st.sampled_from(self.leases))
        job = self.engine.get(job_id)
        assert job is not None
        valid = job.state is State.RUNNING and job.token == token
        try:
            if action == "ack":
                self.engine.ack(job_id, token, b"r")
            elif action == "beat":
                self.engine.beat(job_id, token, 300)
            else:
                self.engine.fail(job_id, token, "boom", noretry=action == "noretry")
        except StaleLeaseError:
            assert not valid, "a current lease was refused"
            return
        except CommandError:
            assert not valid and job.state is State.CANCELED
            return
        assert valid or (action == "beat" and job.state is State.CANCELED), \
            "a stale lease was accepted: two holders at once"

    @precondition(lambda self: self.pushed)
    @rule(data=st.data(), action=st.sampled_from(["cancel", "retry"]))
    def control(self, data: st.DataObject, action: str) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.pushed)))
        with contextlib.suppress(CommandError):  # not allowed in its state: nothing changes
            getattr(self.engine, action)(job_id)

    @rule(ms=st.sampled_from([1, 10, 60, 250, 1200, 30_000]))
    def time_passes(self, ms: int) -> None:
        self.clock.advance(ms)
        self.engine.tick()

    @rule(seed=st.integers(0, 1000))
    def restart(self, seed: int) -> None:
        before = dump(self.engine)
        fresh = self._new_engine(seed)
        fresh.sink = lambda record: None
        fresh.replay(self.log)  # raises JobStateError on any record the table forbids
        fresh.sink = self._logged
        assert dump(fresh) == before
        for name, queue in self.engine.queues.items():
            assert fresh.queues[name].counts == queue.counts
            assert fresh.queues[name].paused == queue.paused
        self.engine = fresh

    @invariant()
    def nothing_lost_and_counts_agree(self) -> None:
        assert self.pushed <= set(self.engine.jobs)
        for name, queue in self.engine.queues.items():
            actual = {state: 0 for state in State}
            for job in self.engine.jobs.values():
                if job.queue == name:
                    actual[job.state] += 1
            assert queue.counts == actual

    @invariant()
    def only_legal_transitions(self) -> None:
        for job_id, job in self.engine.jobs.items():
            old = self.last_state.get(job_id)
            if old is not None and old is not job.state:
                # several steps may happen in one rule (due -> queued -> running): the path
                # must exist in the table, so check reachability in the transition graph
                assert reachable(old, job.state), f"{old} -> {job.state}"
            self.last_state[job_id] = job.state

    @invariant()
    def at_most_one_valid_lease_per_job(self) -> None:
        for job in self.engine.jobs.values():
            if job.state is State.RUNNING:
                assert job.token and job.deadline_ms > 0
            else:
                assert job.token == ""


def reachable(old: State, new: State) -> bool:
    seen, frontier = {old}, [old]
    while frontier:
        state = frontier.pop()
        for a, b in ALLOWED:
            if a is state and b not in seen:
                seen.add(b)
                frontier.append(b)
    return new in seen


EngineMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40,
                                           deadline=None)
TestEngineMachine = EngineMachine.TestCase
