"""Job.to_record / Job.from_record: the positional WAL form of a job, which replay decodes once
per job. `from_record` skips `__init__`, so these tests check that it still sets every slot."""

from __future__ import annotations

from jobcached.jobs.model import (
    RECORD_FIELDS,
    Job,
    PushOptions,
    RetryPolicy,
    State,
    pushed_record,
    queued_record,
    retry_policy,
)


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
        assert back.timer is None and back.expire_timer is None and back.ready_seq == 0


def test_containers_are_not_shared_with_the_record() -> None:
    record = full_job().to_record()
    job = Job.from_record(record)
    job.add_error({"type": "F"})
    job.add_log_lines([b"more"], 100, 1000)
    assert record[RECORD_FIELDS.index("errors")] == [{"type": "E"}]
    assert record[RECORD_FIELDS.index("logs")] == [b"one", b"three"]
    assert job.meta is not record[RECORD_FIELDS.index("meta")]
    assert job.parents is not record[RECORD_FIELDS.index("parents")]


def test_policies_are_shared_and_match() -> None:
    record = full_job().to_record()
    assert Job.from_record(record).retry == RetryPolicy(5, (100, 1000))
    record[RECORD_FIELDS.index("backoff")] = None
    assert Job.from_record(record).retry is retry_policy(5, None)


def test_records_of_the_first_layout_still_load() -> None:
    old = full_job().to_record()[:25]  # before parents, batch, expire, logs and log_base
    job = Job.from_record(old)
    assert (job.parents, job.batch, job.expire_ms, job.logs, job.log_base) == ((), "", 0, (), 0)


def test_queued_record_is_what_a_plain_job_records() -> None:
    """`queued_record` spells the record out by hand: it must stay what `to_record` gives for
    the job a JOB.PUSH without options makes."""
    job = Job(id="01M82DF4FN4C1CWW7BDR92DG4S", queue="q", type="q", payload=b"p",
              state=State.QUEUED, timeout_ms=60_000, run_at_ms=5, created_ms=5,
              enqueued_ms=5)
    assert queued_record(job.id, "q", b"p", 60_000, 5) == job.to_record()
    rebuilt = Job.from_record(queued_record(job.id, "q", b"p", 60_000, 5))
    assert rebuilt.to_record() == job.to_record() and rebuilt.retry == job.retry


def test_pushed_record_is_what_a_job_with_options_records() -> None:
    """`pushed_record` spells the record out too: it must stay what `to_record` gives for the
    job JOB.PUSH makes with options, pending, queued, or canceled by a failed parent."""
    opts = PushOptions(type="send", priority=7, delay_ms=500, retry=RetryPolicy(3, (10, 90)),
                       timeout_ms=900, key="k", key_ttl_ms=1000, meta={"traceparent": "t"},
                       after=["01M82DF4FN4C1CWW7BDR92DG4T"], batch="b", expire_ms=9_000)
    for state, canceled_by in ((State.PENDING, ""), (State.QUEUED, ""),
                               (State.QUEUED, "parent x is dead")):
        job = Job(id="01M82DF4FN4C1CWW7BDR92DG4S", queue="q", type="send", payload=b"p",
                  state=State.CANCELED if canceled_by else state, priority=7,
                  retry=RetryPolicy(3, (10, 90)), timeout_ms=900, run_at_ms=505,
                  created_ms=5, enqueued_ms=5 if state is State.QUEUED else 0,
                  finished_ms=5 if canceled_by else 0, key="k", key_expires_ms=1005,
                  meta={"traceparent": "t"}, reason=canceled_by,
                  parents=["01M82DF4FN4C1CWW7BDR92DG4T"], batch="b", expire_ms=9_000)
        record = pushed_record(job.id, "q", b"p", opts, state=state, timeout_ms=900,
                               run_at_ms=505, now_ms=5, canceled_by=canceled_by)
        assert record == job.to_record()
        assert Job.from_record(record).to_record() == job.to_record()
    plain = pushed_record("01M82DF4FN4C1CWW7BDR92DG4S", "q", b"p", PushOptions(),
                          state=State.QUEUED, timeout_ms=60_000, run_at_ms=5, now_ms=5)
    assert plain == queued_record("01M82DF4FN4C1CWW7BDR92DG4S", "q", b"p", 60_000, 5)
