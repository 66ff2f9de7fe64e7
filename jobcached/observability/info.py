"""The INFO reply: sections of `field:value` lines with Redis' field names.

Tools that parse Redis' INFO (redis-py's `info()`, exporters, `redis-cli --stat`) read ours
unchanged, so every field Redis has and we can honestly fill keeps its Redis name; fields of our
own are prefixed or live in sections of our own. Each section is a function of the server state
(STATE_SECTIONS) or, for commandstats and latencystats, of the state and the command table's
rows (TABLE_SECTIONS): the INFO command passes the table in, as observability/ sits below
commands/. SECTIONS gives Redis' order.

`used_memory` is the cache's estimate plus the job engine's (jobs count against `maxmemory`
too, see jobs/memory.py); INFO memory also shows the two parts, `used_memory_cache` and
`used_memory_jobs`, and INFO jobs repeats the latter.

Sections of our own: `# Jobs` (one `queue_<name>:pending=..,queued=..,...,lag_ms=..` line per
queue, names escaped so that `:` `,` `=` and spaces cannot break a parser). `# Persistence`
describes the write-ahead log with Redis' AOF field names where they mean the same thing
(`aof_enabled:1`: the WAL is our append-only file, for jobs) and `wal_*` fields for the rest.
`loading` is always 0 here: the RESP listeners open only after the replay (see app.py), so a
client never sees a loading server; /readyz reports the replay instead.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterable

from jobcached import REDIS_COMPAT_VERSION, __version__
from jobcached.jobs.model import State
from jobcached.jobs.ready import ReadyQueue
from jobcached.net.speedups import REQUEST_PATH
from jobcached.server.interfaces import CommandRow
from jobcached.server.rates import rates
from jobcached.server.state import (
    FAILED,
    LATENCY_SLOTS,
    REJECTED,
    USEC,
    ServerState,
    calls_of,
)

#: Queues listed in INFO jobs; QUEUE.LIST and QUEUE.STATS reach the others.
INFO_MAX_QUEUES = 1000
#: Percentiles INFO latencystats shows (Redis' default latency-tracking-info-percentiles).
LATENCY_PERCENTILES = (50.0, 99.0, 99.9)

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
#: Redis' LRU clock: seconds, 24 bits (LRU_CLOCK_MAX)
LRU_CLOCK_MAX = (1 << 24) - 1

Section = Callable[[ServerState], list[tuple[str, object]]]
#: every row of the command table, subcommands included (commands.registry.walk)
CommandTable = Callable[[], Iterable[CommandRow]]
TableSection = Callable[[ServerState, CommandTable], list[tuple[str, object]]]


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
        ("redis_git_sha1", "00000000"), ("redis_git_dirty", 0), ("redis_build_id", "0"),
        ("redis_mode", "standalone"), ("os", f"{platform.system()} {platform.release()} "
                                             f"{platform.machine()}"),
        ("arch_bits", 64 if sys.maxsize > 2**32 else 32),
        ("monotonic_clock", "POSIX clock_gettime"), ("multiplexing_api", "uvloop"),
        ("atomicvar_api", "none"), ("gcc_version", "0.0.0"),
        ("python_version", platform.python_version()), ("process_id", state.pid),
        ("process_supervised", "no"), ("run_id", state.run_id), ("tcp_port", state.tcp_port),
        ("server_time_usec", time.time_ns() // 1000), ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400), ("hz", 10), ("configured_hz", 10),
        ("lru_clock", (now_ms // 1000) & LRU_CLOCK_MAX), ("executable", sys.argv[0]),
        ("config_file", state.config.config_file), ("io_threads_active", 0),
        ("request_path", REQUEST_PATH),
    ]


def _clients(state: ServerState) -> list[tuple[str, object]]:
    return [
        ("connected_clients", len(state.clients)), ("cluster_connections", 0),
        ("maxclients", state.config.maxclients),
        ("client_recent_max_input_buffer", 0), ("client_recent_max_output_buffer", 0),
        ("blocked_clients", (state.blocked_keys.blocked if state.blocked_keys else 0)
         + (state.jobs.waiters.blocked if state.jobs else 0)),
        ("tracking_clients", state.tracking.tracking_clients), ("clients_in_timeout_table", 0),
    ]


def _memory(state: ServerState) -> list[tuple[str, object]]:
    cache = state.dbs.info()
    jobs = state.jobs_memory()
    used = cache["used_memory"] + jobs
    rss = rss_bytes()
    sampled = rates(state)
    peak = sampled.memory_peak = max(sampled.memory_peak, used)
    scripts = len(state.scripts.engine.scripts) if state.scripts else 0
    system = os.sysconf("SC_PHYS_PAGES") * _PAGE_BYTES
    return [
        ("used_memory", used), ("used_memory_human", human_bytes(used)),
        ("used_memory_cache", cache["used_memory"]),
        ("used_memory_jobs", jobs), ("used_memory_jobs_human", human_bytes(jobs)),
        ("used_memory_rss", rss), ("used_memory_rss_human", human_bytes(rss)),
        ("used_memory_peak", peak), ("used_memory_peak_human", human_bytes(peak)),
        ("used_memory_peak_perc", _percent(used, peak)),
        ("used_memory_overhead", 0), ("used_memory_startup", 0),
        ("used_memory_dataset", used), ("used_memory_dataset_perc", _percent(used, used)),
        ("allocator_allocated", used), ("allocator_active", rss), ("allocator_resident", rss),
        ("total_system_memory", system), ("total_system_memory_human", human_bytes(system)),
        ("used_memory_lua", 0), ("used_memory_vm_eval", 0), ("used_memory_lua_human", "0B"),
        ("used_memory_scripts_eval", 0), ("number_of_cached_scripts", scripts),
        ("number_of_functions", 0), ("number_of_libraries", 0),
        ("used_memory_vm_functions", 0), ("used_memory_vm_total", 0),
        ("used_memory_vm_total_human", "0B"), ("used_memory_functions", 0),
        ("used_memory_scripts", 0), ("used_memory_scripts_human", "0B"),
        ("maxmemory", cache["maxmemory"]), ("maxmemory_human", human_bytes(cache["maxmemory"])),
        ("maxmemory_policy", cache["maxmemory_policy"]),
        ("allocator_frag_ratio", _ratio(rss, used)), ("allocator_frag_bytes", rss - used),
        ("allocator_rss_ratio", "1.00"), ("allocator_rss_bytes", 0),
        ("rss_overhead_ratio", "1.00"), ("rss_overhead_bytes", 0),
        ("mem_fragmentation_ratio", _ratio(rss, used)), ("mem_fragmentation_bytes", rss - used),
        ("mem_not_counted_for_evict", 0), ("mem_replication_backlog", state.backlog.histlen),
        ("mem_total_replication_buffers", 0), ("mem_clients_slaves", 0),
        ("mem_clients_normal", 0), ("mem_cluster_links", 0), ("mem_aof_buffer", 0),
        ("mem_allocator", "pymalloc"), ("active_defrag_running", 0),
        ("lazyfree_pending_objects", 0), ("lazyfreed_objects", 0),
    ]


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "0.00%"


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}" if b else "0.00"


def _persistence(state: ServerState) -> list[tuple[str, object]]:
    durability = state.effects.durability
    rows: list[tuple[str, object]] = [
        ("loading", int(state.loading)), ("async_loading", 0),
        ("current_cow_peak", 0), ("current_cow_size", 0), ("current_cow_size_age", 0),
        ("current_fork_perc", "0.00"), ("current_save_keys_processed", 0),
        ("current_save_keys_total", 0), *state.saver.info_rows(),
    ]
    if durability is None:
        return [*rows, *_aof(0, 0, "ok", "ok", 0), ("wal_enabled", 0)]
    wal = durability.wal.stats
    status = "err" if durability.failure is not None else "ok"
    rows += [
        *_aof(1, int(durability.compacting), "ok" if durability.last_compaction_ok else "err",
              status, wal.compactions),
        ("wal_enabled", 1), ("appendfsync", state.config.appendfsync),
        ("wal_bytes", wal.bytes_written), ("wal_records_written", wal.records_written),
        ("wal_records", durability.records_in_log), ("wal_segments", wal.segments),
        ("wal_fsyncs", wal.fsyncs), ("wal_compactions", wal.compactions),
        ("wal_truncated_tail_bytes", wal.truncated_tail_bytes),
        ("wal_skipped_records", state.jobs.skipped_records if state.jobs else 0),
        ("wal_held_records", durability.held_records()),
        ("wal_last_write_status", status),
        ("wal_last_fsync_status", "err" if wal.last_fsync_error else "ok"),
    ]
    if durability.failure is not None:
        rows.append(("wal_last_error", _one_line(str(durability.failure))))
    return rows


def _aof(enabled: int, rewriting: int, rewrite_status: str, write_status: str,
         rewrites: int) -> list[tuple[str, object]]:
    """Redis' AOF fields: the WAL is our append-only file (for jobs)."""
    return [
        ("aof_enabled", enabled), ("aof_rewrite_in_progress", rewriting),
        ("aof_rewrite_scheduled", 0), ("aof_last_rewrite_time_sec", -1),
        ("aof_current_rewrite_time_sec", -1), ("aof_last_bgrewrite_status", rewrite_status),
        ("aof_rewrites", rewrites), ("aof_rewrites_consecutive_failures", 0),
        ("aof_last_write_status", write_status), ("aof_last_cow_size", 0),
        ("module_fork_in_progress", 0), ("module_fork_last_cow_size", 0),
    ]


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def _stats(state: ServerState) -> list[tuple[str, object]]:
    s = state.stats
    cache = state.dbs.info()
    sampled = rates(state)
    sampled.sample(state)
    pubsub = state.pubsub
    return [
        ("total_connections_received", s.total_connections_received),
        ("total_commands_processed", s.total_commands_processed),
        ("instantaneous_ops_per_sec", sampled.ops_per_sec),
        ("total_net_input_bytes", s.total_net_input_bytes),
        ("total_net_output_bytes", s.total_net_output_bytes),
        ("total_net_repl_input_bytes", 0), ("total_net_repl_output_bytes", 0),
        ("instantaneous_input_kbps", f"{sampled.input_kbps:.2f}"),
        ("instantaneous_output_kbps", f"{sampled.output_kbps:.2f}"),
        ("instantaneous_input_repl_kbps", "0.00"), ("instantaneous_output_repl_kbps", "0.00"),
        ("rejected_connections", s.rejected_connections),
        ("sync_full", state.leader.full_syncs), ("sync_partial_ok", state.leader.partial_syncs_ok),
        ("sync_partial_err", state.leader.partial_syncs_err),
        ("expired_keys", cache["expired_keys"]), ("expired_stale_perc", "0.00"),
        ("expired_time_cap_reached_count", 0), ("expire_cycle_cpu_milliseconds", 0),
        ("evicted_keys", cache["evicted_keys"]), ("evicted_clients", 0),
        ("total_eviction_exceeded_time", 0), ("current_eviction_exceeded_time", 0),
        ("keyspace_hits", cache["keyspace_hits"]), ("keyspace_misses", cache["keyspace_misses"]),
        ("pubsub_channels", len(pubsub.active_channels())), ("pubsub_patterns", pubsub.numpat()),
        ("pubsubshard_channels", len(pubsub.active_shard_channels())),
        ("latest_fork_usec", 0), ("total_forks", 0), ("migrate_cached_sockets", 0),
        ("slave_expires_tracked_keys", 0), ("active_defrag_hits", 0),
        ("active_defrag_misses", 0), ("active_defrag_key_hits", 0),
        ("active_defrag_key_misses", 0), ("total_active_defrag_time", 0),
        ("current_active_defrag_time", 0), *state.tracking.info().items(),
        ("unexpected_error_replies", s.unexpected_error_replies),
        ("total_error_replies", s.total_error_replies),
        ("dump_payload_sanitizations", 0),
        ("total_reads_processed", s.total_commands_processed),
        ("total_writes_processed", s.total_commands_processed),
        ("io_threaded_reads_processed", 0), ("io_threaded_writes_processed", 0),
        ("reply_buffer_shrinks", 0), ("reply_buffer_expands", 0),
        ("client_query_buffer_limit_disconnections", s.client_query_buffer_limit_disconnections),
        ("client_output_buffer_limit_disconnections",
         s.client_output_buffer_limit_disconnections),
        ("protocol_errors", s.protocol_errors), ("auth_failures", s.auth_failures),
        ("gc_full_collections", state.gc.collections if state.gc else 0),
        ("gc_last_full_pause_ms", round(state.gc.last_pause_ms, 3) if state.gc else 0),
    ]


