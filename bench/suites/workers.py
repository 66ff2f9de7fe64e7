"""jobs-workers: no-op jobs end to end through real worker runtimes.

N jobs are pushed first (push phase, timed on its own), then one worker process runs them all
(run phase). Each worker is a separate process started before the clock and gated: it has done
its imports and connected before the run phase starts.

- jobcached: the `jobcached_client` Worker, an async no-op handler, concurrency 50. Gate: the
  child waits for a "go" file. Done: QUEUE.STATS polled by the bench every 2 ms shows all N
  succeeded (acked at the server).
- RQ on redis-server: `SimpleWorker` (runs jobs in its own process, no fork per job), gated by
  the "go" file, `work(burst=True)`; done when `work` returns. Pushed with `enqueue_many` of
  `Queue.prepare_data` (one pipeline per 1,000 jobs). A short extra row runs rq's default
  forking `Worker` (one fork per job) on fewer jobs.
- Celery (redis broker, same redis-server): pushed with `task.delay` in a loop, then one marker
  task. The worker starts consuming only a dummy queue; the run phase starts with
  `control.add_consumer`. `task_acks_late` (ack after the task, as jobcached and RQ) and no
  result backend. Done: the marker task has run and the broker list and the `unacked` hash are
  both empty (polled every 2 ms).

CPU is utime + stime (+ reaped children) from /proc for the server and the worker process, over
the run phase; the push phase shows the server CPU only.
"""

from __future__ import annotations

import importlib.util
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench.context import CLK_TCK, ROOT, Context, Server
from bench.suite import Column, Row, Suite, SuiteSkipped, register

QUEUE = "bench"
GATE_QUEUE = "bench-gate"
JC_CONCURRENCY = 50
CELERY_POOLS = (("solo", 1, 50), ("threads", 10, 5))
"""(pool, concurrency, prefetch multiplier): about 50 prefetched messages either way."""
PUSH_BATCH = 1000
POLL_S = 0.002
RUN_TIMEOUT_S = 600.0


def noop(n: int) -> None:
    """The RQ job (imported by the RQ worker from this module)."""
    return None


def _tree_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime of `pid` (children it reaped: rq's forked work horses)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return sum(int(x) for x in fields[11:15])


def _us_per_job(ticks: int, jobs: int) -> float:
    return round(ticks / CLK_TCK * 1e6 / jobs, 2)


# -- Celery app (built in the bench and in the worker child) -------------------------------------

def _celery_app(url: str, prefetch: int) -> Any:
    from celery import Celery

    app = Celery("jobs_workers", broker=url, set_as_current=False)
    app.conf.update(
        task_ignore_result=True, result_backend=None, task_acks_late=True,
        task_default_queue=QUEUE, worker_prefetch_multiplier=prefetch,
        worker_disable_rate_limits=True, broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )

    @app.task(name="bench.noop", ignore_result=True, shared=False)
    def celery_noop(n: int) -> None:
        return None

    @app.task(name="bench.marker", ignore_result=True, shared=False)
    def celery_marker(path: str) -> None:
        Path(path).write_text(repr(time.monotonic()))

    return app


# -- worker children (`python -c "from bench.suites.workers import child_main; child_main()"`) --

def _wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.001)


