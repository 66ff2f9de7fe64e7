"""Job suites: jobcached as a job server, next to beanstalkd (see `bench/jobload.py`).

- `jobs-lifecycle`: push → fetch → ack throughput and server CPU per job, jobcached
  (`appendfsync everysec` and `always`) against beanstalkd with a binlog (`-f 1000`, `-f 0`).
- `jobs-delay-lateness`: how late delayed jobs reach a blocked consumer.
- `jobs-recovery`: how long jobcached takes from start to first PING with a big WAL to replay.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.context import Context, Server
from bench.jobload import LoadResult, Plan, percentile, run_load
from bench.suite import Column, Row, Suite, median_run, register

LOW_PRECISION_TICKS = 50
"""Server CPU readings under this many clock ticks are flagged as coarse (as the cache suites)."""
WARMUP_JOBS = 1000
"""Unmeasured lifecycle jobs each server runs first (imports, allocations, first WAL segment)."""
PROCESSES, PRODUCERS, CONSUMERS = 2, 5, 5
"""Load generator shape: 2 processes, each with 5 producer and 5 consumer connections."""
PUSH_BATCH = 50
"""Pushes (JOB.PUSH / put) pipelined per write by each producer."""
BUSY_NOTE = 0.85
"""A run whose server used at least this share of a core is noted as CPU-bound."""
COMPACTION_EVENT = '"WAL compacted"'
"""jobcached's log event (level info) for a WAL compaction, which pauses its event loop."""


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _round(value: float | None, places: int = 3) -> float | None:
    return None if value is None else round(value, places)


def _beanstalkd(ctx: Context, fsync_ms: int) -> Server:
    binlog = ctx.workdir / f"beanstalkd-binlog-f{fsync_ms}"
    binlog.mkdir()
    return ctx.start_beanstalkd("-b", str(binlog), "-f", str(fsync_ms))


def _log_lines(server: Server, needle: str) -> int:
    """How many lines of the server's log so far contain `needle`."""
    return server.log_path.read_text(errors="replace").count(needle)


def _measured(ctx: Context, server: Server, plan: Plan) -> tuple[LoadResult, list[str]]:
    """`run_load`, plus notes on WAL compactions the server logged meanwhile (jobcached)."""
    before = _log_lines(server, COMPACTION_EVENT)
    result = run_load(ctx, server, plan)
    compactions = _log_lines(server, COMPACTION_EVENT) - before
    notes = []
    busy = _busy(result)
    if busy is not None and busy >= BUSY_NOTE:
        notes.append(f"server CPU-bound ({busy:.0%} of a core)")
    if compactions:
        notes.append(f"{compactions} WAL compaction{'s' if compactions > 1 else ''}")
    return result, notes


def _busy(result: LoadResult) -> float | None:
    """Server CPU time ÷ wall time of the run (1.0 = one core fully used)."""
    if not result.ok or not result.wall_s or result.server_cpu_us_per_job is None:
        return None
    return result.server_cpu_us_per_job * result.jobs / 1e6 / result.wall_s


def _coarse(result: LoadResult) -> bool:
    return result.ok and result.server_cpu_ticks < LOW_PRECISION_TICKS


def _fetch_label(kind: str, count: int) -> str:
    return f"FETCH COUNT {count}" if kind == "jobcached" else "reserve (1 job)"


def _median_run(
    runs: list[tuple[LoadResult, list[str]]],
) -> tuple[LoadResult, list[str]]:
    """The run with the median throughput (the first failure if no run succeeded)."""
    return median_run(runs, lambda r: r[0].ok, lambda r: r[0].jobs_per_s or 0.0)


def _run_summary(r: LoadResult) -> dict[str, Any]:
    return {"ok": r.ok, "jobs_per_s": _round(r.jobs_per_s, 1),
            "server_cpu_us_per_job": _round(r.server_cpu_us_per_job),
            "client_cpu_us_per_job": _round(r.client_cpu_us_per_job), "error": r.error}


# -- jobs-lifecycle ------------------------------------------------------------------------------

_DURABILITY = (
    # (label, jobcached flags, beanstalkd -f)
    ("fsync ≤ 1 s", ("--appendfsync", "everysec"), 1000),
    ("fsync always", ("--appendfsync", "always"), 0),
)


