"""The slow log: Redis' bounds on entries and arguments, redaction, and the dispatcher hook."""

from __future__ import annotations

from jobcached.commands.dispatch import execute
from jobcached.server.session import Session
from jobcached.server.slowlog import MAX_ARG_BYTES, SlowLog, bounded_argv, redacted
from jobcached.server.state import ServerState


def test_arguments_are_bounded_as_redis_does() -> None:
    assert bounded_argv([b"SET", b"k", b"v" * 300]) == [
        b"SET", b"k", b"v" * MAX_ARG_BYTES + b"... (172 more bytes)"]
    argv = [b"DEL", *[b"k%d" % i for i in range(40)]]  # 41 arguments
    kept = bounded_argv(argv)
    assert len(kept) == 32 and kept[:31] == argv[:31]
    assert kept[31] == b"... (10 more arguments)"
    exactly = [b"x"] * 32
    assert bounded_argv(exactly) == exactly


def test_passwords_are_redacted() -> None:
    assert redacted("auth", [b"AUTH", b"user", b"pw"]) == [b"AUTH", b"(redacted)", b"(redacted)"]
    assert redacted("acl|setuser", [b"ACL", b"SETUSER", b"u", b">pw"]) == [
        b"ACL", b"SETUSER", b"(redacted)", b"(redacted)"]
    assert redacted("hello", [b"HELLO", b"3", b"AUTH", b"u", b"pw", b"SETNAME", b"n"]) == [
        b"HELLO", b"3", b"AUTH", b"(redacted)", b"(redacted)", b"SETNAME", b"n"]
    assert redacted("config|set", [b"CONFIG", b"SET", b"requirepass", b"pw", b"timeout",
                                   b"1"])[3] == b"(redacted)"
    assert redacted("get", [b"GET", b"k"]) == [b"GET", b"k"]


def test_threshold_length_ids_and_reset() -> None:
    log = SlowLog(log_slower_than_us=-1, max_len=3)
    assert log.threshold_us > 10**15  # -1: unreachable
    log.configure(0, 3)
    for i in range(5):
        log.record("get", [b"GET", b"k%d" % i], 10 + i, 1_700_000_000, "1.2.3.4:5", b"name")
    assert len(log) == 3
    newest = log.get(1)[0]
    assert newest == [4, 1_700_000_000, 14, [b"GET", b"k4"], b"1.2.3.4:5", b"name"]
    assert [entry[0] for entry in log.get(None)] == [4, 3, 2]
    log.record("exec", [b"EXEC"], 99, 0, "a:1", b"")
    assert len(log) == 3  # EXEC is not logged, its commands are
    log.configure(0, 1)
    assert len(log) == 1
    log.reset()
    assert len(log) == 0 and log.next_id == 5


def test_dispatch_logs_commands_past_the_threshold(state: ServerState, session: Session) -> None:
    state.config.slowlog_log_slower_than = 0
    state.apply_config()
    session.name = b"worker-1"
    execute(session, [b"SET", b"k", b"v"])
    [entry] = execute(session, [b"SLOWLOG", b"GET", b"1"])
    assert entry[3] == [b"SET", b"k", b"v"] and entry[4] == b"127.0.0.1:5555"
    assert entry[5] == b"worker-1"
    assert execute(session, [b"SLOWLOG", b"LEN"]) >= 1
    state.config.slowlog_log_slower_than = -1
    state.apply_config()
    execute(session, [b"SLOWLOG", b"RESET"])
    execute(session, [b"SET", b"k", b"v"])
    assert execute(session, [b"SLOWLOG", b"LEN"]) == 0
    assert execute(session, [b"SLOWLOG", b"GET", b"-2"]).text.startswith("ERR count should")


def test_latency_histogram_reply_shape(state: ServerState, session: Session) -> None:
    for _ in range(3):
        execute(session, [b"SET", b"k", b"v"])
    reply = execute(session, [b"LATENCY", b"HISTOGRAM", b"set", b"client|id", b"nope"])
    assert list(reply) == [b"set"]
    set_stats = reply[b"set"]
    assert set(set_stats) == {b"calls", b"histogram_usec"}
    buckets = set_stats[b"histogram_usec"]
    assert set_stats[b"calls"] >= 3 and list(buckets.values())[-1] == set_stats[b"calls"]
    assert all(bound & (bound - 1) == 0 for bound in buckets)  # powers of two
    assert list(buckets.values()) == sorted(buckets.values())
