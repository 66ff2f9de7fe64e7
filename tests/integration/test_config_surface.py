"""CONFIG against a real redis-server 7.0: every parameter name, CONFIG SET of each (value set,
then read back, or the same refusal), Redis' validation errors, atomic multi-pair SET, aliases
and several patterns in one GET; CONFIG REWRITE and a restart from the rewritten file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobcached.config import Config
from jobcached.settings import redisconfig
from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.differential import Pair, raw_call

#: Redis parameters CONFIG SET treats differently here, and why (spec-preamble.md, CONFIG):
#: our server reads them only at start (refused as immutable), or ours has its own notation
OURS_DIFFER = {
    "port": "listeners open once", "bind": "listeners open once",
    "appendfsync": "the WAL writer is set up at start",
    "client-output-buffer-limit": "six keys of ours instead of Redis' class line",
    "loglevel": "our levels (info for Redis' notice)",
    "tls-port": "listeners open once (redis-server also refuses it without certificates)",
}
#: values Redis refuses for reasons of its build or missing files, which we store without
#: effect (spec-preamble.md: accepted without effect)
REDIS_REFUSES = {
    "activedefrag": "Redis needs its own jemalloc for it",
    "tls-cluster": "no TLS certificates configured",
    "tls-replication": "no TLS certificates configured",
}
#: values that would cut the test off from the server if they took effect
HARMLESS = {"requirepass": "", "masterauth": "", "masteruser": "", "timeout": "0"}


def test_config_get_star_names_include_redis(server: ServerProcess,
                                              redis_server: RedisServerProcess) -> None:
    ours = raw_call(server.client(protocol=3), "CONFIG", "GET", "*")
    theirs = raw_call(redis_server.client(protocol=3), "CONFIG", "GET", "*")
    assert set(theirs) <= set(ours)
    assert {name.encode() for name in Config.names()} <= set(ours)


def _new_value(name: str, current: str) -> str:
    """A valid value other than the current one, by the parameter's Redis type."""
    spec = redisconfig.table()[name]
    kind = spec["type"]
    if name in HARMLESS:
        return HARMLESS[name]
    if kind == "bool":
        return "no" if current == "yes" else "yes"
    if kind == "enum":
        return next(c for c in spec["choices"] if c != current)
    if kind in ("int", "memory", "memory-or-percent"):
        value = int(current) + 7
        return str(value if value <= spec.get("max", value) else spec.get("min", 0))
    return current  # strings and parameters Redis checks with code of its own


def _round_trip(p: Pair, name: str, spec: dict[str, Any]) -> None:
    before = p.both("CONFIG", "GET", name)
    current = before[1][name.encode()].decode()
    value = _new_value(name, current)
    ours, theirs = p.both("CONFIG", "SET", name, value)
    if name in OURS_DIFFER:
        assert ours == b"OK" or ours[1].startswith(
            f"CONFIG SET failed (possibly related to argument '{name}') - "), (name, ours)
        raw_call(p.theirs, "CONFIG", "SET", name, current)  # `port` moves redis-server
        return
    if name in REDIS_REFUSES:
        assert ours == b"OK" and theirs[0] == "error", (name, ours, theirs)
        p.check("CONFIG", "SET", name, current)
        return
    assert ours == theirs, (name, value, ours, theirs)
    if theirs == b"OK":
        p.check("CONFIG", "GET", name)
        for side, old in zip((p.ours, p.theirs), before, strict=True):
            raw_call(side, "CONFIG", "SET", name, old[name.encode()])


@pytest.fixture
def p(server: ServerProcess, redis_server: RedisServerProcess) -> Iterator[Pair]:
    """Both servers under RESP2 (CONFIG's replies do not depend on the protocol)."""
    both = Pair(server.client(), redis_server.client())
    yield both
    both.ours.close()
    both.theirs.close()


def test_config_set_round_trip_every_parameter(p: Pair) -> None:
    """Each Redis parameter: set to another valid value and read back on both servers (or
    refused by both with the same error), then set back."""
    for name, spec in redisconfig.table().items():
        _round_trip(p, name, spec)


