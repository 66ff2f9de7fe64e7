"""INFO against a real redis-server 7.0: every section Redis has, with at least Redis' field
names; `default`, `all`, `everything` and several sections in one call; redis-py parses it."""

from __future__ import annotations

import re

from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.differential import Pair, raw_call

SECTIONS = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu",
            "modules", "errorstats", "cluster", "keyspace", "commandstats", "latencystats"]
#: fields whose names carry data (a command, an error code, a database)
_DATA_FIELDS = re.compile(r"(cmdstat_|errorstat_|latency_percentiles_usec_|db\d+$)")


def _parse(text: bytes | str) -> dict[str, dict[str, str]]:
    """{heading: {field: value}} from an INFO reply."""
    if isinstance(text, bytes):
        text = text.decode()
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# "):
            current = sections.setdefault(line[2:], {})
        elif ":" in line:
            key, _, value = line.partition(":")
            current[key] = value
    return sections


def _info(p: Pair, *sections: str) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    ours, theirs = p.both("INFO", *sections)
    return _parse(ours), _parse(theirs)


def test_every_section_has_redis_field_names(pair: Pair) -> None:
    pair.both("SET", "info-key", "v")
    pair.both("GET", "info-key")
    pair.both("NOSUCHCOMMAND")
    for section in SECTIONS:
        ours, theirs = _info(pair, section)
        assert list(ours) == list(theirs), section
        for heading, fields in theirs.items():
            static = {f for f in fields if not _DATA_FIELDS.match(f)}
            assert static <= set(ours[heading]), (section, static - set(ours[heading]))
    ours, theirs = _info(pair, "commandstats", "errorstats")
    assert {"cmdstat_set", "cmdstat_get"} <= set(ours["Commandstats"])
    assert set(ours["Errorstats"]) == set(theirs["Errorstats"]) == {"errorstat_ERR"}


def test_section_selection(pair: Pair) -> None:
    """`default`, `all`, `everything` and several names in one call list Redis' headings in
    Redis' order (ours add `# Jobs`)."""
    for selection in ([], ["default"], ["all"], ["everything"], ["server", "CPU", "cluster"],
                      ["keyspace", "server"], ["nosuch"]):
        ours, theirs = _info(pair, *selection)
        assert [h for h in ours if h != "Jobs"] == list(theirs), selection


def test_redis_py_and_exporter_fields(server: ServerProcess,
                                      redis_server: RedisServerProcess) -> None:
    """redis-py's info() parses every section, and the fields exporters graph are numbers."""
    r = server.client()
    info = r.info("everything")
    for field in ("used_memory", "connected_clients", "instantaneous_ops_per_sec",
                  "keyspace_hits", "rdb_last_save_time", "master_repl_offset",
                  "used_memory_peak", "total_system_memory", "uptime_in_seconds"):
        assert isinstance(info[field], int), field
    assert info["cluster_enabled"] == 0 and info["role"] == "master"
    assert info["used_memory_peak"] >= info["used_memory"]
    theirs = redis_server.client().info("everything")
    assert {k for k in theirs if not _DATA_FIELDS.match(k)} <= set(info)
    r.close()


def test_config_file_field(server: ServerProcess) -> None:
    text = raw_call(server.client(), "INFO", "server")
    assert b"\r\nconfig_file:\r\n" in text
