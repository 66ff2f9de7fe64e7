"""CLIENT TRACKING against redis-server and redis-py's own client-side cache.

The differential tests play one script of commands over several raw connections to both
servers and compare, byte for byte, everything each connection received: replies, invalidation
pushes (RESP3) and `__redis__:invalidate` messages (RESP2 redirect). After every step each
connection is synced with a PING, so whatever the server sent it because of that step is in
(BCAST messages go out at the end of an event loop iteration, before the PING is read).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.cache import CacheConfig
from redis.connection import CacheProxyConnection

from tests.conftest import RawClient, RedisServerProcess, ServerProcess

#: `{name}` in an argument: the client id of that connection on the server being scripted
ID_REF = re.compile(rb"^\{(\w+)\}$")


#: commands whose reply names client ids
ID_REPLIES = {("CLIENT", "GETREDIR"), ("CLIENT", "TRACKINGINFO")}


def command(*argv: bytes | str | int) -> bytes:
    parts = [b"*%d\r\n" % len(argv)]
    for arg in argv:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(raw), raw))
    return b"".join(parts)


class Peer:
    """One raw connection; `call` sends a command and returns all it received until synced."""

    def __init__(self, port: int, resp3: bool) -> None:
        self.raw = RawClient(port)
        self.subscribed = False
        if resp3:
            self.raw.send(command("HELLO", 3))
            self.sync()
        self.raw.send(command("CLIENT", "ID"))
        self.id = int(self.raw.recv_line()[1:])

    def sync(self) -> bytes:
        """Read until the reply of a PING sent now: everything that came before it."""
        pong = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n" if self.subscribed else b"+PONG\r\n"
        self.raw.send(command("PING"))
        data = b""
        while not data.endswith(pong):
            chunk = self.raw.sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
        return data[:-len(pong)]


def _resolve(arg: Any, conns: dict[str, Peer]) -> Any:
    ref = ID_REF.match(arg.encode() if isinstance(arg, str) else b"")
    return conns[ref.group(1).decode()].id if ref else arg


def play(port: int, peers: dict[str, bool], script: list[tuple[str, tuple[Any, ...]]]
         ) -> dict[str, list[bytes]]:
    """Run script on a server: peers maps name -> RESP3?; returns what each received."""
    conns = {name: Peer(port, resp3) for name, resp3 in peers.items()}
    seen: dict[str, list[bytes]] = {name: [] for name in peers}
    try:
        for name, step in script:
            # a step is one command, or a tuple of commands sent at once (MULTI ... EXEC:
            # the PING that syncs would be queued in between)
            batch = step if isinstance(step[0], tuple) else (step,)
            args: list[Any] = []
            for argv in batch:
                args = [_resolve(arg, conns) for arg in argv]
                if args[0] == "SLEEP":
                    time.sleep(args[1])
                    continue
                conns[name].raw.send(command(*args))
                if args[0] == "SUBSCRIBE" and not peers[name]:
                    conns[name].subscribed = True
            # the acting connection first: its reply is out before anyone else is asked
            for other in sorted(conns, key=lambda n: n != name):
                got = conns[other].sync()
                if other == name and tuple(args[:2]) in ID_REPLIES:
                    for target, peer in conns.items():  # ids differ between the servers
                        got = got.replace(b":%d\r\n" % peer.id, b":{%b}\r\n" % target.encode())
                seen[other].append(got)
    finally:
        for conn in conns.values():
            conn.raw.close()
    return seen


def differential(server: ServerProcess, redis_server: RedisServerProcess,
                 peers: dict[str, bool], script: list[tuple[str, tuple[Any, ...]]]
                 ) -> dict[str, list[bytes]]:
    theirs = play(redis_server.port, peers, script)
    ours = play(server.port, peers, script)
    for name in peers:
        for step, (mine, redis_got) in enumerate(zip(ours[name], theirs[name], strict=True)):
            assert mine == redis_got, (
                f"{name} after step {step} {script[step]!r}: jobcached {mine!r} != "
                f"redis {redis_got!r}")
    return theirs


@pytest.fixture
def clean(server: ServerProcess, redis_server: RedisServerProcess) -> Iterator[None]:
    for port in (server.port, redis_server.port):
        redis.Redis(port=port).flushall()
    yield


# ---------------------------------------------------------------------- errors and info

@pytest.mark.usefixtures("clean")
@pytest.mark.parametrize("resp", [2, 3])
def test_errors_and_info_equal_redis(server: ServerProcess, redis_server: RedisServerProcess,
                                     resp: int) -> None:
    peers = {"a": resp == 3, "other": False}
    script = [("a", args) for args in [
        ("CLIENT", "TRACKINGINFO"), ("CLIENT", "GETREDIR"), ("CLIENT", "CACHING", "YES"),
        ("CLIENT", "TRACKING", "maybe"), ("CLIENT", "TRACKING", "ON", "FOO"),
        ("CLIENT", "TRACKING", "ON", "PREFIX", "a"),
        ("CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"),
        ("CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"),
        ("CLIENT", "TRACKING", "ON", "REDIRECT", "x"),
        ("CLIENT", "TRACKING", "ON", "REDIRECT", "999999"),
        ("CLIENT", "TRACKING", "ON", "REDIRECT", "{other}", "REDIRECT", "{other}"),
        ("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "ab"),
        ("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab", "PREFIX", "a"),
        ("CLIENT", "TRACKING", "ON", "OPTIN", "REDIRECT", "{other}", "NOLOOP"),
        ("CLIENT", "TRACKINGINFO"), ("CLIENT", "GETREDIR"),
        ("CLIENT", "CACHING", "NO"), ("CLIENT", "CACHING", "maybe"),
        ("CLIENT", "CACHING", "YES"), ("CLIENT", "TRACKINGINFO"),
        ("CLIENT", "TRACKING", "ON", "OPTOUT"), ("CLIENT", "TRACKING", "ON", "BCAST"),
        ("CLIENT", "TRACKING", "OFF"), ("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p:"),
        ("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p:x"),
        ("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "q:"), ("CLIENT", "TRACKINGINFO"),
        ("CLIENT", "TRACKING", "OFF"), ("CLIENT", "TRACKINGINFO"),
    ]]
    seen = differential(server, redis_server, peers, script)
    assert b"optin" in seen["a"][14] and b"{other}" in seen["a"][15]


@pytest.mark.usefixtures("clean")
def test_client_list_flags_and_redir(server: ServerProcess) -> None:
    target = server.client()
    tracker = server.client()
    target_id = target.client_id()
    tracker.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", target_id)
    assert f"redir={target_id} " in tracker.execute_command("CLIENT", "INFO").decode()
    assert " flags=t " in tracker.execute_command("CLIENT", "INFO").decode()
    target.close()
    other = server.client()
    other.set("k", "1")
    tracker.get("k")
    other.set("k", "2")  # the redirect target has gone: the tracker is flagged R
    assert " flags=tR " in tracker.execute_command("CLIENT", "INFO").decode()
    tracker.execute_command("CLIENT", "TRACKING", "OFF")
    tracker.execute_command("CLIENT", "TRACKING", "ON", "BCAST")
    info = tracker.execute_command("CLIENT", "INFO").decode()
    assert " flags=tB " in info and " redir=0 " in info
    stats = other.info("stats")
    assert stats["tracking_total_prefixes"] == 1
    assert other.info("clients")["tracking_clients"] == 1
    tracker.close()
    other.close()


# ---------------------------------------------------------------------- invalidations

@pytest.mark.usefixtures("clean")
def test_default_mode_resp3_invalidations_equal_redis(
        server: ServerProcess, redis_server: RedisServerProcess) -> None:
    """Own writes (after the reply), other writers, MULTI, RENAME, MOVE, MGET, HGET, flush."""
    script = [
        ("w", ("MSET", "a", "1", "b", "2", "h", "x")), ("w", ("DEL", "h")),
        ("w", ("HSET", "h", "f", "v")),
        ("t", ("CLIENT", "TRACKING", "ON")), ("t", ("GET", "a")),
        ("t", ("MGET", "a", "b", "c")), ("t", ("HGET", "h", "f")),
        ("w", ("SET", "a", "10")), ("w", ("SET", "a", "11")),
        ("t", ("GET", "a")), ("t", ("SET", "a", "own")),
        ("w", ("HSET", "h", "f", "v2")), ("w", ("RENAME", "b", "b2")),
        ("t", ("GET", "b2")), ("t", ("EXISTS", "c")), ("w", ("SET", "c", "1")),
        ("t", ("GET", "b2")), ("w", ("MOVE", "b2", "3")),
        ("t", ("GET", "a")),
        ("t", (("MULTI",), ("GET", "a"), ("INCR", "a"), ("GET", "a"), ("EXEC",))),
        ("t", ("GET", "a")), ("w", ("FLUSHDB",)),
        ("t", ("GET", "a")), ("t", ("FLUSHALL",)), ("w", ("SET", "a", "1")),
        ("t", ("CLIENT", "TRACKING", "OFF")), ("t", ("GET", "a")), ("w", ("SET", "a", "2")),
    ]
    seen = differential(server, redis_server, {"t": True, "w": False}, script)
    assert b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n" in seen["t"][7]
    assert seen["t"][21] == b">2\r\n$10\r\ninvalidate\r\n_\r\n"


@pytest.mark.usefixtures("clean")
def test_swapdb_flushdb_and_scripts_equal_redis(
        server: ServerProcess, redis_server: RedisServerProcess) -> None:
    """Tracking keys are not per database; a script's reads are tracked for its caller."""
    script = [
        ("t", ("CLIENT", "TRACKING", "ON")), ("w", ("SET", "a", "1")), ("t", ("GET", "a")),
        ("w", ("SWAPDB", "0", "1")), ("t", ("GET", "a")), ("w", ("SELECT", "1")),
        ("w", ("SET", "a", "2")), ("t", ("GET", "a")), ("t", ("FLUSHDB",)),
        ("w", ("SELECT", "0")),
        ("t", ("EVAL", "return redis.call('GET', KEYS[1])", "1", "s")),
        ("w", ("SET", "s", "1")),
        ("t", ("EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "s2")),
        ("w", ("SET", "s2", "1")), ("t", ("GET", "x")),
        ("w", ("EVAL", "redis.call('SET', KEYS[1], 1)", "1", "x")), ("t", ("GET", "x")),
        ("w", ("COPY", "x", "y")), ("t", ("GET", "y")), ("w", ("COPY", "x", "y", "REPLACE")),
        ("t", ("EVAL", "return redis.call('SET', KEYS[1], 2)", "1", "y")),
    ]
    seen = differential(server, redis_server, {"t": True, "w": False}, script)
    assert seen["t"][8] == b"+OK\r\n>2\r\n$10\r\ninvalidate\r\n_\r\n"
    assert seen["t"][11] == b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\ns\r\n"


@pytest.mark.usefixtures("clean")
def test_resp2_redirect_equal_redis(server: ServerProcess,
                                    redis_server: RedisServerProcess) -> None:
    script = [
        ("r", ("SUBSCRIBE", "__redis__:invalidate")),
        ("t", ("CLIENT", "TRACKING", "ON", "REDIRECT", "{r}")),
        ("t", ("GET", "k")), ("w", ("SET", "k", "1")), ("t", ("GET", "k")),
        ("t", ("DEL", "k")), ("w", ("SET", "k", "2")), ("t", ("GET", "k")),
        ("w", ("FLUSHALL",)), ("t", ("CLIENT", "GETREDIR")),
    ]
    seen = differential(server, redis_server, {"r": False, "t": False, "w": False}, script)
    assert seen["r"][3] == (b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
                            b"*1\r\n$1\r\nk\r\n")
    assert seen["r"][8].endswith(b"$20\r\n__redis__:invalidate\r\n$-1\r\n")


@pytest.mark.usefixtures("clean")
def test_redirect_to_resp3_noloop_and_reset_equal_redis(
        server: ServerProcess, redis_server: RedisServerProcess) -> None:
    """A RESP3 target gets pushes without subscribing; a RESP2 tracker without redirect gets
    nothing; NOLOOP skips own writes; RESET turns tracking off."""
    script = [
        ("t2", ("CLIENT", "TRACKING", "ON", "REDIRECT", "{r3}")),
        ("plain", ("CLIENT", "TRACKING", "ON")), ("n", ("CLIENT", "TRACKING", "ON", "NOLOOP")),
        ("t2", ("GET", "k")), ("plain", ("GET", "k")), ("n", ("GET", "k")),
        ("n", ("SET", "k", "1")), ("t2", ("GET", "k")), ("n", ("GET", "k")),
        ("w", ("SET", "k", "2")), ("n", ("RESET",)), ("n", ("GET", "k")),
        ("w", ("SET", "k", "3")), ("n", ("CLIENT", "TRACKINGINFO")),
    ]
    peers = {"r3": True, "t2": False, "plain": False, "n": True, "w": False}
    seen = differential(server, redis_server, peers, script)
    assert seen["r3"][6] == b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
    assert seen["n"][6] == b"+OK\r\n"


@pytest.mark.usefixtures("clean")
def test_broken_redirect_equal_redis(server: ServerProcess,
                                     redis_server: RedisServerProcess) -> None:
    script = [
        ("t", ("CLIENT", "TRACKING", "ON", "REDIRECT", "{r}")), ("t", ("GET", "k")),
        ("r", ("QUIT",)), ("w", ("SET", "k", "1")), ("t", ("CLIENT", "TRACKINGINFO")),
    ]
    peers = {"t": True, "w": False, "r": False}
    theirs = play(redis_server.port, peers, script[:2])
    ours = play(server.port, peers, script[:2])
    assert ours == theirs
    # QUIT closes the connection the sync needs: check the rest through redis-py.
    for port in (server.port, redis_server.port):
        gone = redis.Redis(port=port)
        tracker = redis.Redis(port=port, protocol=3)
        tracker.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", gone.client_id())
        tracker.get("k")
        gone.close()
        redis.Redis(port=port).set("k", "2")
        info = tracker.execute_command("CLIENT", "TRACKINGINFO")
        assert set(info[b"flags"]) == {b"on", b"broken_redirect"}
        tracker.close()


@pytest.mark.usefixtures("clean")
def test_bcast_optin_optout_noloop_equal_redis(
        server: ServerProcess, redis_server: RedisServerProcess) -> None:
    script = [
        ("b", ("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "PREFIX", "job:")),
        ("n", ("CLIENT", "TRACKING", "ON", "BCAST", "NOLOOP")),
        ("i", ("CLIENT", "TRACKING", "ON", "OPTIN")),
        ("o", ("CLIENT", "TRACKING", "ON", "OPTOUT", "NOLOOP")),
        ("w", ("MSET", "user:1", "a", "job:9", "b", "other", "c")),
        ("n", ("SET", "user:2", "own")), ("n", ("MSET", "user:2", "x", "user:3", "y")),
        ("i", ("GET", "x")), ("i", ("CLIENT", "CACHING", "YES")), ("i", ("GET", "y")),
        ("i", ("GET", "z")),
        ("o", ("GET", "x")), ("o", ("CLIENT", "CACHING", "NO")), ("o", ("GET", "z")),
        ("o", ("GET", "q")), ("o", ("SET", "q", "own")),
        ("w", ("MSET", "x", "1", "y", "2", "z", "3", "q", "4")),
        ("w", ("EXPIRE", "user:1", "100")), ("w", ("DEL", "nothing")),
    ]
    seen = differential(server, redis_server,
                        {"b": True, "n": True, "i": True, "o": True, "w": False}, script)
    assert seen["b"][4] == (b">2\r\n$10\r\ninvalidate\r\n*1\r\n$5\r\njob:9\r\n"
                            b">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\nuser:1\r\n")


@pytest.mark.usefixtures("clean")
def test_expiry_invalidation_equal_redis(server: ServerProcess,
                                         redis_server: RedisServerProcess) -> None:
    script = [
        ("w", ("SET", "e", "1", "PX", "30")), ("t", ("CLIENT", "TRACKING", "ON")),
        ("t", ("GET", "e")), ("w", (("SLEEP", 0.1), ("GET", "e"))),
    ]
    seen = differential(server, redis_server, {"t": True, "w": False}, script)
    # active expiry may beat the lazy one: either way, one invalidation
    assert seen["t"][-1] == b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\ne\r\n"


@pytest.mark.usefixtures("clean")
def test_table_is_bounded_and_evicted_keys_invalidated(server: ServerProcess) -> None:
    admin = server.client()
    admin.config_set("tracking-table-max-keys", 100)
    try:
        keys = [f"bound:{i}" for i in range(1000)]
        admin.mset({k: "v" for k in keys})
        tracker = Peer(server.port, resp3=True)
        tracker.raw.send(command("CLIENT", "TRACKING", "ON"))
        assert tracker.sync() == b"+OK\r\n"
        tracker.raw.send(b"".join(command("GET", k) for k in keys))
        received = tracker.sync()
        assert received.count(b"$1\r\nv\r\n") == 1000
        stats = admin.info("stats")
        assert stats["tracking_total_keys"] <= 100
        assert stats["tracking_total_items"] == stats["tracking_total_keys"]
        invalidated = set(re.findall(rb"invalidate\r\n\*1\r\n\$\d+\r\n(bound:\d+)", received))
        assert len(invalidated) == 900
        assert invalidated == {k.encode() for k in keys[:900]}
        tracker.raw.close()  # the disconnect takes the client out of the table
        deadline = time.monotonic() + 5
        while admin.info("stats")["tracking_total_items"]:
            assert time.monotonic() < deadline, "the closed client stayed in the table"
            time.sleep(0.01)
    finally:
        admin.config_set("tracking-table-max-keys", 1_000_000)
        admin.close()


# ---------------------------------------------------------------------- redis-py

@pytest.mark.usefixtures("clean")
def test_redis_py_client_side_cache(server: ServerProcess,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """redis-py's own cache (RESP3): 10,000 reads, one reaches the server; a write elsewhere
    reaches every copy.

    redis-py (5.3 and later) turns its cache on only for a server that calls itself `redis`
    at version 7.4 or later in HELLO, a client-side gate, not a protocol need (7.0's tracking
    is what the cache uses): the test lifts the gate for jobcached, which says `jobcached`,
    7.0.
    """
    monkeypatch.setattr(CacheProxyConnection, "DEFAULT_SERVER_NAME", "jobcached")
    monkeypatch.setattr(CacheProxyConnection, "MIN_ALLOWED_VERSION", "7.0.0")
    cached = redis.Redis(port=server.port, protocol=3, cache_config=CacheConfig())
    writer = server.client()
    writer.set("hot", "v1")

    def get_calls() -> int:
        return int(writer.info("commandstats").get("cmdstat_get", {}).get("calls", 0))

    before = get_calls()
    for _ in range(10_000):
        assert cached.get("hot") == b"v1"
    assert get_calls() - before == 1
    writer.set("hot", "v2")
    deadline = time.monotonic() + 5
    while cached.get("hot") != b"v2":
        assert time.monotonic() < deadline, "the cached copy was never invalidated"
    assert cached.get("hot") == b"v2"
    assert get_calls() - before == 2
    cached.close()
    writer.close()


# ---------------------------------------------------------------------- engine and limits

@pytest.mark.usefixtures("clean")
def test_eviction_invalidates(server: ServerProcess) -> None:
    admin = server.client()
    keys = [f"ev:{i}" for i in range(200)]
    admin.mset({k: "x" * 1000 for k in keys})
    tracker = Peer(server.port, resp3=True)
    tracker.raw.send(command("CLIENT", "TRACKING", "ON"))
    tracker.raw.send(b"".join(command("GET", k) for k in keys))
    tracker.sync()
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory-policy", "allkeys-random")
    try:
        admin.config_set("maxmemory", used - 50_000)
        admin.set("trigger", "1")  # a write makes room first: it evicts
        evicted = [k for k in keys if not admin.exists(k)]
        assert evicted
        received = tracker.sync()
        told = re.findall(rb"invalidate\r\n\*1\r\n\$\d+\r\n(ev:\d+)", received)
        assert sorted(told) == sorted(k.encode() for k in evicted)
    finally:
        admin.config_set("maxmemory", 0)
        admin.config_set("maxmemory-policy", "noeviction")
        tracker.raw.close()
        admin.close()


@pytest.mark.usefixtures("clean")
def test_invalidations_count_against_the_output_limit(server: ServerProcess) -> None:
    """A redirect target that never reads is closed by the pubsub class's limit, like a
    subscriber flooded with messages."""
    admin = server.client()
    admin.config_set("client-output-buffer-limit-pubsub", "256kb")
    try:
        target = RawClient(server.port)
        target.send(command("CLIENT", "ID"))
        target_id = int(target.recv_line()[1:])
        target.send(command("SUBSCRIBE", "__redis__:invalidate"))
        tracker = Peer(server.port, resp3=False)
        tracker.raw.send(command("CLIENT", "TRACKING", "ON", "REDIRECT", target_id))
        keys = [b"flood:%d:" % i + b"k" * 2000 for i in range(4000)]
        tracker.raw.send(b"".join(command("GET", k) for k in keys))
        tracker.sync()
        before = admin.info("stats")["client_output_buffer_limit_disconnections"]
        admin.mset(dict.fromkeys(keys, b"v"))
        assert admin.info("stats")["client_output_buffer_limit_disconnections"] == before + 1
        assert f"id={target_id} " not in admin.execute_command("CLIENT", "LIST").decode()
        tracker.raw.close()
    finally:
        admin.config_set("client-output-buffer-limit-pubsub", "32mb")
        admin.close()
