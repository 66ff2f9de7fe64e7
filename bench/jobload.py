"""Load generators for the job suites: jobcached (RESP) and beanstalkd, over raw sockets.

No client library is involved on either side, so both servers get the same client overhead:
each side is a small asyncio (uvloop) connection class with a buffered reply parser (hiredis for
RESP, a few lines for beanstalkd's text protocol).

A run is `run_load(ctx, server, plan)`: `plan.processes` worker processes (fork) each open
`plan.producers` producer and `plan.consumers` consumer connections, then wait on a barrier. The
parent starts the server CPU measurement, releases the barrier and waits until the consumers
have acknowledged `plan.jobs` jobs in total (a shared counter), then stops the measurement. So
the measured stretch is exactly "first push sent → last ack answered", with connections already
open. With no consumers, it is "first push sent → last push answered".

What each connection does, on both servers alike:

- **producer**: sends `plan.push_batch` pushes in one write (`JOB.PUSH q payload` /
  `put 0 0 60 100`), reads as many replies, repeats until its share is pushed.
- **consumer**: fetches (`JOB.FETCH COUNT n BLOCK 1000 QUEUES q`, or beanstalkd's
  `reserve-with-timeout 1`, which hands out one job), then sends the acks (`JOB.ACK id token` /
  `delete id`) for what it got *and the next fetch* in one write. So the consumer spends one
  round trip per fetch: per job with COUNT 1 or beanstalkd, per up to n jobs with COUNT n.

In the delay mode, pushes carry `DELAY ms` (`put 0 <s> ...` for beanstalkd, whole seconds) and
the payload carries the client's send time and the delay; consumers record
`lateness = receive time - (send time + delay)` per job, in ms, with `time.time()`.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import random
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

import hiredis

from bench.context import Context, Server

PAYLOAD_BYTES = 100
"""Size of every job payload."""
READ_SIZE = 1 << 18
"""Bytes per socket read."""
FETCH_BLOCK_MS = 1000
"""How long a consumer's fetch blocks (beanstalkd: reserve-with-timeout 1 s)."""
BEANSTALK_TTR_S = 60
"""beanstalkd time-to-run, as jobcached's default 60 s lease."""


class LoadError(Exception):
    """The server answered with an error or closed the connection."""


def resp_command(*args: bytes | str | int) -> bytes:
    """One RESP request (an array of bulk strings)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(raw), raw))
    return b"".join(parts)


class RespConn:
    """A RESP connection: write requests, read replies in order (errors raise LoadError)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = hiredis.Reader()

    @classmethod
    async def open(cls, port: int) -> RespConn:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def reply(self) -> Any:
        while True:
            value = self.parser.gets()
            if value is not False:
                if isinstance(value, hiredis.ReplyError):
                    raise LoadError(f"jobcached: {value}")
                return value
            data = await self.reader.read(READ_SIZE)
            if not data:
                raise LoadError("jobcached closed the connection")
            self.parser.feed(data)

    def close(self) -> None:
        self.writer.close()


