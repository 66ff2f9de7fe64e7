"""Replication without sockets: the full-sync payload rebuilds a server on an empty one, a
follower counts offsets as the leader encodes them and logs none of its own effects. No fork:
the snapshot generator is called directly."""

from __future__ import annotations

from typing import Any

from jobcached.clock import ManualClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import load_all
from jobcached.config import Config
from jobcached.jobs.engine import JobEngine
from jobcached.jobs.records import decode_record
from jobcached.net.replies import ErrorReply
from jobcached.replication.backlog import JOB_RECORD, encode_command
from jobcached.replication.snapshot import snapshot_commands
from jobcached.scripting import rdbdump
from jobcached.server.follower import command_size
from jobcached.server.session import Session
from jobcached.server.state import ServerState

NOW_MS = 1_800_000_000_000


class Quiet:
    """A Connection that never writes."""

    def close_after_reply(self) -> None: ...

    def abort(self) -> None: ...

    def push(self, value: Any) -> None: ...

    def push_after_reply(self, value: Any) -> None: ...

    def query_buffer_bytes(self) -> int:
        return 0

    def output_buffer_bytes(self) -> int:
        return 0


def server() -> tuple[ServerState, Session]:
    load_all()
    clock = ManualClock(NOW_MS)
    state = ServerState(Config(), clock)
    state.jobs = JobEngine(clock)
    return state, Session(state, Quiet(), "test", "", True)


def run(s: Session, *argv: str | int) -> Any:
    reply = execute(s, [str(a).encode() for a in argv])
    assert not isinstance(reply, ErrorReply), (argv, reply)
    return reply


def test_the_payload_rebuilds_keys_ttls_databases_and_jobs() -> None:
    state, s = server()
    run(s, "SET", "plain", "v")
    run(s, "SET", "ttl", "v", "PX", 5000)
    run(s, "SET", "gone", "v", "PX", 10)
    run(s, "HSET", "h", "f", "1")
    run(s, "SELECT", 2)
    run(s, "ZADD", "z", 1, "m")
    assert state.jobs is not None
    job_id, _ = state.jobs.push("q", b"payload")
    state.clock.advance(100)  # type: ignore[attr-defined]  # "gone" expired, not yet reaped

    commands = list(snapshot_commands(state.dbs, state.clock.now_ms(), state.jobs, None))
    assert commands[0] == [b"SELECT", b"0"]
    restored = [argv[1] for argv in commands if argv[0] == b"RESTORE"]
    assert sorted(restored) == [b"h", b"z"]
    # strings as SET (no DUMP payload to compress and checksum), a TTL as its absolute time
    assert sorted(argv for argv in commands if argv[0] == b"SET") == [
        [b"SET", b"plain", b"v"], [b"SET", b"ttl", b"v", b"PXAT", str(NOW_MS + 5000).encode()]]

    follower, f = server()
    follower.clock.advance(100)  # type: ignore[attr-defined]
    fresh = JobEngine(follower.clock)
    for argv in commands:
        if argv[0] == JOB_RECORD:
            fresh.replay([decode_record(argv[1])])
        else:
            _raw(f, argv)
    job = fresh.get(job_id)
    assert job is not None and job.payload == b"payload"
    _raw(f, [b"SELECT", b"0"])
    assert run(f, "GET", "plain") == b"v"
    assert run(f, "PEXPIRETIME", "ttl") == NOW_MS + 5000
    assert run(f, "EXISTS", "gone") == 0
    _raw(f, [b"SELECT", b"2"])
    assert run(f, "ZSCORE", "z", "m") == 1.0


def _raw(s: Session, argv: list[bytes]) -> Any:
    reply = execute(s, argv)
    assert not isinstance(reply, ErrorReply), (argv, reply)
    return reply


def test_functions_are_in_the_payload() -> None:
    state, _ = server()
    code = b"#!lua name=lib\nredis.register_function('f', function() return 1 end)"
    commands = list(snapshot_commands(state.dbs, state.clock.now_ms(), state.jobs,
                                      rdbdump.dump([code])))
    assert [argv[:2] for argv in commands] == [[b"FUNCTION", b"RESTORE"]]
    assert commands[0][3] == b"FLUSH"


def test_the_follower_counts_what_the_leader_encodes() -> None:
    for argv in ([b"PING"], [b"SET", b"k", b"v" * 1000], [b"X"] * 12, [b""], [JOB_RECORD,
                                                                             b"\x00" * 99]):
        assert command_size(argv) == len(encode_command(argv))


def test_a_follower_logs_none_of_its_own_effects() -> None:
    state, s = server()
    state.backlog.activate()
    state.effects.mute(True)
    run(s, "SET", "k", "v")
    assert state.backlog.count == 0
    state.effects.mute(False)  # promoted: logged again, after a SELECT
    run(s, "SET", "k", "w")
    assert state.backlog.since(0) == [[b"SELECT", b"0"], [b"SET", b"k", b"w"]]