def child_main() -> None:
    role, port, jobs, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    ready, go, done = files / "ready", files / "go", files / "done"
    if role == "jobcached":
        from jobcached_client import Client, Worker

        worker = Worker(Client(port=port), [QUEUE], concurrency=JC_CONCURRENCY, grace=5)
        count = 0

        @worker.task(QUEUE)
        async def jc_noop(payload: Any) -> None:
            nonlocal count
            count += 1
            if count == jobs:
                worker.stop()

        ready.touch()
        _wait_for(go)
        worker.run()
    elif role in ("rq-simple", "rq-fork"):
        from redis import Redis
        from rq import SimpleWorker
        from rq import Worker as ForkWorker

        cls = SimpleWorker if role == "rq-simple" else ForkWorker
        rq_worker = cls([QUEUE], connection=Redis(port=port))
        ready.touch()
        _wait_for(go)
        rq_worker.work(burst=True, logging_level="WARNING")
        done.write_text(repr(time.monotonic()))
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        while True:  # stay alive so the bench can read this process's CPU; SIGTERM ends it
            time.sleep(3600)
    elif role.startswith("celery-"):
        pool = role.removeprefix("celery-")
        _, concurrency, prefetch = next(p for p in CELERY_POOLS if p[0] == pool)
        app = _celery_app(f"redis://127.0.0.1:{port}/0", prefetch)
        app.worker_main(["worker", f"--pool={pool}", f"--concurrency={concurrency}",
                         "-Q", GATE_QUEUE, "-n", f"{role}@bench", "--without-mingle",
                         "--without-gossip", "--without-heartbeat", "--loglevel=WARNING"])
    else:
        raise SystemExit(f"unknown role {role}")


def _start_child(ctx: Context, role: str, port: int, jobs: int,
                 probe: Any = None) -> tuple[Server, Path]:
    files = ctx.workdir / f"worker-{role}"
    files.mkdir()
    argv = [sys.executable, "-c", "from bench.suites.workers import child_main; child_main()",
            role, str(port), str(jobs), str(files)]
    ready = probe or (lambda _port: (files / "ready").exists())
    server = ctx.start_server(f"worker-{role}", argv, port, probe=ready, cwd=ROOT,
                              startup_timeout=60)
    return server, files


# -- the suite -----------------------------------------------------------------------------------

