"""The HTTP endpoints without sockets: request parsing, routing, and what /readyz says when."""

from __future__ import annotations

import asyncio
import errno
import random
from pathlib import Path

import pytest

from jobcached.clock import ManualClock
from jobcached.commands.registry import walk
from jobcached.jobs.engine import JobEngine
from jobcached.net.replies import Deferred
from jobcached.observability.http import HttpError, parse_request_head, readiness, respond
from jobcached.observability.metrics import build_registry
from jobcached.persistence.durability import Durability
from jobcached.persistence.wal import RealFs, Wal
from jobcached.server.state import ServerState


@pytest.mark.parametrize(("head", "expected"), [
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", ("GET", "/metrics")),
    (b"HEAD /readyz?verbose=1 HTTP/1.0\r\n\r\n", ("HEAD", "/readyz")),
])
def test_parse_request_head(head: bytes, expected: tuple[str, str]) -> None:
    assert parse_request_head(head) == expected


@pytest.mark.parametrize(("head", "status"), [
    (b"GET /metrics\r\n\r\n", 400),
    (b"GET metrics HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"\x16\x03\x01 garbage\r\n\r\n", 400),
])
def test_bad_requests(head: bytes, status: int) -> None:
    with pytest.raises(HttpError) as info:
        parse_request_head(head)
    assert info.value.status == status


def test_routes(state: ServerState) -> None:
    registry = build_registry(state, walk)
    assert respond(state, registry, "GET", "/healthz").body == b"ok\n"
    metrics = respond(state, registry, "GET", "/metrics")
    assert metrics.status == 200 and b"jobcached_connected_clients" in metrics.body
    assert metrics.content_type.startswith("text/plain; version=0.0.4")
    assert respond(state, registry, "POST", "/metrics").status == 405
    assert respond(state, registry, "GET", "/nope").status == 404
    assert respond(state, None, "GET", "/metrics").status == 404
    head = respond(state, registry, "HEAD", "/healthz").encode(head_only=True)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert b"Content-Length: 3\r\n" in head and b"Connection: close" in head


def test_readyz_follows_the_lifecycle(state: ServerState) -> None:
    state.loading, state.loading_records = True, 42_000
    response = respond(state, None, "GET", "/readyz")
    assert response.status == 503 and response.body.startswith(b"loading")
    assert b"42000 records" in response.body
    state.loading = False
    assert readiness(state) == (False, "loading: the job log is not open yet")  # no WAL yet
    state.shutting_down = True
    assert readiness(state) == (False, "shutting down")


class FullDisk(RealFs):
    """The real file system, until a test fills the disk."""

    full = False

    def write(self, fd: int, data: bytes) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        super().write(fd, data)

    def fsync(self, fd: int) -> None:
        if self.full:
            raise OSError(errno.EIO, "Input/output error")
        super().fsync(fd)


def test_readyz_is_503_after_a_wal_failure_and_200_once_it_heals(tmp_path: Path,
                                                                  state: ServerState) -> None:
    async def scenario() -> None:
        fs = FullDisk()
        wal = Wal(str(tmp_path), fs=fs)
        for _ in wal.replay():
            pass
        wal.open_for_append()
        engine = JobEngine(ManualClock(), rng=random.Random(1))
        durability = Durability(wal, "always", asyncio.get_running_loop())
        engine.sink = state.effects.job
        state.jobs, state.effects.durability = engine, durability
        assert respond(state, None, "GET", "/readyz").status == 200

        fs.full = True
        engine.push("q", b"p")
        reply = durability.reply(b"ok")
        for _ in range(1000):
            if isinstance(reply, Deferred) and reply.done:
                break
            await asyncio.sleep(0.001)
        response = respond(state, None, "GET", "/readyz")
        assert response.status == 503
        assert response.body.startswith(b"job writes are refused: the write-ahead log failed")

        fs.full = False
        assert await durability.recover()
        assert respond(state, None, "GET", "/readyz").status == 200
        assert durability.failures == 1 and durability.recoveries == 1
        await durability.drain()
        durability.close()

    asyncio.run(scenario())
