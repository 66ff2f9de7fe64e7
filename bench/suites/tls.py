"""TLS suite: jobcached vs redis-server, both on a TLS port, under `redis-benchmark --tls`.

What it answers: the server CPU one request costs over TLS (encryption included, handshakes
amortised over the run), against Redis' on the same machine in the same run. Both servers get
the same freshly made CA, server certificate and client certificate (tools/tlscerts.py) and
`tls-auth-clients yes`; readiness is still probed on their plain ports.
"""

from __future__ import annotations

import dataclasses

from bench.context import Context, Server, free_port
from bench.redisbench import RedisBenchmarkSuite
from bench.suite import register
from tools.tlscerts import Authority


class TlsBenchmarkSuite(RedisBenchmarkSuite):
    """RedisBenchmarkSuite with both servers measured on their TLS ports."""

    def start(self, ctx: Context) -> tuple[list[Server], tuple[str, ...]]:
        ca = Authority(ctx.workdir / "tls")
        server, client = ca.issue("server"), ca.issue("client", server=False)
        files = ("--tls-cert-file", str(server.cert), "--tls-key-file", str(server.key),
                 "--tls-ca-cert-file", str(ca.cert))
        started = []
        for start in (ctx.start_jobcached, ctx.start_redis):
            port = free_port()
            started.append(dataclasses.replace(start("--tls-port", str(port), *files),
                                               port=port))
        return started, ("--tls", "--cacert", str(ca.cert), "--cert", str(client.cert),
                         "--key", str(client.key))


register(TlsBenchmarkSuite(
    "cache-tls",
    "SET and GET over TLS (redis-benchmark --tls, client certificates), 50 clients, without "
    "and with 16-deep pipelining: what encryption adds to each server's CPU per request.",
    ("set", "get"),
))
