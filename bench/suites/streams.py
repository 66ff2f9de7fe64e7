"""Streams suites: XADD, XREADGROUP and XACK per entry (`cache-streams`), and the RSS of a
stream of small entries (`cache-stream-memory`), jobcached vs redis-server.

redis-benchmark has no built-in stream tests, so each row runs a custom command line. The three
rows run in this order on a fresh server, so each finds the state it needs:

  XADD        `XADD bench:add * f1 <10 bytes> f2 <10 bytes>`: one new entry per request (the
              issue's entry shape: 2 fields of 10 bytes);
  XREADGROUP  `XREADGROUP GROUP g c COUNT 1 STREAMS bench:grp >` against a stream prefilled
              with REQUESTS entries `1-0 .. REQUESTS-0`: one entry delivered (and added to the
              PEL) per request;
  XACK        `XACK bench:grp g <random id>` with `-r REQUESTS`: acknowledges a pending entry
              (a random draw may repeat, so some requests find nothing to ack, on both servers).

CPU per request is the server's CPU per entry. Pipelines 1 and 16, 50 clients, one run per
server (the rows change state, so they cannot be repeated on the same data).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import redis

from bench.context import Context, Server
from bench.redisbench import (
    COMPARISON_COLUMNS,
    WARMUP_REQUESTS,
    _progress_line,
    comparison_row,
    run_test,
)
from bench.suite import Column, Row, Suite, register

PREFILL_BATCH = 1000  # XADDs per write while prefilling
FIELD_VALUE = "0123456789"  # 10 bytes, as in the memory target


def prefill(port: int, key: str, entries: int) -> None:
    """XADD key 1-0 .. entries-0 (pipelined in batches) and XGROUP CREATE key g 0."""
    client = redis.Redis(port=port)
    try:
        for start in range(1, entries + 1, PREFILL_BATCH):
            pipe = client.pipeline(transaction=False)
            for n in range(start, min(entries + 1, start + PREFILL_BATCH)):
                pipe.xadd(key, {"f1": FIELD_VALUE, "f2": FIELD_VALUE}, id=f"{n}-0")
            pipe.execute()
        client.xgroup_create(key, "g", id="0")
    finally:
        client.close()


class StreamsSuite(Suite):
    name = "cache-streams"
    description = ("XADD, XREADGROUP (one entry each) and XACK per entry under redis-benchmark "
                   "custom commands, 50 clients, pipelines 1 and 16.")
    columns = COMPARISON_COLUMNS
    required_binaries = ("redis-server", "redis-benchmark")
    clients = 50
    pipelines = (1, 16)

    def parameters(self, quick: bool) -> dict[str, Any]:
        return {"requests": 50_000 if quick else 200_000, "clients": self.clients,
                "pipelines": list(self.pipelines), "field_bytes": len(FIELD_VALUE),
                "command": "redis-benchmark -n REQUESTS -c CLIENTS -P PIPELINE --csv <command>"}

    @staticmethod
    def commands(requests: int) -> list[tuple[str, list[str]]]:
        return [
            ("xadd", ["XADD", "bench:add", "*", "f1", FIELD_VALUE, "f2", FIELD_VALUE]),
            ("xreadgroup", ["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS",
                            "bench:grp", ">"]),
            ("xack", ["-r", str(requests), "XACK", "bench:grp", "g", "__rand_int__"]),
        ]

    def run(self, ctx: Context) -> list[Row]:
        requests = self.parameters(ctx.quick)["requests"]
        rows: list[Row] = []
        for pipeline in self.pipelines:
            servers: list[Server] = [ctx.start_jobcached(), ctx.start_redis()]
            for server in servers:
                run_test(ctx, server, "ping_mbulk", requests=WARMUP_REQUESTS,
                         clients=self.clients, pipeline=1)
                prefill(server.port, "bench:grp", requests)
            for test, command in self.commands(requests):
                started = time.monotonic()
                jc, redis = (run_test(ctx, server, test, requests=requests,
                                      clients=self.clients, pipeline=pipeline,
                                      command=tuple(command))
                             for server in servers)
                row = comparison_row(test, pipeline, jc, redis)
                rows.append(row)
                ctx.log(_progress_line(row, time.monotonic() - started))
            for server in servers:
                ctx.stop(server)
        return rows


register(StreamsSuite())


def fill_stream(port: int, key: bytes, entries: int) -> None:
    """XADD key 1-1 .. entries-1 with the two 10-byte fields, pipelined over a raw socket."""
    value = FIELD_VALUE.encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        def drain() -> None:
            replies = 0
            while replies < entries:  # each reply is a bulk string: two CRLFs
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("server closed the connection while filling")
                replies += chunk.count(b"\r\n") // 2

        reader = threading.Thread(target=drain)
        reader.start()
        for start in range(1, entries + 1, PREFILL_BATCH):
            batch = []
            for n in range(start, min(entries + 1, start + PREFILL_BATCH)):
                sid = b"%d-1" % n
                batch.append(b"*7\r\n$4\r\nXADD\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
                             b"$2\r\nf1\r\n$10\r\n%b\r\n$2\r\nf2\r\n$10\r\n%b\r\n"
                             % (len(key), key, len(sid), sid, value, value))
            sock.sendall(b"".join(batch))
        reader.join()


class StreamMemorySuite(Suite):
    name = "cache-stream-memory"
    description = ("RSS of each server holding one stream of N entries of 2 fields x 10 bytes "
                   "(pipelined XADDs); target: jobcached at most 2.5x redis-server for "
                   "1,000,000 entries.")
    columns = (
        Column("server", "Server"), Column("entries", "Entries", "int"),
        Column("rss_before", "RSS empty", "bytes"), Column("rss_after", "RSS full", "bytes"),
        Column("bytes_per_entry", "Bytes/entry (growth)", "int"),
        Column("ratio", "RSS ratio vs redis", "ratio"),
    )
    required_binaries = ("redis-server",)

    def parameters(self, quick: bool) -> dict[str, Any]:
        return {"entries": 200_000 if quick else 1_000_000, "fields": 2,
                "field_bytes": len(FIELD_VALUE)}

    def run(self, ctx: Context) -> list[Row]:
        entries = self.parameters(ctx.quick)["entries"]
        rows: list[Row] = []
        for name, start in (("redis-server", ctx.start_redis), ("jobcached", ctx.start_jobcached)):
            server: Server = start()
            before = ctx.rss_bytes(server.pid)
            fill_stream(server.port, b"bench:mem", entries)
            after = ctx.rss_bytes(server.pid)
            rows.append({"server": name, "entries": entries, "rss_before": before,
                         "rss_after": after, "bytes_per_entry": (after - before) // entries})
            ctx.stop(server)
        redis_rss = rows[0]["rss_after"]
        for row in rows:
            row["ratio"] = row["rss_after"] / redis_rss if redis_rss else None
        return rows


register(StreamMemorySuite())
