"""The compiled request codec against the pure-Python one, in process, in the same run:
`python -m bench.request_path`.

Why in process and interleaved: the machine is shared and timings move by 10-50% between runs,
so the two codecs are measured round by round, alternately, best of the rounds. Two views:
`codec` is the codec alone (feed a read, take every command out, encode a reply per command),
`server` is the whole request path of `bench.profile_hotpath` (RespProtocol.data_received with
a fake transport: framing, dispatch, the handler, the reply), with the connection's codec
swapped. Both at -P 16 (16 commands per read) and -P 1, for SET and GET.

`--callgrind` counts instructions instead (the same on every run): it runs the server view of
one case under `valgrind --tool=callgrind` for two numbers of reads and prints the difference
per command, so start-up and warm-up cancel out.
"""

from __future__ import annotations

import argparse
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


def run_once(codec_name: str, command: str, depth: int, reads: int) -> None:
    """One server-view loop, nothing else: what `--callgrind` runs under valgrind."""
    load_all()
    one, _ = COMMANDS[command]
    loop = server_loop(codecs()[codec_name], one * depth, reads)
    loop()


def callgrind_instructions(codec_name: str, command: str, depth: int, reads: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             "-m", "bench.request_path", "--once", codec_name, command, str(depth), str(reads)],
            check=True, capture_output=True)
        summary = re.search(rb"^summary: (\d+)", out.read_bytes(), re.MULTILINE)
        assert summary is not None, "no summary line in the callgrind output"
        return int(summary.group(1))


def callgrind() -> None:
    print("instructions per command (callgrind, server view, difference of 2000 and 4000 "
          "commands)")
    print(f"{'command':<8}{'pipeline':>9}{'python':>10}{'compiled':>10}{'ratio':>7}")
    for command in COMMANDS:
        for depth in PIPELINES:
            counts = {}
            for name in ("python", "compiled"):
                low = callgrind_instructions(name, command, depth, 2000 // depth)
                high = callgrind_instructions(name, command, depth, 4000 // depth)
                counts[name] = (high - low) / 2000
            print(f"{command.upper():<8}{'-P ' + str(depth):>9}{counts['python']:>10.0f}"
                  f"{counts['compiled']:>10.0f}{counts['compiled'] / counts['python']:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--once", nargs=4, metavar=("CODEC", "COMMAND", "DEPTH", "READS"))
    args = parser.parse_args()
    if args.once:
        codec_name, command, depth, reads = args.once
        run_once(codec_name, command, int(depth), int(reads))
    elif args.callgrind:
        callgrind()
    else:
        measure(args.rounds)


if __name__ == "__main__":
    main()
