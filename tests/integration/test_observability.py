"""Operating a real server: /metrics after a workload, /healthz and /readyz (also during a long
WAL replay), INFO through redis-py, SLOWLOG, LATENCY HISTOGRAM, and redis-cli --stat / INFO."""

from __future__ import annotations

import os
import pty
import select
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ServerProcess, free_port, require_tool

#: Jobs written before the restart in the replay test: enough for a replay of a second or more.
REPLAY_JOBS = 100_000
#: JOB.PUSH commands per pipeline round trip while writing them.
PIPELINE_DEPTH = 5_000


class MetricsServer(ServerProcess):
    """A server with its HTTP endpoints on a free port."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.metrics_port = free_port()
        super().__init__(data_dir, "--metrics-port", str(self.metrics_port), *args)

    def http(self, path: str, method: str = "GET", timeout: float = 10) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.metrics_port}{path}",
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, body = self.http("/metrics")
        assert status == 200
        samples = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples


@pytest.fixture
def obs(tmp_path: Path) -> Iterator[MetricsServer]:
    proc = MetricsServer(tmp_path / "obs")
    proc.wait_ready()
    yield proc
    proc.stop()


def as_map(reply: Any) -> dict[bytes, Any]:
    """A map reply from either protocol (RESP2 sends flat pairs)."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
           **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def errors_so_far(r: redis.Redis, code: str = "ERR") -> int:
    """Error replies of this code so far: clients' own handshakes may add some (redis-py asks
    for features a Redis 7.0 server, like this one, answers with an error)."""
    return int(r.info("errorstats").get(f"errorstat_{code}", {}).get("count", 0))


def test_metrics_after_a_scripted_workload(obs: MetricsServer) -> None:
    r = obs.client()
    errors_before = errors_so_far(r)
    for i in range(40):
        r.set(f"k{i}", "v")
    r.get("k1")
    r.get("missing")
    pipe = r.pipeline(transaction=False)
    for i in range(100):
        pipe.execute_command("JOB.PUSH", "emails", f"job {i}", "RETRIES", "1")
    ids = pipe.execute()
    jobs = [as_map(j) for j in r.execute_command("JOB.FETCH", "COUNT", "10", "QUEUES",
                                                  "emails")]
    fetched = [(job[b"id"], job[b"token"]) for job in jobs]
    for job_id, token in fetched[:6]:
        r.execute_command("JOB.ACK", job_id, token)
    r.execute_command("JOB.FAIL", fetched[6][0], fetched[6][1], "boom")  # will retry
    r.execute_command("JOB.FAIL", fetched[7][0], fetched[7][1], "boom", "NORETRY")  # dead
    r.execute_command("JOB.CANCEL", ids[99])
    with pytest.raises(redis.ResponseError):
        r.execute_command("JOB.PUSH", "emails", "x", "DELAY", "soon")

    m = obs.metrics()
    q = {"queue": "emails"}
    assert sample(m, "jobcached_command_calls_total", cmd="set") == 40
    assert sample(m, "jobcached_command_calls_total", cmd="job.push") == 101
    assert sample(m, "jobcached_command_errors_total", cmd="job.push") == 1
    assert sample(m, "jobcached_error_replies_total", code="ERR") == errors_before + 1
    assert sample(m, "jobcached_command_duration_seconds_count", group="string") == 42
    assert sample(m, "jobcached_jobs_pushed_total", **q) == 100
    assert sample(m, "jobcached_jobs_fetched_total", **q) == 10
    assert sample(m, "jobcached_jobs_succeeded_total", **q) == 6
    assert sample(m, "jobcached_jobs_failed_attempts_total", **q) == 2
    assert sample(m, "jobcached_jobs_retried_total", **q) == 1
    assert sample(m, "jobcached_jobs_dead_total", **q) == 1
    assert sample(m, "jobcached_jobs_canceled_total", **q) == 1
    assert sample(m, "jobcached_jobs", state="queued", **q) == 89
    assert sample(m, "jobcached_jobs", state="succeeded", **q) == 6
    assert sample(m, "jobcached_running_leases", **q) == 2
    assert sample(m, "jobcached_dlq_jobs", **q) == 1
    assert sample(m, "jobcached_queue_lag_seconds", **q) >= 0
    assert sample(m, "jobcached_job_queue_wait_seconds_count", **q) == 10
    assert sample(m, "jobcached_job_run_seconds_count", **q) == 6
    assert sum(sample(m, "jobcached_cache_keys", shard=str(i)) for i in range(16)) == 40
    assert sample(m, "jobcached_cache_hits_total") == 1
    assert sample(m, "jobcached_cache_misses_total") == 1
    assert sample(m, "jobcached_cache_used_memory_bytes") > 0
    assert sample(m, "jobcached_cache_maxmemory_bytes") == 0
    assert sample(m, "jobcached_connected_clients") >= 1
    assert sample(m, "jobcached_connections_accepted_total") >= 1
    assert sample(m, "jobcached_net_input_bytes_total") > 0
    assert sample(m, "jobcached_net_output_bytes_total") > 0
    assert sample(m, "jobcached_wal_written_bytes_total") > 0
    assert sample(m, "jobcached_wal_segments") == 1
    assert sample(m, "jobcached_wal_last_fsync_error") == 0
    assert sample(m, "jobcached_wal_failed") == 0
    assert sample(m, "jobcached_wal_compactions_total") == 0
    assert ("jobcached_wal_fsync_duration_seconds_count", ()) in m
    for name in ("jobcached_connections_rejected_total", "jobcached_cache_expired_keys_total",
                 "jobcached_cache_evicted_keys_total", "process_cpu_seconds_total"):
        assert any(key[0] == name for key in m), name
    r.close()


