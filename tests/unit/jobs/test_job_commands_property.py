"""The job command family under arbitrary bytes, with restarts in between (property test).

Hypothesis draws sequences of job, queue, DLQ, cron, batch and log commands, run through the
real dispatcher exactly as a client's would be, with any argument replaced now and then by
arbitrary bytes; the clock moves, finished jobs move to the archive, and the server restarts,
from its log or from a compaction's snapshot. The invariants:

- no command ends in an internal error (every bad input is a clear `-ERR`, nothing raises);
- a restart replays to exactly the state before it: every job's fields (logs and errors
  included), every queue's counts and pause, the cron table, batches and idempotency keys.

It runs in process, with the server's own dispatcher, engine, record codec and write-ahead log
files (a compaction's base included); only the sockets and the group-commit thread are left
out, which tests/integration cover. So CI affords hundreds of examples: a fixed seed keeps CI's
runs alike, and `make fuzz` runs many more.
"""

from __future__ import annotations

import os
import random
import tempfile
from typing import Any

import hiredis
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from jobcached.clock import ManualClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import load_all
from jobcached.config import Config
from jobcached.jobs.engine import JobEngine
from jobcached.jobs.records import decode_record, encode_record
from jobcached.net.replies import ErrorReply
from jobcached.persistence.wal import COMPACT_TMP, RealFs, Wal, write_base
from jobcached.server.session import Session
from jobcached.server.state import ServerState
from tests.unit.observability.conftest import NullConnection

QUEUES = [b"q1", b"q2", "é".encode()]
CRON_NAMES = [b"nightly", b"hourly"]
SCHEDULES = [b"* * * * *", b"*/5 * * * *", b"@hourly", b"0 0 * * *"]
#: how often (percent) an argument is replaced by arbitrary bytes
HOSTILE = 10
#: a uniform draw: hypothesis leans towards edge values for floats and integers
PERCENT = st.sampled_from(range(100))

