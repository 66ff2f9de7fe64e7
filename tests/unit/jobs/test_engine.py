"""The job engine with a fake clock: lifecycle, retries, leases, fencing, waiters, replay."""

from __future__ import annotations

import random

import pytest

from jobcached.clock import ManualClock
from jobcached.errors import CommandError, NotUniqueError, StaleLeaseError
from jobcached.jobs import purge as purges
from jobcached.jobs.engine import JobEngine, PushOptions
from jobcached.jobs.model import Job, JobStateError, RetryPolicy, State
from jobcached.jobs.records import decode_record, encode_record


def make_engine(seed: int = 1) -> tuple[JobEngine, ManualClock, list[dict]]:
    clock = ManualClock()
    records: list[dict] = []
    engine = JobEngine(clock, rng=random.Random(seed),
                       sink=lambda body: records.append(decode_record(body)))
    return engine, clock, records


def test_push_fetch_ack() -> None:
    engine, _, _ = make_engine()
    job_id, created = engine.push("email", b"hello")
    assert created
    [job] = engine.fetch(["email"], worker="w1")
    assert (job.id, job.state, job.attempt, job.worker) == (job_id, State.RUNNING, 1, "w1")
    engine.ack(job_id, job.token, b"done")
    job = engine.get(job_id)
    assert job is not None and job.state is State.SUCCEEDED and job.result == b"done"
    assert engine.queues["email"].processed == 1


def test_priority_then_fifo() -> None:
    engine, _, _ = make_engine()
    low1, _ = engine.push("q", b"1")
    high, _ = engine.push("q", b"2", PushOptions(priority=5))
    low2, _ = engine.push("q", b"3")
    order = [j.id for j in engine.fetch(["q"], count=3)]
    assert order == [high, low1, low2]


def test_queues_are_taken_strictly_in_order() -> None:
    engine, _, _ = make_engine()
    b, _ = engine.push("b", b"")
    a, _ = engine.push("a", b"")
    assert [j.id for j in engine.fetch(["a", "b"], count=2)] == [a, b]


def test_delayed_job_becomes_ready_when_due() -> None:
    engine, clock, _ = make_engine()
    job_id, _ = engine.push("q", b"", PushOptions(delay_ms=5000))
    assert engine.get(job_id).state is State.PENDING  # type: ignore[union-attr]
    assert engine.fetch(["q"]) == []
    clock.advance(4990)
    engine.tick()
    assert engine.fetch(["q"]) == []
    clock.advance(20)
    engine.tick()
    assert [j.id for j in engine.fetch(["q"])] == [job_id]


def test_failure_retries_with_backoff_then_dies() -> None:
    engine, clock, _ = make_engine()
    job_id, _ = engine.push("q", b"", PushOptions(retry=RetryPolicy(2, (100, 1000))))
    for attempt in (1, 2, 3):
        [job] = engine.fetch(["q"])
        assert job.attempt == attempt
        state = engine.fail(job_id, job.token, f"boom {attempt}", errtype="ValueError",
                            trace="Traceback...")
        if attempt < 3:
            assert state is State.RETRYING
            assert job.run_at_ms - clock.now_ms() <= 100 * 2 ** (attempt - 1)
            clock.advance(1000)
            engine.tick()
    job = engine.get(job_id)
    assert job is not None and job.state is State.DEAD
    assert [e["message"] for e in job.errors] == ["boom 1", "boom 2", "boom 3"]
    assert job.errors[0]["type"] == "ValueError" and job.errors[0]["trace"] == "Traceback..."
    assert purges.dead_jobs(engine, "q") == [job]


def test_default_backoff_is_sidekiq_curve() -> None:
    policy = RetryPolicy()
    rng = random.Random(3)
    for n in range(5):
        delay = policy.delay_ms(n, rng)
        assert (15 + n**4) * 1000 <= delay <= (15 + n**4 + 30 * (n + 1)) * 1000


def test_retryin_and_noretry_override_the_policy() -> None:
    engine, clock, _ = make_engine()
    job_id, _ = engine.push("q", b"")
    [job] = engine.fetch(["q"])
    engine.fail(job_id, job.token, "x", retry_in_ms=0)
    engine.tick(clock.now_ms())
    [job] = engine.fetch(["q"])
    assert engine.fail(job_id, job.token, "y", noretry=True) is State.DEAD


