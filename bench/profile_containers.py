"""Time container writes in-process: `python -m bench.profile_containers`.

Runs HSET, LPUSH, SADD and ZADD, and the removals that undo them (HDEL, RPOP, SREM, ZREM),
through `dispatch.execute` on one session, with no socket and no parser, and prints the CPU
time per command of each, the best of several rounds. It isolates what the command handlers and the
cache's container operations cost (lookup, type check, mutation, memory accounting,
readiness), which the request-path suites measure only mixed with the network; compare two
commits with it on the same machine.
"""

from __future__ import annotations

import time
from typing import Any

from jobcached.clock import SystemClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import load_all
from jobcached.config import Config
from jobcached.server.session import Session
from jobcached.server.state import ServerState

ROUNDS = 7  # the best of several rounds: the machine is shared
COMMANDS_PER_ROUND = 20_000
KEYS = 1000  # containers written in turn
MEMBERS = 100  # distinct fields / members per container (20 are used per round)

#: name -> argv template; `%d` are the key and member numbers
CASES: dict[str, list[bytes]] = {
    "HSET": [b"HSET", b"h:%d", b"f%d", b"value"],
    "HDEL": [b"HDEL", b"h:%d", b"f%d"],
    "LPUSH": [b"LPUSH", b"l:%d", b"e%d"],
    "RPOP": [b"RPOP", b"l:%d"],
    "SADD": [b"SADD", b"s:%d", b"m%d"],
    "SREM": [b"SREM", b"s:%d", b"m%d"],
    "ZADD": [b"ZADD", b"z:%d", b"1", b"m%d"],
    "ZREM": [b"ZREM", b"z:%d", b"m%d"],
}


class NullConnection:
    """The session's connection: nothing is ever written or closed here."""

    def write(self, data: bytes) -> None:
        pass


def argvs(template: list[bytes]) -> list[list[bytes]]:
    out = []
    for i in range(COMMANDS_PER_ROUND):
        key, member = i % KEYS, (i // KEYS) % MEMBERS
        argv = [template[0], template[1] % key]
        argv += [part % member if b"%d" in part else part for part in template[2:]]
        out.append(argv)
    return out


def best_us(s: Session, name: str, setup: str) -> float:
    """CPU per `name` command, each round run after `setup`'s commands (untimed) brought the
    containers to the state it needs: empty for a write, filled for a removal."""
    work = argvs(CASES[name])
    setup_work = argvs(CASES[setup])
    best = float("inf")
    for _ in range(ROUNDS):
        for argv in setup_work:
            execute(s, argv)
        started = time.process_time()
        for argv in work:
            execute(s, argv)
        best = min(best, time.process_time() - started)
    return best / COMMANDS_PER_ROUND * 1e6


def main() -> None:
    load_all()
    server = ServerState(Config(), SystemClock())
    conn: Any = NullConnection()
    s = Session(server, conn, "bench", "", True)
    for write, removal in (("HSET", "HDEL"), ("LPUSH", "RPOP"), ("SADD", "SREM"),
                           ("ZADD", "ZREM")):
        print(f"{write}: {best_us(s, write, removal):.2f} µs/command   "
              f"{removal}: {best_us(s, removal, write):.2f} µs/command")


if __name__ == "__main__":
    main()
