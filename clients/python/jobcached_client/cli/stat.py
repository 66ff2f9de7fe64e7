"""`jobcached-cli --stat`: one line of figures per interval, like `redis-cli --stat`.

    ------- data ------ ------------------ load ------------------- ------------- jobs ---
    keys       mem      clients blocked requests            ops/s    waiting  pending  ...
    12         1.20M    3       1       5412 (+301)         301      7        40       ...

Job columns, summed over all queues: `waiting` jobs are queued, ready for a worker now (the
backlog workers can shrink); `pending` ones are not due yet (delayed, or waiting for parents);
then `running`, `retrying` (waiting out a backoff) and `dead`. Each job counts in one column
only. The busiest queues follow as `name=waiting/running` (idle queues are left out).

`requests` and `ops/s` count the requests of other clients, as redis-cli's do in effect:
the server counts this tool's own INFO, DBSIZE, QUEUE.LIST and QUEUE.STATS too, so they are
subtracted. Each line costs two pipelined round trips: INFO, DBSIZE and QUEUE.LIST, then
QUEUE.STATS for every queue.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from jobcached_client.cli.resp import Connection, Kind, Reply

#: Lines between two headers, as redis-cli.
HEADER_EVERY_LINES = 20
#: Queues named at the end of a line (the busiest first).
QUEUES_SHOWN = 4

#: Job states shown as columns, in order (QUEUE.STATS fields); `waiting` is "queued".
JOB_COLUMNS = (("waiting", "queued"), ("pending", "pending"), ("running", "running"),
               ("retrying", "retrying"), ("dead", "dead"))

HEADER = ("------- data ------ ------------------ load ------------------- "
          "-------------------------- jobs ---------------------------\n"
          "keys       mem      clients blocked requests            ops/s    "
          + "".join(f"{title:<9}" for title, _ in JOB_COLUMNS) + "queues\n")


def human_bytes(n: int) -> str:
    """redis-cli's bytesToHuman: 1023B, 1.50K, 2.00M, ..."""
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n}B"


def info_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key] = value
    return fields


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def stats_map(reply: Reply) -> dict[str, int]:
    if reply.kind not in (Kind.MAP, Kind.ARRAY):
        return {}
    return {k.text(): int(v.value) for k, v in reply.pairs() if v.kind is Kind.INTEGER}


class Stat:
    """Turns successive samples into lines; `sample()` does the I/O."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.last_requests: int | None = None
        self.last_time = 0.0

    def sample(self) -> str:
        # The server counts a command as it dispatches it, so INFO's figure includes every
        # command this connection sent before it, and INFO itself.
        own = self.conn.commands_sent + 1
        info, dbsize, queue_list = self.conn.call_many(
            [["INFO"], ["DBSIZE"], ["QUEUE.LIST"]])
        for reply in (info, dbsize):
            if reply.is_error:
                raise ConnectionError(reply.text())
        names = [] if queue_list.is_error else [r.text() for r in queue_list.value or []]
        stats = self.conn.call_many([["QUEUE.STATS", name] for name in names])
        return self.line(info_fields(info.text()), int(dbsize.value),
                         {name: stats_map(s) for name, s in zip(names, stats, strict=True)},
                         time.monotonic(), own)

    def line(self, info: dict[str, str], keys: int, queues: dict[str, dict[str, int]],
             now: float, own_requests: int) -> str:
        """One line from a sample; `own_requests` of the server's count were this tool's."""
        requests = max(0, _int(info.get("total_commands_processed")) - own_requests)
        delta = 0 if self.last_requests is None else requests - self.last_requests
        elapsed = now - self.last_time
        ops = round(delta / elapsed) if self.last_requests is not None and elapsed > 0 else 0
        self.last_requests, self.last_time = requests, now

        def total(field: str) -> int:
            return sum(q.get(field, 0) for q in queues.values())

        def waiting_in(q: dict[str, int]) -> int:
            return q.get("queued", 0)

        busy = [(name, q) for name, q in queues.items() if waiting_in(q) or q.get("running")]
        busiest = sorted(busy, key=lambda item: -(waiting_in(item[1]) + item[1].get("running", 0)))
        shown = " ".join(f"{name}={waiting_in(q)}/{q.get('running', 0)}"
                         for name, q in busiest[:QUEUES_SHOWN])
        if len(busiest) > QUEUES_SHOWN:
            shown += f" (+{len(busiest) - QUEUES_SHOWN})"
        return (f"{keys:<11}{human_bytes(_int(info.get('used_memory'))):<8} "
                f"{_int(info.get('connected_clients')):<8}"
                f"{_int(info.get('blocked_clients')):<8}"
                f"{f'{requests} (+{delta})':<20}{ops:<9}"
                + "".join(f"{total(state):<9}" for _, state in JOB_COLUMNS)
                + f"{shown}\n")


def run_stat(conn: Connection, interval: float, out: TextIO = sys.stdout,
             lines: int | None = None) -> None:
    """Print a line every `interval` seconds (forever, or `lines` lines)."""
    stat = Stat(conn)
    printed = 0
    while lines is None or printed < lines:
        if printed % HEADER_EVERY_LINES == 0:
            out.write(HEADER)
        out.write(stat.sample())
        out.flush()
        printed += 1
        if lines is None or printed < lines:
            time.sleep(interval)