class LifecycleSuite(Suite):
    name = "jobs-lifecycle"
    description = (
        "Full job lifecycle, push → fetch → ack, 100-byte payloads, 10 producer and 10 consumer "
        "connections from 2 load-generator processes (raw sockets, same code shape for both "
        "servers). Producers pipeline 50 pushes per write (JOB.PUSH / put). Consumers send the "
        "acks for what they hold together with the next fetch, so one round trip per fetch: "
        "JOB.FETCH COUNT 50 or COUNT 1 (BLOCK 1000) for jobcached, reserve-with-timeout (one "
        "job per reserve, the protocol has no batch) for beanstalkd. Durability matched: "
        "jobcached appendfsync everysec vs beanstalkd -b -f 1000, appendfsync always vs "
        "-b -f 0 (fsync every binlog write). Ratios are jobcached ÷ beanstalkd at the same "
        "durability; client µs CPU/job is the load generator's CPU, to show whether it limits. "
        "Full mode: median (by jobs/s) of 3 interleaved runs; warm-up 1,000 jobs per server."
    )
    columns = (
        Column("server", "Server"),
        Column("durability", "Durability"),
        Column("fetch", "Consumer fetch"),
        Column("jobs", "Jobs", "int"),
        Column("jobs_per_s", "jobs/s", "rps"),
        Column("server_cpu_us_per_job", "server µs CPU/job", "us"),
        Column("client_cpu_us_per_job", "client µs CPU/job", "us"),
        Column("rps_ratio", "Throughput ratio vs beanstalkd", "ratio"),
        Column("cpu_ratio", "CPU ratio vs beanstalkd", "ratio"),
        Column("notes", "Notes"),
    )
    required_binaries = ("beanstalkd",)

    def parameters(self, quick: bool) -> dict[str, Any]:
        return {
            "jobs": 5_000 if quick else 20_000,
            "payload_bytes": 100,
            "processes": PROCESSES,
            "producers": PROCESSES * PRODUCERS,
            "consumers": PROCESSES * CONSUMERS,
            "push_batch": PUSH_BATCH,
            "fetch_counts": [50, 1],
            "warmup_jobs": WARMUP_JOBS,
            "repeats": 1 if quick else 3,
        }

    def run(self, ctx: Context) -> list[Row]:
        params = self.parameters(ctx.quick)
        rows: list[Row] = []
        for label, jc_flags, fsync_ms in _DURABILITY:
            jc = ctx.start_jobcached(*jc_flags, loglevel="info")
            bs = _beanstalkd(ctx, fsync_ms)
            targets: list[tuple[Server, str, int, str]] = [
                (jc, "jobcached", 50, f"jobcached {' '.join(jc_flags[1:])}"),
                (jc, "jobcached", 1, f"jobcached {' '.join(jc_flags[1:])}"),
                (bs, "beanstalkd", 1, f"beanstalkd -b -f {fsync_ms}"),
            ]
            for server, kind in ((jc, "jobcached"), (bs, "beanstalkd")):
                run_load(ctx, server, Plan(kind, WARMUP_JOBS, fetch_count=50))
            # Repeats are interleaved (A B C A B C ...) so drift of the machine hits all alike.
            runs: list[list[tuple[LoadResult, list[str]]]] = [[] for _ in targets]
            for _ in range(params["repeats"]):
                for i, (server, kind, count, title) in enumerate(targets):
                    plan = Plan(kind, params["jobs"], processes=PROCESSES, producers=PRODUCERS,
                                consumers=CONSUMERS, push_batch=PUSH_BATCH, fetch_count=count)
                    result, notes = _measured(ctx, server, plan)
                    runs[i].append((result, notes))
                    ctx.log(f"  {title:<28} {_fetch_label(kind, count):<16} " + (
                        f"{result.jobs_per_s:,.0f} jobs/s, server "
                        f"{result.server_cpu_us_per_job:.1f} µs CPU/job, client "
                        f"{result.client_cpu_us_per_job:.1f}" if result.ok
                        else f"FAILED: {result.error}"))
            chosen = [_median_run(r) for r in runs]
            peer = chosen[-1][0]
            for (_, kind, count, title), (result, notes), all_runs in zip(
                    targets, chosen, runs, strict=True):
                row = self._row(title, label, _fetch_label(kind, count), result, peer, notes)
                row["runs"] = [_run_summary(r) for r, _ in all_runs]
                if len(all_runs) > 1:
                    rates = [r.jobs_per_s for r, _ in all_runs if r.ok and r.jobs_per_s]
                    if rates:
                        row["notes"] = "; ".join(filter(None, [
                            row["notes"], f"runs {min(rates):,.0f}-{max(rates):,.0f} jobs/s"]))
                rows.append(row)
            ctx.stop(jc)
            ctx.stop(bs)
        return rows

    @staticmethod
    def _row(title: str, label: str, fetch: str, r: LoadResult, peer: LoadResult,
             extra_notes: list[str]) -> Row:
        notes = ([] if r.ok else [f"failed: {r.error}"]) + extra_notes
        if _coarse(r):
            notes.append(f"coarse CPU ({r.server_cpu_ticks} ticks)")
        is_peer = r is peer
        return {
            "server": title, "durability": label, "fetch": fetch, "jobs": r.jobs,
            "jobs_per_s": _round(r.jobs_per_s, 1),
            "server_cpu_us_per_job": _round(r.server_cpu_us_per_job),
            "server_cpu_us_per_job_clock": _round(r.server_cpu_us_per_job_clock),
            "server_cpu_ticks": r.server_cpu_ticks,
            "client_cpu_us_per_job": _round(r.client_cpu_us_per_job),
            "server_cpu_busy": _round(_busy(r)),
            "wall_s": _round(r.wall_s),
            "rps_ratio": None if is_peer else _round(_ratio(r.jobs_per_s, peer.jobs_per_s)),
            "cpu_ratio": None if is_peer else _round(
                _ratio(r.server_cpu_us_per_job, peer.server_cpu_us_per_job)),
            "status": "ok" if r.ok else "failed",
            "notes": "; ".join(notes),
        }