#: CI: a fixed seed, and no shrinking (a failure prints its whole sequence, and the minimal
#: one is `make fuzz`'s job): the run costs the same every time
CI = settings(max_examples=200, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ = settings(max_examples=5000, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class NoSyncFs(RealFs):
    """The real files without fsync: what is tested is the state the files hold, not crash
    safety (tests/unit/jobs/test_wal.py), and thousands of fsyncs would make the run slow."""

    def fsync(self, fd: int) -> None:
        pass

    def fsync_dir(self, path: str) -> None:
        pass


NO_SYNC = NoSyncFs()


class Server:
    """The command layer over one engine, writing its log to a real WAL in `path`."""

    def __init__(self, path: str) -> None:
        load_all()
        self.path = path
        self.clock = ManualClock()
        self.wal = Wal(path, fs=NO_SYNC)
        list(self.wal.replay())
        self.wal.open_for_append()
        self.pending: list[bytes] = []  # one step's records, written as one batch
        self.state = ServerState(Config(), self.clock)
        self.state.jobs = JobEngine(self.clock, rng=random.Random(1),
                                    sink=self.pending.append)
        self.session = Session(self.state, NullConnection(), "127.0.0.1:5555",
                               "127.0.0.1:7380", True)
        #: ids and tokens seen in replies, for later commands to name
        self.ids: list[bytes] = []
        self.leases: list[tuple[bytes, bytes]] = []  # (job id, token)
        self.batches: list[bytes] = []

    def flush(self) -> None:
        """Write what the last step logged, as the group commit would."""
        if self.pending:
            self.wal.write_batch(self.pending, sync=False)
            self.pending.clear()

    @property
    def engine(self) -> JobEngine:
        assert self.state.jobs is not None
        return self.state.jobs

    def run(self, argv: list[bytes]) -> Any:
        reply = execute(self.session, argv)
        self.flush()
        if isinstance(reply, ErrorReply):
            assert "internal error" not in reply.text, (argv, reply.text)
        else:
            self._remember(argv, reply)
        return reply

    def _remember(self, argv: list[bytes], reply: Any) -> None:
        """Job ids, lease tokens and batch ids from replies, for later commands to name."""
        if argv[0] in (b"JOB.PUSH", b"BATCH.NEW") and isinstance(reply, bytes):
            (self.ids if argv[0] == b"JOB.PUSH" else self.batches).append(reply)
        elif argv[0] == b"JOB.FETCH":
            for job in reply:  # each in wire form (RESP2: flat pairs)
                reader = hiredis.Reader()
                reader.feed(job.data)
                fields = reader.gets()
                found = dict(zip(fields[::2], fields[1::2], strict=True))
                self.leases.append((found[b"id"], found[b"token"]))

    def restart(self, seed: int, from_snapshot: bool) -> None:
        """Stop (after a compaction, if `from_snapshot`) and start again from the files."""
        self.flush()
        before = dump(self.engine)
        if from_snapshot:  # the compaction's steps, without the fork (see jobs/wal.py)
            cut = self.wal.cut()
            tmp = os.path.join(self.path, COMPACT_TMP)
            write_base(tmp, map(encode_record, self.engine.snapshot()), fs=NO_SYNC)
            self.wal.install_base(tmp, cut)
        self.wal.close()
        self.wal = Wal(self.path, fs=NO_SYNC)
        fresh = JobEngine(self.clock, rng=random.Random(seed), sink=self.pending.append)
        fresh.replay([decode_record(body) for body in self.wal.replay()])
        self.wal.open_for_append()
        assert fresh.skipped_records == 0
        assert dump(fresh) == before
        fresh.start()
        self.flush()
        self.state.jobs = fresh

    def archive(self) -> None:
        engine = self.engine
        finished = engine.archivable(self.clock.now_ms() + 1, 100)
        engine.archived([(job, job.finished_ms) for job in finished])
        self.flush()


def dump(engine: JobEngine) -> dict[str, Any]:
    """Everything a restart must bring back, in a form that compares exactly."""
    now = engine.clock.now_ms()
    return {
        "jobs": {job_id: encode_record(job.to_record()) for job_id, job in engine.jobs.items()},
        "queues": {name: (dict(queue.counts), queue.paused)
                   for name, queue in engine.queues.items()
                   if queue.paused or any(queue.counts.values())},
        "crons": sorted(map(encode_record, engine.crons.snapshot())),
        "batches": sorted(map(encode_record, engine.batches.snapshot())),
        "keys": sorted(map(encode_record, engine.keys.snapshot(now))),
    }


def hostile(data: st.DataObject, value: st.SearchStrategy[bytes]) -> bytes:
    """A sensible argument, or now and then any bytes at all."""
    if data.draw(PERCENT) < HOSTILE:
        return data.draw(st.binary(max_size=6))
    return data.draw(value)


def known(pool: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.sampled_from(pool) if pool else st.just(b"0NOSUCHJOB")


def numbers(low: int, high: int) -> st.SearchStrategy[bytes]:
    return st.integers(low, high).map(lambda n: str(n).encode())


def push_argv(data: st.DataObject, server: Server) -> list[bytes]:
    argv = [b"JOB.PUSH", hostile(data, st.sampled_from(QUEUES)), data.draw(st.binary())]
    options = {
        b"DELAY": numbers(0, 3000), b"RETRIES": numbers(0, 3), b"PRIORITY": numbers(-5, 5),
        b"KEY": st.sampled_from([b"k1", b"k2"]), b"TYPE": st.sampled_from([b"email", b"t"]),
        b"TIMEOUT": numbers(1, 5000), b"EXPIRE": numbers(0, 10_000),
    }
    for name in data.draw(st.lists(st.sampled_from(sorted(options)), max_size=3, unique=True)):
        value = options[name]
        if name == b"EXPIRE":  # unix ms: after now
            value = numbers(0, 10_000).map(lambda d: str(server.clock.now_ms() + int(d)).encode())
        argv += [name, hostile(data, value)]
    if data.draw(PERCENT) < 10:
        argv += [b"META", hostile(data, st.just(b"traceparent")), hostile(data, st.just(b"v"))]
    if server.ids and data.draw(PERCENT) < 15:
        argv += [b"AFTER", b"1", data.draw(known(server.ids))]
    if server.batches and data.draw(PERCENT) < 20:
        argv += [b"BATCH", data.draw(known(server.batches))]
    return argv


def command(data: st.DataObject, server: Server) -> list[bytes]:
    """One command of the job family, drawn with its arguments."""
    ids = known(server.ids)
    lease = data.draw(st.sampled_from(server.leases) if server.leases
                      else st.just((b"0NOSUCHJOB", b"0")))
    queue = st.sampled_from(QUEUES)
    kind = data.draw(st.sampled_from([
        "push", "push", "push", "fetch", "fetch", "fetch", "ack", "ack", "ack", "fail", "fail",
        "beat", "cancel", "retry",
        "get", "list", "log", "pause", "resume", "purge", "stats", "qlist", "dlq",
        "requeue", "dlqpurge", "cron", "crondel", "cronpause", "batch", "commit",
    ]))
    h = lambda strategy: hostile(data, strategy)  # noqa: E731
    job_id, token = h(st.just(lease[0])), h(st.just(lease[1]))
    if kind == "push":
        return push_argv(data, server)
    simple: dict[str, list[bytes]] = {
        "fetch": [b"JOB.FETCH", b"COUNT", h(numbers(1, 3)), b"QUEUES", h(queue), *QUEUES],
        "ack": [b"JOB.ACK", job_id, token, b"RESULT", data.draw(st.binary(max_size=8))],
        "fail": [b"JOB.FAIL", job_id, token, data.draw(st.binary(max_size=8))],
        "beat": [b"JOB.BEAT", job_id, token],
        "cancel": [b"JOB.CANCEL", h(ids)],
        "retry": [b"JOB.RETRY", h(ids)],
        "get": [b"JOB.GET", h(ids)],
        "list": [b"JOB.LIST", b"QUEUE", h(queue), b"COUNT", h(numbers(1, 50))],
        "log": [b"JOB.LOG", job_id, token, data.draw(st.binary(max_size=8))],
        "pause": [b"QUEUE.PAUSE", h(queue)],
        "resume": [b"QUEUE.RESUME", h(queue)],
        "purge": [b"QUEUE.PURGE", h(queue)],
        "stats": [b"QUEUE.STATS", h(queue)],
        "qlist": [b"QUEUE.LIST"],
        "dlq": [b"DLQ.LIST", b"QUEUE", h(queue)],
        "requeue": [b"DLQ.REQUEUE", h(ids)],
        "dlqpurge": [b"DLQ.PURGE", b"QUEUE", h(queue)],
        "cron": [b"CRON.SET", h(st.sampled_from(CRON_NAMES)), h(st.sampled_from(SCHEDULES)),
                 h(queue), data.draw(st.binary(max_size=8))],
        "crondel": [b"CRON.DEL", h(st.sampled_from(CRON_NAMES))],
        "cronpause": [b"CRON.PAUSE", h(st.sampled_from(CRON_NAMES))],
        "batch": [b"BATCH.NEW", b"ONSUCCESS", h(queue), b"done"],
        "commit": [b"BATCH.COMMIT", h(known(server.batches))],
    }
    return simple[kind]


def scenario(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as path:
        steps(data, Server(path))


def steps(data: st.DataObject, server: Server) -> None:
    for _ in range(data.draw(st.sampled_from(range(10, 50)))):
        step = data.draw(st.sampled_from(["command"] * 8 + ["time", "archive", "restart"]))
        if step == "command":
            server.run(command(data, server))
        elif step == "time":
            server.clock.advance(data.draw(st.sampled_from([1, 500, 5_000, 70_000])))
            server.engine.tick()
            server.flush()
        elif step == "archive":
            server.archive()
        else:
            server.restart(data.draw(st.integers(0, 9)), from_snapshot=data.draw(st.booleans()))
    server.restart(0, from_snapshot=False)
    server.restart(1, from_snapshot=True)
    server.restart(2, from_snapshot=False)
    server.wal.close()


@pytest.mark.timeout(900)  # about 40 s of CPU: a loaded machine may stretch it well past 120
@CI
@given(st.data())
def test_job_commands_with_any_bytes_replay_to_the_same_state(data: st.DataObject) -> None:
    scenario(data)


@pytest.mark.fuzz
@FUZZ
@given(st.data())
def test_job_commands_with_any_bytes_replay_to_the_same_state_long(data: st.DataObject) -> None:
    scenario(data)
