"""Fixtures for the Python client, worker and CLI tests: clients, worker processes, tools."""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from jobcached_client import Client, Worker

from tests.conftest import ServerProcess


def script(name: str) -> str:
    """A console script of the client distribution, installed beside this Python."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: pip install -e clients/python")
    return found


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def aw(value: Any) -> Any:
    """The value of a sync call, or of an async one: lets one scenario drive both clients."""
    return await value if inspect.isawaitable(value) else value


async def collect(items: Any) -> list[Any]:
    if hasattr(items, "__aiter__"):
        return [item async for item in items]
    return list(items)


def eventually(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    c = Client(port=server.port, socket_timeout=10)
    yield c
    c.close()


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    """Run a worker on its own loop in a thread; stop it gracefully on exit."""
    errors: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(worker.serve())
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(30)
        assert not thread.is_alive(), "the worker did not stop"
        if errors:
            raise errors[0]


class WorkerProcess:
    """`jobcached-worker module:worker` in a child process, with its output kept."""

    def __init__(self, directory: Path, module: str, url: str, *args: str) -> None:
        self.log_path = directory / f"worker-{uuid.uuid4().hex[:6]}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115  # closed in wait()
        env = {**os.environ, "JOBCACHED_URL": url, "WORK_DIR": str(directory)}
        self.proc = subprocess.Popen([script("jobcached-worker"), f"{module}:worker", *args],
                                     cwd=directory, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._log.close()


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start worker processes from a module written to tmp_path: `start(source, url)`."""
    started: list[WorkerProcess] = []

    def start(source: str, url: str, *args: str, module: str = "tasks") -> WorkerProcess:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        proc = WorkerProcess(tmp_path, module, url, *args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.proc.kill()
        proc.wait()