# -- jobs-delay-lateness -------------------------------------------------------------------------

LATENESS_TARGET_MS = 20.0
DELAY_RANGE_MS = (2000, 5000)
"""Due while still being pushed: the burst load (a throughput test more than a timer test)."""
HELD_DELAY_RANGE_MS = (5000, 15000)
"""Due after the push phase: every job is held by the timer first, then falls due at about
10,000 a second, a rate both servers can serve."""
DELAY_FETCH_COUNT = 100
LIGHT_JOBS = 2_000
"""A light-load jobcached row first: the lateness floor when the server is mostly idle."""


class DelayLatenessSuite(Suite):
    name = "jobs-delay-lateness"
    description = (
        "Delayed jobs: producers push jobs as fast as the server takes them (50 pushes "
        "pipelined per write, 10 producer connections) with a DELAY drawn uniformly from a "
        "range; 10 consumers wait with JOB.FETCH COUNT 100 BLOCK 1000 and ack with their next "
        "fetch. Lateness = client receive time - (client send time of the push + delay), "
        "time.time() in ms, so it includes the push's trip to the server (push RTT p99 bounds "
        "that part). Target: jobcached p99 ≤ 20 ms. Three loads: light (2,000 jobs, 2-5 s), "
        "the lateness floor of an almost idle server; held (100,000 jobs, 5-15 s): all are "
        "pushed before the first falls due, then they fall due at about 10,000 a second, which "
        "measures the timer; burst (100,000 jobs, 2-5 s): jobs fall due while the rest are "
        "still being pushed, at over 30,000 a second, which saturates both servers, so it "
        "measures throughput more than timing. beanstalkd (-b -f 1000, reserve-with-timeout, "
        "one job per reserve) only takes whole-second delays: its delays are the same draw "
        "rounded to whole seconds, so its jobs fall due in bursts once a second, a harder load "
        "than jobcached's spread one."
    )
    columns = (
        Column("server", "Server"),
        Column("jobs", "Jobs", "int"),
        Column("delays", "Delays"),
        Column("lateness_p50_ms", "lateness p50 ms", "ms"),
        Column("lateness_p99_ms", "lateness p99 ms", "ms"),
        Column("lateness_max_ms", "lateness max ms", "ms"),
        Column("lateness_min_ms", "lateness min ms", "ms"),
        Column("push_rtt_p99_ms", "push RTT p99 ms", "ms"),
        Column("target", "p99 ≤ 20 ms"),
        Column("server_cpu_us_per_job", "server µs CPU/job", "us"),
        Column("notes", "Notes"),
    )
    required_binaries = ("beanstalkd",)

    def parameters(self, quick: bool) -> dict[str, Any]:
        return {
            "jobs": 20_000 if quick else 100_000,
            "light_jobs": LIGHT_JOBS,
            "delay_ms": list(DELAY_RANGE_MS),
            "held_delay_ms": list(HELD_DELAY_RANGE_MS),
            "producers": PROCESSES * PRODUCERS,
            "consumers": PROCESSES * CONSUMERS,
            "push_batch": PUSH_BATCH,
            "fetch_count": DELAY_FETCH_COUNT,
            "target_p99_ms": LATENESS_TARGET_MS,
        }

    def run(self, ctx: Context) -> list[Row]:
        params = self.parameters(ctx.quick)
        jc = ctx.start_jobcached("--appendfsync", "everysec", loglevel="info")
        bs = _beanstalkd(ctx, 1000)
        for server, kind in ((jc, "jobcached"), (bs, "beanstalkd")):
            run_load(ctx, server, Plan(kind, WARMUP_JOBS, fetch_count=50))
        rows = []
        jcs, bss = "jobcached everysec", "beanstalkd -b -f 1000"
        held, burst = HELD_DELAY_RANGE_MS, DELAY_RANGE_MS
        for server, kind, title, delays, delay_ms, jobs in (
            (jc, "jobcached", jcs, "light: 2000-5000 ms", burst, params["light_jobs"]),
            (jc, "jobcached", jcs, "held: 5000-15000 ms", held, params["jobs"]),
            (bs, "beanstalkd", bss, "held: 5-15 s (whole)", held, params["jobs"]),
            (jc, "jobcached", jcs, "burst: 2000-5000 ms", burst, params["jobs"]),
            (bs, "beanstalkd", bss, "burst: 2-5 s (whole)", burst, params["jobs"]),
        ):
            plan = Plan(kind, jobs, processes=PROCESSES, producers=PRODUCERS,
                        consumers=CONSUMERS, push_batch=PUSH_BATCH,
                        fetch_count=DELAY_FETCH_COUNT, delay_ms=delay_ms,
                        timeout_s=60 + delay_ms[1] / 1000 + jobs / 500)
            r, notes = _measured(ctx, server, plan)
            row = self._row(title, delays, r, notes, target=kind == "jobcached")
            rows.append(row)
            ctx.log(f"  {title:<24} {jobs:>7,} jobs " + (
                f"lateness p50 {row['lateness_p50_ms']:.1f} p99 {row['lateness_p99_ms']:.1f} "
                f"max {row['lateness_max_ms']:.1f} ms, push RTT p99 "
                f"{row['push_rtt_p99_ms']:.1f} ms" if r.ok else f"FAILED: {r.error}"))
        return rows

    @staticmethod
    def _row(title: str, delays: str, r: LoadResult, extra_notes: list[str], *,
             target: bool) -> Row:
        notes = ([] if r.ok else [f"failed: {r.error}"]) + extra_notes
        late = r.lateness_ms
        if r.ok and len(late) != r.jobs:
            notes.append(f"{len(late)} lateness samples for {r.jobs} jobs")
        early = [x for x in late if x < 0]
        if early:  # the server keeps time in whole milliseconds: within 1 ms is its resolution
            notes.append(f"{len(early)} jobs delivered up to {-min(early):.2f} ms early"
                         + ("" if min(early) > -1 else ", more than the 1 ms clock resolution"))
        if _coarse(r):
            notes.append(f"coarse CPU ({r.server_cpu_ticks} ticks)")
        p99 = percentile(late, 99)
        verdict = None
        if target and p99 is not None:
            verdict = "met" if p99 <= LATENESS_TARGET_MS else "MISSED"
        return {
            "server": title, "jobs": r.jobs, "delays": delays,
            "lateness_p50_ms": _round(percentile(late, 50)),
            "lateness_p99_ms": _round(p99),
            "lateness_max_ms": _round(max(late) if late else None),
            "lateness_min_ms": _round(min(late) if late else None),
            "push_rtt_p99_ms": _round(percentile(r.push_rtt_ms, 99)),
            "target": verdict,
            "server_cpu_us_per_job": _round(r.server_cpu_us_per_job),
            "server_cpu_us_per_job_clock": _round(r.server_cpu_us_per_job_clock),
            "server_cpu_ticks": r.server_cpu_ticks,
            "client_cpu_us_per_job": _round(r.client_cpu_us_per_job),
            "server_cpu_busy": _round(_busy(r)),
            "wall_s": _round(r.wall_s),
            "status": "ok" if r.ok else "failed",
            "notes": "; ".join(notes),
        }


