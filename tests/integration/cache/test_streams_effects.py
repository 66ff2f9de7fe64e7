"""What stream commands propagate, and that replaying it rebuilds the same stream.

Redis' rules, which followers depend on: XADD `*` / `ms-*` is propagated with the concrete id,
an approximate trim as the exact trim it turned out to be; XREADGROUP deliveries as `XCLAIM ...
FORCE JUSTID` with absolute times plus `XGROUP SETID ... ENTRIESREAD`; XCLAIM / XAUTOCLAIM as
XCLAIM per entry. The replay test runs every effect on a second server state and compares XINFO
STREAM FULL (consumers' seen-time aside: Redis does not propagate it either).
"""

from __future__ import annotations

from typing import Any

import pytest

from jobcached.commands.dispatch import execute
from jobcached.net.replies import ErrorReply
from tests.integration.cache.differential import Pair
from tests.integration.cache.test_strings import Local, command_table_matches

STREAM_COMMANDS = ["XADD", "XRANGE", "XREVRANGE", "XLEN", "XDEL", "XTRIM", "XSETID", "XREAD",
                   "XREADGROUP", "XACK", "XPENDING", "XCLAIM", "XAUTOCLAIM"]


def test_command_table(pair: Pair) -> None:
    command_table_matches(pair, STREAM_COMMANDS)


def test_xadd_effects_carry_concrete_ids() -> None:
    local = Local()
    now = local.clock.now_ms()
    assert local.effects("XADD", "s", "*", "a", "1") == [[b"XADD", b"s", b"%d-0" % now, b"a",
                                                          b"1"]]
    assert local.effects("XADD", "s", "*", "a", "2") == [[b"XADD", b"s", b"%d-1" % now, b"a",
                                                          b"2"]]
    assert local.effects("XADD", "s", f"{now}-*", "a", "3") == [
        [b"XADD", b"s", b"%d-2" % now, b"a", b"3"]]
    assert local.effects("XADD", "s", "NOMKSTREAM", "MAXLEN", "~", "1", "LIMIT", "5",
                         f"{now + 1}-5", "a", "4") == [
        [b"XADD", b"s", b"NOMKSTREAM", b"MAXLEN", b"=", b"4", b"%d-5" % (now + 1), b"a", b"4"]]
    assert local.effects("XADD", "s", "MAXLEN", "2", f"{now + 2}", "a", "5") == [
        [b"XADD", b"s", b"MAXLEN", b"=", b"2", b"%d-0" % (now + 2), b"a", b"5"]]
    assert local.effects("XADD", "n", "NOMKSTREAM", "*", "a", "b") == []
    assert local.effects("XTRIM", "s", "MAXLEN", "1") == [[b"XTRIM", b"s", b"MAXLEN", b"=",
                                                           b"1"]]
    assert local.effects("XTRIM", "s", "MINID", "~", "1") == []  # nothing to remove
    assert local.effects("XTRIM", "s", "MAXLEN", "~", "0") == [[b"XTRIM", b"s", b"MAXLEN", b"=",
                                                                b"0"]]
    assert local.effects("XDEL", "s", "1-1") == []


def test_xgroup_create_effect_keeps_mkstream_when_it_made_the_stream() -> None:
    """Without MKSTREAM in the effect a follower refuses it (no such key) and has no stream."""
    local = Local()
    assert local.effects("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM") == [
        [b"XGROUP", b"CREATE", b"s", b"g", b"0-0", b"MKSTREAM", b"ENTRIESREAD", b"-1"]]
    assert local.effects("XGROUP", "CREATE", "s", "h", "$", "MKSTREAM") == [
        [b"XGROUP", b"CREATE", b"s", b"h", b"0-0", b"ENTRIESREAD", b"-1"]]
    follower = Local()
    for argv in local.state.backlog.since(0) or []:
        follower(*argv)
    assert follower("XINFO", "GROUPS", "s") == local("XINFO", "GROUPS", "s")


