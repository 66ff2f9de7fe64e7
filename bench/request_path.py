"""The compiled request codec against the pure-Python one, in process, in the same run:
`python -m bench.request_path`.

Why in process and interleaved: the machine is shared and timings move by 10-50% between runs,
so the two codecs are measured round by round, alternately, best of the rounds. Two views:
`codec` is the codec alone (feed a read, take every command out, encode a reply per command),
`server` is the whole request path of `bench.profile_hotpath` (RespProtocol.data_received with
a fake transport: framing, dispatch, the handler, the reply), with the connection's codec
swapped. Both at -P 16 (16 commands per read) and -P 1, for SET and GET.

`--callgrind` counts instructions instead (the same on every run): one run per codec under
`valgrind --tool=callgrind`, which dumps its counters at each `os.getppid()` call, so each case
is counted alone, after a warm-up, without the interpreter's start-up.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.profile_hotpath import NullTransport, request
from jobcached.clock import SystemClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import load_all
from jobcached.config import Config
from jobcached.net import resp
from jobcached.net.replies import OK
from jobcached.server import connection
from jobcached.server.connection import RespProtocol
from jobcached.server.state import ServerState

COMMANDS = {
    "set": (request(b"SET", b"key:000000000042", b"xxx"), OK),
    "get": (request(b"GET", b"key:000000000042"), b"xxx"),
}
PIPELINES = (16, 1)
COMMANDS_PER_ROUND = 80_000


def codecs() -> dict[str, Any]:
    from jobcached.net import _speedups  # the compiled codec: measured only when it is built

    return {"python": resp, "compiled": _speedups}


def codec_loop(codec: Any, data: bytes, reply: object, reads: int) -> Callable[[], None]:
    """The codec alone: per read, feed it, take every command out, encode one reply each."""
    parser = codec.RequestParser()
    encode = codec.encode

    def run() -> None:
        feed = parser.feed
        gets = parser.gets
        for _ in range(reads):
            feed(data)
            while gets() is not None:
                encode(reply, False)

    return run


def server_loop(codec: Any, data: bytes, reads: int) -> Callable[[], None]:
    """The whole in-process request path with the connection's codec set to `codec`."""
    connection.RequestParser = codec.RequestParser  # type: ignore[misc]
    connection.encode = codec.encode
    protocol = RespProtocol(ServerState(Config(), SystemClock()), execute)
    protocol.connection_made(NullTransport())  # type: ignore[arg-type]
    data_received = protocol.data_received

    def run() -> None:
        for _ in range(reads):
            data_received(data)

    return run


def measure(rounds: int) -> None:
    load_all()
    loops: dict[tuple[str, str, int, str], tuple[Callable[[], None], int]] = {}
    for name, codec in codecs().items():
        for command, (one, reply) in COMMANDS.items():
            for depth in PIPELINES:
                reads = COMMANDS_PER_ROUND // depth
                loops[("codec", command, depth, name)] = (
                    codec_loop(codec, one * depth, reply, reads), reads * depth)
                loops[("server", command, depth, name)] = (
                    server_loop(codec, one * depth, reads), reads * depth)
    best = dict.fromkeys(loops, float("inf"))
    for _ in range(rounds):  # interleaved: every case once per round
        for key, (loop, commands) in loops.items():
            started = time.process_time()
            loop()
            best[key] = min(best[key], (time.process_time() - started) / commands * 1e6)
    print(f"µs CPU per command, in process, best of {rounds} interleaved rounds")
    print(f"{'view':<7}{'command':<8}{'pipeline':>9}{'python':>9}{'compiled':>10}{'ratio':>7}")
    for view in ("codec", "server"):
        for command in COMMANDS:
            for depth in PIPELINES:
                pure = best[(view, command, depth, "python")]
                compiled = best[(view, command, depth, "compiled")]
                print(f"{view:<7}{command.upper():<8}{'-P ' + str(depth):>9}{pure:>9.3f}"
                      f"{compiled:>10.3f}{compiled / pure:>7.2f}")


def run_marked(codec_name: str, reads: int) -> None:
    """Every server-view case of one codec, each between two `os.getppid()` calls: the
    markers `--callgrind` dumps its counters at (after a warm-up loop of the same size)."""
    load_all()
    codec = codecs()[codec_name]
    for one, _ in COMMANDS.values():
        for depth in PIPELINES:
            loop = server_loop(codec, one * depth, reads // depth)
            loop()  # warm-up: specialized bytecode, caches, the keyspace entry
            os.getppid()
            loop()
            os.getppid()


def callgrind_intervals(codec_name: str, reads: int) -> list[int]:
    """Instructions between the markers of `run_marked`, one count per interval."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             "--dump-before=os_getppid", sys.executable, "-m", "bench.request_path",
             "--marked", codec_name, str(reads)],
            check=True, capture_output=True)
        dumps = sorted(Path(tmp).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        counts = []
        for dump in dumps:
            summary = re.search(rb"^summary: (\d+)", dump.read_bytes(), re.MULTILINE)
            assert summary is not None, f"no summary line in {dump}"
            counts.append(int(summary.group(1)))
        return counts


def callgrind(reads: int) -> None:
    """Instructions per command of every case, from one valgrind run per codec."""
    cases = [(command, depth) for command in COMMANDS for depth in PIPELINES]
    per_command = {}
    for name in ("python", "compiled"):
        # dumps: start-up and warm-up, then (measured loop, next warm-up) per case
        counts = callgrind_intervals(name, reads)
        for i, case in enumerate(cases):
            per_command[(name, *case)] = counts[1 + 2 * i] / (reads // case[1] * case[1])
    print(f"instructions per command (callgrind, server view, {reads} commands per case "
          f"after as many to warm up)")
    print(f"{'command':<8}{'pipeline':>9}{'python':>10}{'compiled':>10}{'ratio':>7}")
    for command, depth in cases:
        pure = per_command[("python", command, depth)]
        compiled = per_command[("compiled", command, depth)]
        print(f"{command.upper():<8}{'-P ' + str(depth):>9}{pure:>10.0f}{compiled:>10.0f}"
              f"{compiled / pure:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--reads", type=int, default=3200,
                        help="commands per case under --callgrind")
    parser.add_argument("--marked", nargs=2, metavar=("CODEC", "COMMANDS"),
                        help="what --callgrind runs under valgrind")
    args = parser.parse_args()
    if args.marked:
        run_marked(args.marked[0], int(args.marked[1]))
    elif args.callgrind:
        callgrind(args.reads)
    else:
        measure(args.rounds)


if __name__ == "__main__":
    main()
