"""The application: builds the state, opens the listeners, runs periodic work, stops in order.

Start: the data directory and its lock (one server per directory, see startup.py); the TCP and
unix sockets are bound but do not listen yet, so a taken port or a foreign address fails in
milliseconds, before anything is read; the HTTP endpoints (/healthz answers at once, /readyz
says 503 `loading`); the WAL replay, in chunks that yield to the event loop so those endpoints
answer during a long replay; the cache snapshot with `cache-persistence snapshot`
(server/saving.py); the saved function libraries (functions.rdb); then the RESP sockets
listen (clients see "connection refused" until the job state is complete, never a
half-replayed one) and the cron and timer tasks start. A step that fails undoes the ones
before it, threads included, so the process exits.
Stop (SIGTERM, SIGINT or SHUTDOWN), in uvicorn's order: /readyz turns 503, close the listeners
so nothing new arrives, let every connection flush what it has queued and close, wait up to
`shutdown-timeout` seconds, abort the rest, write the cache snapshot if one is due (no client
is left to change it), then close the engines and the HTTP endpoints, and unlock the data dir.
A second signal exits at once.

Replication (replication/): with `replicaof` set, or after REPLICAOF, the server follows a
leader: no job timers, cron, archiving or active expiry run (`state.follower` is checked by
each), and a full sync replaces the job engine through `new_engine` and `install_engine`;
REPLICAOF NO ONE (`promote`) starts them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import uvloop

from jobcached import __version__
from jobcached.clock import Clock, SystemClock
from jobcached.commands.acl import load_at_start
from jobcached.commands.dispatch import call, execute, resolve
from jobcached.commands.functions import restore_functions
from jobcached.commands.registry import load_all, walk
from jobcached.config import Config
from jobcached.errors import ConfigError, StartupError
from jobcached.jobs.engine import JobEngine
from jobcached.jobs.records import decode_record
from jobcached.net.replies import ErrorReply
from jobcached.net.tls import TlsListener, build_context
from jobcached.observability.http import HttpServer
from jobcached.observability.metrics import FsyncTimer, build_registry
from jobcached.persistence.archiving import ARCHIVE_INTERVAL_SECONDS, Archiver
from jobcached.persistence.durability import Durability
from jobcached.persistence.wal import Wal
from jobcached.replication import resume
from jobcached.scripting import persisted
from jobcached.server.connection import RespProtocol
from jobcached.server.follower import Follower
from jobcached.server.gcpolicy import FullCollections
from jobcached.server.leader import remove_stale_payloads
from jobcached.server.saving import remove_stale_temporaries
from jobcached.server.session import Session
from jobcached.server.startup import (
    DataDirLock,
    bind_error,
    bind_tcp,
    bind_unix,
    prepare_data_dir,
    warn_if_exposed,
)
from jobcached.server.state import ServerState

log = logging.getLogger("jobcached.app")

#: How often periodic work (idle-client timeouts, active expiry, WAL upkeep) runs.
CRON_INTERVAL_SECONDS = 0.1
#: The timer task never sleeps less than this between wake-ups (ms).
TIMER_MIN_SLEEP_MS = 1
#: How often a failed WAL is retried.
WAL_RECOVERY_INTERVAL_SECONDS = 1.0
#: WAL records applied between two yields to the event loop during replay (a few ms of work at
#: ~5 us a record), so /healthz and /readyz answer while a large log replays: an HTTP request
#: needs a few loop turns, and each yield gives it one.
REPLAY_CHUNK_RECORDS = 1_000
#: Cron turns between two PINGs to the followers (Redis' repl-ping-replica-period, 10 s).
REPL_PING_EVERY_TURNS = 100


class App:
    """One running server; see the module docstring."""

    def __init__(self, config: Config, clock: Clock | None = None, repair: bool = False) -> None:
        self.config = config
        self.repair = repair
        self.state = ServerState(config, clock or SystemClock())
        self._servers: list[asyncio.AbstractServer] = []
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_recovery = 0.0
        self.fs = FsyncTimer()
        self.http: HttpServer | None = None
        self._lock = DataDirLock(config.dir)
        #: RESP sockets bound at start; they listen (and leave this list) after the replay
        self._bound: list[socket.socket] = []
        self._wal: Wal | None = None  # until Durability owns it
        self._unix_path: str | None = None  # the unix socket file we created, removed at stop
        self.tls: TlsListener | None = None
        #: the job engine's cron and batches run (`JobEngine.start`): not on a follower
        self._engine_started = False
        self.state.replication_host = self
        #: the process's exit code: 1 when the cache snapshot at stop failed
        self.exit_code = 0

    async def _open_jobs(self, loop: asyncio.AbstractEventLoop) -> None:
        """Replay the WAL into a fresh job engine, then open it for appending.

        The replay applies REPLAY_CHUNK_RECORDS records at a time and yields to the loop in
        between (only the HTTP endpoints run meanwhile: nothing else can see the engine).
        Reading and checking a segment file is one blocking step (a few tenths of a second for
        a full 64 MB segment), bounded by wal-segment-max-bytes.
        """
        config = self.config
        state = self.state
        started = loop.time()
        wal = self._wal = Wal(str(Path(config.dir) / "wal"), repair=self.repair,
                              segment_max_bytes=config.wal_segment_max_bytes, fs=self.fs)
        engine = self.new_engine()
        records = map(decode_record, wal.replay())
        replayed = 0
        # Replay allocates millions of objects that all survive: the cyclic garbage collector
        # would scan them again and again for nothing (it doubled replay time). Pause it, then
        # freeze what replay built so later collections skip it.
        gc.disable()
        try:
            while chunk := list(itertools.islice(records, REPLAY_CHUNK_RECORDS)):
                replayed += engine.replay(chunk)
                state.loading_records = replayed
                await asyncio.sleep(0)
        finally:
            gc.freeze()
            gc.enable()
        if config.gc_full_interval:
            state.gc = FullCollections(config.gc_full_interval)
            state.gc.install()
        wal.open_for_append()
        durability = Durability(wal, config.appendfsync, loop)
        durability.records_in_log = replayed
        self.state.jobs = engine
        state.watch_job_events()  # live changes only, not replay
        self.state.effects.durability = durability
        if not config.replicaof:  # a follower runs no cron until promoted
            engine.start()  # cron slots and batch callbacks owed from before the restart
            self._engine_started = True
        archiver = self.state.archiver = Archiver(config, engine, state.clock)
        await archiver.open()
        log.info("job log replayed", extra={
            "records": replayed, "jobs": len(engine.jobs),
            "seconds": round(loop.time() - started, 3),
            "truncated_tail_bytes": wal.stats.truncated_tail_bytes})

    def new_engine(self) -> JobEngine:
        """An empty job engine as the config wants it, its records going to the effect sink
        (the WAL replay's, and a follower's on each full sync)."""
        config, state = self.config, self.state
        return JobEngine(state.clock, default_lease_ms=config.job_default_timeout,
                         tick_ms=config.timer_tick, log_max_lines=config.job_log_max_lines,
                         log_max_bytes=config.job_log_max_bytes,
                         cron_grace_ms=config.cron_missed_grace, sink=state.effects.job)

    async def install_engine(self, engine: JobEngine) -> None:
        """A follower loaded a full sync: `engine` replaces the job state, and the WAL is
        compacted to it, so a restart replays the leader's jobs and not our old ones. The
        swap and the compaction's cut happen in one loop step (no stream record falls
        between them); a compaction already running is waited for first."""
        state = self.state
        durability = state.effects.durability
        while durability is not None and durability.compacting:
            await asyncio.sleep(0.01)
        state.jobs = engine
        state.watch_job_events()
        if state.archiver is not None:
            state.archiver.engine = engine
        self._engine_started = False
        if durability is not None and not await durability.compact(engine.snapshot):
            log.error("the WAL could not be compacted to the leader's jobs: a restart "
                      "before the next compaction would replay our old ones too")

    def run_as_master(self, session: Session, argv: list[bytes]) -> Any:
        """A follower applies its leader's command (server/follower.py): the dispatcher's
        call, without the checks a client's command goes through (Redis' master client)."""
        cmd = resolve(argv)
        if isinstance(cmd, ErrorReply):
            return cmd
        return call(session, cmd, argv, may_oom=True)

    def follow(self, host: str, port: int) -> None:
        """REPLICAOF host port (or `replicaof` at start): our own followers are dropped,
        writes refused, job timers and cron stopped, and the link to host:port started."""
        state = self.state
        old = state.follower
        state.leader.drop_all()
        state.follower = follower = Follower(state, host, port, self)
        state.refresh_gate()
        state.effects.mute(True)
        state.dbs.keep_expired(True)  # expired keys read as missing until the leader's DEL
        self.config.replicaof = f"{host} {port}"  # CONFIG GET / REWRITE tell the truth
        log.info("following a leader", extra={"leader": f"{host}:{port}"})

        async def switch() -> None:
            if old is not None:
                await old.stop()
                follower.continue_after(old)
            if state.follower is follower:
                follower.start()

        self._tasks.append(asyncio.get_running_loop().create_task(switch()))

    async def promote(self) -> None:
        """REPLICAOF NO ONE: stop following; a new replication id (the leader's kept for
        PSYNC2); the job engine's timers run again from the deadlines its records carry, and
        its cron starts."""
        state = self.state
        follower = state.follower
        if follower is None:
            return
        state.follower = None
        state.refresh_gate()
        self.config.replicaof = ""
        await follower.stop()
        state.effects.mute(False)
        state.dbs.keep_expired(state.pause is not None)
        state.backlog.new_history()
        if state.jobs is not None and not self._engine_started:
            state.jobs.start()
            self._engine_started = True
        log.info("promoted: this server leads now", extra={"replid": state.backlog.replid})

    async def start(self) -> None:
        """Start in the module docstring's order. If any step fails, undo every step taken
        (sockets, HTTP endpoints, the WAL writer and archive threads, the data dir lock) and
        re-raise: a half-started server must exit, and the archive's non-daemon thread would
        otherwise keep the process alive (deaf to SIGTERM, since the loop is gone)."""
        try:
            await self._start()
        except BaseException:
            await self._release()
            raise

    async def _start(self) -> None:
        load_all()
        config = self.config
        prepare_data_dir(config.dir)
        self._lock.acquire()
        remove_stale_payloads(config.dir)
        remove_stale_temporaries(config.dir)
        if config.port:
            self._bound = bind_tcp(config.bind, config.port)
            warn_if_exposed(self._bound, config.requirepass, config.protected_mode)
        if config.unixsocket:
            self._bound.append(bind_unix(config.unixsocket, config.unixsocketperm))
            self._unix_path = config.unixsocket
        if config.tls_port:
            self._bind_tls()
        loop = asyncio.get_running_loop()
        self.state.loading = True
        await self._start_http()
        await self._open_jobs(loop)
        resuming = bool(config.replicaof) and (Path(config.dir) / resume.FILE_NAME).exists()
        if config.cache_persistence == "snapshot" and not resuming:
            # (a follower that saved its place reloads its cache from that file instead)
            await self.state.saver.load(self.run_as_master)
        restore_functions(self.state, str(Path(config.dir) / persisted.FILE_NAME))
        load_at_start(self.state)
        self.state.loading = False
        self.state.request_shutdown = self.request_stop
        self.state.tracking.call_soon = loop.call_soon  # BCAST invalidations: once per iteration

        def factory() -> RespProtocol:
            return RespProtocol(self.state, execute)

        while self._bound:
            sock = self._bound.pop(0)
            try:
                if sock.family == socket.AF_UNIX:
                    server = await loop.create_unix_server(factory, sock=sock,
                                                           backlog=config.tcp_backlog)
                else:
                    server = await loop.create_server(factory, sock=sock,
                                                      backlog=config.tcp_backlog)
            except BaseException:
                sock.close()
                raise
            self._servers.append(server)
            if sock.family != socket.AF_UNIX and not self.state.tcp_port:
                self.state.tcp_port = server.sockets[0].getsockname()[1]
        if self.tls is not None:
            await self.tls.serve()
            self.state.tcp_port = self.state.tcp_port or config.tls_port  # INFO, as Redis
            self.state.tls_reload = self.tls.reload
        self._tasks = [asyncio.create_task(self._run_cron()),
                       asyncio.create_task(self._run_timers()),
                       asyncio.create_task(self._run_archiver())]
        if config.replicaof:
            host, port = config.replicaof.split()
            self.follow(host, int(port))
            assert self.state.follower is not None
            self.state.follower.resume(config.dir)  # before its link: it starts next turn
        else:
            resume.discard(str(Path(config.dir) / resume.FILE_NAME))  # no leader to continue
        log.info("ready to accept connections", extra={
            "version": __version__, "bind": config.bind, "port": self.state.tcp_port,
            "tls_port": config.tls_port or None,
            "unixsocket": config.unixsocket or None, "dir": config.dir, "pid": os.getpid(),
            "metrics_port": self.http.port if self.http else None})

    def _bind_tls(self) -> None:
        """Bind the TLS port and load its certificates: a bad path or a certificate that
        does not match its key stops the start, as a taken port does."""
        config = self.config
        sockets = bind_tcp(config.bind, config.tls_port)
        try:
            context = build_context(config)
        except ConfigError as exc:
            for sock in sockets:
                sock.close()
            raise StartupError(str(exc)) from None
        warn_if_exposed(sockets, config.requirepass, config.protected_mode)
        self.tls = TlsListener(sockets, context, lambda: RespProtocol(self.state, execute),
                               config.tcp_backlog)

    def reload_tls(self) -> None:
        """SIGHUP: load the certificate files again (renewed in place by certbot and the
        like); a failure is logged and the certificates in force stay."""
        if self.tls is None:
            log.info("SIGHUP ignored: no tls-port")
            return
        try:
            self.tls.reload(self.config)
        except ConfigError as exc:
            log.error("TLS reload failed, the previous certificates stay",
                      extra={"reason": str(exc)})

    async def _start_http(self) -> None:
        """Open /metrics, /healthz and /readyz. They have no authentication, hence loopback
        unless metrics-bind says otherwise; a port that cannot be bound stops the start (a
        server without its probes would be restarted by an orchestrator for the wrong
        reason, or silently unmonitored): `metrics-port 0` is how to run without them."""
        config = self.config
        if not config.metrics_port:
            return
        http = HttpServer(self.state, build_registry(self.state, walk, self.fs))
        host = config.metrics_bind or config.bind
        try:
            await http.start(host, config.metrics_port)
        except OSError as exc:
            raise bind_error(f"{host}:{config.metrics_port} for /metrics", exc,
                             "metrics-port 0 turns the endpoint off") from None
        self.http = http

    def request_stop(self) -> None:
        self._stopping.set()

    async def wait_stopped(self) -> None:
        await self._stopping.wait()
        await self.stop()

    async def stop(self) -> None:
        log.info("shutting down", extra={"clients": len(self.state.clients)})
        self.state.shutting_down = True
        for server in self._servers:
            server.close()
        if self.tls is not None:
            self.tls.close()
        for session in list(self.state.clients.values()):
            session.conn.close_after_reply()
        deadline = asyncio.get_running_loop().time() + self.config.shutdown_timeout
        while self.state.clients and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for session in list(self.state.clients.values()):
            session.conn.abort()
        await self._cancel_tasks()
        if not self.state.saver.save_at_stop():
            self.exit_code = 1
        if self.state.effects.durability is not None:
            await self.state.effects.durability.drain()
        if self.state.follower is not None:
            self.state.follower.save_place(self.config.dir)
        await self._release()
        log.info("stopped")

    async def _cancel_tasks(self) -> None:
        if self.state.follower is not None:
            await self.state.follower.stop()
        self.state.leader.drop_all()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _release(self) -> None:
        """Give back everything start() took, whatever step it reached: tasks, listeners and
        bound sockets, the archive and WAL writer threads, the HTTP endpoints, the lock."""
        await self._cancel_tasks()
        for server in self._servers:
            server.close()
        for sock in self._bound:
            sock.close()
        self._bound = []
        if self.tls is not None:
            self.tls.close()
        if self.state.archiver is not None:
            await self.state.archiver.close()
        if self.state.effects.durability is not None:
            self.state.effects.durability.close()
        elif self._wal is not None:
            self._wal.close()
        if self._unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._unix_path)
            self._unix_path = None
        if self.http is not None:
            self.http.close()
        self._lock.release()

    async def _run_cron(self) -> None:
        """Periodic work, like Redis' serverCron."""
        for turn in itertools.count(1):
            await asyncio.sleep(CRON_INTERVAL_SECONDS)
            self._close_idle_clients()
            if turn % REPL_PING_EVERY_TURNS == 0:
                self.state.leader.ping()
            self._expire_cycle()
            self.state.saver.cron()
            self._drain_slow_fsyncs()
            if self.state.gc is not None:
                self.state.gc.step(self.state.stats.total_commands_processed)
            await self._maybe_compact()

    def _drain_slow_fsyncs(self) -> None:
        """Move the WAL writer's slow fsyncs into the latency monitor ("wal-fsync"), and
        tell the writer the threshold in force."""
        latency = self.state.latency
        slow = self.fs.slow
        while slow:
            at, ms = slow.popleft()
            latency.add("wal-fsync", ms, at)
        self.fs.slow_threshold_ms = latency.threshold_ms

    def _expire_cycle(self) -> None:
        """Active expiry, unless DEBUG SET-ACTIVE-EXPIRE 0 or a CLIENT PAUSE stops it; its
        duration feeds the latency monitor's "expire-cycle" event."""
        state = self.state
        if not state.active_expire or state.pause is not None or state.follower is not None:
            return  # a follower's keys expire when its leader's DEL arrives
        started = time.perf_counter_ns()
        state.dbs.active_expire_cycle(budget_ms=self.config.active_expire_budget)
        state.latency.add("expire-cycle", (time.perf_counter_ns() - started) // 1_000_000,
                          state.clock.now_ms() // 1000)

    async def _run_archiver(self) -> None:
        """Move finished jobs to the SQLite archive and purge old rows (see archiving.py)."""
        archiver = self.state.archiver
        assert archiver is not None
        while True:
            await asyncio.sleep(ARCHIVE_INTERVAL_SECONDS)
            if self.state.follower is None:  # a follower's jobs move as its leader's do
                await archiver.step()

    async def _run_timers(self) -> None:
        """Drive the timer wheels: delays, retries, lease expiry, BLOCK timeouts.

        Sleeps until the earliest deadline (beanstalkd's prottick), at least
        TIMER_MIN_SLEEP_MS and at most one `timer-tick`, so an idle server fires a delayed job
        within about a millisecond instead of up to a tick late, and dense deadlines cost at
        most one wake-up per millisecond.
        """
        tick_ms = self.config.timer_tick
        state = self.state
        timers = state.timers
        clock = state.clock
        while True:
            engine = state.jobs  # a follower's full sync replaces it
            assert engine is not None
            leading = state.follower is None  # a follower's jobs move by its leader's records
            now = clock.now_ms()
            wait_ms = tick_ms
            for deadline in (engine.next_wakeup() if leading else None, timers.next_wakeup()):
                if deadline is not None:
                    wait_ms = min(wait_ms, deadline - now)
            await asyncio.sleep(max(wait_ms, TIMER_MIN_SLEEP_MS) / 1000)
            if state.follower is None and state.jobs is engine:
                engine.tick()
            for callback in timers.advance(clock.now_ms()):
                callback()

    async def _maybe_compact(self) -> None:
        """Compact a log that is mostly garbage; after a write failure, try to heal (1/s)."""
        engine, durability = self.state.jobs, self.state.effects.durability
        if engine is None or durability is None:
            return
        if durability.failure is not None:
            now = asyncio.get_running_loop().time()
            if now - self._last_recovery >= WAL_RECOVERY_INTERVAL_SECONDS:
                self._last_recovery = now
                await durability.recover()
        elif durability.should_compact(len(engine.jobs)):
            await durability.compact(engine.snapshot)

    def _close_idle_clients(self) -> None:
        timeout = self.config.timeout
        if not timeout:
            return
        for session in list(self.state.clients.values()):
            if session.idle_seconds() > timeout:
                log.info("closing idle client", extra={"client": session.addr})
                session.conn.abort()


def run(config: Config, repair: bool = False) -> int:
    """Run the server until it is stopped; the process exit code."""
    exit_code = 0

    async def main() -> None:
        nonlocal exit_code
        app = App(config, repair=repair)
        loop = asyncio.get_running_loop()
        signals_seen = 0

        def on_signal(signum: int) -> None:
            nonlocal signals_seen
            signals_seen += 1
            if signals_seen > 1:
                log.warning("second signal: exiting at once", extra={"signal": signum})
                os._exit(1)
            log.info("signal received", extra={"signal": signal.Signals(signum).name})
            app.request_stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        loop.add_signal_handler(signal.SIGHUP, app.reload_tls)
        await app.start()
        await app.wait_stopped()
        exit_code = app.exit_code

    uvloop.run(main())
    return exit_code
