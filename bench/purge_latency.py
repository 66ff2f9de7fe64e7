"""How long QUEUE.PURGE holds the event loop: PING latency during a big purge, and the cost of
purging a queue that does not exist while many jobs are in memory.

    .venv/bin/python -m bench.purge_latency                    # 1M-job purge, 200k for nosuch
    .venv/bin/python -m bench.purge_latency --jobs 200000 --nosuch-jobs 50000
    .venv/bin/python -m bench.purge_latency --source DIR       # the server from another tree

Two measurements, each on a fresh server (`--appendfsync everysec`, the default):

1. `QUEUE.PURGE nosuch` with `--nosuch-jobs` queued jobs in another queue: the median and max
   of `--nosuch-calls` calls, one at a time (round trip as the client sees it). Before the
   per-queue index this walked every job.
2. A purge of `--jobs` queued jobs: one connection sends QUEUE.PURGE; a second one sends PING
   after PING, each waiting for its PONG, until the purge replies. Reported: the purge's wall
   time, how many PINGs were answered meanwhile, and their p50 / p99 / max round trip. A purge
   that ran in one go would let exactly zero PINGs in and show one PING as long as the purge.

`--source DIR` runs `python -m jobcached` from DIR (e.g. an exported older commit) with this
interpreter, to measure before and after on the same machine.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import sys
import time
from pathlib import Path

from bench.context import ROOT, Context, free_port

#: JOB.PUSH commands per pipelined write while filling the server.
FILL_BATCH = 10_000
#: Idle PINGs timed first, as the baseline the purge's PINGs compare with.
BASELINE_PINGS = 2_000


def start(ctx: Context, source: Path) -> int:
    port = free_port()
    data_dir = ctx.workdir / f"data-{port}"
    data_dir.mkdir()
    argv = [sys.executable, "-m", "jobcached", "serve", "--port", str(port), "--dir",
            str(data_dir), "--loglevel", "warning"]
    ctx.start_server("jobcached", argv, port, cwd=source, startup_timeout=60)
    return port


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_lines(sock: socket.socket, n: int) -> None:
    """Read until `n` CRLF-terminated lines have arrived (a JOB.PUSH reply is 2: `$26`, id)."""
    buf = b""
    while buf.count(b"\r\n") < n:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk


def fill(port: int, queue: str, jobs: int) -> None:
    """Push `jobs` small jobs into `queue`, pipelined (each reply is `$26` + id: 2 lines)."""
    sock = connect(port)
    command = f"*3\r\n$8\r\nJOB.PUSH\r\n${len(queue)}\r\n{queue}\r\n$16\r\n{'x' * 16}\r\n"
    done = 0
    while done < jobs:
        n = min(FILL_BATCH, jobs - done)
        sock.sendall(command.encode() * n)
        read_lines(sock, 2 * n)
        done += n
    sock.close()


def round_trip_ms(sock: socket.socket, request: bytes) -> float:
    started = time.perf_counter()
    sock.sendall(request)
    reply = b""
    while not reply.endswith(b"\r\n"):
        reply += sock.recv(4096)
    return (time.perf_counter() - started) * 1000


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def nosuch(ctx: Context, source: Path, jobs: int, calls: int) -> None:
    port = start(ctx, source)
    fill(port, "full", jobs)
    sock = connect(port)
    times = [round_trip_ms(sock, b"QUEUE.PURGE nosuch\r\n") for _ in range(calls)]
    print(f"QUEUE.PURGE nosuch with {jobs} jobs, {calls} calls: "
          f"median {statistics.median(times):.3f} ms, max {max(times):.3f} ms")


def big_purge(ctx: Context, source: Path, jobs: int) -> None:
    port = start(ctx, source)
    fill(port, "big", jobs)
    pinger, purger = connect(port), connect(port)
    idle = [round_trip_ms(pinger, b"PING\r\n") for _ in range(BASELINE_PINGS)]
    print(f"idle PING: p50 {percentile(idle, 50):.3f} ms, p99 {percentile(idle, 99):.3f} ms, "
          f"max {max(idle):.3f} ms")
    before = counters(pinger)
    started = time.perf_counter()
    purger.sendall(b"QUEUE.PURGE big\r\n")
    purger.setblocking(False)
    pings: list[float] = []
    reply = b""
    while not reply.endswith(b"\r\n"):
        pings.append(round_trip_ms(pinger, b"PING\r\n"))
        with contextlib.suppress(BlockingIOError):  # not done yet
            reply += purger.recv(64)
    purge_s = time.perf_counter() - started
    after = counters(pinger)
    print(f"QUEUE.PURGE of {jobs} jobs: reply {reply.strip().decode()}, {purge_s:.2f} s; "
          f"{len(pings)} PINGs answered meanwhile: p50 {percentile(pings, 50):.3f} ms, "
          f"p99 {percentile(pings, 99):.3f} ms, max {max(pings):.3f} ms")
    print("meanwhile, besides the purge: " + ", ".join(
        f"{name} +{after[name] - before[name]}" for name in sorted(before)))


def counters(sock: socket.socket) -> dict[str, int]:
    """Other work that pauses the loop and may land during the purge: WAL compactions (a fork
    and a snapshot) and full garbage collections."""
    sock.sendall(b"INFO everything\r\n")
    reply = b""
    while True:  # one bulk string: `$<length>` then the text
        reply += sock.recv(1 << 16)
        header, _, body = reply.partition(b"\r\n")
        if header and len(body) >= int(header[1:]) + 2:
            break
    fields = dict(line.split(":", 1) for line in body.decode().splitlines() if ":" in line)
    return {name: int(fields.get(name, 0)) for name in ("wal_compactions", "gc_full_collections")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs the big purge deletes")
    parser.add_argument("--nosuch-jobs", type=int, default=200_000,
                        help="jobs in memory while QUEUE.PURGE nosuch is timed")
    parser.add_argument("--nosuch-calls", type=int, default=200)
    parser.add_argument("--source", type=Path, default=ROOT,
                        help="the tree whose jobcached package runs (default: this one)")
    args = parser.parse_args()
    with Context(quick=False, log=lambda line: None) as ctx:
        nosuch(ctx, args.source, args.nosuch_jobs, args.nosuch_calls)
    with Context(quick=False, log=lambda line: None) as ctx:
        big_purge(ctx, args.source, args.jobs)


if __name__ == "__main__":
    main()