class BeanstalkConn:
    """A beanstalkd connection: replies are (line, body), body only for RESERVED."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buf = bytearray()
        self.pos = 0

    @classmethod
    async def open(cls, port: int) -> BeanstalkConn:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def reply(self) -> tuple[bytes, bytes | None]:
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                line = bytes(self.buf[self.pos:end])
                if not line.startswith(b"RESERVED "):
                    self.pos = end + 2
                    return line, None
                size = int(line.rsplit(b" ", 1)[1])
                if len(self.buf) >= end + 2 + size + 2:
                    body = bytes(self.buf[end + 2:end + 2 + size])
                    self.pos = end + 2 + size + 2
                    return line, body
            del self.buf[:self.pos]
            self.pos = 0
            data = await self.reader.read(READ_SIZE)
            if not data:
                raise LoadError("beanstalkd closed the connection")
            self.buf += data

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True)
class Plan:
    """What the load generator does against one server (see the module docstring)."""

    kind: str
    """Which protocol to speak: `jobcached` or `beanstalkd`."""
    jobs: int
    processes: int = 2
    producers: int = 5
    """Producer connections per process."""
    consumers: int = 5
    """Consumer connections per process; 0 = push only (the run ends when all are pushed)."""
    push_batch: int = 50
    fetch_count: int = 1
    """JOB.FETCH COUNT (jobcached only; beanstalkd always reserves one job)."""
    queue: str = "bench"
    delay_ms: tuple[int, int] | None = None
    """Uniform random DELAY range in ms (beanstalkd: rounded to whole seconds); None = no delay."""
    timeout_s: float = 300.0
    """Give up (failed run) if the jobs are not all acknowledged within this."""


@dataclass
class LoadResult:
    """The outcome of one `run_load`."""

    ok: bool
    jobs: int = 0
    wall_s: float = 0.0
    jobs_per_s: float | None = None
    server_cpu_ticks: int = 0
    server_cpu_us_per_job: float | None = None
    server_cpu_us_per_job_clock: float | None = None
    client_cpu_us_per_job: float | None = None
    """CPU time of all load-generator processes during the run, per job."""
    push_rtt_ms: list[float] = field(default_factory=list, repr=False)
    lateness_ms: list[float] = field(default_factory=list, repr=False)
    error: str | None = None


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _payload(send_ms: float | None, delay_ms: int) -> bytes:
    head = b"" if send_ms is None else b"%.3f %d " % (send_ms, delay_ms)
    return head.ljust(PAYLOAD_BYTES, b"x")


def _lateness(payload: bytes, now_ms: float) -> float:
    send_ms, delay_ms = payload.split(b" ", 2)[:2]
    return now_ms - (float(send_ms) + int(delay_ms))


class _Shared:
    """The multiprocessing objects a worker process needs."""

    def __init__(self, plan: Plan) -> None:
        ctx = mp.get_context("fork")
        self.barrier = ctx.Barrier(plan.processes + 1)
        self.acked = ctx.Value("q", 0)
        self.done = ctx.Event()
        self.results = ctx.Queue()


async def _produce(plan: Plan, shared: _Shared, count: int, conn: Any, rtts: array) -> None:
    rng = random.Random()
    delay = plan.delay_ms
    queue = plan.queue.encode()
    while count > 0:
        batch = min(plan.push_batch, count)
        count -= batch
        now_ms = time.time() * 1000
        parts = []
        for _ in range(batch):
            delay_ms = rng.randint(*delay) if delay else 0
            if plan.kind == "jobcached":
                payload = _payload(now_ms if delay else None, delay_ms)
                if delay:
                    parts.append(resp_command(b"JOB.PUSH", queue, payload, b"DELAY", delay_ms))
                else:
                    parts.append(resp_command(b"JOB.PUSH", queue, payload))
            else:
                delay_s = round(delay_ms / 1000)
                payload = _payload(now_ms if delay else None, delay_s * 1000)
                parts.append(b"put 0 %d %d %d\r\n%b\r\n"
                             % (delay_s, BEANSTALK_TTR_S, len(payload), payload))
        conn.send(b"".join(parts))
        for _ in range(batch):
            reply = await conn.reply()
            if plan.kind == "beanstalkd" and not reply[0].startswith(b"INSERTED"):
                raise LoadError(f"beanstalkd put: {reply[0]!r}")
        rtts.append(time.time() * 1000 - now_ms)
        if not plan.consumers:
            _count_done(shared, plan, batch)


def _count_done(shared: _Shared, plan: Plan, n: int) -> None:
    if n:
        with shared.acked.get_lock():
            shared.acked.value += n
            if shared.acked.value >= plan.jobs:
                shared.done.set()


async def _consume_jobcached(plan: Plan, shared: _Shared, conn: RespConn,
                             lateness: array | None) -> None:
    fetch = resp_command(b"JOB.FETCH", b"COUNT", plan.fetch_count, b"BLOCK", FETCH_BLOCK_MS,
                         b"QUEUES", plan.queue)
    held: list[tuple[bytes, bytes]] = []
    while shared.acked.value < plan.jobs:
        conn.send(b"".join([*(resp_command(b"JOB.ACK", i, t) for i, t in held), fetch]))
        for _ in held:
            await conn.reply()
        _count_done(shared, plan, len(held))
        held = []
        jobs = await conn.reply()
        now_ms = time.time() * 1000
        for flat in jobs:
            job = dict(zip(flat[::2], flat[1::2], strict=True))
            held.append((job[b"id"], job[b"token"]))
            if lateness is not None:
                lateness.append(_lateness(job[b"payload"], now_ms))


async def _consume_beanstalkd(plan: Plan, shared: _Shared, conn: BeanstalkConn,
                              lateness: array | None) -> None:
    reserve = b"reserve-with-timeout %d\r\n" % (FETCH_BLOCK_MS // 1000)
    held: bytes | None = None
    while shared.acked.value < plan.jobs:
        conn.send((b"delete %b\r\n" % held if held else b"") + reserve)
        if held:
            line, _ = await conn.reply()
            if line != b"DELETED":
                raise LoadError(f"beanstalkd delete: {line!r}")
            _count_done(shared, plan, 1)
            held = None
        line, body = await conn.reply()
        if line.startswith(b"RESERVED "):
            held = line.split(b" ")[1]
            if lateness is not None and body is not None:
                lateness.append(_lateness(body, time.time() * 1000))
        elif line not in (b"TIMED_OUT", b"DEADLINE_SOON"):
            raise LoadError(f"beanstalkd reserve: {line!r}")


async def _worker_main(plan: Plan, port: int, index: int, shared: _Shared) -> dict[str, Any]:
    conn_class = RespConn if plan.kind == "jobcached" else BeanstalkConn
    producers = [await conn_class.open(port) for _ in range(plan.producers)]
    consumers = [await conn_class.open(port) for _ in range(plan.consumers)]
    shares = _shares(plan.jobs, plan.processes * plan.producers)[index * plan.producers:]
    rtts: array = array("d")
    lateness = array("d") if plan.delay_ms else None
    consume = _consume_jobcached if plan.kind == "jobcached" else _consume_beanstalkd
    shared.barrier.wait(timeout=60)  # blocks the loop on purpose: nothing else runs yet
    cpu_start = time.process_time()
    tasks = [_produce(plan, shared, shares[i], c, rtts) for i, c in enumerate(producers)]
    tasks += [consume(plan, shared, c, lateness) for c in consumers]  # type: ignore[arg-type]
    await asyncio.gather(*tasks)
    cpu_s = time.process_time() - cpu_start
    for conn in producers + consumers:
        conn.close()
    return {"cpu_s": cpu_s, "rtts": rtts.tolist(),
            "lateness": lateness.tolist() if lateness is not None else []}


def _worker(plan: Plan, port: int, index: int, shared: _Shared) -> None:
    try:
        import uvloop
        result = uvloop.run(_worker_main(plan, port, index, shared))
    except BaseException as exc:  # report anything, then let the parent decide
        shared.results.put({"error": f"{type(exc).__name__}: {exc}"[:200]})
        shared.done.set()
        return
    shared.results.put(result)


def run_load(ctx: Context, server: Server, plan: Plan) -> LoadResult:
    """Drive `server` with `plan`; server CPU and wall time cover first push to last ack."""
    shared = _Shared(plan)
    procs = [mp.get_context("fork").Process(target=_worker, args=(plan, server.port, i, shared),
                                            daemon=True)
             for i in range(plan.processes)]
    for proc in procs:
        proc.start()
    result = LoadResult(ok=False, jobs=plan.jobs)
    try:
        try:
            shared.barrier.wait(timeout=60)
        except Exception:
            result.error = "load generator did not start"
            return result
        with ctx.measure(server.pid) as used:
            finished = shared.done.wait(timeout=plan.timeout_s)
        outcomes = [shared.results.get(timeout=30 + FETCH_BLOCK_MS / 1000) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
    errors = [o["error"] for o in outcomes if "error" in o]
    if errors or not finished or not server.alive():
        result.error = (errors[0] if errors else "server exited" if not server.alive()
                        else f"timed out after {plan.timeout_s:.0f} s "
                             f"({shared.acked.value} of {plan.jobs} jobs acked)")
        return result
    result.ok = True
    result.wall_s = used.wall_s
    result.jobs_per_s = plan.jobs / used.wall_s
    result.server_cpu_ticks = used.cpu_ticks
    result.server_cpu_us_per_job = used.cpu_s / plan.jobs * 1e6
    if used.cpu_ns is not None:
        result.server_cpu_us_per_job_clock = used.cpu_ns / plan.jobs / 1e3
    result.client_cpu_us_per_job = sum(o["cpu_s"] for o in outcomes) / plan.jobs * 1e6
    result.push_rtt_ms = [x for o in outcomes for x in o["rtts"]]
    result.lateness_ms = [x for o in outcomes for x in o["lateness"]]
    return result


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of `values` (None if empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]
