"""What every command handler can reach: the process-wide state.

`ServerState` is built once by `app.py` and handed to each connection's Session. It holds the
configuration, the clock, the connected clients and the server-wide counters behind INFO; the
engines hang off it as they land. It does no I/O itself: actions that need the event loop
(shutdown) are callbacks the app installs.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobcached.cache.databases import Databases
from jobcached.cache.hotkeys import HotKeys
from jobcached.cache.leases import Leases
from jobcached.cache.shard import CacheStats
from jobcached.clock import Clock, SystemClock
from jobcached.config import Config
from jobcached.jobs.model import State
from jobcached.jobs.timerwheel import TimerWheel
from jobcached.net.resp import ParserLimits
from jobcached.replication.backlog import Backlog
from jobcached.security.acl import Users
from jobcached.server import notify
from jobcached.server.effects import Effects
from jobcached.server.latency import LatencyMonitor
from jobcached.server.leader import Leader
from jobcached.server.notify import parse_flags
from jobcached.server.pubsub import PubSub
from jobcached.server.saving import Saver
from jobcached.server.slowlog import SlowLog
from jobcached.server.tracking import Tracking

if TYPE_CHECKING:
    from asyncio import Task

    from jobcached.jobs.engine import JobEngine
    from jobcached.jobs.model import Job
    from jobcached.persistence.archiving import Archiver
    from jobcached.server.follower import Follower, FollowerHost
    from jobcached.server.gcpolicy import FullCollections
    from jobcached.server.interfaces import (
        BusyScript,
        CommandRow,
        KeyWaiters,
        PauseGate,
        ScriptHost,
    )
    from jobcached.server.rates import Rates
    from jobcached.server.session import Session

log = logging.getLogger("jobcached.server.pubsub")


@dataclass
class Stats:
    """Server-wide counters with the names INFO stats uses."""

    total_connections_received: int = 0
    total_commands_processed: int = 0
    rejected_connections: int = 0  # maxclients and protected mode together (INFO's field)
    rejected_protected: int = 0  # of which: protected mode (-DENIED)
    total_net_input_bytes: int = 0
    total_net_output_bytes: int = 0
    client_query_buffer_limit_disconnections: int = 0
    client_output_buffer_limit_disconnections: int = 0
    total_error_replies: int = 0
    unexpected_error_replies: int = 0
    protocol_errors: int = 0
    auth_failures: int = 0


#: Slots of a latency histogram: a duration of v microseconds is counted in slot v.bit_length()
#: (so v < 2**slot us), which makes recording one integer op; 64 slots hold any int64. The slot
#: after them holds the sum of the durations.
LATENCY_SLOTS = 64
#: A command's counters (`ServerState.command_stats`) extend its latency histogram: its calls
#: are the histogram's total, then come the summed microseconds, the calls that failed while
#: running and those rejected before (NOAUTH, NOPERM, OOM, subscribe mode). They belong to the
#: server, not to the command table, which stays the same for every server in the process.
USEC, FAILED, REJECTED = LATENCY_SLOTS, LATENCY_SLOTS + 1, LATENCY_SLOTS + 2


def new_latency_histogram() -> list[int]:
    return [0] * (LATENCY_SLOTS + 1)


def new_command_stats() -> list[int]:
    return [0] * (LATENCY_SLOTS + 3)


def calls_of(stats: list[int]) -> int:
    """The calls a command's counters record (INFO commandstats' `calls`)."""
    return sum(stats[:LATENCY_SLOTS])


#: Distinct error codes INFO errorstats tracks (Redis' limit): the set of codes is ours and
#: small, but a bound costs nothing.
ERRORSTATS_MAX_CODES = 128


@dataclass
class ServerState:
    """Process-wide state shared by all connections (single-threaded: no locks)."""

    config: Config
    clock: Clock = field(default_factory=SystemClock)
    clients: dict[int, Session] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    run_id: str = field(default_factory=lambda: secrets.token_hex(20))
    started_ms: int = 0
    pid: int = field(default_factory=os.getpid)
    tcp_port: int = 0
    next_client_id: int = 1
    #: the numbered databases (SELECT); a command reaches its own through `Session.keyspace`
    dbs: Databases = field(init=False)
    #: the database of the command running now (Redis' c->db; set by dispatch.call): where
    #: effects.cache() and effects.touch() place the keys they are given
    db: int = 0
    #: notify-keyspace-events as bits (notify.py): read by every notify() call
    notify_flags: int = 0
    #: timeouts of blocked cache commands (BLPOP, BZPOPMIN...): callables fired by the app's
    #: timer task; schedule with `timers.schedule(deadline_ms, callback)`
    timers: TimerWheel[Callable[[], None]] = field(init=False)
    backlog: Backlog = field(init=False)
    #: our followers, when we lead (server/leader.py)
    leader: Leader = field(init=False)
    #: the link to our leader while we follow one (REPLICAOF); None on a leader
    follower: Follower | None = None
    #: the app, for REPLICAOF (None in unit tests: no replication there)
    replication_host: FollowerHost | None = None
    #: the one effect sink: every change of either family goes through it (effects.py)
    effects: Effects = field(init=False)
    #: clients blocked on keys (BLPOP, BZPOPMIN...); created by commands/blocking.py on first use
    blocked_keys: KeyWaiters | None = None
    #: (db, key) signalled ready for blocked clients and not yet served (blocking.py; the
    #: dispatcher serves them after each command)
    ready_keys: dict[tuple[int, bytes], None] = field(default_factory=dict)
    #: the cache's counters (shared by all databases): `dirty` tells the dispatcher whether
    #: a write changed anything (server/effects.py)
    cache_stats: CacheStats = field(init=False)
    #: the client whose command runs now (Redis' current_client; set by dispatch.call: the
    #: client that sent EXEC or EVAL during their commands), None between commands:
    #: tracking's NOLOOP and reply order depend on it
    current_client: Session | None = None
    #: CLIENT TRACKING: the invalidation table and broadcast prefixes
    tracking: Tracking = field(init=False)
    #: (db, key) -> sessions WATCHing it (MULTI/EXEC optimistic locking)
    watchers: dict[tuple[int, bytes], set[Session]] = field(default_factory=dict)
    #: GETL fill leases; every propagated change to a key drops its lease (cache/leases.py)
    leases: Leases = field(init=False)
    #: sampled hot-key summary, while `hotkey-top-k` is above 0 (cache/hotkeys.py)
    hot_keys: HotKeys | None = None
    parser_limits: ParserLimits = field(default_factory=ParserLimits)
    #: the job engine and the WAL behind it, once the app has replayed the log
    jobs: JobEngine | None = None
    #: moves finished jobs to SQLite; `archiver.archive` is None while SQLite is unusable
    archiver: Archiver | None = None
    #: when full garbage collections run (None: left to Python, `gc-full-interval 0`)
    gc: FullCollections | None = None
    #: installed by the app: starts a graceful shutdown
    request_shutdown: Callable[[], None] = field(default=lambda: None)
    #: check the tls-* files of a Config and switch new TLS connections to them (ConfigError,
    #: nothing changed, when they do not make a context); None when there is no tls-port
    tls_reload: Callable[[Config], None] | None = None
    #: lifecycle, for /readyz and INFO: replaying the WAL (and how far), stopping
    loading: bool = False
    loading_records: int = 0
    shutting_down: bool = False
    #: command -> its counters (see USEC), filled by dispatch.call()
    command_stats: defaultdict[CommandRow, list[int]] = field(
        default_factory=lambda: defaultdict(new_command_stats))
    #: error code (ERR, WRONGTYPE, MISCONF...) -> replies, for INFO errorstats
    errorstats: dict[str, int] = field(default_factory=dict)
    slowlog: SlowLog = field(default_factory=SlowLog)
    #: channels and patterns -> subscribed sessions (SUBSCRIBE, PUBLISH, job status events)
    pubsub: PubSub = field(default_factory=PubSub)
    #: the Lua engine and script cache, created by commands/scripting.py on first use
    scripts: ScriptHost | None = None
    #: set while a script runs past busy-reply-threshold: dispatch then answers -BUSY
    busy_script: BusyScript | None = None
    #: sessions in MONITOR mode, in the order they started (an ordered set)
    monitors: dict[Session, None] = field(default_factory=dict)
    #: the CLIENT PAUSE in force, or None (commands/pause.py)
    pause: PauseGate | None = None
    #: True while a pause is in force, a client monitors, a script is busy, we follow a
    #: leader or min-replicas-to-write is set: every command then takes dispatch's checked
    #: path, so none of them costs the common path more than this one test (kept by
    #: `refresh_gate`)
    gated: bool = False
    #: events past latency-monitor-threshold (LATENCY LATEST, HISTORY...)
    latency: LatencyMonitor = field(default_factory=LatencyMonitor)
    #: the lower of the slow log's and the latency monitor's thresholds (us): dispatch
    #: compares each call's duration with this one figure, and only past it with both
    notable_us: int = 0
    #: instantaneous ops and kbps for INFO, sampled by server/rates.py
    rates: Rates | None = None
    #: DEBUG SET-ACTIVE-EXPIRE: whether the cron expires keys actively
    active_expire: bool = True
    #: unix ms of the last successful cache snapshot, or of the start: LASTSAVE
    last_save_ms: int = 0
    #: SAVE, BGSAVE, the save schedule and the cache snapshot at stop and start (saving.py)
    saver: Saver = field(init=False)
    #: background work commands started (server/tasks.py), referenced until it finishes
    background_tasks: set[Task[Any]] = field(default_factory=set)
    #: set while a script's `redis.call` runs a job command: the job archive is not read (a
    #: script cannot wait for SQLite; see commands/scripting.py)
    in_script_job_call: bool = False
    #: where FUNCTION LOAD / DELETE / FLUSH / RESTORE save the libraries (set by the app at
    #: start; None: not saved, as in unit tests)
    functions_path: str | None = None
    #: ACL users (requirepass is the default user's password) and ACL LOG
    acl: Users = field(default_factory=Users)

    def __post_init__(self) -> None:
        self.started_ms = self.last_save_ms = self.clock.now_ms()
        config = self.config
        self.backlog = Backlog(config.repl_backlog_size)
        self.effects = Effects(self, self.backlog)
        self.leader = Leader(self)
        self.saver = Saver(self)
        self.dbs = Databases(self.clock, count=config.databases, shards=config.shards,
                             on_removed=self.effects.key_removed)
        self.dbs.other_memory = self.jobs_memory  # jobs count against maxmemory too
        self.cache_stats = self.dbs.stats
        self.tracking = Tracking(self.clients)
        self.leases = Leases(self.clock)
        self.timers = TimerWheel(start_ms=self.clock.now_ms(), tick_ms=config.timer_tick)
        self.apply_config()

    def apply_config(self) -> None:
        """Push config values into the objects that cache them (after start or CONFIG SET)."""
        limits = self.parser_limits
        limits.max_bulk_bytes = self.config.proto_max_bulk_len
        limits.max_multibulk_args = self.config.proto_max_multibulk_len
        limits.max_inline_bytes = self.config.proto_inline_max_size
        config = self.config
        self.dbs.configure(config.maxmemory, config.maxmemory_policy, config.maxmemory_samples,
                           config.lfu_log_factor, config.lfu_decay_time)
        self.backlog.max_bytes = self.config.repl_backlog_size
        self.notify_flags = flags = parse_flags(config.notify_keyspace_events)
        self.dbs.set_hooks(self._key_created if flags & notify.NEW else None,
                           self._key_missed if flags & notify.KEY_MISS else None)
        self.slowlog.configure(self.config.slowlog_log_slower_than, self.config.slowlog_max_len)
        self.tracking.max_keys = config.tracking_table_max_keys
        self.latency.configure(self.config.latency_monitor_threshold)
        self.notable_us = min(self.slowlog.threshold_us, self.latency.threshold_us)
        if self.acl.set_requirepass(config.requirepass):
            for client in self.clients.values():
                client.refresh_permissions()
        top_k = config.hotkey_top_k
        if not top_k:
            self.hot_keys = None
        elif self.hot_keys is None:
            self.hot_keys = HotKeys(self.clock, top_k)
        else:
            self.hot_keys.top_k = top_k
        self.dbs.set_hot_keys(self.hot_keys)
        self.refresh_gate()  # min-replicas-to-write may have changed

    def refresh_gate(self) -> None:
        """Recompute `gated` after a monitor, a pause, a busy script or a leader (we follow:
        writes are refused) came or went, or `min-replicas-to-write` was set (writes may be
        refused: `Leader.refuses_writes`)."""
        config = self.config
        self.gated = (bool(self.monitors) or self.pause is not None
                      or self.busy_script is not None or self.follower is not None
                      or (config.min_replicas_to_write > 0 and config.min_replicas_max_lag > 0))

    def jobs_memory(self) -> int:
        """Estimated bytes of the jobs in memory (jobs/memory.py): part of `used_memory`."""
        return self.jobs.used_memory if self.jobs is not None else 0

    def count_rejected(self, cmd: CommandRow, code: str) -> None:
        """`cmd` was refused before it ran, with an error of this code."""
        self.command_stats[cmd][REJECTED] += 1
        self.stats.total_error_replies += 1
        self.count_error(code)

    def count_error(self, code: str) -> None:
        """One more error reply with this code (INFO errorstats)."""
        errorstats = self.errorstats
        if code in errorstats:
            errorstats[code] += 1
        elif len(errorstats) < ERRORSTATS_MAX_CODES:
            errorstats[code] = 1

    def _key_created(self, db: int, key: bytes) -> None:
        notify.notify(self, notify.NEW, b"new", key, db)

    def _key_missed(self, db: int, key: bytes) -> None:
        notify.notify(self, notify.KEY_MISS, b"keymiss", key, db)

    def watch_job_events(self) -> None:
        """Attach the job engine's status events only while someone is subscribed: with no
        subscriber the engine skips the hook altogether (most servers, most of the time)."""

        def wanted(active: bool) -> None:
            if self.jobs is not None:
                self.jobs.on_transition = self.publish_job_transition if active else None

        self.pubsub.on_active_change = wanted
        wanted(self.pubsub.active)

    def publish_job_transition(self, job: Job, old: State | None, new: State,
                               now_ms: int) -> None:
        """The job engine's `on_transition`: a status event on `__job__:<id>` and
        `__queue__:<queue>`, built only when someone listens. It runs in the middle of a job
        change, so a failure here is logged and swallowed: an event may be lost, the change
        never half-made."""
        try:
            self._publish_job_transition(job, old, new, now_ms)
        except Exception:
            log.exception("could not publish a job status event", extra={"job": job.id})

    def _publish_job_transition(self, job: Job, old: State | None, new: State,
                                now_ms: int) -> None:
        pubsub = self.pubsub
        if not pubsub.channels and not pubsub.patterns:
            return
        job_channel = f"__job__:{job.id}".encode()
        queue_channel = f"__queue__:{job.queue}".encode()
        to_job = pubsub.has_listeners(job_channel)
        to_queue = pubsub.has_listeners(queue_channel)
        if not (to_job or to_queue):
            return
        fields = {"id": job.id, "queue": job.queue,
                  "from": old.value if old is not None else None, "to": new.value,
                  "attempt": job.attempt, "time": now_ms}
        if job.reason and new is State.CANCELED:
            fields["reason"] = job.reason  # expired, or the parent that failed
        event = json.dumps(fields, separators=(",", ":")).encode()
        if to_job:
            pubsub.publish(job_channel, event)
        if to_queue:
            pubsub.publish(queue_channel, event)

    def new_client_id(self) -> int:
        client_id = self.next_client_id
        self.next_client_id += 1
        return client_id
