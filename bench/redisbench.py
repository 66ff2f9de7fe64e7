"""redis-benchmark, one test per invocation, with the server's CPU time attributed to each test.

Theory of operation: for every (pipeline, test) the suite runs `redis-benchmark -t <test> --csv`
first against jobcached and then against redis-server, `repeats` times over (interleaved, so
drift of the machine hits both alike). Around each invocation it reads the server's utime+stime
from /proc, so `cpu_us_per_req = (ticks_after - ticks_before) / CLK_TCK / requests * 1e6`. A row
shows each server's run with the median CPU per request, and its notes the range of the CPU
ratio over the pairs: on a shared 2-core machine one pair can be 25% off. Both servers run for
the whole suite; the idle one costs next to nothing.

A test fails (and its row says why) instead of crashing the suite when redis-benchmark exits
non-zero, prints an error line (it stops at the first `-ERR`, e.g. an unknown command), reports
0 requests/s, produces no CSV row, or outlives its timeout (it retries a refused connection
forever).
"""

from __future__ import annotations

import csv
import io
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bench.context import CLK_TCK, Context, Server, require_binary
from bench.suite import Column, Row, Suite, median_run

MIN_EXPECTED_RPS = 2000
"""A test slower than this is treated as hung: timeout = BASE + requests / MIN_EXPECTED_RPS."""
BASE_TIMEOUT_S = 30.0
"""Fixed part of each redis-benchmark timeout (start-up, connection set-up)."""
WARMUP_REQUESTS = 5000
"""Unmeasured PINGs sent to each server first, so lazy imports and allocations are not billed."""
LOW_PRECISION_TICKS = 50
"""CPU readings under this many clock ticks are quantised by more than 2%: flagged in RESULTS.md."""
MAX_ERROR_CHARS = 80
"""Error messages kept in a row are cut to this length."""

_IGNORED_STDERR = ("WARNING: Could not fetch server CONFIG",)
"""Noise redis-benchmark prints for servers without CONFIG GET; not an error."""

# `-t ping` runs two tests in one invocation; split it so each gets its own CPU reading.
_TEST_ALIASES = {"ping": ("ping_inline", "ping_mbulk")}


def expand_tests(tests: tuple[str, ...]) -> list[str]:
    """Test names, one per redis-benchmark invocation (`ping` becomes its two variants)."""
    return [name for test in tests for name in _TEST_ALIASES.get(test, (test,))]


@dataclass
class TestResult:
    """One redis-benchmark test against one server."""

    ok: bool
    rps: float | None = None
    p50_ms: float | None = None
    cpu_ticks: int | None = None
    cpu_us_per_req: float | None = None
    cpu_us_per_req_clock: float | None = None
    """Cross-check of cpu_us_per_req from the ns-resolution process CPU clock."""
    wall_s: float | None = None
    error: str | None = None


def parse_csv(text: str) -> list[dict[str, str]]:
    """redis-benchmark --csv output as dicts keyed by its header (test, rps, p50_latency_ms...)."""
    lines = [line for line in text.splitlines() if line.startswith('"')]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


def _error_line(stdout: str, stderr: str) -> str | None:
    for line in (stderr + "\n" + stdout).splitlines():
        line = line.strip()
        if line.startswith(_IGNORED_STDERR) or line.startswith('"'):
            continue
        if "error" in line.lower() or "could not connect" in line.lower():
            # "Error from server: ERR unknown command 'X', with args beginning with: ..." -> short
            return line.removeprefix("Error from server: ").split(", with args")[0]
    return None


