"""Configuration: one dataclass, every key with a default, a parser and a reason.

Precedence, lowest to highest: built-in defaults < config file (`name value` lines, `#`
comments, as redis.conf) < environment (`JOBCACHED_<NAME>`, dashes as underscores) <
command-line flags (`--name value`). Names on the wire (CONFIG GET/SET), in the file and on the
command line are the same dashed names Redis uses (`proto-max-bulk-len`, `maxclients`).

Every bound the server enforces is a key here, so an operator can read all of them in one place
and `CONFIG GET *` shows what is in force.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from jobcached.errors import ConfigError
from jobcached.settings import redisconfig
from jobcached.settings.notifyflags import canonical, valid_notify_flags

#: Upper bound of `databases`: each costs a Keyspace with its shards even when empty, and a
#: client could otherwise ask for millions at start.
DATABASES_MAX = 1024

_MEMORY_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2,
                 "g": 1000**3, "gb": 1024**3}


def parse_memory(text: str) -> int:
    """Bytes from `100mb`, `2gb`, `64kb`, `1000` (Redis' memtoll units)."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmg]?b?)\s*", text.lower())
    if not match:
        raise ValueError(f"'{text}' is not a memory size (e.g. 1000, 64kb, 100mb, 2gb)")
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2)]


def parse_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise ValueError(f"'{text}' is not an integer") from None
    if value < 0:
        raise ValueError(f"'{text}' must not be negative")
    return value


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("yes", "true", "1", "on"):
        return True
    if lowered in ("no", "false", "0", "off"):
        return False
    raise ValueError(f"'{text}' is not yes or no")


def parse_int_or_minus_one(text: str) -> int:
    """An integer >= 0, or -1 (Redis' "disabled" for thresholds such as the slow log's)."""
    if text.strip() == "-1":
        return -1
    return parse_int(text)


def parse_str(text: str) -> str:
    return text


def parse_replicaof(text: str) -> str:
    """'' or 'host port' (a follower's leader), normalised to one space."""
    words = text.split()
    if not words:
        return ""
    if len(words) != 2 or not words[1].isdigit() or not 0 < int(words[1]) < 65536:
        raise ValueError(f"'{text}' is not 'host port'")
    return f"{words[0]} {int(words[1])}"


def parse_save(text: str) -> str:
    """Redis' `save` points: '' (none) or pairs of `seconds changes`, normalised to single
    spaces."""
    words = text.split()
    if len(words) % 2 or not all(word.isdigit() for word in words):
        raise ValueError("Invalid save parameters")
    return " ".join(str(int(word)) for word in words)


def save_points(text: str) -> list[tuple[int, int]]:
    """The (seconds, changes) pairs of a `save` value parse_save accepted."""
    numbers = [int(word) for word in text.split()]
    return list(zip(numbers[::2], numbers[1::2], strict=True))


