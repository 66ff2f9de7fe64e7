"""What a suite gets to work with: servers on free ports, and CPU/RSS readings of a pid.

Servers are child processes in the foreground (no daemonizing), so the runner knows their pids and
can read `/proc/<pid>/stat` for CPU time. Every server a `Context` starts is stopped when the
context closes, whatever happened: SIGTERM, then SIGKILL after `STOP_TIMEOUT_S`. On Linux each
child also gets PR_SET_PDEATHSIG, so even a SIGKILLed runner leaves no server behind.

CPU time is utime + stime of the whole process (all threads, including exited ones), in clock
ticks (usually 10 ms each): coarse, so a measured stretch should last at least a few hundred ms.
As a cross-check, `measure` also reads the process CPU clock (clock_getcpuclockid, nanoseconds)
where libc offers it; results keep both.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
"""The project root (the bench package sits directly under it)."""

STARTUP_TIMEOUT_S = 20.0
"""How long a server may take to answer its readiness probe (jobcached imports take ~1 s)."""
STOP_TIMEOUT_S = 15.0
"""Grace after SIGTERM before SIGKILL; above jobcached's drain so a clean stop is seen as clean."""
PROBE_INTERVAL_S = 0.05
"""Pause between readiness probes."""

CLK_TCK = os.sysconf("SC_CLK_TCK")
"""Clock ticks per second, the unit of utime/stime in /proc/<pid>/stat."""

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port that was free on loopback a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_INSTALL_HINTS = {
    "redis-server": "apt-get install redis-server; Redis 7, it includes redis-benchmark",
    "redis-benchmark": "apt-get install redis-server; Redis 7, it includes redis-benchmark",
    "beanstalkd": "apt-get install beanstalkd",
}
"""How to get each peer on Debian/Ubuntu, for the missing-binary message."""


def require_binary(name: str) -> str:
    """Full path of an executable on PATH, or SystemExit with a message saying what is missing."""
    path = shutil.which(name)
    if path is None:
        hint = _INSTALL_HINTS.get(name, f"install {name}")
        raise SystemExit(
            f"bench: '{name}' was not found on PATH. The benchmarks run jobcached side by side "
            f"with the real peer and drive both with the peer's own tools.\n"
            f"Install it (Debian/Ubuntu: {hint}) and run again."
        )
    return path


def cpu_ticks(pid: int) -> int:
    """utime + stime of process `pid` and of its children that ended (cutime + cstime), in
    clock ticks, from /proc/<pid>/stat: jobcached compacts its WAL in a forked child, and that
    CPU is the server's too (a child counts once the server has waited for it)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime, stime, cutime and cstime are fields 14 to 17.
    return sum(int(field) for field in fields[11:15])


def cpu_ns(pid: int) -> int | None:
    """CPU time of process `pid` in ns from its POSIX CPU clock, or None where unavailable."""
    clock_id = ctypes.c_int()
    try:
        if ctypes.CDLL(None).clock_getcpuclockid(pid, ctypes.byref(clock_id)) != 0:
            return None
        return time.clock_gettime_ns(clock_id.value)
    except (AttributeError, OSError):
        return None


def rss_bytes(pid: int) -> int:
    """Resident set size of process `pid` (VmRSS in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid} (a zombie?)")


@dataclass
class Measurement:
    """Filled in when a `Context.measure` block ends: server CPU and wall time spent inside it."""

    cpu_ticks: int = 0
    cpu_ns: int | None = None
    """The same CPU time from the process CPU clock (ns resolution), None if unavailable."""
    wall_s: float = 0.0
    rss_bytes: int = 0

    @property
    def cpu_s(self) -> float:
        return self.cpu_ticks / CLK_TCK