def run_test(
    ctx: Context, server: Server, test: str, *, requests: int, clients: int, pipeline: int,
    command: tuple[str, ...] = (), connect: tuple[str, ...] = (),
) -> TestResult:
    """Run one redis-benchmark test against `server` and measure the server's CPU around it.

    `command`, when given, replaces `-t test` with redis-benchmark's own custom-command form
    (options such as `-r N` first, then the command words), for commands it has no test for.
    `connect` are more connection options (`--tls --cacert ...`).
    """
    if not server.alive():
        return TestResult(ok=False, error=f"server exited with code {server.proc.returncode}")
    argv = [require_binary("redis-benchmark"), "-h", "127.0.0.1", "-p", str(server.port),
            *connect,
            *(() if command else ("-t", test)), "-n", str(requests), "-c", str(clients),
            "-P", str(pipeline), "--csv", *command]
    timeout_s = BASE_TIMEOUT_S + requests / MIN_EXPECTED_RPS
    try:
        with ctx.measure(server.pid) as used:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                                  stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return TestResult(ok=False, error=f"redis-benchmark timed out after {timeout_s:.0f} s")
    except (FileNotFoundError, ProcessLookupError, RuntimeError):
        return TestResult(ok=False, error="server exited during the test")
    rows = parse_csv(proc.stdout)
    rps = float(rows[0]["rps"]) if rows else 0.0
    error = _error_line(proc.stdout, proc.stderr)
    if proc.returncode != 0 and error is None:
        error = f"redis-benchmark exited with code {proc.returncode}"
    if error is None and rps <= 0:
        error = "no result (0 requests/s)"
    if error is not None:
        return TestResult(ok=False, error=error[:MAX_ERROR_CHARS])
    p50 = rows[0].get("p50_latency_ms")
    clock_us = None if used.cpu_ns is None else round(used.cpu_ns / requests / 1e3, 3)
    return TestResult(
        ok=True, rps=rps, p50_ms=float(p50) if p50 else None, cpu_ticks=used.cpu_ticks,
        cpu_us_per_req=round(used.cpu_ticks / CLK_TCK / requests * 1e6, 3),
        cpu_us_per_req_clock=clock_us,
        wall_s=round(used.wall_s, 3),
    )


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def comparison_row(test: str, pipeline: int, jc: TestResult, redis: TestResult) -> Row:
    """A flat row: both servers' figures side by side plus the jobcached/redis ratios."""
    notes = [f"{name} failed: {r.error}" for name, r in (("jobcached", jc), ("redis", redis))
             if not r.ok]
    low = [name for name, r in (("jobcached", jc), ("redis", redis))
           if r.ok and r.cpu_ticks is not None and r.cpu_ticks < LOW_PRECISION_TICKS]
    if low:
        notes.append("coarse CPU (<" + str(LOW_PRECISION_TICKS) + " ticks): " + ", ".join(low))
    row: Row = {"test": test.upper(), "pipeline": pipeline}
    for name, r in (("jobcached", jc), ("redis", redis)):
        row.update({f"{name}_{key}": value for key, value in vars(r).items()})
    row["cpu_ratio"] = _ratio(jc.cpu_us_per_req, redis.cpu_us_per_req)
    row["rps_ratio"] = _ratio(jc.rps, redis.rps)
    row["status"] = "ok" if jc.ok and redis.ok else "failed"
    row["notes"] = "; ".join(notes)
    return row


COMPARISON_COLUMNS = (
    Column("test", "Test"),
    Column("pipeline", "Pipeline", "int"),
    Column("jobcached_rps", "jobcached rps", "rps"),
    Column("redis_rps", "redis rps", "rps"),
    Column("jobcached_cpu_us_per_req", "jobcached µs CPU/req", "us"),
    Column("redis_cpu_us_per_req", "redis µs CPU/req", "us"),
    Column("cpu_ratio", "CPU ratio", "ratio"),
    Column("rps_ratio", "Throughput ratio", "ratio"),
    Column("jobcached_p50_ms", "jobcached p50 ms", "ms"),
    Column("redis_p50_ms", "redis p50 ms", "ms"),
    Column("notes", "Notes"),
)


