"""Count the Python bytecodes the request path executes per command: `python -m bench.bytecodes`.

Why: timings on this shared 2-core machine move by 10-50% between runs, so a change of a few
percent in the request path cannot be seen in them. The number of bytecodes CPython executes
for one command, through the real protocol, parser and dispatcher (a fake transport, as in
profile_hotpath.py), does not depend on the machine: comparing it before and after a change
shows what the change added or took away. It leaves out C code (dict lookups, the parser's
C helpers), so it complements, not replaces, `profile_hotpath` and `make bench`.

Prints, for each command, the bytecodes per command at -P 16 and -P 1.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

from bench.profile_hotpath import NullTransport
from jobcached.clock import SystemClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import load_all
from jobcached.config import Config
from jobcached.server.connection import RespProtocol
from jobcached.server.state import ServerState

#: name -> one command, as a client sends it
CASES = {
    "SET": (b"SET", b"key:1", b"xxx"),
    "GET": (b"GET", b"key:1"),
    "INCR": (b"INCR", b"counter"),
    "HSET": (b"HSET", b"hash", b"field", b"value"),
    "LPUSH": (b"LPUSH", b"list", b"value"),
}
WARM_UP = 3


def frame(argv: tuple[bytes, ...]) -> bytes:
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in argv)


def count_bytecodes(protocol: RespProtocol, data: bytes) -> int:
    """Bytecodes executed while the protocol handles `data` (after warming the path up)."""
    for _ in range(WARM_UP):
        protocol.data_received(data)
    count = 0

    def tracer(frame_: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        frame_.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        protocol.data_received(data)
    finally:
        sys.settrace(None)
    return count


def main() -> None:
    load_all()
    protocol = RespProtocol(ServerState(Config(), SystemClock()), execute)
    protocol.connection_made(NullTransport())  # type: ignore[arg-type]
    for name, argv in CASES.items():
        one = frame(argv)
        per_command = [count_bytecodes(protocol, one * depth) / depth for depth in (16, 1)]
        print(f"{name:6} {per_command[0]:6.0f} bytecodes/command at -P 16, "
              f"{per_command[1]:6.0f} at -P 1")


if __name__ == "__main__":
    main()
