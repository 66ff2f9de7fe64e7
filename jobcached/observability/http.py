"""The operator's HTTP endpoints: /metrics, /healthz, /readyz, on the event loop.

A deliberately tiny HTTP/1.1 server (asyncio streams, no thread, no dependency): it reads one
request head (bounded by MAX_REQUEST_HEAD_BYTES and READ_TIMEOUT_SECONDS), answers it, and
closes the connection (`Connection: close`), which is all Prometheus and the kubelet need.
Request bodies are never read, so a client cannot make it buffer more than the head.

- `GET /metrics`: the Prometheus text format, rendered at scrape time (see metrics.py).
- `GET /healthz`: 200 `ok` while the process runs its event loop (liveness).
- `GET /readyz`: 200 `ready` when the job log has been replayed and job writes are accepted;
  503 and the reason otherwise: `loading ...` during replay (the RESP listeners are not open
  yet), `job writes are refused ...` after a WAL failure (until it heals), `shutting down`
  once a graceful stop began (so a load balancer stops routing before connections close).

Parsing and routing are plain functions (`parse_request_head`, `respond`), tested without
sockets; `serve_http` is the asyncio glue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from jobcached.observability.metrics import CONTENT_TYPE, render

if TYPE_CHECKING:
    from jobcached.server.state import ServerState

log = logging.getLogger("jobcached.http")

#: Largest request line plus headers; Prometheus and kubelet send a few hundred bytes
#: (h11 allows 16 KiB; nothing here needs more than a request line).
MAX_REQUEST_HEAD_BYTES = 8 * 1024
#: A client that has not sent a whole request head by then is disconnected (slowloris).
READ_TIMEOUT_SECONDS = 5.0
#: Concurrent HTTP connections; more are answered 503 at once (probes and scrapers are few).
MAX_HTTP_CONNECTIONS = 64

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 431: "Request Header Fields Too Large",
            503: "Service Unavailable", 505: "HTTP Version Not Supported"}
_TEXT = "text/plain; charset=utf-8"


class HttpError(Exception):
    """A request we answer with an error status and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = _TEXT

    def encode(self, head_only: bool = False) -> bytes:
        head = (f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Unknown')}\r\n"
                f"Content-Type: {self.content_type}\r\nContent-Length: {len(self.body)}\r\n"
                f"Cache-Control: no-store\r\nConnection: close\r\n\r\n").encode()
        return head if head_only else head + self.body


def parse_request_head(head: bytes) -> tuple[str, str]:
    """(method, path without query) from a request head ending in a blank line."""
    line, _, _ = head.partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if not version.startswith(b"HTTP/1."):
        raise HttpError(505, "only HTTP/1.x is spoken here")
    if not target.startswith(b"/"):
        raise HttpError(400, "the request target must be a path")
    path = target.split(b"?", 1)[0].decode("ascii", "replace")
    return method.decode("ascii", "replace"), path


def readiness(state: ServerState) -> tuple[bool, str]:
    """Whether the server is ready for traffic, and why not (the /readyz body)."""
    if state.shutting_down:
        return False, "shutting down"
    if state.loading:
        return False, (f"loading: replaying the job log "
                       f"({state.loading_records} records so far)")
    durability = state.effects.durability
    if durability is None:
        return False, "loading: the job log is not open yet"
    if durability.failure is not None:
        return False, (f"job writes are refused: the write-ahead log failed "
                       f"({durability.failure}); retrying every second")
    return True, "ready"


def respond(state: ServerState, registry: CollectorRegistry | None, method: str,
            path: str) -> Response:
    """The response to a parsed request."""
    if method not in ("GET", "HEAD"):
        return Response(405, b"only GET and HEAD\n")
    if path == "/healthz":
        return Response(200, b"ok\n")
    if path == "/readyz":
        ready, reason = readiness(state)
        return Response(200 if ready else 503, reason.encode() + b"\n")
    if path == "/metrics" and registry is not None:
        return Response(200, render(registry), CONTENT_TYPE)
    return Response(404, b"not found: try /metrics, /healthz or /readyz\n")


class HttpServer:
    """The listening endpoint; `await HttpServer(state, registry).start(host, port)`."""

    def __init__(self, state: ServerState, registry: CollectorRegistry | None) -> None:
        self.state = state
        self.registry = registry
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self._open = 0

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._handle, host, port,
                                                 limit=MAX_REQUEST_HEAD_BYTES,
                                                 reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open += 1
        try:
            if self._open > MAX_HTTP_CONNECTIONS:
                writer.write(Response(503, b"too many connections\n").encode())
                return
            head_only = False
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                              READ_TIMEOUT_SECONDS)
                method, path = parse_request_head(head)
                head_only = method == "HEAD"
                response = respond(self.state, self.registry, method, path)
            except HttpError as exc:
                response = Response(exc.status, exc.message.encode() + b"\n")
            except (asyncio.LimitOverrunError, ValueError):
                response = Response(431, b"request head too large\n")
            except TimeoutError:
                response = Response(408, b"request head not received in time\n")
            except asyncio.IncompleteReadError:
                return  # the client went away
            writer.write(response.encode(head_only))
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.drain(), READ_TIMEOUT_SECONDS)
        except Exception:
            log.exception("HTTP request failed")
        finally:
            self._open -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), READ_TIMEOUT_SECONDS)
