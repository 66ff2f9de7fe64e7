"""QUEUE.LIMIT in the engine, on a fake clock: concurrency, rate windows, waiters, replay."""

from __future__ import annotations

import random

from jobcached.clock import ManualClock
from jobcached.jobs.engine import JobEngine
from jobcached.jobs.model import Job, State
from jobcached.jobs.records import decode_record


def make_engine() -> tuple[JobEngine, ManualClock, list[dict]]:
    clock = ManualClock()
    records: list[dict] = []
    engine = JobEngine(clock, rng=random.Random(1),
                       sink=lambda body: records.append(decode_record(body)))
    return engine, clock, records


def test_concurrency_caps_running_jobs_and_a_freed_slot_serves_a_waiter() -> None:
    engine, _, _ = make_engine()
    for i in range(10):
        engine.push("q", b"%d" % i)
    engine.set_limit("q", concurrency=3)
    first = engine.fetch(["q"], count=5)
    assert len(first) == 3
    assert engine.fetch(["q"], count=5) == []
    got: list[list[Job]] = []
    engine.waiters.for_jobs(["q"], 1, None, "w", 0, got.append)
    engine.ack(first[0].id, first[0].token)
    assert [len(jobs) for jobs in got] == [1]  # served when the slot freed
    assert engine.queues["q"].counts[State.RUNNING] == 3
    engine.fail(first[1].id, first[1].token, "boom", noretry=True)
    assert len(engine.fetch(["q"], count=5)) == 1


def test_rate_window_and_the_timer_that_serves_waiters() -> None:
    engine, clock, _ = make_engine()
    for i in range(10):
        engine.push("q", b"%d" % i)
    engine.set_limit("q", rate=(2, 1000))
    assert len(engine.fetch(["q"], count=5)) == 2
    clock.advance(500)
    assert engine.fetch(["q"], count=5) == []
    got: list[list[Job]] = []
    engine.waiters.for_jobs(["q"], 5, None, "w", 0, got.append)
    clock.advance(499)
    engine.tick()
    assert got == []
    clock.advance(1)
    engine.tick()  # the first two leases left the window
    assert [len(jobs) for jobs in got] == [2]


def test_limits_are_logged_replayed_and_snapshotted() -> None:
    engine, _, records = make_engine()
    engine.push("q", b"")
    engine.set_limit("q", concurrency=4, rate=(10, 60_000))
    engine.set_limit("q", concurrency=0)  # removes only the concurrency limit
    assert records[-1] == {"op": "limit", "queue": "q", "concurrency": 0, "rate": 10,
                           "per_ms": 60_000}
    for source in (records, list(engine.snapshot())):
        restored, _, _ = make_engine()
        restored.replay(source)
        limit = restored.queues["q"].limit
        assert limit is not None and (limit.concurrency, limit.rate, limit.per_ms) == (
            0, 10, 60_000)
    engine.set_limit("q", rate=(0, 0))
    assert engine.queues["q"].limit is None
    assert not any(r.get("op") == "limit" for r in engine.snapshot() if isinstance(r, dict))


def test_unchanged_limits_log_nothing() -> None:
    engine, _, records = make_engine()
    engine.set_limit("q", concurrency=2)
    count = len(records)
    engine.set_limit("q", concurrency=2)
    assert len(records) == count