def test_health_endpoints_and_http_errors(obs: MetricsServer) -> None:
    assert obs.http("/healthz") == (200, b"ok\n")
    assert obs.http("/readyz") == (200, b"ready\n")
    assert obs.http("/nope")[0] == 404
    assert obs.http("/metrics", method="POST")[0] == 405
    assert obs.http("/healthz", method="HEAD") == (200, b"")
    with socket.create_connection(("127.0.0.1", obs.metrics_port), timeout=10) as sock:
        sock.sendall(b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n")
        assert sock.recv(64).startswith(b"HTTP/1.1 431 ")


def test_readyz_is_503_while_a_large_wal_replays(tmp_path: Path) -> None:
    data = tmp_path / "replay"
    first = MetricsServer(data, "--appendfsync", "no").wait_ready()
    r = first.client()
    for _ in range(REPLAY_JOBS // PIPELINE_DEPTH):
        pipe = r.pipeline(transaction=False)
        for _ in range(PIPELINE_DEPTH):
            pipe.execute_command("JOB.PUSH", "bulk", "p")
        pipe.execute()
    r.close()
    assert first.stop() == 0

    second = MetricsServer(data, "--appendfsync", "no")
    try:
        seen: list[tuple[int, bytes]] = []
        refused_while_loading = False
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                status, body = second.http("/readyz", timeout=5)
            except OSError:  # the HTTP endpoint is not bound yet
                time.sleep(0.02)
                continue
            seen.append((status, body))
            if status == 200:
                break
            assert status == 503 and body.startswith(b"loading"), body
            assert second.http("/healthz", timeout=5) == (200, b"ok\n")
            try:
                socket.create_connection(("127.0.0.1", second.port), timeout=1).close()
            except ConnectionRefusedError:
                refused_while_loading = True
            time.sleep(0.02)
        assert seen and seen[-1] == (200, b"ready\n"), seen[-3:]
        assert any(status == 503 for status, _ in seen), "replay finished before the first poll"
        assert refused_while_loading  # RESP clients never see a half-replayed state
        second.wait_ready()
        r = second.client()
        assert as_map(r.execute_command("QUEUE.STATS", "bulk"))[b"queued"] == REPLAY_JOBS
        # counters describe this process: the replay counted nothing
        assert sample(second.metrics(), "jobcached_jobs_pushed_total", queue="bulk") == 0
        r.close()
    finally:
        second.stop()


def test_info_parses_with_redis_py(obs: MetricsServer) -> None:
    r = obs.client()
    errors_before = errors_so_far(r)
    r.execute_command("JOB.PUSH", "reports", "p")
    r.execute_command("JOB.PUSH", "reports", "p", "DELAY", "60000")
    with pytest.raises(redis.ResponseError):
        r.execute_command("JOB.ACK", "nope", "token")
    info = r.info()
    assert info["queue_reports"]["queued"] == 1 and info["queue_reports"]["pending"] == 1
    assert "lag_ms" in info["queue_reports"]
    assert info["errorstat_ERR"]["count"] == errors_before + 1
    assert info["loading"] == 0 and info["aof_enabled"] == 1 and info["wal_enabled"] == 1
    assert info["appendfsync"] == "everysec" and info["wal_last_write_status"] == "ok"
    assert info["wal_bytes"] > 0 and info["wal_segments"] == 1
    everything = r.info("everything")
    assert "cmdstat_info" in everything and "latency_percentiles_usec_info" in everything
    assert set(r.info("jobs")) >= {"jobs", "queues", "queue_reports"}
    r.close()


def test_slowlog_records_a_slow_command(obs: MetricsServer) -> None:
    r = obs.client()
    r.config_set("slowlog-log-slower-than", 0)
    r.slowlog_reset()
    r.client_setname("slowpoke")
    r.set("big", "v" * 300)
    r.execute_command("DEL", *[f"k{i}" for i in range(40)])
    r.config_set("slowlog-log-slower-than", -1)
    entries = r.slowlog_get(10)
    by_name = {e["command"].split(b" ")[0]: e for e in entries}
    big = by_name[b"SET"]
    assert big["client_name"] == b"slowpoke" and big["duration"] >= 0
    assert big["command"] == b"SET big " + b"v" * 128 + b"... (172 more bytes)"
    assert by_name[b"DEL"]["command"].endswith(b"... (10 more arguments)")
    raw = r.execute_command("SLOWLOG", "GET", "1")
    assert len(raw[0]) == 6 and raw[0][4].startswith(b"127.0.0.1:")
    assert r.slowlog_len() == len(r.execute_command("SLOWLOG", "GET", "-1"))
    r.slowlog_reset()
    assert r.slowlog_len() == 0
    r.close()


def test_latency_histogram(obs: MetricsServer) -> None:
    r = obs.client()
    for _ in range(5):
        r.ping()
    reply = as_map(r.execute_command("LATENCY", "HISTOGRAM", "ping"))
    assert list(reply) == [b"ping"]
    stats = as_map(reply[b"ping"])
    buckets = list(as_map(stats[b"histogram_usec"]).items())
    assert stats[b"calls"] >= 5 and buckets[-1][1] == stats[b"calls"]
    r.close()
    r3 = obs.client(protocol=3)
    reply = r3.execute_command("LATENCY", "HISTOGRAM", "ping")
    assert isinstance(reply, dict) and isinstance(reply[b"ping"][b"histogram_usec"], dict)
    r3.close()


def run_on_pty(args: list[str], seconds: float) -> str:
    """Run a tool that loops forever on a pseudo-terminal (so it flushes each line), then
    kill it and return what it printed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    output += os.read(master, 65536)
                except OSError:
                    break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        os.close(master)
    return output.decode(errors="replace")


def test_redis_cli_stat_and_info(obs: MetricsServer) -> None:
    cli = require_tool("redis-cli")
    r = obs.client()
    r.set("a", "1")
    out = run_on_pty([cli, "-p", str(obs.port), "--stat", "-i", "0.2"], seconds=1.2)
    header = next(line for line in out.splitlines() if "keys" in line)
    assert "mem" in header and "clients" in header
    rows = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    assert rows and rows[0][0] == "1", out  # one key
    info: Any = subprocess.run([cli, "-p", str(obs.port), "INFO"], capture_output=True,
                               timeout=30, check=True)
    assert b"# Jobs" in info.stdout and b"redis_version:" in info.stdout
    r.close()


def test_config_resetstat_clears_every_statistic(server: ServerProcess) -> None:
    r = server.client(protocol=2)
    with pytest.raises(redis.ResponseError):
        r.execute_command("NOSUCHCOMMAND")  # counted in errorstats as ERR
    r.config_set("slowlog-log-slower-than", 0)
    r.ping()
    assert r.info("errorstats")["errorstat_ERR"]["count"] >= 1
    assert r.slowlog_len() > 0
    assert r.config_resetstat() is True
    assert "errorstat_ERR" not in r.info("errorstats")
    r.config_set("slowlog-log-slower-than", 10000)
    assert r.slowlog_len() <= 2  # at most the INFO and CONFIG SET that followed the reset
    r.close()
