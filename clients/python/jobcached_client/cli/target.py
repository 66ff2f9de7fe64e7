"""Where `jobcached-cli` connects, and how it introduces itself (HELLO 3, AUTH)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import click

from jobcached_client.cli.resp import Connection
from jobcached_client.urls import DEFAULT_PORT


@dataclass
class Target:
    """Where to connect and how to introduce ourselves."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    path: str | None = None
    user: str | None = None
    password: str | None = None
    resp3: bool = False

    @property
    def address(self) -> str:
        return self.path or f"{self.host}:{self.port}"

    def apply_url(self, url: str) -> None:
        """`jobcached://[user:password@]host[:port]`, `jobcached+unix:///path`, redis://..."""
        parts = urlsplit(url)
        if parts.scheme in ("unix", "jobcached+unix"):
            self.path = unquote(parts.path)
        elif parts.scheme in ("jobcached", "redis"):
            self.host = parts.hostname or self.host
            self.port = parts.port or DEFAULT_PORT
        else:
            raise click.BadParameter(f"unsupported URL scheme {parts.scheme!r}", param_hint="-u")
        if parts.username:
            self.user = unquote(parts.username)
        if parts.password:
            self.password = unquote(parts.password)

    def connect(self) -> Connection:
        """A connection that has said HELLO / AUTH; raises OSError when unreachable."""
        conn = Connection(self.host, self.port, self.path)
        conn.connect()
        hello: list[str] = []
        if self.resp3:
            hello = ["HELLO", "3"]
            if self.password:
                hello += ["AUTH", self.user or "default", self.password]
        elif self.password:
            hello = ["AUTH", *([self.user] if self.user else []), self.password]
        if hello:
            reply = conn.call(*hello)
            if reply.is_error:
                what = "HELLO" if self.resp3 else "AUTH"
                click.echo(f"{what} failed: {reply.text()}", err=True)
        return conn