def test_lease_expiry_is_a_failed_attempt_and_fences_the_old_worker() -> None:
    engine, clock, _ = make_engine()
    job_id, _ = engine.push("q", b"", PushOptions(timeout_ms=1000,
                                                  retry=RetryPolicy(3, (10, 10))))
    [first] = engine.fetch(["q"])
    old_token = first.token
    clock.advance(1001)
    engine.tick()
    job = engine.get(job_id)
    assert job is not None and job.state is State.RETRYING
    assert job.errors[-1]["type"] == "LeaseExpired"
    clock.advance(20)
    engine.tick()
    [second] = engine.fetch(["q"])
    assert second.token != old_token
    with pytest.raises(StaleLeaseError):
        engine.ack(job_id, old_token)
    with pytest.raises(StaleLeaseError):
        engine.beat(job_id, old_token)
    engine.ack(job_id, second.token)


def test_heartbeat_extends_the_lease() -> None:
    engine, clock, _ = make_engine()
    job_id, _ = engine.push("q", b"", PushOptions(timeout_ms=1000))
    [job] = engine.fetch(["q"])
    clock.advance(900)
    deadline = engine.beat(job_id, job.token, extend_ms=2000)
    assert deadline == clock.now_ms() + 2000
    clock.advance(1500)
    engine.tick()
    assert engine.get(job_id).state is State.RUNNING  # type: ignore[union-attr]


def test_cancel_running_job_tells_the_worker() -> None:
    engine, _, _ = make_engine()
    job_id, _ = engine.push("q", b"")
    [job] = engine.fetch(["q"])
    token = job.token
    engine.cancel(job_id)
    assert engine.beat(job_id, token) is None
    with pytest.raises(CommandError, match="is canceled"):
        engine.ack(job_id, token)
    with pytest.raises(JobStateError, match=f"job {job_id} is canceled"):
        engine.cancel(job_id)


def test_canceled_queued_job_is_never_fetched() -> None:
    engine, _, _ = make_engine()
    job_id, _ = engine.push("q", b"")
    other, _ = engine.push("q", b"")
    engine.cancel(job_id)
    assert [j.id for j in engine.fetch(["q"], count=5)] == [other]


def test_retry_reruns_a_finished_job() -> None:
    engine, _, _ = make_engine()
    job_id, _ = engine.push("q", b"")
    with pytest.raises(JobStateError, match="is queued"):
        engine.retry(job_id)
    [job] = engine.fetch(["q"])
    engine.fail(job_id, job.token, "x", noretry=True)
    engine.retry(job_id)
    assert [j.id for j in engine.fetch(["q"])] == [job_id]


def test_idempotency_keys() -> None:
    engine, clock, _ = make_engine()
    first, created = engine.push("q", b"p", PushOptions(key="order-1", key_ttl_ms=1000))
    again, created_again = engine.push("q", b"p", PushOptions(key="order-1"))
    assert (again, created, created_again) == (first, True, False)
    with pytest.raises(NotUniqueError):
        engine.push("q", b"other", PushOptions(key="order-1"))
    clock.advance(1001)
    later, created_later = engine.push("q", b"p", PushOptions(key="order-1"))
    assert created_later and later != first


def test_blocked_fetchers_are_served_fifo_when_jobs_arrive() -> None:
    engine, clock, _ = make_engine()
    got: list[tuple[str, list[Job]]] = []
    engine.waiters.for_jobs(["q"], 1, None, "a", 0, lambda jobs: got.append(("a", jobs)))
    engine.waiters.for_jobs(["q"], 1, None, "b", 1000, lambda jobs: got.append(("b", jobs)))
    job_id, _ = engine.push("q", b"")
    assert [(w, [j.id for j in jobs]) for w, jobs in got] == [("a", [job_id])]
    clock.advance(1001)
    engine.tick()
    assert got[-1] == ("b", [])


def test_wait_done() -> None:
    engine, clock, _ = make_engine()
    job_id, _ = engine.push("q", b"")
    done: list[Job | None] = []
    engine.waiters.for_end(job_id, 0, done.append)
    [job] = engine.fetch(["q"])
    engine.ack(job_id, job.token)
    assert done == [engine.get(job_id)]
    engine.waiters.for_end("nope", 500, done.append)
    clock.advance(501)
    engine.tick()
    assert done[-1] is None


def test_pause_purge_and_dlq() -> None:
    engine, clock, _ = make_engine()
    engine.push("q", b"1")
    engine.set_paused("q", True)
    assert engine.fetch(["q"]) == []
    engine.set_paused("q", False)
    [job] = engine.fetch(["q"])
    engine.fail(job.id, job.token, "x", noretry=True)
    engine.push("q", b"2")
    assert purges.queue_purge(engine, "q").run() == 1
    clock.advance(10_000)
    assert purges.dlq_purge(engine, "q", older_ms=20_000).run() == 0
    assert purges.dlq_purge(engine, "q", older_ms=5_000).run() == 1
    assert engine.queues["q"].counts[State.DEAD] == 0


