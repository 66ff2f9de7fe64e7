"""Metrics overhead: jobcached's server CPU per request with the metrics endpoint off, and on
with Prometheus scraping it every second, under the same redis-benchmark load in one run.

The per-command counters and the latency histogram behind INFO commandstats, LATENCY HISTOGRAM
and /metrics are always updated (a few integer operations per command); what `metrics-port 0`
removes is the HTTP endpoint and the scrape work. The issue's target: metrics cost < 3% of
server CPU per request.
"""

from __future__ import annotations

import statistics
import threading
import urllib.request
from typing import Any

from bench.context import Context, free_port
from bench.redisbench import WARMUP_REQUESTS, run_test
from bench.suite import Column, Row, Suite, register

#: Prometheus' default scrape interval is 60 s; 1 s is a harsh setting for this measurement.
SCRAPE_INTERVAL_S = 1.0
ROUNDS = 3  # off/on alternated this many times; the median of each is reported


class Scraper:
    """GET /metrics every SCRAPE_INTERVAL_S until stopped; counts scrapes."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.scrapes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(SCRAPE_INTERVAL_S):
            with urllib.request.urlopen(self.url, timeout=10) as response:
                response.read()
            self.scrapes += 1

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class MetricsOverheadSuite(Suite):
    name = "metrics-overhead"
    description = ("redis-benchmark -t set,get -P 16 against jobcached with metrics-port 0 and "
                   "with /metrics scraped every second; server CPU per request, median of "
                   f"{ROUNDS} alternated runs. Target: < 3% overhead.")
    columns = (
        Column("test", "Test"), Column("off_cpu_us_per_req", "µs CPU/req, metrics off", "us"),
        Column("on_cpu_us_per_req", "µs CPU/req, scraped every 1 s", "us"),
        Column("overhead_pct", "Overhead", "percent"), Column("scrapes", "Scrapes", "int"),
    )
    required_binaries = ("redis-benchmark",)

    def parameters(self, quick: bool) -> dict[str, Any]:
        return {"tests": ["set", "get"], "requests": 100_000 if quick else 400_000,
                "clients": 50, "pipeline": 16, "rounds": ROUNDS}

    def run(self, ctx: Context) -> list[Row]:
        params = self.parameters(ctx.quick)
        metrics_port = free_port()
        off = ctx.start_jobcached("--metrics-port", "0")
        on = ctx.start_jobcached("--metrics-port", str(metrics_port))
        for server in (off, on):
            run_test(ctx, server, "ping_mbulk", requests=WARMUP_REQUESTS, clients=50, pipeline=1)
        rows = []
        for test in params["tests"]:
            offs, ons, scrapes = [], [], 0
            for _ in range(ROUNDS):
                kwargs = {"requests": params["requests"], "clients": params["clients"],
                          "pipeline": params["pipeline"]}
                result = run_test(ctx, off, test, **kwargs)
                if result.cpu_us_per_req is not None:
                    offs.append(result.cpu_us_per_req)
                with Scraper(metrics_port) as scraper:
                    result = run_test(ctx, on, test, **kwargs)
                scrapes += scraper.scrapes
                if result.cpu_us_per_req is not None:
                    ons.append(result.cpu_us_per_req)
            off_us = statistics.median_high(offs) if offs else None
            on_us = statistics.median_high(ons) if ons else None
            overhead = (on_us / off_us - 1) * 100 if off_us and on_us else None
            rows.append({"test": test.upper(), "off_cpu_us_per_req": off_us,
                         "on_cpu_us_per_req": on_us, "overhead_pct": overhead,
                         "scrapes": scrapes})
            ctx.log(f"  {test}: off {off_us} µs, on {on_us} µs, overhead {overhead}")
        return rows


register(MetricsOverheadSuite())
