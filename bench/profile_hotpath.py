"""Profile the request hot path in-process:
`python -m bench.profile_hotpath [set|get|ping|evalsha]`.

Feeds one RespProtocol (with a fake transport: no sockets, no event loop) the same bytes a
redis-benchmark client sends, 16 commands per read (-P 16) and one per read, and prints the CPU
time per command of each case, then a cProfile of the pipelined case. The difference between
these figures and the server CPU per request that `make bench` measures is the cost of the
event loop, the transport and the system calls.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
from typing import Any

from bench.suites.scripting import SCRIPT_SHA, THREE_COMMAND_SCRIPT
from jobcached.clock import SystemClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import load_all
from jobcached.config import Config
from jobcached.server.connection import RespProtocol
from jobcached.server.state import ServerState

ROUNDS = 7  # the best of several rounds: the machine is shared
BATCHES = 5000


class NullTransport:
    """Accepts writes and drops them; never pushes back."""

    def get_extra_info(self, name: str) -> Any:
        if name == "socket":
            return None  # no file descriptor to show in CLIENT LIST
        return ("127.0.0.1", 1) if name == "peername" else ("127.0.0.1", 7380)

    def write(self, data: bytes) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def request(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


REQUESTS = {
    "set": request(b"SET", b"key:__rand_int__", b"xxx"),
    "get": request(b"GET", b"key:__rand_int__"),
    "ping": request(b"PING"),
    # the cache-scripts row: a script of GET, INCR and EXPIRE (loaded first, see SETUP)
    "evalsha": request(b"EVALSHA", SCRIPT_SHA.encode(), b"1", b"counter:__rand_int__", b"60"),
}
#: what a kind needs sent once before it is measured
SETUP = {"evalsha": request(b"SCRIPT", b"LOAD", THREE_COMMAND_SCRIPT.encode())}


def best_us_per_command(protocol: RespProtocol, data: bytes, commands: int, batches: int) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.process_time()
        for _ in range(batches):
            protocol.data_received(data)
        best = min(best, time.process_time() - started)
    return best / (batches * commands) * 1e6


def main(kind: str) -> None:
    load_all()
    protocol = RespProtocol(ServerState(Config(), SystemClock()), execute)
    protocol.connection_made(NullTransport())  # type: ignore[arg-type]
    protocol.data_received(SETUP.get(kind, b""))
    one = REQUESTS[kind]
    p16 = best_us_per_command(protocol, one * 16, 16, BATCHES)
    p1 = best_us_per_command(protocol, one, 1, BATCHES * 4)
    print(f"{kind.upper()}: {p16:.2f} µs/command at -P 16, {p1:.2f} µs/command at -P 1 "
          f"(in-process, best of {ROUNDS})")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(BATCHES):
        protocol.data_received(one * 16)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "set")