def _good_replicas(state: ServerState) -> list[tuple[str, object]]:
    """`min_slaves_good_slaves`, shown as Redis does only while min-replicas-to-write and
    min-replicas-max-lag are both set (a follower has no followers of its own: 0)."""
    config = state.config
    if not (config.min_replicas_to_write and config.min_replicas_max_lag):
        return []
    good = state.leader.good_replicas() if state.follower is None else 0
    return [("min_slaves_good_slaves", good)]


def _replication(state: ServerState) -> list[tuple[str, object]]:
    """Redis' fields: a leader's followers, or a follower's link (replication/)."""
    backlog = state.backlog
    follower = state.follower
    lines: list[tuple[str, object]]
    if follower is None:
        offset = backlog.offset
        slaves = state.leader.info_lines()
        lines = [("role", "master"), ("connected_slaves", len(slaves)),
                 *_good_replicas(state), *slaves]
    else:
        offset = max(follower.offset, 0)
        now = state.clock.monotonic_ms()
        lines = [("role", "slave"), ("master_host", follower.host),
                 ("master_port", follower.port),
                 ("master_link_status", "up" if follower.link_up else "down"),
                 ("master_last_io_seconds_ago",
                  (now - follower.last_io_ms) // 1000 if follower.last_io_ms else -1),
                 ("master_sync_in_progress", int(follower.sync_in_progress)),
                 ("slave_read_repl_offset", offset), ("slave_repl_offset", offset)]
        if not follower.link_up:
            lines.append(("master_link_down_since_seconds",
                          (now - follower.down_since_ms) // 1000))
        config = state.config
        lines += [("slave_priority", config.replica_priority), ("slave_read_only", 1),
                  ("replica_announced", int(config.replica_announced)),
                  ("connected_slaves", 0), *_good_replicas(state)]
    first = backlog.first_offset
    return [*lines, ("master_failover_state", "no-failover"),
            ("master_replid", follower.replid if follower is not None and
             follower.offset >= 0 else backlog.replid),
            ("master_replid2", backlog.replid2), ("master_repl_offset", offset),
            ("second_repl_offset", backlog.second_offset),
            ("repl_backlog_active", int(backlog.active)),
            ("repl_backlog_size", backlog.max_bytes),
            ("repl_backlog_first_byte_offset", first + 1),
            ("repl_backlog_histlen", backlog.offset - first)]


def _cpu(state: ServerState) -> list[tuple[str, object]]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    main = resource.getrusage(resource.RUSAGE_THREAD)
    return [("used_cpu_sys", f"{usage.ru_stime:.6f}"), ("used_cpu_user", f"{usage.ru_utime:.6f}"),
            ("used_cpu_sys_children", f"{children.ru_stime:.6f}"),
            ("used_cpu_user_children", f"{children.ru_utime:.6f}"),
            ("used_cpu_sys_main_thread", f"{main.ru_stime:.6f}"),
            ("used_cpu_user_main_thread", f"{main.ru_utime:.6f}")]


def _modules(state: ServerState) -> list[tuple[str, object]]:
    return []  # no modules here


def _cluster(state: ServerState) -> list[tuple[str, object]]:
    return [("cluster_enabled", 0)]


def _commandstats(state: ServerState, commands: CommandTable) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    command_stats = state.command_stats
    for cmd in commands():
        stats = command_stats.get(cmd)
        if stats is not None:
            calls, usec = calls_of(stats), stats[USEC]
            per_call = usec / calls if calls else 0.0
            rows.append((f"cmdstat_{cmd.fullname}",
                         f"calls={calls},usec={usec},usec_per_call={per_call:.2f},"
                         f"rejected_calls={stats[REJECTED]},failed_calls={stats[FAILED]}"))
    return rows


def _errorstats(state: ServerState) -> list[tuple[str, object]]:
    return [(f"errorstat_{code}", f"count={count}")
            for code, count in sorted(state.errorstats.items())]


def percentile_us(histogram: list[int], percentile: float) -> float:
    """The upper bound (us) of the log2 slot holding the given percentile (0 when empty)."""
    total = sum(histogram[:LATENCY_SLOTS])
    if not total:
        return 0.0
    rank = total * percentile / 100
    seen = 0
    for slot in range(LATENCY_SLOTS):
        seen += histogram[slot]
        if seen >= rank:
            return float(1 << slot)
    return float(1 << (LATENCY_SLOTS - 1))


def _latencystats(state: ServerState, commands: CommandTable) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    command_stats = state.command_stats
    for cmd in commands():
        histogram = command_stats.get(cmd)
        if histogram is not None and calls_of(histogram):
            values = ",".join(f"p{p:g}={percentile_us(histogram, p):.3f}"
                              for p in LATENCY_PERCENTILES)
            rows.append((f"latency_percentiles_usec_{cmd.fullname}", values))
    return rows


def escape_queue_name(name: str) -> str:
    """A queue name safe as an INFO field name: bytes other than [A-Za-z0-9_.-] as %XX."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_.-")
                   else "".join(f"%{b:02X}" for b in ch.encode()) for ch in name)


def _jobs(state: ServerState) -> list[tuple[str, object]]:
    engine = state.jobs
    if engine is None:
        return [("jobs", 0), ("used_memory_jobs", 0), ("queues", 0)]
    rows: list[tuple[str, object]] = [("jobs", len(engine.jobs)),
                                      ("used_memory_jobs", engine.used_memory),
                                      ("queues", len(engine.queues)),
                                      ("batches", len(engine.batches)),
                                      ("cron_entries", len(engine.crons))]
    archiver = state.archiver
    if archiver is not None:
        stats = archiver.stats
        rows += [("archive_ok", int(archiver.archive is not None)),
                 ("archive_moved", stats.moved), ("archive_purged", stats.purged),
                 ("archive_errors", stats.errors),
                 ("archive_last_error", _one_line(stats.last_error))]
    now = state.clock.now_ms()
    names = set(engine.queues) | (archiver.queues() if archiver is not None else set())
    for name in sorted(names)[:INFO_MAX_QUEUES]:
        queue = engine.queues.get(name) or ReadyQueue(name)
        counts = queue.counts  # computed from the index: read once
        oldest = queue.oldest() if counts[State.QUEUED] else None
        lag = max(0, now - oldest.enqueued_ms) if oldest is not None else 0
        archived = archiver.counts(name) if archiver is not None else {}
        states = ",".join(f"{s.value}={counts[s] + archived.get(s, 0)}" for s in State)
        rows.append((f"queue_{escape_queue_name(name)}",
                     f"{states},lag_ms={lag},paused={int(queue.paused)},pushed={queue.pushed},"
                     f"fetched={queue.fetched},failed_attempts={queue.failed_attempts}"))
    return rows


def _keyspace(state: ServerState) -> list[tuple[str, object]]:
    return list(state.dbs.keyspace_lines())


#: section name -> renderer, in INFO's order; DEFAULT are shown by a bare INFO (and by
#: `default`), every section by `all` and `everything` (we have no modules)
STATE_SECTIONS: dict[str, Section] = {
    "server": _server, "clients": _clients, "memory": _memory, "persistence": _persistence,
    "stats": _stats, "replication": _replication, "cpu": _cpu, "modules": _modules,
    "errorstats": _errorstats, "cluster": _cluster, "jobs": _jobs, "keyspace": _keyspace,
}
TABLE_SECTIONS: dict[str, TableSection] = {
    "commandstats": _commandstats, "latencystats": _latencystats,
}
#: every section, in Redis' order
SECTIONS = ("server", "clients", "memory", "persistence", "stats", "replication", "cpu",
            "modules", "commandstats", "errorstats", "latencystats", "cluster", "jobs",
            "keyspace")
DEFAULT = ("server", "clients", "memory", "persistence", "stats", "replication", "cpu",
           "modules", "errorstats", "cluster", "jobs", "keyspace")
#: headings Redis does not spell as the capitalized section name
_HEADINGS = {"cpu": "CPU"}


def render_info(state: ServerState, wanted: Iterable[str], commands: CommandTable) -> bytes:
    """The INFO text for the requested section names (`default`, `all`, `everything` too);
    `commands` walks the command table (commandstats, latencystats)."""
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
    for name in (n for n in SECTIONS if n in names):  # Redis' order, whatever was asked
        lines = [f"# {_HEADINGS.get(name, name.capitalize())}"]
        table_section = TABLE_SECTIONS.get(name)
        pairs = (table_section(state, commands) if table_section is not None
                 else STATE_SECTIONS[name](state))
        lines.extend(f"{key}:{value}" for key, value in pairs)
        blocks.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(blocks).encode()