def one_of(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.lower() not in choices:
            raise ValueError(f"'{text}' is not one of {', '.join(choices)}")
        return text.lower()

    return parse


def parse_octal(text: str) -> int:
    try:
        return int(text, 8)
    except ValueError:
        raise ValueError(f"'{text}' is not an octal file mode such as 770") from None


def setting(default: Any, help: str, parse: Callable[[str], Any] = parse_str,
            mutable: bool = False) -> Any:
    """Declare a config key: its default, why it exists, how to read it, CONFIG SET-able?"""
    return field(default=default, metadata={"help": help, "parse": parse, "mutable": mutable})


@dataclass
class Config:
    """Everything an operator can set. Field `a_b` is the key `a-b` everywhere outside Python."""

    bind: str = setting("127.0.0.1", "Address to listen on; loopback by default (sidecar).")
    port: int = setting(7380, "TCP port; 0 disables TCP.", parse_int)
    unixsocket: str = setting("", "Path of a unix socket to listen on too ('' = none).")
    unixsocketperm: int = setting(0o770, "File mode of the unix socket (octal).", parse_octal)
    dir: str = setting("./var", "Data directory: WAL segments, job archive.")
    tls_port: int = setting(
        0, "TCP port for TLS connections, on the same bind address (0 = no TLS); with `port "
        "0` the server speaks TLS only. Needs tls-cert-file and tls-key-file.", parse_int)
    tls_cert_file: str = setting(
        "", "The server certificate (PEM), intermediates after it. CONFIG SET or SIGHUP "
        "reloads it for new connections; open ones keep theirs.", mutable=True)
    tls_key_file: str = setting("", "The private key of tls-cert-file (PEM).", mutable=True)
    tls_key_file_pass: str = setting("", "Password of an encrypted tls-key-file.",
                                     mutable=True)
    tls_ca_cert_file: str = setting(
        "", "CA certificates (PEM) that client certificates must chain to.", mutable=True)
    tls_ca_cert_dir: str = setting(
        "", "A directory of CA certificates (c_rehash layout), as tls-ca-cert-file.",
        mutable=True)
    tls_auth_clients: str = setting(
        "yes", "Client certificates: yes (required), optional (checked when one is sent) or "
        "no (not asked for). yes and optional need tls-ca-cert-file or tls-ca-cert-dir.",
        one_of("yes", "optional", "no"), mutable=True)
    tls_protocols: str = setting(
        "", "TLS versions accepted, e.g. \"TLSv1.2 TLSv1.3\" ('' = TLSv1.2 and TLSv1.3); the "
        "lowest and highest named bound the range.", mutable=True)
    tls_ciphers: str = setting("", "OpenSSL cipher list for TLSv1.2 and below ('' = "
                               "OpenSSL's defaults).", mutable=True)
    tls_ciphersuites: str = setting(
        "", "TLSv1.3 cipher suites: stored and reported, but Python's ssl module cannot "
        "restrict them, so OpenSSL's defaults apply.", mutable=True)
    tls_prefer_server_ciphers: bool = setting(
        False, "Choose the cipher by the server's order rather than the client's.", parse_bool,
        mutable=True)
    requirepass: str = setting("", "Password clients must AUTH with ('' = none).",
                               mutable=True)
    protected_mode: bool = setting(
        True, "With no password, refuse clients that are not on loopback or the unix socket.",
        parse_bool, mutable=True)
    loglevel: str = setting("info", "debug, info, warning or error (Redis' verbose and notice "
                            "are read as debug and info).",
                            one_of("debug", "verbose", "info", "notice", "warning", "error"),
                            mutable=True)
    log_format: str = setting("json", "json (one event per line) or text.",
                              one_of("json", "text"))
    maxclients: int = setting(10000, "Connections beyond this get '-ERR max number of clients "
                              "reached'.", parse_int, mutable=True)
    timeout: int = setting(0, "Close a client idle for this many seconds (0 = never).",
                           parse_int, mutable=True)
    tcp_backlog: int = setting(511, "listen() backlog, as Redis.", parse_int)
    proto_max_bulk_len: int = setting(512 * 1024**2, "Largest bulk string a request may carry.",
                                      parse_memory, mutable=True)
    proto_max_multibulk_len: int = setting(
        1024 * 1024, "Most arguments one request may carry (Redis' fixed 1024*1024).",
        parse_int, mutable=True)
    proto_inline_max_size: int = setting(
        64 * 1024, "Longest inline command line, and longest header line.", parse_memory,
        mutable=True)
    client_query_buffer_limit: int = setting(
        1024**3, "A client whose unprocessed input exceeds this is disconnected.",
        parse_memory, mutable=True)
    client_output_buffer_limit: int = setting(
        1024**3, "A client whose pending output reaches this is disconnected (0 = no limit). "
        "Pending output is what the socket has not taken plus replies and pushes held back "
        "behind a reply not ready yet. Reading pauses well before: see "
        "output-buffer-high-water.", parse_memory, mutable=True)
    client_output_buffer_limit_soft: int = setting(
        0, "A client whose pending output stays at or above this for more than "
        "client-output-buffer-limit-soft-seconds is disconnected (0 = no soft limit): Redis' "
        "normal class soft limit.", parse_memory, mutable=True)
    client_output_buffer_limit_soft_seconds: int = setting(
        0, "Seconds the soft limit may be exceeded (see client-output-buffer-limit-soft).",
        parse_int, mutable=True)
    client_output_buffer_limit_pubsub: int = setting(
        32 * 1024**2, "A client subscribed to a channel or pattern whose pending output "
        "reaches this is disconnected (0 = no limit): Redis' pubsub class hard limit.",
        parse_memory, mutable=True)
    client_output_buffer_limit_pubsub_soft: int = setting(
        8 * 1024**2, "A subscribed client whose pending output stays at or above this for "
        "more than client-output-buffer-limit-pubsub-soft-seconds is disconnected (0 = no "
        "soft limit): Redis' pubsub class soft limit.", parse_memory, mutable=True)
    client_output_buffer_limit_pubsub_soft_seconds: int = setting(
        60, "Seconds the pubsub soft limit may be exceeded.", parse_int, mutable=True)
    output_buffer_high_water: int = setting(
        1024**2, "Stop reading a client's requests while this much output waits for it.",
        parse_memory, mutable=True)
    databases: int = setting(16, "Numbered databases (SELECT 0..databases-1), as Redis' "
                             "`databases`; jobs are one namespace whatever the database.",
                             parse_int)
    notify_keyspace_events: str = setting(
        "", "Keyspace notification classes to publish, as Redis' flag string: K (keyspace "
        "channel), E (keyevent channel), g $ l s h z x e t m d n, A for g$lshzxetd ('' = "
        "none).", valid_notify_flags, mutable=True)
    shards: int = setting(16, "Keyspace shards (16384 hash slots are spread over them); more "
                          "shards keep each expiry and eviction step smaller.", parse_int)
    maxmemory: int = setting(0, "Memory limit for cache and jobs together (e.g. 100mb, 2gb; "
                             "0 = none). Jobs are never evicted: past it, maxmemory-policy "
                             "decides what the cache evicts, and writes that add data "
                             "(JOB.PUSH too) get -OOM when eviction cannot make room.",
                             parse_memory, mutable=True)
    maxmemory_policy: str = setting(
        "noeviction", "What to evict at maxmemory: noeviction (writes get -OOM), allkeys-lru, "
        "allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-ttl, volatile-random.",
        one_of("noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru",
               "volatile-lfu", "volatile-ttl", "volatile-random"), mutable=True)
    maxmemory_samples: int = setting(5, "Keys sampled per eviction step (Redis' default).",
                                     parse_int, mutable=True)
    lfu_log_factor: int = setting(10, "LFU counter growth: higher needs more hits per step.",
                                  parse_int, mutable=True)
    lfu_decay_time: int = setting(1, "Minutes for the LFU counter to decay by one (0 = never).",
                                  parse_int, mutable=True)
    active_expire_budget: int = setting(
        5, "Milliseconds of each 100 ms spent expiring keys actively (Redis allows 25).",
        parse_int, mutable=True)
    repl_backlog_size: int = setting(64 * 1024**2, "Bytes of recent effects kept for followers "
                                     "that reconnect (a partial resync needs what they missed).",
                                     parse_memory, mutable=True)
    min_replicas_to_write: int = setting(
        0, "Refuse writes (cache and jobs) with -NOREPLICAS unless at least this many followers "
        "acknowledged within min-replicas-max-lag seconds (0 = off; alias "
        "min-slaves-to-write).", parse_int, mutable=True)
    min_replicas_max_lag: int = setting(
        10, "Seconds since a follower's last acknowledgement (it sends one every second) for it "
        "to count towards min-replicas-to-write (0 = off; alias min-slaves-max-lag).",
        parse_int, mutable=True)
    replicaof: str = setting(
        "", "Follow the leader at 'host port' from the start ('' = lead): its data replaces "
        "ours, clients' writes are refused (REPLICAOF at run time).", parse_replicaof)
    masterauth: str = setting("", "Password a follower AUTHs with at its leader ('' = none).",
                              mutable=True)
    masteruser: str = setting("", "ACL user a follower AUTHs as at its leader ('' = the "
                              "default user).", mutable=True)
    replica_accept_empty_master: bool = setting(
        False, "Let a follower that holds live jobs accept a full sync with no jobs at all "
        "(a leader restarted with an empty data dir would otherwise wipe them).", parse_bool,
        mutable=True)
    replica_priority: int = setting(
        100, "A follower's rank for Sentinel when it promotes one: the lowest wins, 0 = never "
        "promote this one (INFO's slave_priority).", parse_int, mutable=True)
    replica_announced: bool = setting(
        True, "Whether Sentinel lists this follower in SENTINEL REPLICAS (INFO's "
        "replica_announced); it may be promoted either way.", parse_bool, mutable=True)
    replica_announce_ip: str = setting(
        "", "The address a follower gives its leader to be reached at ('' = the one its "
        "connection comes from): what Sentinel and ROLE see behind NAT or containers.",
        mutable=True)
    replica_announce_port: int = setting(
        0, "The port a follower gives its leader (0 = its own port).", parse_int, mutable=True)
    appendfsync: str = setting(
        "everysec", "When job writes reach the disk: always (fsync before replying, one fsync per "
        "batch), everysec (written before replying, fsync every second), no (the OS decides).",
        one_of("always", "everysec", "no"))
    cache_persistence: str = setting(
        "none", "Whether the cache survives a restart: none (it starts empty; jobs always "
        "survive, in the WAL) or snapshot (the keys of every database are written to "
        "cache.snapshot in the data dir when the server stops and on the save schedule, and "
        "loaded back before it listens).", one_of("none", "snapshot"), mutable=True)
    save: str = setting(
        "", "When a background save of the cache snapshot runs, as Redis' save points: "
        "\"seconds changes ...\" pairs, e.g. \"3600 1 300 100 60 10000\" saves after 3600 s if "
        "1 key changed, after 300 s if 100 did... ('' = no schedule). A schedule also saves "
        "at shutdown, as cache-persistence snapshot does.", parse_save, mutable=True)
    wal_segment_max_bytes: int = setting(64 * 1024**2, "Start a new WAL segment past this size.",
                                         parse_memory)
    job_default_timeout: int = setting(
        60_000, "Lease length in ms for jobs pushed without TIMEOUT; a worker that neither acks "
        "nor heartbeats within it loses the job to another.", parse_int)
    job_max_payload: int = setting(
        16 * 1024**2, "Largest JOB.PUSH payload (and JOB.ACK result); a job is one WAL record, "
        "and records are capped at 64 MB.", parse_memory, mutable=True)
    job_log_max_lines: int = setting(
        10_000, "JOB.LOG lines kept per job; past it the oldest are dropped (readers see a "
        "marker saying how many).", parse_int)
    job_log_max_bytes: int = setting(1024**2, "JOB.LOG bytes kept per job; past it the oldest "
                                     "lines are dropped.", parse_memory)
    cron_missed_grace: int = setting(
        60_000, "A cron slot later than this many ms when it comes due (the server was down, or "
        "the clock jumped) counts as missed: CRON.SET ... MISSED decides whether it runs.",
        parse_int)
    job_hot_retention: int = setting(
        600_000, "Milliseconds a finished job (succeeded, dead, canceled) stays in memory before "
        "it moves to the SQLite archive (archive.sqlite3 in the data dir).", parse_int,
        mutable=True)
    job_archive_retention: int = setting(
        7 * 24 * 3600_000, "Milliseconds a job stays in the archive after it finished; older "
        "rows are purged in small batches.", parse_int, mutable=True)
    gc_full_interval: int = setting(
        300, "Seconds between the garbage collector's full collections, which pause the server "
        "for a time that grows with the number of jobs and keys held; they also run when the "
        "server has been idle for a second (at most once a minute). 0 leaves them to Python "
        "(after every quarter of growth: during bursts).", parse_int)
    hotkey_top_k: int = setting(
        0, "How many hot keys HOTKEYS GET reports; key lookups are then sampled (about one in "
        "16) into a Space-Saving summary. 0 disables the sampling.", parse_int, mutable=True)
    lease_ttl: int = setting(
        10_000, "Milliseconds a GETL fill lease lasts: the one reader that got it has this long "
        "to SETL the value before another reader of the miss gets a lease of its own.",
        parse_int, mutable=True)
    timer_tick: int = setting(10, "Timer wheel tick in ms: how precisely delays, retries and "
                              "lease expiries fire.", parse_int)
    shutdown_timeout: int = setting(10, "Seconds a graceful shutdown waits for replies to "
                                    "flush before closing connections.", parse_int,
                                    mutable=True)
    metrics_port: int = setting(
        9380, "HTTP port for /metrics (Prometheus), /healthz and /readyz; 0 disables. If it "
        "cannot be bound, the server does not start (exit code 1).", parse_int)
    metrics_bind: str = setting(
        "127.0.0.1", "Address the HTTP endpoints listen on: loopback by default, as they have no "
        "authentication ('' = same as bind); in a Kubernetes pod use 0.0.0.0 so the kubelet "
        "can probe.")
    slowlog_log_slower_than: int = setting(
        10_000, "Log commands that run at least this many microseconds in SLOWLOG (0 logs every "
        "command, -1 disables).", parse_int_or_minus_one, mutable=True)
    slowlog_max_len: int = setting(128, "Entries SLOWLOG keeps; the oldest are dropped.",
                                   parse_int, mutable=True)
    latency_monitor_threshold: int = setting(
        0, "Record in LATENCY LATEST/HISTORY every event (a command, an expiry or eviction "
        "cycle, a WAL fsync) that lasts at least this many milliseconds (0 = off).",
        parse_int, mutable=True)
    enable_debug_command: str = setting(
        "no", "Allow the DEBUG command: no, yes, or local (only from loopback and unix socket "
        "clients). It can stall the server (DEBUG SLEEP) or change how keys expire.",
        one_of("no", "yes", "local"))

    busy_reply_threshold: int = setting(
        5000, "Milliseconds a script runs before other clients get -BUSY and SCRIPT KILL may "
        "stop it (Redis' busy-reply-threshold, formerly lua-time-limit).", parse_int,
        mutable=True)
    tracking_table_max_keys: int = setting(
        1_000_000, "Keys the CLIENT TRACKING invalidation table may hold (0 = no bound); past "
        "it the oldest entries are dropped and their clients told to invalidate them.",
        parse_int, mutable=True)
    lua_max_memory: int = setting(
        256 * 1024**2, "Memory the Lua runtime may use for all scripts together (e.g. 256mb); "
        "a script that needs more fails with -OOM instead of growing the process.",
        parse_memory)

    # `internal` fields are state of the object, not keys: no wire name, not in CONFIG GET
    #: Redis parameters that are not keys of ours (redisconfig.py), as set: canonical name ->
    #: value as CONFIG GET shows it; the others read Redis' default
    redis_params: dict[str, str] = field(default_factory=dict, metadata={"internal": True})
    #: the file the server was started with ('' = none): CONFIG REWRITE writes it
    config_file: str = field(default="", compare=False, metadata={"internal": True})

    # ----------------------------------------------------------------- access by wire name

    @staticmethod
    def names() -> list[str]:
        """Our own keys."""
        return [f.name.replace("_", "-") for f in fields(Config) if "internal" not in f.metadata]

    @staticmethod
    def all_names() -> list[str]:
        """Every name CONFIG GET and SET know: ours, then Redis' others (aliases included)."""
        ours = Config.names()
        return ours + [n for n in redisconfig.names() if n not in set(ours)]

    @staticmethod
    def known(name: str) -> bool:
        return _attr(name) in _KEYS or redisconfig.known(name)

    @staticmethod
    def is_ours(name: str) -> bool:
        return _attr(resolve(name)) in _KEYS

    def copy(self) -> Config:
        """An independent copy (CONFIG SET tries its changes on one)."""
        clone = Config(**{f.name: getattr(self, f.name) for f in fields(Config)})
        clone.redis_params = dict(self.redis_params)
        return clone

    def get(self, name: str) -> Any:
        return getattr(self, _attr(resolve(name)))

    def check_settable(self, name: str) -> None:
        """Raise ConfigError when CONFIG SET may not change `name` at all."""
        spec = _KEYS.get(_attr(resolve(name)))
        if spec is None:
            redisconfig.check_settable(name)
        elif not spec.metadata["mutable"]:
            if redisconfig.known(name):  # Redis' own refusal for this one, if it has one
                redisconfig.check_settable(name)
            raise ConfigError(redisconfig.IMMUTABLE)

    def set(self, name: str, raw: str, *, runtime: bool = False) -> None:
        """Parse and set one key; ConfigError names the key and the reason.

        At runtime (CONFIG SET) a name Redis also has is first validated as Redis does, so
        the error texts are Redis'; files and flags keep our own, wider notations.
        """
        spec = _KEYS.get(_attr(resolve(name)))
        if spec is None:
            if not redisconfig.known(name):
                raise ConfigError(f"unknown config key '{name}'")
            try:
                value = redisconfig.validate(name, raw)
            except ConfigError as exc:
                raise ConfigError(str(exc) if runtime else f"{name}: {exc}") from None
            self.redis_params[redisconfig.canonical(name)] = value
            return
        if runtime:
            self.check_settable(name)
            if redisconfig.known(name):
                redisconfig.validate(name, raw)
        try:
            value = spec.metadata["parse"](raw)
        except ValueError as exc:
            # CONFIG SET names the key already ("possibly related to argument ..."), as Redis
            raise ConfigError(str(exc) if runtime else f"{name}: {exc}") from None
        setattr(self, spec.name, value)

    def render(self, name: str) -> str:
        """A key's value as text, the way CONFIG GET and the sample config show it."""
        if not self.is_ours(name):
            key = redisconfig.canonical(name)
            return self.redis_params.get(key, redisconfig.default(key))
        value = self.get(name)
        if isinstance(value, bool):
            return "yes" if value else "no"
        if name == "unixsocketperm":
            return format(value, "o")
        if name == "notify-keyspace-events":
            return canonical(value)  # Redis' spelling; the value keeps what `A` hides (n)
        return str(value)

    def matching(self, pattern: str) -> list[str]:
        return [n for n in self.all_names() if fnmatch.fnmatchcase(n, pattern.lower())]

    def help(self, name: str) -> str:
        return str(_KEYS[_attr(name)].metadata["help"])

    def validate(self) -> None:
        """Cross-key checks that single parsers cannot make."""
        if self.port == 0 and not self.unixsocket and not self.tls_port:
            raise ConfigError("port is 0 and no unixsocket or tls-port is set: nothing to "
                              "listen on")
        if self.port > 65535 or self.tls_port > 65535:
            raise ConfigError(f"port: {max(self.port, self.tls_port)} is not a TCP port")
        if self.metrics_port > 65535:
            raise ConfigError(f"metrics-port: {self.metrics_port} is not a TCP port")
        if not 0 < self.job_max_payload <= 48 * 1024**2:
            raise ConfigError("job-max-payload: must be between 1 byte and 48mb")
        if not 1 <= self.databases <= DATABASES_MAX:
            raise ConfigError(f"databases: must be within 1..{DATABASES_MAX}")
        if not 1 <= self.shards <= 16384:
            raise ConfigError("shards: must be within 1..16384")
        if self.maxmemory_samples < 1:
            raise ConfigError("maxmemory-samples: must be at least 1")
        if self.timer_tick < 1:
            raise ConfigError("timer-tick: must be at least 1 ms")
        if not 0 <= self.hotkey_top_k <= 10_000:
            raise ConfigError("hotkey-top-k: must be within 0..10000")
        if self.lease_ttl < 1:
            raise ConfigError("lease-ttl: must be at least 1 ms")
        if self.job_default_timeout < 1:
            raise ConfigError("job-default-timeout: must be at least 1 ms")
        if self.job_log_max_lines < 1 or self.job_log_max_bytes < 1:
            raise ConfigError("job-log-max-lines and job-log-max-bytes: must be at least 1")
        if self.job_hot_retention < 0 or self.job_archive_retention < 0:
            raise ConfigError("job-hot-retention and job-archive-retention: must not be negative")


#: the fields that are keys (not internal state)
_KEYS = {f.name: f for f in fields(Config) if "internal" not in f.metadata}

#: Width the sample config's comments are wrapped to.
SAMPLE_CONFIG_COLUMNS = 78


def sample_config() -> str:
    """deploy/jobcached.conf: every key, its help text and its default, commented out.

    Generated from the dataclass, so it cannot drift (a test compares the committed file):
    `python -m jobcached.config > deploy/jobcached.conf`.
    """
    defaults = Config()
    lines = [
        "# jobcached configuration file: every key, what it does, and its default.",
        "# Generated from jobcached/config.py by `python -m jobcached.config`; do not edit the",
        "# generated text, copy this file and uncomment what you change.",
        "#",
        "# Format: `name value` per line, # starts a comment, quote values with spaces.",
        "# Precedence, lowest first: default < this file < JOBCACHED_<NAME> environment",
        "# variables < command-line flags (`jobcached serve --name value`).",
    ]
    for name in Config.names():
        lines.append("")
        lines.extend(textwrap.wrap(defaults.help(name), SAMPLE_CONFIG_COLUMNS,
                                   initial_indent="# ", subsequent_indent="# "))
        lines.append(f"# {name} {shlex.quote(defaults.render(name))}")
    return "\n".join(lines) + "\n"


def resolve(name: str) -> str:
    """The parameter a name stands for: Redis' aliases (`lua-time-limit`) fold onto theirs."""
    return redisconfig.canonical(name) if redisconfig.known(name) else name


def _attr(name: str) -> str:
    return name.lower().replace("-", "_")


def read_config_file(path: str | Path) -> list[tuple[str, str]]:
    """`name value` pairs from a redis.conf-style file, with the line number in errors."""
    pairs = []
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise ConfigError(f"{path}:{number}: {exc}") from None
        if len(words) < 2:
            raise ConfigError(f"{path}:{number}: expected 'name value', got {line!r}")
        # Redis' several-word values (`save 3600 1 300 100`) are one value, space-separated
        pairs.append((words[0], " ".join(words[1:])))
    return pairs


def load_config(flags: Mapping[str, str], environ: Mapping[str, str],
                config_file: str | None = None) -> Config:
    """Build the Config from the four layers in precedence order; raises ConfigError."""
    config = Config()
    layers: list[tuple[str, Iterable[tuple[str, str]]]] = []
    if config_file:
        layers.append((str(config_file), read_config_file(config_file)))
    env_prefix = "JOBCACHED_"
    env_pairs = [(key[len(env_prefix):].replace("_", "-").lower(), value)
                 for key, value in environ.items()
                 if key.startswith(env_prefix) and key != "JOBCACHED_CONFIG"
                 and key[len(env_prefix):].lower() in _KEYS]
    layers.append(("environment", env_pairs))
    layers.append(("command line", flags.items()))
    for source, pairs in layers:
        for name, raw in pairs:
            try:
                config.set(name, raw)
            except ConfigError as exc:
                raise ConfigError(f"{source}: {exc}") from None
    config.validate()
    if config_file:
        config.config_file = str(Path(config_file).resolve())
    return config


if __name__ == "__main__":
    print(sample_config(), end="")
