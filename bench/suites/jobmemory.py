"""Job memory suite: the RSS of jobcached and beanstalkd holding the same queued jobs.

Each server gets N jobs with 100-byte payloads in one queue (tube), written by pipelined
requests over a raw socket, and the resident set size of its process is read from /proc
before and after, at several N in one run (the growth per job is the figure: what a queued
job costs). beanstalkd runs with a binlog, as in the lifecycle suite; jobcached with its
WAL (`appendfsync everysec`). The performance issue's target: 1,000,000 queued jobs in at
most 1.5x beanstalkd's RSS.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from bench.context import Context, Server
from bench.suite import Column, Row, Suite, register

#: Jobs per write: enough to keep the server busy, small enough to bound client memory.
PIPELINE = 1000
PAYLOAD = b"p" * 100


#: One push: JOB.PUSH, and beanstalkd's `put <pri> <delay> <ttr> <bytes>`.
JOBCACHED_PUSH = b"*3\r\n$8\r\nJOB.PUSH\r\n$5\r\nbench\r\n$100\r\n%b\r\n" % PAYLOAD
BEANSTALKD_PUT = b"put 0 0 60 100\r\n%b\r\n" % PAYLOAD


def push(port: int, jobs: int, beanstalkd: bool) -> None:
    """Push `jobs` jobs, pipelined, reading every reply: beanstalkd's `INSERTED <id>` is one
    line, jobcached's id (`$26`, then the id) two."""
    request = BEANSTALKD_PUT if beanstalkd else JOBCACHED_PUSH
    with socket.create_connection(("127.0.0.1", port)) as sock:
        if beanstalkd:
            sock.sendall(b"use bench\r\n")
            if not sock.recv(64).startswith(b"USING"):
                raise RuntimeError("beanstalkd refused the tube")
        lines_per_reply = 1 if beanstalkd else 2  # `$26\r\n<id>\r\n`
        expected = jobs * lines_per_reply

        def drain() -> None:
            got = 0
            while got < expected:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("server closed the connection while pushing")
                if b"-ERR" in chunk or b"OUT_OF_MEMORY" in chunk:
                    raise RuntimeError(f"server refused a push: {chunk[:200]!r}")
                got += chunk.count(b"\r\n")

        reader = threading.Thread(target=drain)
        reader.start()
        for start in range(0, jobs, PIPELINE):
            sock.sendall(request * (min(jobs, start + PIPELINE) - start))
        reader.join()


class JobMemorySuite(Suite):
    name = "jobs-memory"
    description = ("RSS of each server holding N queued jobs with 100-byte payloads "
                   "(pipelined pushes, both durable); target: jobcached at most 1.5x "
                   "beanstalkd for 1,000,000 jobs.")
    columns = (
        Column("server", "Server"), Column("jobs", "Queued jobs", "int"),
        Column("rss_before", "RSS empty", "bytes"), Column("rss_after", "RSS full", "bytes"),
        Column("bytes_per_job", "Bytes/job (growth)", "int"),
        Column("ratio", "RSS ratio vs beanstalkd", "ratio"),
    )
    required_binaries = ("beanstalkd",)

    def parameters(self, quick: bool) -> dict[str, Any]:
        return {"jobs": [100_000] if quick else [250_000, 500_000, 1_000_000],
                "payload_bytes": len(PAYLOAD)}

    def run(self, ctx: Context) -> list[Row]:
        rows: list[Row] = []
        for jobs in self.parameters(ctx.quick)["jobs"]:
            found: dict[str, Row] = {}
            for name in ("beanstalkd", "jobcached"):
                if name == "beanstalkd":
                    binlog = ctx.workdir / f"beanstalkd-memory-{jobs}"
                    binlog.mkdir(parents=True, exist_ok=True)
                    server: Server = ctx.start_beanstalkd("-b", str(binlog), "-f", "1000")
                else:
                    server = ctx.start_jobcached("--appendfsync", "everysec")
                before = ctx.rss_bytes(server.pid)
                push(server.port, jobs, beanstalkd=name == "beanstalkd")
                after = ctx.rss_bytes(server.pid)
                found[name] = {"server": name, "jobs": jobs, "rss_before": before,
                               "rss_after": after, "bytes_per_job": (after - before) // jobs}
                ctx.stop(server)
            peer = found["beanstalkd"]["rss_after"]
            for row in found.values():
                row["ratio"] = row["rss_after"] / peer if peer else None
                rows.append(row)
        return rows


register(JobMemorySuite())
