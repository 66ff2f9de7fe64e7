"""Memory suite: the RSS of jobcached and redis-server holding the same keys.

Both servers get N keys `key:<n>` with 100-byte values, written by pipelined SETs over a raw
socket (no client library in the way), and the resident set size of each server process is read
from /proc before and after. The issue's target: jobcached's RSS at most 2x redis-server's for
1,000,000 keys.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from bench.context import Context, Server
from bench.suite import Column, Row, Suite, register

#: Commands per write: enough to keep the server busy, small enough to bound client memory.
PIPELINE = 1000
VALUE = b"v" * 100


def fill(port: int, keys: int) -> None:
    """SET key:0 .. key:<keys-1> with 100-byte values, pipelined; reads every reply."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        expected = keys * len(b"+OK\r\n")

        def drain() -> None:
            got = 0
            while got < expected:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("server closed the connection while filling")
                got += len(chunk)

        reader = threading.Thread(target=drain)
        reader.start()
        for start in range(0, keys, PIPELINE):
            batch = []
            for n in range(start, min(keys, start + PIPELINE)):
                key = b"key:%d" % n
                batch.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$100\r\n%b\r\n" % (len(key), key,
                                                                                 VALUE))
            sock.sendall(b"".join(batch))
        reader.join()


class MemorySuite(Suite):
    name = "cache-memory"
    description = ("RSS of each server holding N keys with 100-byte values (pipelined SETs); "
                   "target: jobcached at most 2x redis-server for 1,000,000 keys.")
    columns = (
        Column("server", "Server"), Column("keys", "Keys", "int"),
        Column("rss_before", "RSS empty", "bytes"), Column("rss_after", "RSS full", "bytes"),
        Column("bytes_per_key", "Bytes/key (growth)", "int"),
        Column("ratio", "RSS ratio vs redis", "ratio"),
    )
    required_binaries = ("redis-server",)

    def parameters(self, quick: bool) -> dict[str, Any]:
        return {"keys": 200_000 if quick else 1_000_000, "value_bytes": len(VALUE)}

    def run(self, ctx: Context) -> list[Row]:
        keys = self.parameters(ctx.quick)["keys"]
        rows: list[Row] = []
        for name, start in (("redis-server", ctx.start_redis), ("jobcached", ctx.start_jobcached)):
            server: Server = start()
            before = ctx.rss_bytes(server.pid)
            fill(server.port, keys)
            after = ctx.rss_bytes(server.pid)
            rows.append({"server": name, "keys": keys, "rss_before": before, "rss_after": after,
                         "bytes_per_key": (after - before) // keys})
            ctx.stop(server)
        redis_rss = rows[0]["rss_after"]
        for row in rows:
            row["ratio"] = row["rss_after"] / redis_rss if redis_rss else None
        return rows


register(MemorySuite())