class WorkersSuite(Suite):
    name = "jobs-workers"
    description = (
        "No-op jobs end to end through each system's own worker runtime: push N jobs (push "
        "jobs/s, server CPU), then one worker process runs them all (run jobs/s, wall clock "
        "from the start signal to the last job done; server and worker CPU per job from /proc). "
        "Workers are started, imported and connected before the run phase. jobcached: "
        "jobcached_client Worker, async no-op handler, concurrency 50, push_many pipelines of "
        "1,000, server at default appendfsync everysec (writes a WAL). RQ: redis-server "
        "(persistence off), enqueue_many(prepare_data) pipelines of 1,000, SimpleWorker "
        "work(burst=True) (no fork per job); the rq Worker row forks per job (rq's default) and "
        "runs fewer jobs. Celery: same redis-server as broker, task.delay in a loop, "
        "task_acks_late, no result backend, ignore_result; pools solo and threads (10 threads), "
        "about 50 prefetched; run starts with control.add_consumer, done when a final marker "
        "task has run and the queue and unacked hash are empty. Ratio = jobcached run jobs/s "
        "÷ the row's (targets: ≥ 5x RQ, ≥ 2x Celery)."
    )
    columns = (
        Column("system", "System"),
        Column("worker", "Worker"),
        Column("jobs", "Jobs", "int"),
        Column("push_jobs_per_s", "push jobs/s", "rps"),
        Column("run_jobs_per_s", "run jobs/s", "rps"),
        Column("server_cpu_us_per_job", "server µs CPU/job (run)", "us"),
        Column("worker_cpu_us_per_job", "worker µs CPU/job", "us"),
        Column("ratio", "jobcached ÷ this (run jobs/s)", "ratio"),
        Column("notes", "Notes"),
    )
    required_binaries = ("redis-server",)

    def parameters(self, quick: bool) -> dict[str, Any]:
        return {
            "jobs": 3_000 if quick else 20_000,
            "rq_fork_jobs": 300 if quick else 1_000,
            "jobcached_concurrency": JC_CONCURRENCY,
            "push_batch": PUSH_BATCH,
            "celery_pools": [{"pool": p, "concurrency": c, "prefetch_multiplier": m}
                             for p, c, m in CELERY_POOLS],
            "celery_acks_late": True,
        }

    def run(self, ctx: Context) -> list[Row]:
        missing = [m for m in ("rq", "celery") if importlib.util.find_spec(m) is None]
        if missing:
            raise SuiteSkipped(f"Python package(s) {', '.join(missing)} not installed; run "
                               f"`.venv/bin/pip install -r bench/requirements.txt`")
        params = self.parameters(ctx.quick)
        jobs = params["jobs"]
        rows = [self._jobcached(ctx, jobs)]
        redis_server = ctx.start_redis()
        rows.append(self._rq(ctx, redis_server, "rq-simple", jobs))
        rows.append(self._rq(ctx, redis_server, "rq-fork", params["rq_fork_jobs"]))
        for pool, concurrency, _ in CELERY_POOLS:
            rows.append(self._celery(ctx, redis_server, pool, concurrency, jobs))
        base = rows[0].get("run_jobs_per_s")
        for row in rows[1:]:
            rate = row.get("run_jobs_per_s")
            row["ratio"] = round(base / rate, 3) if base and rate else None
        return rows

    # -- one system each --------------------------------------------------------------------

    @staticmethod
    def _row(system: str, worker: str, jobs: int, push_s: float, push_ticks: int,
             run_s: float, server_ticks: int, worker_ticks: int, notes: list[str]) -> Row:
        return {
            "system": system, "worker": worker, "jobs": jobs,
            "push_jobs_per_s": round(jobs / push_s, 1),
            "push_server_cpu_us_per_job": _us_per_job(push_ticks, jobs),
            "run_jobs_per_s": round(jobs / run_s, 1), "run_wall_s": round(run_s, 3),
            "server_cpu_us_per_job": _us_per_job(server_ticks, jobs),
            "worker_cpu_us_per_job": _us_per_job(worker_ticks, jobs),
            "server_cpu_ticks": server_ticks, "worker_cpu_ticks": worker_ticks,
            "ratio": None, "status": "ok", "notes": "; ".join(notes),
        }

    @staticmethod
    def _failed(system: str, worker: str, jobs: int, why: str) -> Row:
        return {"system": system, "worker": worker, "jobs": jobs, "status": "failed",
                "notes": f"failed: {why}"}

    def _jobcached(self, ctx: Context, jobs: int) -> Row:
        from jobcached_client import Client

        server = ctx.start_jobcached()
        client = Client(port=server.port)
        worker, files = _start_child(ctx, "jobcached", server.port, jobs)
        title = f"Worker, async, concurrency {JC_CONCURRENCY}"
        with ctx.measure(server.pid) as push:
            for start in range(0, jobs, PUSH_BATCH):
                client.jobs.push_many(QUEUE, range(start, min(jobs, start + PUSH_BATCH)))
        s0, w0, t0 = ctx.cpu_ticks(server.pid), _tree_ticks(worker.pid), time.monotonic()
        (files / "go").touch()
        deadline = t0 + RUN_TIMEOUT_S
        while client.queues.stats(QUEUE).succeeded < jobs:
            if not worker.alive() or time.monotonic() > deadline:
                return self._failed("jobcached", title, jobs, "worker died or timed out:\n"
                                    + worker.log_tail())
            time.sleep(POLL_S)
        t1 = time.monotonic()
        s1, w1 = ctx.cpu_ticks(server.pid), _tree_ticks(worker.pid)
        client.close()
        row = self._row("jobcached", title, jobs, push.wall_s, push.cpu_ticks, t1 - t0,
                        s1 - s0, w1 - w0, ["done = QUEUE.STATS succeeded = N (polled 2 ms)"])
        ctx.log(f"  jobcached: push {row['push_jobs_per_s']:,.0f}/s, run "
                f"{row['run_jobs_per_s']:,.0f} jobs/s")
        ctx.stop(worker)
        ctx.stop(server)
        return row

    def _rq(self, ctx: Context, server: Server, role: str, jobs: int) -> Row:
        from redis import Redis
        from rq import Queue

        conn = Redis(port=server.port)
        conn.flushall()
        title = ("SimpleWorker (no fork), burst" if role == "rq-simple"
                 else "Worker (fork per job), burst")
        worker, files = _start_child(ctx, role, server.port, jobs)
        queue = Queue(QUEUE, connection=conn)
        with ctx.measure(server.pid) as push:
            for start in range(0, jobs, PUSH_BATCH):
                queue.enqueue_many([
                    Queue.prepare_data("bench.suites.workers.noop", args=(n,))
                    for n in range(start, min(jobs, start + PUSH_BATCH))])
        s0, w0, t0 = ctx.cpu_ticks(server.pid), _tree_ticks(worker.pid), time.monotonic()
        (files / "go").touch()
        deadline = t0 + RUN_TIMEOUT_S
        while not (files / "done").exists():
            if not worker.alive() or time.monotonic() > deadline:
                return self._failed("RQ", title, jobs, "worker died or timed out:\n"
                                    + worker.log_tail())
            time.sleep(POLL_S)
        time.sleep(POLL_S)  # the file is written before its contents
        t1 = float((files / "done").read_text())
        s1, w1 = ctx.cpu_ticks(server.pid), _tree_ticks(worker.pid)
        finished = queue.finished_job_registry.count
        notes = ["done = work(burst=True) returned"]
        if finished != jobs:
            notes.append(f"{finished} jobs in the finished registry")
        if role == "rq-fork":
            notes.append("fork per job; CPU incl. forks")
        row = self._row("RQ", title, jobs, push.wall_s, push.cpu_ticks, t1 - t0, s1 - s0,
                        w1 - w0, notes)
        ctx.log(f"  {role}: push {row['push_jobs_per_s']:,.0f}/s, run "
                f"{row['run_jobs_per_s']:,.0f} jobs/s")
        ctx.stop(worker)
        conn.close()
        return row

    def _celery(self, ctx: Context, server: Server, pool: str, concurrency: int,
                jobs: int) -> Row:
        from redis import Redis

        conn = Redis(port=server.port)
        conn.flushall()
        role = f"celery-{pool}"
        prefetch = next(m for p, _, m in CELERY_POOLS if p == pool)
        app = _celery_app(f"redis://127.0.0.1:{server.port}/0", prefetch)
        node = f"{role}@bench"

        def answers(_port: int) -> bool:
            return bool(app.control.ping(destination=[node], timeout=0.5))

        title = f"{pool} pool" + (f", {concurrency} threads" if pool == "threads" else "")
        worker, files = _start_child(ctx, role, server.port, jobs, probe=answers)
        marker = files / "marker"
        noop_task, marker_task = app.tasks["bench.noop"], app.tasks["bench.marker"]
        with ctx.measure(server.pid) as push:
            for n in range(jobs):
                noop_task.delay(n)
        marker_task.delay(str(marker))
        s0, w0, t0 = ctx.cpu_ticks(server.pid), _tree_ticks(worker.pid), time.monotonic()
        reply = app.control.add_consumer(QUEUE, reply=True, destination=[node], timeout=5)
        if not reply:
            return self._failed("Celery", title, jobs, "add_consumer got no reply")
        deadline = t0 + RUN_TIMEOUT_S
        while not (marker.exists() and conn.llen(QUEUE) == 0 and conn.hlen("unacked") == 0):
            if not worker.alive() or time.monotonic() > deadline:
                return self._failed("Celery", title, jobs, "worker died or timed out:\n"
                                    + worker.log_tail())
            time.sleep(POLL_S)
        t1 = time.monotonic()
        s1, w1 = ctx.cpu_ticks(server.pid), _tree_ticks(worker.pid)
        row = self._row("Celery", title, jobs, push.wall_s, push.cpu_ticks, t1 - t0, s1 - s0,
                        w1 - w0, ["+1 marker task; done = marker ran, queue and unacked empty"])
        ctx.log(f"  {role}: push {row['push_jobs_per_s']:,.0f}/s, run "
                f"{row['run_jobs_per_s']:,.0f} jobs/s")
        ctx.stop(worker)
        app.close()
        conn.close()
        return row


register(WorkersSuite())
