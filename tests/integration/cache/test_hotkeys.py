"""HOTKEYS against a real server: a Zipf(1.1) workload's top 10 found, the share metric, and
`redis-cli --hotkeys` under allkeys-lfu (OBJECT FREQ)."""

from __future__ import annotations

import socket
import subprocess
import urllib.request
from collections.abc import Callable

import pytest
import redis

from tests.conftest import ServerProcess, free_port, require_tool
from tests.unit.cache.test_hotkeys import zipf_keys


def test_hotkeys_get_finds_the_zipf_top_10(start_server: Callable[..., ServerProcess]) -> None:
    metrics_port = free_port()
    server = start_server("--hotkey-top-k", "10", "--metrics-port", str(metrics_port))
    r = server.client()
    keys, draws = zipf_keys(100_000, 200_000, seed=5)
    # GETs of missing keys (misses are lookups too), pipelined as raw bytes: redis-py's
    # pipeline would spend seconds packing and parsing 100k commands
    payload = b"".join(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k) for k in draws)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(payload)
        expected, received = len(b"$-1\r\n") * len(draws), 0
        while received < expected:
            chunk = sock.recv(1 << 16)
            assert chunk, "the server closed the connection"
            received += len(chunk)
    top = r.execute_command("HOTKEYS", "GET")
    assert len(top) == 10
    entries = [dict(zip(e[::2], e[1::2], strict=True)) if isinstance(e, list) else e
               for e in top]
    assert all(e[b"db"] == 0 and e[b"qps"] > 0 for e in entries)
    assert len({e[b"key"] for e in entries} & set(keys[:10])) >= 9
    assert len(r.execute_command("HOTKEYS", "GET", "COUNT", 3)) == 3
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as response:
        lines = response.read().decode().splitlines()
    [share] = [line for line in lines if line.startswith("jobcached_cache_hotkeys_top_share ")]
    assert 0.25 < float(share.split()[1]) < 0.5
    assert r.execute_command("HOTKEYS", "RESET") == b"OK"
    assert r.execute_command("HOTKEYS", "GET") == []


def test_disabled_by_default(server: ServerProcess) -> None:
    with pytest.raises(redis.ResponseError) as raised:
        server.client().execute_command("HOTKEYS", "GET")
    assert str(raised.value) == "hot key detection is disabled (CONFIG SET hotkey-top-k <n>)"


def test_redis_cli_hotkeys_under_allkeys_lfu(server: ServerProcess) -> None:
    cli = require_tool("redis-cli")
    r = server.client()
    r.config_set("maxmemory-policy", "allkeys-lfu")
    try:
        for i in range(50):
            r.set(f"cold:{i}", "x")
        r.set("hot:one", "x")
        for _ in range(300):
            r.get("hot:one")
        out = subprocess.run([cli, "-p", str(server.port), "--hotkeys"], capture_output=True,
                             text=True, timeout=60, check=True).stdout
    finally:
        r.config_set("maxmemory-policy", "noeviction")
    found = [line for line in out.split("summary")[1].splitlines() if "hot key found" in line]
    assert 'keyname: "hot:one"' in found[0]  # the hottest, listed first