class RedisBenchmarkSuite(Suite):
    """jobcached vs redis-server under redis-benchmark, for a list of `-t` tests and pipelines."""

    columns = COMPARISON_COLUMNS
    required_binaries = ("redis-server", "redis-benchmark")

    def __init__(
        self, name: str, description: str, tests: tuple[str, ...], *, requests: int = 200_000,
        quick_requests: int = 50_000, clients: int = 50, pipelines: tuple[int, ...] = (1, 16),
        repeats: int = 3, commands: dict[str, tuple[str, ...]] | None = None,
        preload: Callable[[Server], None] | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.tests = tests
        self.requests = requests
        self.quick_requests = quick_requests
        self.clients = clients
        self.pipelines = pipelines
        self.repeats = repeats
        #: test name -> custom command (see `run_test`), for tests redis-benchmark lacks
        self.commands = commands or {}
        #: fills each server with the data the commands read, before anything is measured
        self.preload = preload

    def parameters(self, quick: bool) -> dict[str, Any]:
        return {
            "tests": expand_tests(self.tests),
            "requests": self.quick_requests if quick else self.requests,
            "clients": self.clients,
            "pipelines": list(self.pipelines),
            "repeats": 1 if quick else self.repeats,
            "command": "redis-benchmark -t TEST -n REQUESTS -c CLIENTS -P PIPELINE --csv",
            "custom_commands": {name: " ".join(cmd) for name, cmd in self.commands.items()},
        }

    def start(self, ctx: Context) -> tuple[list[Server], tuple[str, ...]]:
        """The two servers (jobcached first), and redis-benchmark's options to reach them."""
        return [ctx.start_jobcached(), ctx.start_redis()], ()

    def run(self, ctx: Context) -> list[Row]:
        params = self.parameters(ctx.quick)
        servers, connect = self.start(ctx)
        for server in servers:
            run_test(ctx, server, "ping_mbulk", requests=WARMUP_REQUESTS, clients=self.clients,
                     pipeline=1, connect=connect)
            if self.preload is not None:
                self.preload(server)
        rows = []
        for pipeline in self.pipelines:
            for test in params["tests"]:
                started = time.monotonic()
                pairs = [tuple(run_test(ctx, server, test, requests=params["requests"],
                                        clients=self.clients, pipeline=pipeline,
                                        command=self.commands.get(test, ()),
                                        connect=connect)
                               for server in servers) for _ in range(params["repeats"])]
                row = comparison_row(test, pipeline, _median(p[0] for p in pairs),
                                     _median(p[1] for p in pairs))
                _add_spread(row, pairs)
                rows.append(row)
                ctx.log(_progress_line(row, time.monotonic() - started))
        return rows


def _median(results: Iterable[TestResult]) -> TestResult:
    """The run with the median CPU per request (the first failure if none succeeded)."""
    return median_run(results, lambda r: r.ok, lambda r: r.cpu_us_per_req or 0.0)


def _add_spread(row: Row, pairs: list[tuple[TestResult, ...]]) -> None:
    """Record every pair's CPU ratio in the row, and their range in its notes."""
    ratios = [_ratio(jc.cpu_us_per_req, redis.cpu_us_per_req) for jc, redis in pairs]
    row["pair_cpu_ratios"] = [None if r is None else round(r, 3) for r in ratios]
    measured = [r for r in ratios if r is not None]
    if len(measured) > 1:
        spread = f"pairs {min(measured):.2f}-{max(measured):.2f}x"
        row["notes"] = "; ".join(filter(None, [row["notes"], spread]))


def _progress_line(row: Row, elapsed_s: float) -> str:
    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    return (f"  {row['test']:<12} P={row['pipeline']:<3} "
            f"rps jc {fmt(row['jobcached_rps'], ',.0f')} / redis {fmt(row['redis_rps'], ',.0f')}"
            f"  µs CPU/req jc {fmt(row['jobcached_cpu_us_per_req'], '.2f')}"
            f" / redis {fmt(row['redis_cpu_us_per_req'], '.2f')}  ({elapsed_s:.1f} s)"
            + (f"  [{row['notes']}]" if row["notes"] else ""))