def test_a_queue_is_made_only_by_a_change_that_is_logged() -> None:
    """QUEUE.RESUME, or a QUEUE.LIMIT that changes nothing, of a queue never seen logs no
    record, so it must not make the queue either: a follower or a restart would not have it
    (QUEUE.LIST would differ)."""
    engine, _, records = make_engine()
    engine.set_paused("resumed", False)
    assert engine.set_limit("unlimited", concurrency=0) is None
    assert (engine.queues, records) == ({}, [])
    engine.set_paused("paused", True)
    assert engine.set_limit("limited", concurrency=2) is not None
    assert sorted(engine.queues) == ["limited", "paused"] and len(records) == 2


def test_list_pages_in_id_order() -> None:
    engine, clock, _ = make_engine()
    ids = []
    for i in range(25):
        clock.advance(1)
        ids.append(engine.push("q" if i % 2 else "r", b"")[0])
    cursor, page = engine.list_jobs(count=10)
    seen = [j.id for j in page]
    while cursor != "0":
        cursor, page = engine.list_jobs(cursor=cursor, count=10)
        seen += [j.id for j in page]
    assert seen == ids
    _, only_q = engine.list_jobs(queue="q", count=100)
    assert len(only_q) == 12


def test_replay_reproduces_state() -> None:
    engine, clock, records = make_engine()
    a, _ = engine.push("q", b"a", PushOptions(retry=RetryPolicy(1, (5, 5))))
    b, _ = engine.push("q", b"b", PushOptions(delay_ms=100, key="k"))
    [job] = engine.fetch(["q"])
    engine.fail(a, job.token, "x")
    clock.advance(200)
    engine.tick()
    fetched = {j.id: j for j in engine.fetch(["q"], count=2)}
    job_a, job_b = fetched[a], fetched[b]
    engine.ack(job_b.id, job_b.token, b"ok")
    engine.set_paused("other", True)
    restored = JobEngine(clock, rng=random.Random(99))
    restored.replay(records)
    assert {k: v.to_record() for k, v in restored.jobs.items()} == \
           {k: v.to_record() for k, v in engine.jobs.items()}
    assert restored.queues["other"].paused
    assert restored.keys.live == {"k": b}
    # the running job's lease still expires after the restart
    clock.advance(120_000)
    restored.tick()
    assert restored.get(job_a.id).state is State.DEAD  # type: ignore[union-attr]
    snap = JobEngine(clock, rng=random.Random(5))
    snap.replay(list(restored.snapshot()))
    assert {k: v.to_record() for k, v in snap.jobs.items()} == \
           {k: v.to_record() for k, v in restored.jobs.items()}


def test_a_snapshot_keeps_the_queues_processed_and_failed_counts() -> None:
    """The records they count (ack, fail) are what a snapshot drops: a follower's full sync
    and a compacted WAL must still report the leader's QUEUE.STATS."""
    engine, _, _ = make_engine()
    for i in range(3):
        engine.push("q", b"%d" % i)
    first, second, third = engine.fetch(["q"], count=3)
    engine.ack(first.id, first.token, None)
    engine.fail(second.id, second.token, "boom", noretry=True)
    snap = JobEngine(ManualClock(), rng=random.Random(5))
    snap.replay([decode_record(encode_record(r)) for r in engine.snapshot()])
    assert (snap.queues["q"].processed, snap.queues["q"].failed) == (1, 1)
    assert snap.get(third.id).state is State.RUNNING  # type: ignore[union-attr]


def test_ids_are_time_ordered_and_unique() -> None:
    engine, clock, _ = make_engine()
    ids = [engine.push("q", b"")[0] for _ in range(100)]
    clock.advance(5)
    ids += [engine.push("q", b"")[0] for _ in range(100)]
    assert ids == sorted(ids) and len(set(ids)) == 200 and all(len(i) == 26 for i in ids)


def test_a_requeued_dead_job_gets_its_retries_again() -> None:
    engine, clock, _ = make_engine()
    job_id, _ = engine.push("q", b"", PushOptions(retry=RetryPolicy(1, (1, 1))))
    for _ in range(2):  # the first run and its one retry both fail: dead
        clock.advance(5)
        engine.tick()
        [job] = engine.fetch(["q"])
        engine.fail(job_id, job.token, "boom")
    assert engine.get(job_id).state is State.DEAD  # type: ignore[union-attr]
    engine.retry(job_id)
    [job] = engine.fetch(["q"])
    assert job.attempt == 3  # attempts count on ...
    assert engine.fail(job_id, job.token, "again") is State.RETRYING  # ... the budget restarts
