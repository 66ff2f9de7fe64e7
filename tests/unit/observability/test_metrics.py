"""The metrics collector: plain counters in, Prometheus families out, with the right values."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobcached.clock import ManualClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import lookup, walk
from jobcached.jobs.engine import JobEngine, PushOptions
from jobcached.jobs.model import RetryPolicy
from jobcached.jobs.records import decode_record
from jobcached.observability import metrics
from jobcached.observability.metrics import FsyncTimer, build_registry, log2_buckets, render
from jobcached.server.session import Session
from jobcached.server.state import ServerState, calls_of, new_latency_histogram

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(state: ServerState, fs: FsyncTimer | None = None) -> tuple[set[str], Samples]:
    """(family names, {(sample name, sorted labels): value}) of one /metrics body."""
    text = render(build_registry(state, walk, fs)).decode()
    names: set[str] = set()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return names, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_log2_buckets_are_cumulative_with_sum_in_seconds() -> None:
    histogram = new_latency_histogram()
    for usec in (0, 1, 3, 5, 1000, 2_000_000):
        histogram[usec.bit_length()] += 1
        histogram[-1] += usec
    buckets, total = log2_buckets(histogram, 1e-6)
    as_dict = dict(buckets)
    assert as_dict["1e-06"] == 1  # 0 us
    assert as_dict["4e-06"] == 3  # 1 and 3 us
    assert as_dict["1.6e-05"] == 4  # 5 us
    assert as_dict["0.001024"] == 5  # 1000 us
    assert as_dict["4.194304"] == 6 and as_dict["+Inf"] == 6
    assert total == pytest.approx(2.001009)
    assert [count for _, count in buckets] == sorted(count for _, count in buckets)


def test_job_counters_gauges_and_histograms(state: ServerState, clock: ManualClock) -> None:
    engine = state.jobs
    assert engine is not None
    ids = [engine.push("mail", b"p", PushOptions(retry=RetryPolicy(retries=1)))[0]
           for _ in range(100)]
    engine.push("mail", b"later", PushOptions(delay_ms=60_000))
    clock.advance(250)
    jobs = engine.fetch(["mail"], count=10, lease_ms=1_000)
    clock.advance(40)
    for job in jobs[:5]:
        engine.ack(job.id, job.token)
    engine.fail(jobs[5].id, jobs[5].token, "boom")  # retried
    engine.fail(jobs[6].id, jobs[6].token, "boom", noretry=True)  # dead
    engine.cancel(ids[50])
    clock.advance(2_000)
    engine.tick()  # jobs[7..9]: leases expire, each retried once

    names, samples = scrape(state)
    for family in ("jobcached_jobs_pushed", "jobcached_jobs_fetched", "jobcached_jobs_succeeded",
                   "jobcached_jobs_failed_attempts", "jobcached_jobs_retried",
                   "jobcached_jobs_dead", "jobcached_jobs_canceled",
                   "jobcached_jobs_lease_expired", "jobcached_jobs", "jobcached_queue_lag_seconds",
                   "jobcached_dlq_jobs", "jobcached_running_leases",
                   "jobcached_job_queue_wait_seconds", "jobcached_job_run_seconds"):
        assert family in names, family
    q = {"queue": "mail"}
    assert value(samples, "jobcached_jobs_pushed_total", **q) == 101
    assert value(samples, "jobcached_jobs_fetched_total", **q) == 10
    assert value(samples, "jobcached_jobs_succeeded_total", **q) == 5
    assert value(samples, "jobcached_jobs_failed_attempts_total", **q) == 5
    assert value(samples, "jobcached_jobs_retried_total", **q) == 4
    assert value(samples, "jobcached_jobs_dead_total", **q) == 1
    assert value(samples, "jobcached_jobs_lease_expired_total", **q) == 3
    assert value(samples, "jobcached_jobs_canceled_total", **q) == 1
    assert value(samples, "jobcached_jobs", queue="mail", state="queued") == 89
    assert value(samples, "jobcached_jobs", queue="mail", state="pending") == 1
    assert value(samples, "jobcached_jobs", queue="mail", state="retrying") == 4
    assert value(samples, "jobcached_dlq_jobs", **q) == 1
    assert value(samples, "jobcached_running_leases", **q) == 0
    assert value(samples, "jobcached_jobs_used_memory_bytes") == engine.used_memory > 0
    assert value(samples, "jobcached_queue_lag_seconds", **q) == pytest.approx(2.29)
    # waited 250 ms (slot le=0.256 s), ran 40 ms (le=0.064 s)
    assert value(samples, "jobcached_job_queue_wait_seconds_count", **q) == 10
    assert value(samples, "jobcached_job_queue_wait_seconds_bucket", le="0.064", **q) == 0
    assert value(samples, "jobcached_job_queue_wait_seconds_bucket", le="0.256", **q) == 10
    assert value(samples, "jobcached_job_queue_wait_seconds_sum", **q) == pytest.approx(2.5)
    assert value(samples, "jobcached_job_run_seconds_bucket", le="0.064", **q) == 5
    assert value(samples, "jobcached_job_run_seconds_bucket", le="0.016", **q) == 0


def test_replay_rebuilds_gauges_but_counts_no_activity(state: ServerState,
                                                       clock: ManualClock) -> None:
    records: list[dict[str, object]] = []
    source = JobEngine(clock, sink=lambda body: records.append(decode_record(body)))
    for _ in range(7):
        source.push("q", b"p")
    state.jobs = JobEngine(clock)
    assert state.jobs.replay(records) == 7
    _, samples = scrape(state)
    assert value(samples, "jobcached_jobs", queue="q", state="queued") == 7
    assert value(samples, "jobcached_jobs_pushed_total", queue="q") == 0


def test_queue_labels_are_bounded(state: ServerState, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "MAX_QUEUE_LABELS", 2)
    assert state.jobs is not None
    for name in ("a", "b", "c"):
        state.jobs.push(name, b"p")
    _, samples = scrape(state)
    assert value(samples, "jobcached_metrics_queues_omitted") == 1
    assert ("jobcached_jobs_pushed_total", (("queue", "c"),)) not in samples


def test_commands_cache_and_connections(state: ServerState, session: Session) -> None:
    set_cmd, get_cmd = lookup(b"SET"), lookup(b"GET")
    assert set_cmd is not None and get_cmd is not None
    before = calls_of(state.command_stats[set_cmd])
    for i in range(25):
        execute(session, [b"SET", b"k%d" % i, b"v"])
    execute(session, [b"GET", b"k1"])
    execute(session, [b"GET", b"missing"])
    execute(session, [b"JOB.PUSH", b"q", b"p", b"DELAY", b"soon"])  # -ERR not an integer
    state.stats.total_net_input_bytes = 1234
    names, samples = scrape(state)
    assert value(samples, "jobcached_command_calls_total", cmd="set") == before + 25
    assert value(samples, "jobcached_command_errors_total", cmd="job.push") >= 1
    assert value(samples, "jobcached_error_replies_total", code="ERR") == 1
    string_count = value(samples, "jobcached_command_duration_seconds_count", group="string")
    assert string_count >= 27
    assert sum(value(samples, "jobcached_cache_keys", shard=str(i))
               for i in range(state.config.shards)) == 25
    assert value(samples, "jobcached_cache_hits_total") == 1
    assert value(samples, "jobcached_cache_misses_total") == 1
    assert value(samples, "jobcached_net_input_bytes_total") == 1234
    for family in ("jobcached_connected_clients", "jobcached_connections_accepted",
                   "jobcached_connections_rejected", "jobcached_net_output_bytes",
                   "jobcached_cache_used_memory_bytes", "jobcached_cache_maxmemory_bytes",
                   "jobcached_cache_expired_keys", "jobcached_cache_evicted_keys",
                   "process_resident_memory_bytes"):
        assert family in names, family


def test_fsync_timer_times_fsyncs_and_remembers_the_last_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = FsyncTimer()
    fd = os.open(tmp_path / "f", os.O_CREAT | os.O_WRONLY)
    try:
        fs.fsync(fd)
        assert sum(fs.fsync_us[:-1]) == 1 and fs.last_fsync_ok
        monkeypatch.setattr(os, "fsync", _raise_eio)
        with pytest.raises(OSError):
            fs.fsync(fd)
        assert not fs.last_fsync_ok and "Input/output" in fs.last_fsync_error
        assert sum(fs.fsync_us[:-1]) == 2 and fs.fsync_errors == 1
    finally:
        os.close(fd)


def _raise_eio(fd: int) -> None:
    raise OSError(errno.EIO, "Input/output error")
