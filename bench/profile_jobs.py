"""Profile the job lifecycle in-process: `python -m bench.profile_jobs [JOBS]`.

Two RespProtocols with fake transports (no sockets) on a real event loop, a real WAL in a
temporary directory under `appendfsync everysec`, driven the way the jobs-lifecycle clients
drive the server: a producer sends 50 JOB.PUSH per read, a consumer sends the acks for what it
holds together with `JOB.FETCH COUNT 50` in one read. Prints the CPU time per job (push, fetch
and ack: best of a few rounds), then a cProfile of one round. What this leaves out, next to
the server CPU per job that `make bench` measures, is the kernel, uvloop's transports and the
WAL's write system calls. Runs under `valgrind --tool=callgrind` as well (instruction counts
do not depend on what else the machine is doing): pass `--rounds 1 --no-profile`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from typing import Any

import hiredis
import uvloop

from bench.profile_hotpath import NullTransport, request
from jobcached.clock import SystemClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import load_all
from jobcached.config import Config
from jobcached.jobs.engine import JobEngine
from jobcached.jobs.records import decode_record
from jobcached.persistence.durability import Durability
from jobcached.persistence.wal import Wal
from jobcached.server.connection import RespProtocol
from jobcached.server.state import ServerState

BATCH = 50
PAYLOAD = b"x" * 100


class CaptureTransport(NullTransport):
    """Keeps what the server writes, for the client side to parse."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader()

    def write(self, data: bytes) -> None:
        self.reader.feed(data)

    def replies(self) -> list[Any]:
        out = []
        while (reply := self.reader.gets()) is not False:
            out.append(reply)
        return out


def connect(state: ServerState) -> tuple[RespProtocol, CaptureTransport]:
    protocol, transport = RespProtocol(state, execute), CaptureTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def lifecycle(state: ServerState, jobs: int) -> None:
    producer, produced = connect(state)
    consumer, consumed = connect(state)
    pushes = request(b"JOB.PUSH", b"bench", PAYLOAD) * BATCH
    fetch = request(b"JOB.FETCH", b"COUNT", b"%d" % BATCH, b"QUEUES", b"bench")
    held: list[tuple[bytes, bytes]] = []
    done = 0
    while done < jobs:
        producer.data_received(pushes)
        await asyncio.sleep(0)  # the loop turn that writes the batch and releases the replies
        assert len(produced.replies()) == BATCH
        consumer.data_received(b"".join([*(request(b"JOB.ACK", i, t) for i, t in held), fetch]))
        await asyncio.sleep(0)
        *acks, fetched = consumed.replies()
        assert acks == [b"OK"] * len(held), acks[:3]
        done += len(held)
        held = [(flat[1], flat[flat.index(b"token") + 1]) for flat in fetched]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("jobs", type=int, nargs="?", default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    load_all()
    uvloop.install()

    async def run() -> None:
        best = float("inf")
        for _ in range(args.rounds):
            best = min(best, await one_round(args.jobs, profile=False))
        print(f"push + fetch + ack: {best / args.jobs * 1e6:.2f} µs CPU per job in-process "
              f"(best of {args.rounds}, {args.jobs:,} jobs)")
        if not args.no_profile:
            await one_round(args.jobs, profile=True)

    asyncio.run(run())


async def one_round(jobs: int, *, profile: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        state = ServerState(Config(), SystemClock())
        wal = Wal(tmp)
        engine = JobEngine(state.clock)
        engine.replay(decode_record(b) for b in wal.replay())
        wal.open_for_append()
        durability = Durability(wal, "everysec", asyncio.get_running_loop())
        engine.sink = state.effects.job
        state.jobs, state.effects.durability = engine, durability
        profiler = cProfile.Profile() if profile else None
        started = time.process_time()
        if profiler:
            profiler.enable()
        await lifecycle(state, jobs)
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        used = time.process_time() - started
        await durability.drain()
        durability.close()
        return used


if __name__ == "__main__":
    main()