# -- jobs-recovery -------------------------------------------------------------------------------

RECOVERY_TARGET_S = 5.0
RECOVERY_STARTUP_TIMEOUT_S = 180.0
"""How long the replaying server may take before the row fails (well past the target)."""
READY_PROBE_INTERVAL_S = 0.005
"""PING probe interval while timing a start: the start-to-PING figure is this precise."""


def _replay_event(server: Server) -> dict[str, Any] | None:
    """The "job log replayed" JSON line of a jobcached log, if any."""
    for line in server.log_path.read_text(errors="replace").splitlines():
        if "job log replayed" in line:
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class RecoverySuite(Suite):
    name = "jobs-recovery"
    description = (
        "Crash-recovery start time: fill a WAL by pushing 100-byte jobs (pipelined, 200 per "
        "write, 8 connections) into jobcached with appendfsync no, stop it with SIGTERM, then "
        "time `jobcached serve` on that directory from spawn to the first PONG (PING every "
        "5 ms; the server replays the WAL before it listens). The start includes interpreter "
        "start-up and imports: the empty-directory start shows that part. Replay s is the "
        "server's own figure (its \"job log replayed\" log line). The WAL was just written, so "
        "it is read from the page cache. Target: ≤ 5 s."
    )
    columns = (
        Column("records", "WAL records", "int"),
        Column("jobs", "Jobs", "int"),
        Column("wal_bytes", "WAL size", "bytes"),
        Column("start_to_ping_s", "start → PING s", "ms"),
        Column("replay_s", "replay s (log)", "ms"),
        Column("empty_start_to_ping_s", "empty-dir start → PING s", "ms"),
        Column("target", "≤ 5 s"),
        Column("rss_bytes", "RSS after replay", "bytes"),
        Column("build_jobs_per_s", "build push jobs/s", "rps"),
        Column("notes", "Notes"),
    )

    def parameters(self, quick: bool) -> dict[str, Any]:
        return {
            "records": 200_000 if quick else 1_000_000,
            "payload_bytes": 100,
            "push_batch": 200,
            "producer_connections": 8,
            "appendfsync_while_building": "no",
            "target_s": RECOVERY_TARGET_S,
        }

    def run(self, ctx: Context) -> list[Row]:
        params = self.parameters(ctx.quick)
        data_dir = ctx.workdir / "recovery"
        data_dir.mkdir()
        build = ctx.start_jobcached("--appendfsync", "no", data_dir=data_dir, loglevel="info")
        plan = Plan("jobcached", params["records"], processes=2, producers=4, consumers=0,
                    push_batch=params["push_batch"], timeout_s=60 + params["records"] / 1000)
        started = time.monotonic()
        built = run_load(ctx, build, plan)
        ctx.stop(build)
        row: Row = {"records": None, "jobs": params["records"], "status": "failed", "notes": ""}
        if not built.ok:
            row["notes"] = f"building the WAL failed: {built.error}"
            return [row]
        ctx.log(f"  pushed {params['records']:,} jobs in {time.monotonic() - started:.1f} s "
                f"({built.jobs_per_s:,.0f} jobs/s); WAL {_dir_bytes(data_dir) / 2**20:.0f} MiB")
        empty_dir = ctx.workdir / "recovery-empty"
        empty_dir.mkdir()
        empty = ctx.start_jobcached(data_dir=empty_dir, loglevel="info",
                                    probe_interval=READY_PROBE_INTERVAL_S)
        ctx.stop(empty)
        try:
            server = ctx.start_jobcached(data_dir=data_dir, loglevel="info",
                                         probe_interval=READY_PROBE_INTERVAL_S,
                                         startup_timeout=RECOVERY_STARTUP_TIMEOUT_S)
        except RuntimeError as exc:
            row["notes"] = f"restart failed: {str(exc).splitlines()[0]}"
            return [row]
        rss = ctx.rss_bytes(server.pid)
        event = _replay_event(server) or {}
        ctx.stop(server)
        assert server.ready_s is not None and empty.ready_s is not None
        row.update({
            "records": event.get("records"),
            "jobs": event.get("jobs"),
            "wal_bytes": _dir_bytes(data_dir),
            "start_to_ping_s": round(server.ready_s, 3),
            "replay_s": event.get("seconds"),
            "empty_start_to_ping_s": round(empty.ready_s, 3),
            "target": "met" if server.ready_s <= RECOVERY_TARGET_S else "MISSED",
            "rss_bytes": rss,
            "build_jobs_per_s": round(built.jobs_per_s or 0, 1),
            "build_server_cpu_us_per_job": _round(built.server_cpu_us_per_job),
            "status": "ok",
            "notes": "" if event else "no 'job log replayed' line in the server log",
        })
        ctx.log(f"  replayed {row['records']} records: start → PING {server.ready_s:.2f} s "
                f"(replay {row['replay_s']} s; empty start {empty.ready_s:.2f} s)")
        return [row]


register(LifecycleSuite())
register(DelayLatenessSuite())
register(RecoverySuite())
