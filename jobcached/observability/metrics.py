"""Prometheus metrics: one custom collector that reads the server's plain counters at scrape time.

Why a collector and not prometheus-client's Counter objects: a `Counter.inc()` takes a lock
and does a dict lookup per label set, which on the command path would cost more than many of
the commands themselves. Instead, everything on the hot path is a plain int (or a slot of a
list) bumped in place — `stats[usec.bit_length()] += 1` per command call,
`queue.pushed += 1` — and `JobcachedCollector.collect()` turns those into metric families only
when Prometheus scrapes /metrics. The cost of metrics per request is therefore a few integer
operations; the cost per scrape grows with the number of commands, shards and queues.

Histograms are kept as log2 slots (slot i counts durations v with v.bit_length() == i, i.e.
2**(i-1) <= v < 2**i units) and exported with a bucket at every second power of two: 1, 4,
16 ... units up to 2**24 (for microseconds: 1 us .. 16.8 s; for milliseconds: 1 ms .. 4.7 h).

Label sets are bounded: `cmd` by the command table, `group` by its groups, `shard` by the
`shards` key, `state` by the job states, and `queue` by MAX_QUEUE_LABELS (queues past it, in
name order, are left out and counted in jobcached_metrics_queues_omitted).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from jobcached import REDIS_COMPAT_VERSION, __version__
from jobcached.jobs.model import State
from jobcached.persistence.wal import RealFs
from jobcached.server.latency import DISABLED, HISTORY_LEN
from jobcached.server.state import (
    FAILED,
    LATENCY_SLOTS,
    REJECTED,
    calls_of,
    new_latency_histogram,
)

if TYPE_CHECKING:
    from jobcached.server.interfaces import CommandRow
    from jobcached.server.state import ServerState

    #: every row of the command table, subcommands included (commands.registry.walk)
    CommandTable = Callable[[], Iterable[CommandRow]]

#: Queues exported with a `queue` label; more would make every scrape (and Prometheus) pay for
#: queue names chosen by clients. A queue costs up to ~50 samples, about 0.5 ms of rendering
#: on the event loop per scrape, so this bounds a scrape's pause to about 0.1 s.
MAX_QUEUE_LABELS = 250
#: The log2 slots exported as histogram buckets (see the module docstring).
EXPORTED_SLOTS = tuple(range(0, 25, 2))
#: The content type of /metrics.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

US = 1e-6
MS = 1e-3


def log2_buckets(histogram: Sequence[int], unit_seconds: float
                 ) -> tuple[list[tuple[str, float]], float]:
    """Cumulative Prometheus buckets and the sum (in seconds) of a log2-slot histogram whose
    last element is the sum of the observations in `unit_seconds`."""
    counts = histogram[:-1]
    buckets: list[tuple[str, float]] = []
    cumulative, pos = 0, 0
    for slot in EXPORTED_SLOTS:
        while pos <= slot:
            cumulative += counts[pos]
            pos += 1
        # prometheus_client leaves floatToGoString (the `le` label's spelling) unannotated
        le = floatToGoString((1 << slot) * unit_seconds)  # type: ignore[no-untyped-call]
        buckets.append((le, cumulative))
    buckets.append(("+Inf", sum(counts)))
    return buckets, histogram[-1] * unit_seconds


def merged(histograms: Iterable[Sequence[int]], size: int) -> list[int]:
    total = [0] * size
    for histogram in histograms:
        for i, value in enumerate(histogram):
            if value:
                total[i] += value
    return total


class FsyncTimer(RealFs):
    """The WAL's file operations, with every fsync timed into a log2 histogram (us).

    The WAL takes its file system as a parameter (the seam tests use to inject a full disk);
    the app passes this one. It runs on the WAL writer thread: it only writes plain ints that
    the event loop reads at scrape time (one writer; a scrape may see a sum one fsync ahead of
    the counts, never a lost update).
    """

    def __init__(self) -> None:
        self.fsync_us = new_latency_histogram()
        #: fsyncs of at least `slow_threshold_ms` as (unix seconds, ms), for the latency
        #: monitor's "wal-fsync" event: the loop drains it (a deque append is thread-safe)
        self.slow: deque[tuple[int, int]] = deque(maxlen=HISTORY_LEN)
        self.slow_threshold_ms = DISABLED
        self.last_fsync_ok = True
        self.last_fsync_error = ""
        self.fsync_errors = 0

    def fsync(self, fd: int) -> None:
        started = time.perf_counter_ns()
        try:
            super().fsync(fd)
        except OSError as exc:
            self.last_fsync_ok = False
            self.last_fsync_error = str(exc)
            self.fsync_errors += 1
            raise
        finally:
            usec = (time.perf_counter_ns() - started) // 1000
            self.fsync_us[min(usec.bit_length(), LATENCY_SLOTS - 1)] += 1
            self.fsync_us[-1] += usec
            if usec // 1000 >= self.slow_threshold_ms:
                self.slow.append((int(time.time()), usec // 1000))
        self.last_fsync_ok = True


class JobcachedCollector:
    """Reads a ServerState (and the command table's rows, which the app passes in: this
    package sits below commands/) at scrape time; see the module docstring."""

    def __init__(self, state: ServerState, commands: CommandTable,
                 fs: FsyncTimer | None = None) -> None:
        self.state = state
        self.commands = commands
        self.fs = fs

    def collect(self) -> Iterator[Metric]:
        yield from self._server()
        yield from self._commands()
        yield from self._connections()
        yield from self._cache()
        yield from self._jobs()
        yield from self._wal()
        yield from self._archive()
        yield from self._replication()

    # ---------------------------------------------------------------- server and commands

    def _server(self) -> Iterator[Metric]:
        state = self.state
        yield InfoMetricFamily("jobcached_build", "Version of this server.", value={
            "version": __version__, "redis_version": REDIS_COMPAT_VERSION})
        yield GaugeMetricFamily("jobcached_start_time_seconds", "Unix time the server started.",
                                value=state.started_ms / 1000)
        yield GaugeMetricFamily("jobcached_loading",
                                "1 while the job log is being replayed at start.",
                                value=int(state.loading))
        yield GaugeMetricFamily("jobcached_slowlog_entries", "Entries in SLOWLOG.",
                                value=len(state.slowlog))

    def _commands(self) -> Iterator[Metric]:
        state = self.state
        calls = CounterMetricFamily("jobcached_command_calls", "Commands run, per command.",
                                    labels=["cmd"])
        errors = CounterMetricFamily(
            "jobcached_command_errors", "Commands that replied with an error (failed while "
            "running, or rejected before: -NOAUTH, -OOM), per command.", labels=["cmd"])
        groups: dict[str, list[list[int]]] = {}
        command_stats = state.command_stats
        for cmd in self.commands():
            stats = command_stats.get(cmd)
            if stats is None:
                continue
            calls.add_metric([cmd.fullname], calls_of(stats))
            errors.add_metric([cmd.fullname], stats[FAILED] + stats[REJECTED])
            groups.setdefault(cmd.group, []).append(stats[:LATENCY_SLOTS + 1])
        yield calls
        yield errors
        duration = HistogramMetricFamily(
            "jobcached_command_duration_seconds", "Time spent running commands, per command "
            "group (string, hash, job...), as INFO commandstats measures it.", labels=["group"])
        for group, histograms in sorted(groups.items()):
            buckets, total = log2_buckets(merged(histograms, LATENCY_SLOTS + 1), US)
            duration.add_metric([group], buckets, total)
        yield duration
        errorstats = CounterMetricFamily("jobcached_error_replies",
                                         "Error replies per error code (INFO errorstats).",
                                         labels=["code"])
        for code, count in sorted(state.errorstats.items()):
            errorstats.add_metric([code], count)
        yield errorstats

    def _connections(self) -> Iterator[Metric]:
        state = self.state
        stats = state.stats
        yield GaugeMetricFamily("jobcached_connected_clients", "Client connections open now.",
                                value=len(state.clients))
        yield GaugeMetricFamily("jobcached_maxclients", "The maxclients limit.",
                                value=state.config.maxclients)
        yield CounterMetricFamily(
            "jobcached_connections_accepted", "Connections accepted (past the maxclients check).",
            value=stats.total_connections_received)
        rejected = CounterMetricFamily(
            "jobcached_connections_rejected",
            "Connections refused, by reason: maxclients (-ERR max number of clients reached), "
            "protected (-DENIED), auth (failed AUTH or HELLO AUTH).",
            labels=["reason"])
        rejected.add_metric(["maxclients"],
                            stats.rejected_connections - stats.rejected_protected)
        rejected.add_metric(["protected"], stats.rejected_protected)
        rejected.add_metric(["auth"], stats.auth_failures)
        yield rejected
        yield CounterMetricFamily("jobcached_net_input_bytes", "Bytes read from clients.",
                                  value=stats.total_net_input_bytes)
        yield CounterMetricFamily("jobcached_net_output_bytes", "Bytes written to clients.",
                                  value=stats.total_net_output_bytes)
        yield CounterMetricFamily("jobcached_protocol_errors",
                                  "Connections closed for a protocol error.",
                                  value=stats.protocol_errors)

    # ---------------------------------------------------------------- cache

    def _cache(self) -> Iterator[Metric]:
        info = self.state.dbs.info()
        keys = GaugeMetricFamily("jobcached_cache_keys", "Keys per keyspace shard.",
                                 labels=["shard"])
        for shard, count in enumerate(info["keys_per_shard"]):
            keys.add_metric([str(shard)], count)
        yield keys
        yield GaugeMetricFamily("jobcached_cache_expiring_keys", "Keys with a TTL.",
                                value=info["expires"])
        yield GaugeMetricFamily("jobcached_cache_used_memory_bytes",
                                "Memory the cache accounts for its keys and values.",
                                value=info["used_memory"])
        yield GaugeMetricFamily("jobcached_cache_maxmemory_bytes",
                                "The maxmemory limit (0 = none).", value=info["maxmemory"])
        hot = self.state.hot_keys
        if hot is not None:
            yield GaugeMetricFamily("jobcached_cache_hotkeys_top_share",
                                    "Share of sampled key lookups that went to the "
                                    "hotkey-top-k hottest keys (HOTKEYS GET).",
                                    value=hot.top_share())
        for name, field, doc in (
                ("hits", "keyspace_hits", "Key lookups that found the key."),
                ("misses", "keyspace_misses", "Key lookups that did not."),
                ("expired_keys", "expired_keys", "Keys removed because their TTL passed."),
                ("evicted_keys", "evicted_keys", "Keys evicted to stay under maxmemory.")):
            yield CounterMetricFamily(f"jobcached_cache_{name}", doc, value=info[field])

    # ---------------------------------------------------------------- jobs

    def _jobs(self) -> Iterator[Metric]:
        engine = self.state.jobs
        queues = sorted(engine.queues.items()) if engine is not None else []
        yield GaugeMetricFamily("jobcached_metrics_queues_omitted",
                                f"Queues left out of the per-queue metrics (more than "
                                f"{MAX_QUEUE_LABELS}).",
                                value=max(0, len(queues) - MAX_QUEUE_LABELS))
        yield GaugeMetricFamily("jobcached_jobs_used_memory_bytes",
                                "Estimated memory of the jobs in memory; counts against "
                                "maxmemory with the cache's, and is never evicted.",
                                value=self.state.jobs_memory())
        queues = queues[:MAX_QUEUE_LABELS]
        counters = [
            ("pushed", "Jobs created by JOB.PUSH."),
            ("fetched", "Leases handed out (JOB.FETCH)."),
            ("succeeded", "Jobs acknowledged (JOB.ACK)."),
            ("failed_attempts", "Failed attempts: JOB.FAIL and expired leases."),
            ("retried", "Failed attempts that will run again (moved to retrying)."),
            ("dead", "Jobs that failed with no retry left (moved to the dead-letter queue)."),
            ("canceled", "Jobs canceled (JOB.CANCEL)."),
            ("requeued", "Finished jobs run again (JOB.RETRY, DLQ.REQUEUE)."),
            ("lease_expired", "Leases that expired without an ack or a heartbeat."),
        ]
        since = " Counts this process's activity since it started (replay counts nothing)."
        families = {attr: CounterMetricFamily(f"jobcached_jobs_{attr}", doc + since,
                                              labels=["queue"]) for attr, doc in counters}
        depth = GaugeMetricFamily("jobcached_jobs", "Jobs in memory per queue and state.",
                                  labels=["queue", "state"])
        lag = GaugeMetricFamily("jobcached_queue_lag_seconds",
                                "Age of the oldest queued job (0 when none is queued).",
                                labels=["queue"])
        dlq = GaugeMetricFamily("jobcached_dlq_jobs", "Dead jobs (the dead-letter queue).",
                                labels=["queue"])
        running = GaugeMetricFamily("jobcached_running_leases", "Jobs leased to a worker now.",
                                    labels=["queue"])
        paused = GaugeMetricFamily("jobcached_queue_paused", "1 if QUEUE.PAUSE is in force.",
                                   labels=["queue"])
        wait = HistogramMetricFamily("jobcached_job_queue_wait_seconds",
                                     "Time from enqueue (push, or the end of a delay or "
                                     "backoff) to fetch.", labels=["queue"])
        run = HistogramMetricFamily("jobcached_job_run_seconds",
                                    "Time from fetch to ack of succeeded attempts.",
                                    labels=["queue"])
        now = self.state.clock.now_ms()
        for name, queue in queues:
            for attr, family in families.items():
                family.add_metric([name], getattr(queue, attr))
            counts = queue.counts  # computed from the index: read once
            for job_state in State:
                depth.add_metric([name, job_state.value], counts[job_state])
            oldest = queue.oldest() if counts[State.QUEUED] else None
            lag.add_metric([name], max(0, now - oldest.enqueued_ms) / 1000 if oldest else 0)
            dlq.add_metric([name], counts[State.DEAD])
            running.add_metric([name], counts[State.RUNNING])
            paused.add_metric([name], int(queue.paused))
            # a histogram appears with its first observation: 16 samples of zeros are not news
            if any(queue.wait_ms):
                wait.add_metric([name], *log2_buckets(queue.wait_ms, MS))
            if any(queue.run_ms):
                run.add_metric([name], *log2_buckets(queue.run_ms, MS))
        yield from families.values()
        yield from (depth, lag, dlq, running, paused, wait, run)

    # ---------------------------------------------------------------- archive

    def _replication(self) -> Iterator[Metric]:
        return _replication_metrics(self.state)

    def _archive(self) -> Iterator[Metric]:
        archiver = self.state.archiver
        if archiver is None:
            return
        stats = archiver.stats
        yield GaugeMetricFamily("jobcached_archive_up", "1 while the SQLite job archive is "
                                "usable; 0 means finished jobs stay in memory.",
                                value=int(archiver.archive is not None))
        yield CounterMetricFamily("jobcached_archive_moved", "Finished jobs moved from memory "
                                  "to the archive.", value=stats.moved)
        yield CounterMetricFamily("jobcached_archive_purged", "Archived jobs deleted after "
                                  "job-archive-retention.", value=stats.purged)
        yield CounterMetricFamily("jobcached_archive_errors", "Failed archive operations "
                                  "(SQLite errors); the jobs concerned stayed in memory.",
                                  value=stats.errors)

    # ---------------------------------------------------------------- WAL

    def _wal(self) -> Iterator[Metric]:
        durability = self.state.effects.durability
        if durability is None:
            return
        wal = durability.wal.stats
        commits = durability.committer.stats
        yield CounterMetricFamily("jobcached_wal_written_bytes", "Bytes appended to the WAL.",
                                  value=wal.bytes_written)
        yield CounterMetricFamily("jobcached_wal_written_records",
                                  "Records appended to the WAL.", value=wal.records_written)
        yield CounterMetricFamily("jobcached_wal_write_calls",
                                  "write() calls of the group committer (records per call is "
                                  "the group size).", value=commits.write_calls)
        yield GaugeMetricFamily("jobcached_wal_segments", "WAL segment files.",
                                value=wal.segments)
        yield GaugeMetricFamily("jobcached_wal_records",
                                "Records in the log (compaction starts past 2x the live jobs).",
                                value=durability.records_in_log)
        yield CounterMetricFamily("jobcached_wal_compactions", "WAL compactions.",
                                  value=wal.compactions)
        yield GaugeMetricFamily("jobcached_wal_truncated_tail_bytes",
                                "Bytes of a torn tail cut off at start.",
                                value=wal.truncated_tail_bytes)
        yield GaugeMetricFamily("jobcached_wal_failed",
                                "1 while job writes are refused after a WAL write or fsync "
                                "error (the server retries every second).",
                                value=int(durability.failure is not None))
        yield CounterMetricFamily("jobcached_wal_failures",
                                  "Times a WAL write or fsync failed and job writes were refused.",
                                  value=durability.failures)
        yield CounterMetricFamily("jobcached_wal_recoveries",
                                  "Times the WAL healed after a failure.",
                                  value=durability.recoveries)
        fs = self.fs
        last_fsync_failed = (not fs.last_fsync_ok) if fs is not None else bool(
            wal.last_fsync_error)
        yield GaugeMetricFamily("jobcached_wal_last_fsync_error",
                                "1 if the last fsync of the WAL failed.",
                                value=int(last_fsync_failed))
        error = InfoMetricFamily("jobcached_wal_last_error",
                                 "The last WAL write or fsync error ('' = none).",
                                 labels=["op", "error"])
        if wal.last_fsync_error or wal.last_write_error:
            op = "fsync" if wal.last_fsync_error else "write"
            text = (wal.last_fsync_error or wal.last_write_error or "")[:200]
            error.add_metric([op, text], {})
        yield error
        if fs is not None:
            fsync = HistogramMetricFamily("jobcached_wal_fsync_duration_seconds",
                                          "Time fsync of a WAL file took.")
            fsync.add_metric([], *log2_buckets(list(fs.fsync_us), US))
            yield fsync


def _replication_metrics(state: ServerState) -> Iterator[Metric]:
    """Offsets, followers and their lag (replication/): the leader's view, or a follower's."""
    follower = state.follower
    offset = state.backlog.offset if follower is None else max(follower.offset, 0)
    yield GaugeMetricFamily("jobcached_repl_offset_bytes",
                            "master_repl_offset: bytes of the effect stream so far.", value=offset)
    yield GaugeMetricFamily("jobcached_repl_following",
                            "1 while this server follows a leader (REPLICAOF).",
                            value=int(follower is not None))
    yield GaugeMetricFamily("jobcached_repl_link_up", "1 while a follower's link to its "
                            "leader is up (0 on a leader).",
                            value=int(follower is not None and follower.link_up))
    leader = state.leader
    online = leader.online_links()
    yield GaugeMetricFamily("jobcached_repl_followers", "Followers online now.",
                            value=len(online))
    lag = GaugeMetricFamily("jobcached_repl_follower_lag_bytes",
                            "Bytes of the stream a follower has not acknowledged.",
                            labels=["follower"])
    for link in online:
        lag.add_metric([f"{link.ip}:{link.port}"], max(state.backlog.offset - link.ack_offset,
                                                       0))
    yield lag
    syncs = CounterMetricFamily("jobcached_repl_syncs", "Followers' sync requests served, "
                                "by kind (full, partial; partial_refused fell back to full).",
                                labels=["kind"])
    syncs.add_metric(["full"], leader.full_syncs)
    syncs.add_metric(["partial"], leader.partial_syncs_ok)
    syncs.add_metric(["partial_refused"], leader.partial_syncs_err)
    yield syncs


def build_registry(state: ServerState, commands: CommandTable,
                   fs: FsyncTimer | None = None) -> CollectorRegistry:
    """The registry /metrics renders: our collector, plus the standard process_* metrics;
    `commands` walks the command table (per-command calls, errors and durations)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobcachedCollector(state, commands, fs))
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The /metrics body (Prometheus text format 0.0.4)."""
    return generate_latest(registry)