BAD_VALUES = [
    ("appendonly", "maybe"), ("hz", "ten"), ("hz", "01"), ("hz", "-5"), ("tcp-keepalive", "-1"),
    ("maxmemory", "1xb"), ("maxmemory", "-1"), ("maxmemory-policy", "nosuch"),
    ("maxmemory-clients", "x%"), ("list-max-listpack-size", "99999999999"),
    ("shutdown-on-sigterm", "now never"), ("maxclients", "0"), ("slowlog-max-len", "x"),
    ("protected-mode", "perhaps"), ("lfu-log-factor", "-1"), ("daemonize", "yes"),
    ("nosuch-parameter", "1"), ("dir", "/tmp"),
]


def test_config_set_errors_are_redis(p: Pair) -> None:
    for name, value in BAD_VALUES:
        p.check("CONFIG", "SET", name, value)


def test_config_set_several_pairs_is_atomic(p: Pair) -> None:
    p.check("CONFIG", "SET", "maxmemory-samples", "7", "hz", "ten")
    p.check("CONFIG", "GET", "maxmemory-samples")
    p.check("CONFIG", "SET", "hz", "20", "daemonize", "no")  # the immutable one is found first
    p.check("CONFIG", "SET", "hz", "20", "hz", "30")
    p.check("CONFIG", "SET", "hz", "20", "nosuch", "30")
    p.check("CONFIG", "SET", "hz", "20", "maxmemory")
    p.check("CONFIG", "SET", "maxmemory-samples", "9", "hz", "25", "activerehashing", "no")
    p.check("CONFIG", "GET", "maxmemory-samples")
    p.check("CONFIG", "GET", "hz")
    p.check("CONFIG", "GET", "activerehashing")
    p.check("CONFIG", "SET", "maxmemory-samples", "5", "hz", "10", "activerehashing", "yes")


def test_config_get_patterns_and_aliases(p: Pair) -> None:
    p.check("CONFIG", "SET", "replica-read-only", "no")
    p.check("CONFIG", "GET", "slave-read-only")
    p.check("CONFIG", "GET", "SLAVE-READ-ONLY", "replica-read-*", "MAXMEMORY", "lua-time-limit")
    p.check("CONFIG", "GET", "hash-max-*", "zset-max-ziplist-*", "nosuch")
    p.check("CONFIG", "SET", "slave-read-only", "yes")
    p.check("CONFIG", "GET", "replica-read-only")
    p.check("CONFIG", "SET", "maxmemory", "64mb")
    p.check("CONFIG", "GET", "maxmemory")
    p.check("CONFIG", "SET", "maxmemory", "0")
    p.check("CONFIG", "REWRITE")  # neither server was started with a config file


def test_config_rewrite_round_trip(start_server: Callable[..., ServerProcess],
                                   tmp_path: Path) -> None:
    """REWRITE keeps comments, updates the lines it knows, appends what changed; a restart
    from the rewritten file has the values in force before."""
    conf = tmp_path / "jobcached.conf"
    conf.write_text("# cache node\nmaxmemory 10mb\n\n# scheduling\nhz 20\nhz 30\n")
    first = start_server("--config", str(conf))
    r = first.client()
    r.config_set("maxmemory", "20mb")
    r.config_set("hz", "40")
    r.config_set("slowlog-max-len", "77")
    r.config_set("list-max-ziplist-size", "-3")
    assert r.execute_command("CONFIG", "REWRITE") == b"OK"
    text = conf.read_text()
    assert text.startswith("# cache node\nmaxmemory 20971520\n\n# scheduling\nhz 40\n")
    assert text.count("\nhz ") == 1
    assert "# Generated by CONFIG REWRITE\n" in text
    assert "\nslowlog-max-len 77\n" in text and "\nlist-max-listpack-size -3\n" in text
    r.close()
    first.stop()
    again = start_server("--config", str(conf)).client()
    assert again.config_get("maxmemory") == {"maxmemory": "20971520"}
    assert again.config_get("hz") == {"hz": "40"}
    assert again.config_get("slowlog-max-len") == {"slowlog-max-len": "77"}
    assert again.config_get("list-max-ziplist-size") == {"list-max-ziplist-size": "-3"}
    again.close()
