"""Real redis-sentinel processes watching real jobcached processes, for the failover tests.

Why a module of its own: the Sentinel tests (cache, jobs, our client) all need the same
deployment: a leader, two followers and three sentinels (quorum 2) with short timeouts, each
sentinel on a free port with its own config file (Sentinel rewrites it as it learns).
"""

from __future__ import annotations

import functools
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import STARTUP_TIMEOUT_SECONDS, ServerProcess, free_port, require_tool

#: The name the sentinels know the leader by.
SERVICE = "jc"
#: How long the leader may not answer before a sentinel thinks it down (ms): short, so a
#: failover test takes seconds (production uses 30 s), but not so short that a loaded test
#: machine makes a just-promoted leader look dead (at 1000 ms Sentinel sometimes failed over
#: a second time).
DOWN_AFTER_MS = 2000
#: Sentinel's failover-timeout (ms): also how long before it retries a failover that stalled.
FAILOVER_TIMEOUT_MS = 6000
#: How long a test waits for Sentinel to notice, agree and promote (seconds).
FAILOVER_WAIT_SECONDS = 30.0

Start = Callable[..., ServerProcess]


def wait_for(predicate: Callable[[], Any], seconds: float = FAILOVER_WAIT_SECONDS,
             what: str = "condition", details: Callable[[], str] = str) -> Any:
    """Poll `predicate` until it returns something true; connection errors count as not yet.
    `details()` is added to the failure's message (the processes' logs, say)."""
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
            value, last = None, exc
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not met in {seconds} s (last error: {last})\n{details()}")


class SentinelProcess:
    """One redis-sentinel monitoring `SERVICE` at the given leader port."""

    def __init__(self, directory: Path, leader_port: int) -> None:
        binary = require_tool("redis-sentinel")
        self.port = free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self.config_path = directory / "sentinel.conf"
        self.log_path = directory / "sentinel.log"
        self.config_path.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndaemonize no\ndir {directory}\n"
            f"logfile {self.log_path}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {leader_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 2\n")
        self.proc = subprocess.Popen([binary, str(self.config_path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.client().ping, STARTUP_TIMEOUT_SECONDS, "sentinel answering PING")

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)

    def master_addr(self) -> tuple[str, int]:
        host, port = self.client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME",
                                                   SERVICE)
        return host, int(port)

    def replicas(self) -> list[dict[str, str]]:
        return [_pairs(entry) for entry in
                self.client().execute_command("SENTINEL", "REPLICAS", SERVICE)]

    def sentinels(self) -> list[dict[str, str]]:
        return [_pairs(entry) for entry in
                self.client().execute_command("SENTINEL", "SENTINELS", SERVICE)]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _pairs(entry: Any) -> dict[str, str]:
    """SENTINEL REPLICAS / SENTINELS give each instance as a flat [name, value, ...] list."""
    if isinstance(entry, dict):
        return {str(k): str(v) for k, v in entry.items()}
    return dict(zip(entry[::2], entry[1::2], strict=True))


class Deployment:
    """A leader, two followers, three sentinels; `addresses` is what clients are given."""

    def __init__(self, start: Start, root: Path, first_follower_args: tuple[str, ...] = ()
                 ) -> None:
        self.leader = start()
        self.followers = [start("--replicaof", f"127.0.0.1 {self.leader.port}", *args)
                          for args in (first_follower_args, ())]
        self.servers = [self.leader, *self.followers]
        wait_for(lambda: self.leader.client().info("replication")["connected_slaves"] == 2,
                 what="both followers attached")
        self.sentinels = [SentinelProcess(root / f"sentinel{i}", self.leader.port)
                          for i in range(3)]
        self.addresses = [("127.0.0.1", s.port) for s in self.sentinels]

    def wait_watched(self) -> None:
        """Until every sentinel knows both followers (online) and the two other sentinels."""
        def watched(sentinel: SentinelProcess) -> bool:
            replicas = sentinel.replicas()
            return (len(replicas) == 2 and len(sentinel.sentinels()) == 2
                    and all(r["flags"] == "slave" and r["master-link-status"] == "ok"
                            for r in replicas))

        for sentinel in self.sentinels:
            wait_for(functools.partial(watched, sentinel),
                     what="sentinels watching the deployment", details=self.logs)

    def server_at(self, port: int) -> ServerProcess:
        return next(server for server in self.servers if server.port == port)

    def wait_new_leader(self, old: ServerProcess) -> ServerProcess:
        """Until every sentinel names another leader than `old`, and it says it leads."""
        def moved() -> int | None:
            ports = {s.master_addr()[1] for s in self.sentinels}
            if len(ports) == 1 and old.port not in ports:
                return ports.pop()
            return None

        port = wait_for(moved, what="sentinels agreeing on a new leader", details=self.logs)
        leader = self.server_at(port)
        wait_for(lambda: leader.client().execute_command("ROLE")[0] == b"master",
                 what="the promoted follower leading")
        return leader

    def wait_settled(self, alive: list[ServerProcess]) -> ServerProcess:
        """Until every sentinel names one of `alive` as the leader, it says it leads, and the
        others of `alive` follow it with their link up; that leader. Sentinel may fail over
        more than once (a new leader that stalls past down-after-milliseconds): this waits
        for the last one."""
        def settled() -> ServerProcess | None:
            ports = {s.master_addr()[1] for s in self.sentinels}
            leader = next((s for s in alive if {s.port} == ports), None)
            if leader is None or leader.client().execute_command("ROLE")[0] != b"master":
                return None
            if any(other.client().execute_command("ROLE")[1:4] != [
                    b"127.0.0.1", leader.port, b"connected"]
                   for other in alive if other is not leader):
                return None
            return leader

        settled_leader: ServerProcess = wait_for(settled, what="the deployment settled",
                                                 details=self.logs)
        return settled_leader

    def logs(self) -> str:
        """Every process's log, for a failing assertion's message."""
        parts = [f"--- server {s.port}\n{s.log()[-4000:]}" for s in self.servers]
        parts += [f"--- sentinel {s.port}\n{s.log()[-4000:]}" for s in self.sentinels]
        return "\n".join(parts)

    def stop_sentinels(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()


def restart(old: ServerProcess, *args: str) -> ServerProcess:
    """`old` started again on its port and data dir (it was killed)."""
    again = ServerProcess(old.data_dir, "--port", str(old.port), *args)
    again.port = old.port  # the last --port wins
    return again.wait_ready()


@pytest.fixture
def deployment(start_server: Start, tmp_path: Path) -> Iterator[Deployment]:
    group = Deployment(start_server, tmp_path)
    yield group
    group.stop_sentinels()
