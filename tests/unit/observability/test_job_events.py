"""Job lifecycle logs: debug for routine events, info/warning for failures, with trace ids."""

from __future__ import annotations

import logging

import pytest

from jobcached.clock import ManualClock
from jobcached.jobs.engine import JobEngine, PushOptions
from jobcached.jobs.model import RetryPolicy

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def events(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str, dict[str, object]]]:
    return [(r.levelno, r.getMessage(), vars(r)) for r in caplog.records
            if r.name == "jobcached.jobs"]


def test_lifecycle_events_carry_job_queue_and_traceparent(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    engine = JobEngine(clock)
    caplog.set_level(logging.DEBUG, logger="jobcached")
    opts = PushOptions(meta={"traceparent": TRACE}, retry=RetryPolicy(retries=1),
                       timeout_ms=100)
    job_id, _ = engine.push("mail", b"p", opts)
    [job] = engine.fetch(["mail"])
    engine.fail(job_id, job.token, "boom", errtype="ValueError")
    clock.advance(60_000)
    engine.tick()  # due again
    [job] = engine.fetch(["mail"])
    clock.advance(200)
    engine.tick()  # the lease expires with no retry left: dead
    seen = events(caplog)
    assert [(level, message) for level, message, _ in seen] == [
        (logging.DEBUG, "job pushed"), (logging.DEBUG, "job leased"),
        (logging.INFO, "job failed, will retry"), (logging.DEBUG, "job leased"),
        (logging.WARNING, "job lease expired, job is dead")]
    for _, _, fields in seen:
        assert fields["job"] == job_id and fields["queue"] == "mail"
        assert fields["traceparent"] == TRACE
    assert seen[2][2]["error_type"] == "ValueError"


def test_routine_events_are_not_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    engine = JobEngine(ManualClock())
    caplog.set_level(logging.INFO, logger="jobcached")
    job_id, _ = engine.push("q", b"p")
    [job] = engine.fetch(["q"])
    engine.ack(job_id, job.token)
    engine.retry(job_id)
    engine.cancel(job_id)
    assert events(caplog) == []
    assert engine.queues["q"].requeued == 1 and engine.queues["q"].canceled == 1
