"""The INFO reply: sections of `field:value` lines with Redis' field names.

Tools that parse Redis' INFO (redis-py's `info()`, exporters, `redis-cli --stat`) read ours
unchanged, so every field Redis has and we can honestly fill keeps its Redis name; fields of our
own are prefixed or live in sections of our own. Each section is a function of the server state;
later engines add sections by registering them in SECTIONS.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterable

from jobcached import REDIS_COMPAT_VERSION, __version__
from jobcached.commands.registry import walk
from jobcached.state import ServerState

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")

Section = Callable[[ServerState], list[tuple[str, object]]]


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (0 where that is unavailable)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE_BYTES
    except OSError:
        return 0


def human_bytes(n: int) -> str:
    for unit, size in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n}B"


def _server(state: ServerState) -> list[tuple[str, object]]:
    now_ms = state.clock.now_ms()
    uptime = (now_ms - state.started_ms) // 1000
    return [
        ("redis_version", REDIS_COMPAT_VERSION), ("jobcached_version", __version__),
        ("redis_mode", "standalone"), ("os", f"{platform.system()} {platform.release()} "
                                             f"{platform.machine()}"),
        ("arch_bits", 64 if sys.maxsize > 2**32 else 32), ("multiplexing_api", "uvloop"),
        ("python_version", platform.python_version()), ("process_id", state.pid),
        ("run_id", state.run_id), ("tcp_port", state.tcp_port),
        ("server_time_usec", time.time_ns() // 1000), ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400), ("hz", 10), ("executable", sys.argv[0]),
    ]


def _clients(state: ServerState) -> list[tuple[str, object]]:
    return [
        ("connected_clients", len(state.clients)), ("maxclients", state.config.maxclients),
        ("blocked_clients", 0),
    ]


def _memory(state: ServerState) -> list[tuple[str, object]]:
    cache = state.keyspace.info()
    used = cache["used_memory"]
    rss = rss_bytes()
    return [
        ("used_memory", used), ("used_memory_human", human_bytes(used)),
        ("used_memory_rss", rss), ("used_memory_rss_human", human_bytes(rss)),
        ("maxmemory", cache["maxmemory"]), ("maxmemory_human", human_bytes(cache["maxmemory"])),
        ("maxmemory_policy", cache["maxmemory_policy"]), ("mem_allocator", "pymalloc"),
    ]


def _persistence(state: ServerState) -> list[tuple[str, object]]:
    return [("loading", 0), ("aof_enabled", 0), ("rdb_changes_since_last_save", 0)]


def _stats(state: ServerState) -> list[tuple[str, object]]:
    s = state.stats
    cache = state.keyspace.info()
    return [
        ("total_connections_received", s.total_connections_received),
        ("total_commands_processed", s.total_commands_processed),
        ("total_net_input_bytes", s.total_net_input_bytes),
        ("total_net_output_bytes", s.total_net_output_bytes),
        ("rejected_connections", s.rejected_connections),
        ("expired_keys", cache["expired_keys"]), ("evicted_keys", cache["evicted_keys"]),
        ("keyspace_hits", cache["keyspace_hits"]), ("keyspace_misses", cache["keyspace_misses"]),
        ("total_error_replies", s.total_error_replies),
        ("client_query_buffer_limit_disconnections", s.client_query_buffer_limit_disconnections),
        ("client_output_buffer_limit_disconnections",
         s.client_output_buffer_limit_disconnections),
        ("protocol_errors", s.protocol_errors), ("auth_failures", s.auth_failures),
    ]


def _replication(state: ServerState) -> list[tuple[str, object]]:
    backlog = state.backlog
    first = backlog.first_offset
    return [("role", "master"), ("connected_slaves", 0), ("master_replid", state.run_id),
            ("master_repl_offset", backlog.next_offset), ("repl_backlog_active", 0),
            ("repl_backlog_size", backlog.max_bytes),
            ("repl_backlog_first_byte_offset", first),
            ("repl_backlog_histlen", backlog.next_offset - first)]


def _cpu(state: ServerState) -> list[tuple[str, object]]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return [("used_cpu_sys", f"{usage.ru_stime:.6f}"), ("used_cpu_user", f"{usage.ru_utime:.6f}")]


def _commandstats(state: ServerState) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for cmd in walk():
        if cmd.calls or cmd.rejected_calls or cmd.failed_calls:
            per_call = cmd.usec / cmd.calls if cmd.calls else 0.0
            rows.append((f"cmdstat_{cmd.fullname}",
                         f"calls={cmd.calls},usec={cmd.usec},usec_per_call={per_call:.2f},"
                         f"rejected_calls={cmd.rejected_calls},failed_calls={cmd.failed_calls}"))
    return rows


def _keyspace(state: ServerState) -> list[tuple[str, object]]:
    cache = state.keyspace.info()
    if not cache["keys"]:
        return []
    return [("db0", f"keys={cache['keys']},expires={cache['expires']},avg_ttl={cache['avg_ttl']}")]


#: section name -> renderer, in INFO's order; DEFAULT are shown by a bare INFO
SECTIONS: dict[str, Section] = {
    "server": _server, "clients": _clients, "memory": _memory, "persistence": _persistence,
    "stats": _stats, "replication": _replication, "cpu": _cpu, "commandstats": _commandstats,
    "keyspace": _keyspace,
}
DEFAULT = ("server", "clients", "memory", "persistence", "stats", "replication", "cpu",
           "keyspace")


def render_info(state: ServerState, wanted: Iterable[str]) -> bytes:
    """The INFO text for the requested section names (`default`, `all`, `everything` too)."""
    requested = list(wanted)
    names: list[str] = []
    for raw in requested:
        name = raw.lower()
        if name == "default":
            names.extend(DEFAULT)
        elif name in ("all", "everything"):
            names.extend(SECTIONS)
        elif name in SECTIONS:
            names.append(name)
    if not requested:
        names = list(DEFAULT)
    blocks = []
    for name in dict.fromkeys(names):
        lines = [f"# {name.capitalize()}"]
        lines.extend(f"{key}:{value}" for key, value in SECTIONS[name](state))
        blocks.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(blocks).encode()
