"""Job.to_record / Job.from_record: the positional WAL form of a job, which replay decodes once
per job. `from_record` skips `__init__`, so these tests check that it still sets every slot."""

from __future__ import annotations

import random

from jobcached.clock import ManualClock
from jobcached.jobs.engine import JobEngine
from jobcached.jobs.model import Job, PushOptions, RetryPolicy, State, retry_policy
from jobcached.jobs.records import JOB_NAMES


def full_job() -> Job:
    return Job("01J9Z0000000000000000000AA", "mail", "send", b"{}", State.RUNNING, priority=3,
               attempt=2, retry=RetryPolicy(5, (100, 1000)), timeout_ms=500, run_at_ms=10,
               created_ms=9, enqueued_ms=10, started_ms=11, errors=[{"type": "E"}],
               result=b"r", key="k", key_expires_ms=99, meta={"traceparent": "t"},
               token="tok", deadline_ms=511, worker="w", reason="", retry_base=1,
               parents=["01J9Z0000000000000000000AB"], batch="b", expire_ms=1000,
               logs=[b"one", b"three"], log_base=4)


def test_round_trip_sets_every_slot() -> None:
    for job in (full_job(), Job("01J9Z0000000000000000000AC", "q", "q", b"", State.QUEUED)):
        back = Job.from_record(job.to_record())
        assert all(hasattr(back, name) for name in Job.__slots__)  # type: ignore[attr-defined]
        assert back.to_record() == job.to_record()
        assert back.state is job.state
        assert back.log_bytes == sum(map(len, job.logs))
        assert back.timer is None and back.expire_timer is None and back.ready_entries == 0


def test_containers_are_not_shared_with_the_record() -> None:
    record = full_job().to_record()
    job = Job.from_record(record)
    job.add_error({"type": "F"})
    job.add_log_lines([b"more"], 100, 1000)
    assert record[JOB_NAMES.index("errors")] == [{"type": "E"}]
    assert record[JOB_NAMES.index("logs")] == [b"one", b"three"]
    assert job.meta is not record[JOB_NAMES.index("meta")]
    assert job.parents is not record[JOB_NAMES.index("parents")]


def test_policies_are_shared_and_match() -> None:
    record = full_job().to_record()
    assert Job.from_record(record).retry == RetryPolicy(5, (100, 1000))
    record[JOB_NAMES.index("backoff")] = None
    assert Job.from_record(record).retry is retry_policy(5, None)


def test_a_plain_push_records_what_to_record_gives() -> None:
    """JOB.PUSH without options builds the job from its record (`records.job_record`): it
    must be what `to_record` gives for the job the constructor describes."""
    engine = JobEngine(ManualClock(5), rng=random.Random(1), default_lease_ms=60_000)
    job_id, _ = engine.push("q", b"p")
    job = Job(id=job_id, queue="q", type="q", payload=b"p", state=State.QUEUED,
              timeout_ms=60_000, run_at_ms=5, created_ms=5, enqueued_ms=5)
    pushed = engine.jobs[job_id]
    assert pushed.to_record() == job.to_record() and pushed.retry == job.retry


def test_a_push_with_options_records_what_to_record_gives() -> None:
    """The same for JOB.PUSH with options: pending, queued, or canceled by a failed parent."""
    for delay, parent_fails in ((500, False), (0, False), (0, True)):
        engine = JobEngine(ManualClock(5), rng=random.Random(1))
        parent, _ = engine.push("p", b"parent")
        if parent_fails:
            engine.cancel(parent)
        opts = PushOptions(type="send", priority=7, delay_ms=delay,
                           retry=RetryPolicy(3, (10, 90)), timeout_ms=900, key="k",
                           key_ttl_ms=1000, meta={"traceparent": "t"}, after=[parent],
                           batch=None, expire_ms=9_000)
        job_id, _ = engine.push("q", b"p", opts)
        state = State.PENDING if delay or not parent_fails else State.QUEUED
        reason = f"parent {parent} is canceled" if parent_fails else ""
        job = Job(id=job_id, queue="q", type="send", payload=b"p",
                  state=State.CANCELED if reason else state, priority=7,
                  retry=RetryPolicy(3, (10, 90)), timeout_ms=900, run_at_ms=5 + delay,
                  created_ms=5, enqueued_ms=5 if state is State.QUEUED else 0,
                  finished_ms=5 if reason else 0, key="k", key_expires_ms=1005,
                  meta={"traceparent": "t"}, reason=reason, parents=[parent],
                  expire_ms=9_000)
        assert engine.jobs[job_id].to_record() == job.to_record()