def test_xreadgroup_effects_are_claims_and_setid() -> None:
    local = Local()
    local("XADD", "s", "1-0", "f", "v")
    local("XADD", "s", "2-0", "f", "v")
    local("XGROUP", "CREATE", "s", "g", "0")
    now = local.clock.now_ms()
    assert local.effects("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">") == [
        [b"XGROUP", b"CREATECONSUMER", b"s", b"g", b"c"],
        [b"XCLAIM", b"s", b"g", b"c", b"0", b"1-0", b"TIME", b"%d" % now, b"RETRYCOUNT", b"1",
         b"FORCE", b"JUSTID", b"LASTID", b"1-0"],
        [b"XCLAIM", b"s", b"g", b"c", b"0", b"2-0", b"TIME", b"%d" % now, b"RETRYCOUNT", b"1",
         b"FORCE", b"JUSTID", b"LASTID", b"2-0"],
        [b"XGROUP", b"SETID", b"s", b"g", b"2-0", b"ENTRIESREAD", b"2"]]
    assert local.effects("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">") == []


def test_history_read_leaves_a_deleted_entry_as_it_was() -> None:
    """Redis lists a pending entry deleted from the stream with no fields and neither counts
    nor propagates its delivery: an XCLAIM of it would drop it from a follower's PEL."""
    local, follower = Local(), Local()
    local("XADD", "s", "1-0", "f", "v")
    local("XADD", "s", "2-0", "f", "v")
    local("XGROUP", "CREATE", "s", "g", "0")
    local("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")
    local("XDEL", "s", "1-0")
    local.clock.advance(5)
    now = local.clock.now_ms()
    assert local.effects("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "0") == [
        [b"XCLAIM", b"s", b"g", b"c", b"0", b"2-0", b"TIME", b"%d" % now, b"RETRYCOUNT", b"2",
         b"FORCE", b"JUSTID", b"LASTID", b"2-0"]]
    pending = ["XPENDING", "s", "g", "-", "+", "10"]
    assert [(entry[0], entry[3]) for entry in local(*pending)] == [(b"1-0", 1), (b"2-0", 2)]
    follower.clock.advance(now - follower.clock.now_ms())
    for argv in local.state.backlog.since(0) or []:
        follower(*argv)
    assert follower(*pending) == local(*pending)


def seen_time_blank(reply: Any) -> Any:
    if isinstance(reply, dict):
        return {k: ("t" if k == "seen-time" else seen_time_blank(v)) for k, v in reply.items()}
    if isinstance(reply, list):
        return [seen_time_blank(x) for x in reply]
    return reply


T0 = 1_700_000_000_000  # ManualClock's start: the first `*` id
SCRIPT = [
    ["XADD", "s", "*", "f", "1"], ["XADD", "s", "*", "f", "2"], ["XADD", "s", "*", "f", "3"],
    ["XGROUP", "CREATE", "s", "g", "0"], ["XGROUP", "CREATE", "s", "h", "$", "ENTRIESREAD", "3"],
    ["XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", "s", ">"],
    ["XREADGROUP", "GROUP", "g", "bob", "NOACK", "STREAMS", "s", ">"],
    ["XADD", "s", "MAXLEN", "~", "2", "*", "f", "4"],
    ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"],
    ["XCLAIM", "s", "g", "carol", "0", f"{T0}-0", "RETRYCOUNT", "5"],
    ["XACK", "s", "g", f"{T0 + 7}-0"],
    ["XGROUP", "CREATECONSUMER", "s", "g", "dave"],
    ["XAUTOCLAIM", "s", "g", "dave", "0", "0"],
    ["XGROUP", "SETID", "s", "h", "0"],
    ["XREADGROUP", "GROUP", "h", "x", "STREAMS", "s", ">"],
    ["XDEL", "s", f"{T0 + 14}-0"], ["XTRIM", "s", "MINID", f"{T0 + 1}"],
    ["XGROUP", "DELCONSUMER", "s", "h", "x"], ["XSETID", "s", "99999999999999-0"],
    ["XADD", "s", "99999999999999-*", "f", "5"],
    ["XCLAIM", "s", "g", "erin", "0", "99999999999999-1", "FORCE", "LASTID",
     "99999999999999-1"],
    ["XGROUP", "DESTROY", "s", "nope"],
]


@pytest.mark.parametrize("upto", [5, 9, 14, len(SCRIPT)])
def test_replaying_the_effects_rebuilds_the_stream(upto: int) -> None:
    leader, follower = Local(), Local()
    start = leader.state.backlog.count
    for argv in SCRIPT[:upto]:
        reply = execute(leader.session, [a.encode() for a in argv])
        assert not isinstance(reply, ErrorReply), (argv, reply)
        leader.clock.advance(7)
    effects = leader.state.backlog.last(leader.state.backlog.count - start)
    # A follower replays in (about) the leader's time: XCLAIM ... TIME clamps future times.
    follower.clock.advance(leader.clock.now_ms() - follower.clock.now_ms())
    for argv in effects:
        reply = execute(follower.session, list(argv))
        assert not isinstance(reply, ErrorReply), (argv, reply)
    full = ["XINFO", "STREAM", "s", "FULL", "COUNT", "0"]
    assert seen_time_blank(follower(*full)) == seen_time_blank(leader(*full))
    assert follower("XINFO", "STREAM", "s") == leader("XINFO", "STREAM", "s")
    leader.memory_is_exact()
    follower.memory_is_exact()
