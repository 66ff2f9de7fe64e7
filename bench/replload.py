"""Load and probes for the replication suite: bulk loading, a steady write load, lag probes.

Both servers are driven by the same code over raw sockets (hiredis parses the replies), so
neither gets a different client:

- `bulk_load`: the dataset of a full-sync measurement, as pipelined `MSET`s of 1,000 keys and
  pipelined `JOB.PUSH`es (jobcached only), a window of commands in flight at a time.
- `SteadyWriter`: a forked process with a few asyncio connections sending `SET`s with 32-byte
  values over a key space of 100,000 keys, either as fast as the server answers (to find its
  maximum) or at a fixed rate (every `TICK_S` each connection sends its share of the writes of
  that tick as one pipelined burst and reads the replies).
- `LagProbe`: while the load runs, in the parent: every `PROBE_INTERVAL_S` a `SET` of a probe
  key on the leader, then `GET`s of it on the follower until the value is there; the lag in
  ms is from sending the SET to seeing it on the follower (an upper bound: it includes the
  SET's own round trip and up to one GET's). Every `OFFSET_EVERY` probes, the leader's
  `master_repl_offset` and then the follower's `slave_repl_offset` (INFO replication): the
  lag in bytes of the stream.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import random
import socket
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import hiredis

from bench.jobload import RespConn, resp_command

#: Commands in flight at once during a bulk load.
WINDOW = 64
#: Keys per MSET of the bulk load.
MSET_KEYS = 1000
KEY_SPACE = 100_000
VALUE = b"v" * 32
#: The fixed-rate writer's tick (s): each connection sends one burst per tick.
TICK_S = 0.005
CONNECTIONS = 4
#: Pipelined SETs per round trip when the writer runs flat out.
FLAT_OUT_BATCH = 32
PROBE_INTERVAL_S = 0.01
OFFSET_EVERY = 5
#: A probe not seen on the follower within this (s) counts as this.
PROBE_TIMEOUT_S = 5.0


class Sync:
    """A blocking RESP connection for the parent's commands (INFO, probes, loading)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = hiredis.Reader()

    def call(self, *argv: bytes | str | int) -> Any:
        self.sock.sendall(resp_command(*argv))
        return self.read()

    def read(self) -> Any:
        while (reply := self.parser.gets()) is False:
            data = self.sock.recv(1 << 18)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.parser.feed(data)
        if isinstance(reply, hiredis.ReplyError):
            raise RuntimeError(f"server error: {reply}")
        return reply

    def pipeline(self, commands: Iterable[bytes]) -> int:
        """Send encoded commands with at most WINDOW unanswered; the number sent."""
        sent = answered = 0
        for data in commands:
            self.sock.sendall(data)
            sent += 1
            while sent - answered >= WINDOW:
                self.read()
                answered += 1
        while answered < sent:
            self.read()
            answered += 1
        return sent

    def info(self, section: str) -> dict[str, str]:
        text = self.call("INFO", section).decode()
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def close(self) -> None:
        self.sock.close()


def bulk_load(port: int, keys: int, jobs: int) -> None:
    """`keys` string keys (key:0 ...) and `jobs` queued jobs on the server at `port`."""
    def msets() -> Iterator[bytes]:
        for start in range(0, keys, MSET_KEYS):
            argv: list[bytes | str | int] = ["MSET"]
            for i in range(start, min(start + MSET_KEYS, keys)):
                argv += [f"key:{i}", VALUE]
            yield resp_command(*argv)

    conn = Sync(port)
    try:
        conn.pipeline(msets())
        conn.pipeline(resp_command("JOB.PUSH", "bench", VALUE) for _ in range(jobs))
    finally:
        conn.close()


# ------------------------------------------------------------------ the steady writer


async def _write(port: int, rate: float | None, stop: Any, counter: Any) -> None:
    conns = [await RespConn.open(port) for _ in range(CONNECTIONS)]
    rng = random.Random()

    def burst(n: int) -> bytes:
        return b"".join(resp_command("SET", f"w:{rng.randrange(KEY_SPACE)}", VALUE)
                        for _ in range(n))

    async def run(conn: RespConn) -> None:
        owed = 0.0
        per_tick = 0.0 if rate is None else rate * TICK_S / CONNECTIONS
        next_tick = time.perf_counter()
        while not stop.is_set():
            if rate is None:
                count = FLAT_OUT_BATCH
            else:
                owed += per_tick
                count = int(owed)
                owed -= count
            if count:
                conn.send(burst(count))
                for _ in range(count):
                    await conn.reply()
                with counter.get_lock():
                    counter.value += count
            if rate is not None:
                next_tick += TICK_S
                await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))

    await asyncio.gather(*(run(conn) for conn in conns))
    for conn in conns:
        conn.close()