@dataclass
class Server:
    """A server process started by a Context."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    exit_code: int | None = field(default=None)
    ready_s: float | None = field(default=None)
    """Seconds from spawning the process to its first successful readiness probe."""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM this child if the runner dies first (best effort)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def resp_ping(port: int) -> bool:
    """Readiness probe for RESP servers: does PING on `port` get +PONG?"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def tcp_accepts(port: int) -> bool:
    """Readiness probe for servers with no cheap ping: does `port` accept a connection?"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


class Context:
    """Per-suite helpers; use as `with Context(quick=...) as ctx:` so servers always stop."""

    def __init__(self, quick: bool, log: Callable[[str], None] = print) -> None:
        self.quick = quick
        self.log = log
        self._tmp = tempfile.TemporaryDirectory(prefix="jobcached-bench-")
        self.workdir = Path(self._tmp.name)
        self._servers: list[Server] = []

    def __enter__(self) -> Context:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- servers ---------------------------------------------------------------------------------

    def start_server(
        self, name: str, argv: list[str], port: int, probe: Callable[[int], bool] = resp_ping,
        cwd: Path | None = None, probe_interval: float = PROBE_INTERVAL_S,
        startup_timeout: float = STARTUP_TIMEOUT_S,
    ) -> Server:
        """Run `argv` in the foreground and wait until `probe(port)` is true."""
        log_path = self.workdir / f"{name}-{port}.log"
        spawned = time.perf_counter()
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                cwd=cwd or self.workdir, preexec_fn=_die_with_parent,
            )
        server = Server(name, port, proc, log_path)
        self._servers.append(server)
        deadline = time.monotonic() + startup_timeout
        while not probe(port):
            if not server.alive():
                raise RuntimeError(
                    f"{name} exited with code {proc.returncode} before answering on port {port}:"
                    f"\n{server.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer on port {port} "
                                   f"within {startup_timeout:.0f} s:\n{server.log_tail()}")
            time.sleep(probe_interval)
        server.ready_s = time.perf_counter() - spawned
        self.log(f"  started {name} pid {server.pid} on port {port}")
        return server

    def start_jobcached(
        self, *extra: str, data_dir: Path | None = None, loglevel: str = "warning",
        probe_interval: float = PROBE_INTERVAL_S, startup_timeout: float = STARTUP_TIMEOUT_S,
    ) -> Server:
        """jobcached from this project (the interpreter running the bench) on a free port.

        `extra` are more `serve` flags (e.g. `--appendfsync always`). `data_dir` reuses a data
        directory (its WAL is replayed at start); by default each server gets a fresh one.
        """
        port = free_port()
        if data_dir is None:
            data_dir = self.workdir / f"jobcached-{port}"
            data_dir.mkdir()
        # metrics-port 0 unless `extra` sets it (the last flag wins): a taken default port
        # would stop the start.
        argv = [sys.executable, "-m", "jobcached", "serve", "--port", str(port),
                "--dir", str(data_dir), "--loglevel", loglevel, "--metrics-port", "0", *extra]
        return self.start_server("jobcached", argv, port, cwd=ROOT,
                                 probe_interval=probe_interval, startup_timeout=startup_timeout)

    def start_redis(self, *extra: str) -> Server:
        """redis-server with persistence off, on a free port."""
        port = free_port()
        argv = [require_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--dir", str(self.workdir), *extra]
        return self.start_server("redis", argv, port)

    def start_beanstalkd(self, *extra: str) -> Server:
        """beanstalkd on a free port (no binlog unless `extra` asks for one with -b)."""
        port = free_port()
        argv = [require_binary("beanstalkd"), "-l", "127.0.0.1", "-p", str(port), *extra]
        return self.start_server("beanstalkd", argv, port, probe=tcp_accepts)

    def stop(self, server: Server) -> None:
        """SIGTERM, wait up to STOP_TIMEOUT_S, then SIGKILL. Idempotent."""
        if server.exit_code is not None:
            return
        if server.alive():
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.log(f"  {server.name} pid {server.pid} ignored SIGTERM; killing it")
                server.proc.kill()
                server.proc.wait()
        server.exit_code = server.proc.returncode
        if server.exit_code not in (0, -signal.SIGTERM):
            self.log(f"  warning: {server.name} exited with code {server.exit_code}:\n"
                     f"{server.log_tail()}")

    def close(self) -> None:
        """Stop every server this context started (newest first), then remove the work dir."""
        try:
            for server in reversed(self._servers):
                try:
                    self.stop(server)
                except BaseException:
                    # Even on a second Ctrl-C, make sure the process is gone before giving up.
                    server.proc.kill()
                    server.proc.wait()
                    raise
        finally:
            self._tmp.cleanup()

    # -- measurements ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def measure(self, pid: int) -> Iterator[Measurement]:
        """CPU ticks and wall time that process `pid` spends while the block runs, and its RSS."""
        result = Measurement()
        start_ns, start_ticks, start = cpu_ns(pid), cpu_ticks(pid), time.perf_counter()
        yield result
        result.wall_s = time.perf_counter() - start
        result.cpu_ticks = cpu_ticks(pid) - start_ticks
        end_ns = cpu_ns(pid)
        if start_ns is not None and end_ns is not None:
            result.cpu_ns = end_ns - start_ns
        result.rss_bytes = rss_bytes(pid)

    cpu_ticks = staticmethod(cpu_ticks)
    cpu_ns = staticmethod(cpu_ns)
    rss_bytes = staticmethod(rss_bytes)
