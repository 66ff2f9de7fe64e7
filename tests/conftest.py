"""Shared test fixtures: a real jobcached process on a free port, and external tools.

Integration tests talk to a server started as a subprocess, exactly as a user would run it.
Tests that need an external tool (redis-cli, redis-server, nc) fail with a clear message when
JOBCACHED_REQUIRE_EXTERNAL is set (as in CI) and skip otherwise.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import settings

#: Property tests are judged by their examples, never by their speed: CI shares two cores with
#: servers started by other tests, and Hypothesis' default 200 ms deadline fails under that load.
settings.register_profile("jobcached", deadline=None)
settings.load_profile("jobcached")

#: How long a starting server may take to answer PING before the test fails.
STARTUP_TIMEOUT_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_tool(name: str) -> str:
    """The path of an external tool, or fail/skip with the package that provides it."""
    path = shutil.which(name)
    if path:
        return path
    message = (f"{name} is not installed: apt-get install -y redis-server redis-tools "
               f"redis-sentinel netcat-openbsd")
    if os.environ.get("JOBCACHED_REQUIRE_EXTERNAL"):
        pytest.fail(message)
    pytest.skip(message)


class ServerProcess:
    """A jobcached server in a child process."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.log_path = data_dir / "server.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        # No metrics endpoint unless a test asks for one (a later --metrics-port wins): servers
        # started in parallel would all want the default port, and a taken one stops a start.
        cmd = [sys.executable, "-m", "jobcached", "serve", "--port", str(self.port),
               "--dir", str(data_dir), "--loglevel", "warning", "--metrics-port", "0", *args]
        self._log = open(self.log_path, "wb")  # noqa: SIM115  # closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})

    def wait_ready(self) -> ServerProcess:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=10, **kwargs)  # type: ignore[arg-type]

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server shared by a test module."""
    proc = ServerProcess(tmp_path_factory.mktemp("server")).wait_ready()
    yield proc
    proc.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[object]:
    """Start servers with their own flags: `start_server("--requirepass", "x")`."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None, wait: bool = True) -> ServerProcess:
        proc = ServerProcess(tmp_path / f"s{len(started)}", *args, env=env)
        started.append(proc)
        return proc.wait_ready() if wait else proc

    yield start
    for proc in started:
        proc.stop()


class RawClient:
    """A plain socket for byte-level transcripts (mini-redis style)."""

    #: every client a test opened; closed after the test by `_close_raw_clients`
    opened: list[RawClient] = []

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        RawClient.opened.append(self)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                break
            data += chunk
        return data

    def recv_line(self) -> bytes:
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = self.sock.recv(1)
            if not chunk:
                break
            data += chunk
        return data

    def recv_until_closed(self, limit: int = 1 << 20) -> bytes:
        data = b""
        while len(data) < limit:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        return data

    def transcript(self, request: bytes, expected: bytes) -> None:
        self.send(request)
        assert self.recv_exactly(len(expected)) == expected

    def close(self) -> None:
        self.sock.close()


class RedisServerProcess:
    """A real redis-server, the reference for differential tests."""

    def __init__(self, data_dir: Path) -> None:
        binary = require_tool("redis-server")
        self.port = free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(data_dir), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            try:
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=10, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServerProcess]:
    """A real redis-server shared by a test module."""
    proc = RedisServerProcess(tmp_path_factory.mktemp("redis"))
    yield proc
    proc.stop()


@pytest.fixture(autouse=True)
def _close_raw_clients() -> Iterator[None]:
    yield
    while RawClient.opened:
        RawClient.opened.pop().close()


@pytest.fixture
def raw(server: ServerProcess) -> RawClient:
    return RawClient(server.port)