def _writer_main(port: int, rate: float | None, stop: Any, counter: Any) -> None:
    asyncio.run(_write(port, rate, stop, counter))


class SteadyWriter:
    """`with SteadyWriter(port, rate):` writes while the block runs; `written` after."""

    def __init__(self, port: int, rate: float | None) -> None:
        ctx = mp.get_context("fork")
        self.stop = ctx.Event()
        self.counter = ctx.Value("q", 0)
        self.proc = ctx.Process(target=_writer_main, args=(port, rate, self.stop, self.counter),
                                daemon=True)
        self.started = self.ended = 0.0

    def __enter__(self) -> SteadyWriter:
        self.proc.start()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.proc.join(30)
        self.ended = time.perf_counter()
        if self.proc.is_alive():
            self.proc.kill()

    @property
    def written(self) -> int:
        return int(self.counter.value)

    @property
    def rate(self) -> float:
        return self.written / max(self.ended - self.started, 1e-9)


def max_write_rate(port: int, seconds: float) -> float:
    """SETs per second the server at `port` answers with the writer flat out."""
    with SteadyWriter(port, None) as writer:
        time.sleep(seconds)
    return writer.rate


# ------------------------------------------------------------------ lag


@dataclass
class Lag:
    ms: list[float] = field(default_factory=list)
    offset_bytes: list[int] = field(default_factory=list)
    timeouts: int = 0

    def percentiles(self) -> dict[str, float | None]:
        return {"lag_ms_p50": _pct(self.ms, 50), "lag_ms_p99": _pct(self.ms, 99),
                "lag_bytes_p50": _round(_pct(self.offset_bytes, 50)),
                "lag_bytes_p99": _round(_pct(self.offset_bytes, 99))}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value)


def _pct(values: list[float] | list[int], pct: int) -> float | None:
    if len(values) < 2:
        return float(values[0]) if values else None
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def measure_lag(leader_port: int, follower_port: int, seconds: float) -> Lag:
    """Probe the lag for `seconds` (see the module docstring)."""
    leader, follower = Sync(leader_port), Sync(follower_port)
    lag = Lag()
    try:
        end = time.perf_counter() + seconds
        probe = 0
        while (started := time.perf_counter()) < end:
            probe += 1
            value = str(probe).encode()
            leader.call("SET", "lag:probe", value)
            while follower.call("GET", "lag:probe") != value:
                if time.perf_counter() - started > PROBE_TIMEOUT_S:
                    lag.timeouts += 1
                    break
            lag.ms.append((time.perf_counter() - started) * 1000)
            if probe % OFFSET_EVERY == 0:
                sent = int(leader.info("replication")["master_repl_offset"])
                applied = int(follower.info("replication")["slave_repl_offset"])
                lag.offset_bytes.append(max(0, sent - applied))
            time.sleep(max(0.0, started + PROBE_INTERVAL_S - time.perf_counter()))
    finally:
        leader.close()
        follower.close()
    return lag


def full_sync_seconds(leader_port: int, follower_port: int, keys: int, jobs: int,
                      timeout_s: float) -> float:
    """Seconds from `REPLICAOF` sent to the follower until its link is up and it holds `keys`
    keys and `jobs` jobs (QUEUE.STATS of the load's queue; 0 for redis-server)."""
    conn = Sync(follower_port)
    started = time.perf_counter()
    conn.call("REPLICAOF", "127.0.0.1", leader_port)
    try:
        while time.perf_counter() - started < timeout_s:
            if (conn.info("replication").get("master_link_status") == "up"
                    and conn.call("DBSIZE") >= keys
                    and (not jobs or _queued(conn) >= jobs)):
                return time.perf_counter() - started
            time.sleep(0.02)
    finally:
        conn.close()
    raise TimeoutError(f"the follower was not synced within {timeout_s:.0f} s")


def _queued(conn: Sync) -> int:
    stats = conn.call("QUEUE.STATS", "bench")
    fields = dict(zip(stats[::2], stats[1::2], strict=True)) if isinstance(stats, list) \
        else stats
    return int(fields[b"queued"])
