"""Consumer groups against redis-server: XGROUP, XREADGROUP (history and `>`), XACK, XPENDING,
XCLAIM, XAUTOCLAIM and XINFO, with Redis' error texts.

Idle times and delivery times depend on each server's clock: `stable()` replaces them with a
marker after checking they are small non-negative integers, and `radix-tree-nodes` (Redis'
internal radix-tree node count) is left out. Everything else must be equal.
"""

from __future__ import annotations

from typing import Any

from tests.integration.cache.differential import Pair, normalize

TIME_FIELDS = {b"idle", b"seen-time"}
MAX_IDLE_MS = 60_000
UNIX_MS_2001 = 10**12  # smaller integers in these replies are counts, not times


def stable(reply: Any, times_at: tuple[int, ...] = ()) -> Any:
    """Blank the clock-dependent parts of XINFO / XPENDING replies."""
    if isinstance(reply, dict):
        out = {}
        for k, v in reply.items():
            if k == b"radix-tree-nodes":
                continue
            if k in TIME_FIELDS:
                assert isinstance(v, int)
                v = "time"
            out[k] = stable(v, times_at)
        return out
    if isinstance(reply, list):
        if len(reply) % 2 == 0 and any(x in (b"idle", b"seen-time", b"radix-tree-nodes")
                                       for x in reply[::2]):
            flat = dict(zip(reply[::2], reply[1::2], strict=True))
            return stable(flat, times_at)
        return [stable(x, times_at) for x in reply]
    if isinstance(reply, int) and reply >= UNIX_MS_2001:
        return "time"  # a delivery or seen time (XINFO STREAM FULL)
    return reply


def check_stable(pair: Pair, *argv: Any) -> None:
    ours, theirs = pair.both(*argv)
    assert normalize(stable(ours)) == normalize(stable(theirs)), (
        f"{argv!r}: jobcached {ours!r} != redis {theirs!r}")


def check_pending(pair: Pair, *argv: Any) -> None:
    """Extended XPENDING: idle (third field) only checked for range."""
    ours, theirs = pair.both(*argv)
    if isinstance(ours, list) and isinstance(theirs, list):
        for row in ours + theirs:
            assert 0 <= row[2] < MAX_IDLE_MS
            row[2] = "idle"
    assert ours == theirs, f"{argv!r}: jobcached {ours!r} != redis {theirs!r}"


def fill(pair: Pair, key: str, n: int) -> None:
    for i in range(1, n + 1):
        pair.check("XADD", key, f"{i}-0", "f", str(i))


def test_xgroup_errors_and_lifecycle(pair: Pair) -> None:
    for args in [["CREATE", "s", "g", "$"], ["SETID", "s", "g", "$"],
                 ["CREATECONSUMER", "s", "g", "c"], ["DESTROY", "s", "g"],
                 ["DELCONSUMER", "s", "g", "c"], ["CREATE", "s", "g", "$", "MKSTREAM", "foo"],
                 ["CREATE", "s", "g", "$", "ENTRIESREAD", "-5"], ["CREATE", "s", "g", "bad",
                                                                  "MKSTREAM"],
                 ["CREATE", "s", "g", "$", "MKSTREAM"], ["CREATE", "s", "g", "$"],
                 ["SETID", "s", "g", "0", "foo", "1"], ["SETID", "s", "g", "0", "ENTRIESREAD"],
                 ["SETID", "s", "g", "bad"], ["SETID", "s", "g", "-"], ["SETID", "s", "nog", "0"],
                 ["FOO", "s", "g"], ["CREATE", "s"], ["CREATECONSUMER", "s", "g", "c"],
                 ["CREATECONSUMER", "s", "g", "c"], ["CREATECONSUMER", "s", "nog", "c"],
                 ["DELCONSUMER", "s", "g", "c"], ["DELCONSUMER", "s", "g", "nobody"],
                 ["CREATE", "s", "g2", "0", "ENTRIESREAD", "3"], ["DESTROY", "s", "g2"],
                 ["DESTROY", "s", "g2"], ["SETID", "s", "g", "5-0", "ENTRIESREAD", "2"],
                 # the syntax error echoes the subcommand as the client spelled it
                 ["cReAtE", "s", "g", "$", "MKSTREAM", "foo"], ["sEtId", "s", "g", "0", "x", "1"]]:
        pair.check("XGROUP", *args)
        check_stable(pair, "XINFO", "STREAM", "s")
        check_stable(pair, "XINFO", "GROUPS", "s")
    pair.check("SET", "str", "x")
    pair.check("XGROUP", "CREATE", "str", "g", "$")
    pair.check("XINFO", "FOO", "s")
    pair.check("XINFO", "GROUPS", "nokey")
    pair.check("XINFO", "CONSUMERS", "s", "nog")
    pair.check("XINFO", "STREAM", "s", "FULL", "COUNT")
    pair.check("XINFO", "STREAM", "s", "foo")
    pair.check("XINFO", "sTrEaM", "s", "FULL", "COUNT")
    pair.check("XINFO", "STREAM", "str")


def test_xreadgroup_delivery_ack_pending(pair: Pair) -> None:
    fill(pair, "s", 10)
    pair.check("XGROUP", "CREATE", "s", "g", "0")
    for argv in [["GROUP", "g", "alice", "COUNT", "3", "STREAMS", "s", ">"],
                 ["GROUP", "g", "bob", "COUNT", "2", "STREAMS", "s", ">"],
                 ["GROUP", "g", "alice", "STREAMS", "s", "0"],
                 ["GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", "1-0"],
                 ["GROUP", "g", "carol", "NOACK", "COUNT", "2", "STREAMS", "s", ">"],
                 ["GROUP", "g", "bob", "STREAMS", "s", "$"], ["GROUP", "g", "bob", "STREAMS",
                                                              "s", "+"],
                 ["GROUP", "nog", "bob", "STREAMS", "s", ">"], ["GROUP", "g", "bob", "STREAMS",
                                                               "nokey", ">"],
                 ["STREAMS", "s", ">"], ["GROUP", "g", "bob", "STREAMS", "s"],
                 ["GROUP", "g", "bob", "STREAMS", "s", "bad"], ["GROUP", "g"],
                 ["GROUP", "g", "bob", "FOO", "STREAMS", "s", ">"]]:
        pair.check("XREADGROUP", *argv)
    check_stable(pair, "XINFO", "GROUPS", "s")
    check_stable(pair, "XINFO", "CONSUMERS", "s", "g")
    check_stable(pair, "XINFO", "STREAM", "s", "FULL")
    pair.check("XPENDING", "s", "g")
    check_pending(pair, "XPENDING", "s", "g", "-", "+", "10")
    check_pending(pair, "XPENDING", "s", "g", "(1-0", "(5", "10", "alice")
    check_pending(pair, "XPENDING", "s", "g", "IDLE", "0", "-", "+", "2")
    check_pending(pair, "XPENDING", "s", "g", "-", "+", "10", "nobody")
    check_pending(pair, "XPENDING", "s", "g", "IDLE", "100000", "-", "+", "10")
    for bad in [["-", "+"], ["IDLE", "x", "-", "+", "1"], ["IDLE", "1", "-", "+"],
                ["-", "+", "x"], ["bad", "+", "1"], ["-", "+", "1", "c", "extra", "x"]]:
        pair.check("XPENDING", "s", "g", *bad)
    pair.check("XPENDING", "s", "nog")
    pair.check("XPENDING", "nokey", "g", "-", "+", "1")
    pair.check("XACK", "s", "g", "1-0", "2-0", "9-0", "1-0")
    pair.check("XACK", "s", "g", "3-0", "bad")
    pair.check("XACK", "s", "nog", "3-0")
    pair.check("XACK", "nokey", "g", "bad")
    pair.check("XPENDING", "s", "g")
    pair.check("XDEL", "s", "3-0")
    pair.check("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0")
    # the deleted 3-0 was not delivered again: its count stays (the others' went up)
    check_pending(pair, "XPENDING", "s", "g", "-", "+", "10", "alice")
    check_stable(pair, "XINFO", "GROUPS", "s")
    pair.check("XGROUP", "DELCONSUMER", "s", "g", "alice")
    pair.check("XPENDING", "s", "g")
    pair.check("XADD", "s", "20-0", "x", "y")
    check_stable(pair, "XINFO", "GROUPS", "s")
    pair.check("XREADGROUP", "GROUP", "g", "dave", "STREAMS", "s", ">")
    check_stable(pair, "XINFO", "GROUPS", "s")
    pair.check("XGROUP", "SETID", "s", "g", "0")
    check_stable(pair, "XINFO", "GROUPS", "s")
    pair.check("XREADGROUP", "GROUP", "g", "erin", "COUNT", "4", "STREAMS", "s", ">")
    check_stable(pair, "XINFO", "STREAM", "s", "FULL", "COUNT", "0")
    pair.check("XPENDING", "s", "g")


def test_lag_and_entries_read(pair: Pair) -> None:
    fill(pair, "s", 5)
    pair.check("XGROUP", "CREATE", "s", "a", "0")
    pair.check("XGROUP", "CREATE", "s", "b", "$")
    pair.check("XGROUP", "CREATE", "s", "c", "3-0")
    pair.check("XGROUP", "CREATE", "s", "d", "0", "ENTRIESREAD", "1")
    check_stable(pair, "XINFO", "GROUPS", "s")
    pair.check("XREADGROUP", "GROUP", "a", "x", "COUNT", "2", "STREAMS", "s", ">")
    pair.check("XREADGROUP", "GROUP", "c", "x", "COUNT", "1", "STREAMS", "s", ">")
    check_stable(pair, "XINFO", "GROUPS", "s")
    pair.check("XDEL", "s", "4-0")
    check_stable(pair, "XINFO", "GROUPS", "s")
    pair.check("XREADGROUP", "GROUP", "a", "x", "STREAMS", "s", ">")
    pair.check("XADD", "s", "6-0", "f", "6")
    check_stable(pair, "XINFO", "GROUPS", "s")
    pair.check("XDEL", "s", "1-0")
    pair.check("XTRIM", "s", "MAXLEN", "1")
    check_stable(pair, "XINFO", "GROUPS", "s")
    check_stable(pair, "XINFO", "STREAM", "s")


def test_xclaim_and_xautoclaim(pair: Pair) -> None:
    fill(pair, "s", 8)
    pair.check("XGROUP", "CREATE", "s", "g", "0")
    pair.check("XREADGROUP", "GROUP", "g", "alice", "COUNT", "6", "STREAMS", "s", ">")
    pair.check("XCLAIM", "s", "g", "bob", "0", "1-0", "2-0", "99-0")
    pair.check("XCLAIM", "s", "g", "bob", "0", "3-0", "JUSTID")
    pair.check("XCLAIM", "s", "g", "bob", "0", "4-0", "RETRYCOUNT", "7", "IDLE", "5000")
    check_pending(pair, "XPENDING", "s", "g", "-", "+", "10")
    pair.check("XCLAIM", "s", "g", "bob", "100000", "5-0")
    pair.check("XCLAIM", "s", "g", "bob", "0", "7-0")
    pair.check("XCLAIM", "s", "g", "bob", "0", "7-0", "FORCE")
    pair.check("XCLAIM", "s", "g", "bob", "0", "8-0", "FORCE", "JUSTID", "LASTID", "9-0")
    check_stable(pair, "XINFO", "GROUPS", "s")
    pair.check("XCLAIM", "s", "g", "bob", "0", "1-0", "TIME", "1000")
    for bad in [["x", "1-0"], ["0", "1-0", "FOO"], ["0", "1-0", "IDLE", "x"],
                ["0", "1-0", "TIME", "x"], ["0", "1-0", "RETRYCOUNT", "x"],
                ["0", "1-0", "LASTID", "bad"], ["0", "1-0", "IDLE"]]:
        pair.check("XCLAIM", "s", "g", "bob", *bad)
    pair.check("XCLAIM", "s", "nog", "bob", "0", "1-0")
    pair.check("XCLAIM", "nokey", "g", "bob", "0", "1-0")
    pair.check("XDEL", "s", "2-0", "6-0")
    pair.check("XCLAIM", "s", "g", "carol", "0", "2-0", "3-0")
    pair.check("XPENDING", "s", "g")
    pair.check("XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "2")
    pair.check("XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "1", "JUSTID")
    pair.check("XAUTOCLAIM", "s", "g", "dave", "0", "(1-0")
    pair.check("XAUTOCLAIM", "s", "g", "dave", "100000", "-")
    for bad in [["x", "0"], ["0", "bad"], ["0", "0", "COUNT", "0"], ["0", "0", "COUNT", "x"],
                ["0", "0", "FOO"], ["0", "0", "COUNT"]]:
        pair.check("XAUTOCLAIM", "s", "g", "dave", *bad)
    pair.check("XAUTOCLAIM", "s", "nog", "dave", "0", "0")
    pair.check("XPENDING", "s", "g")
    check_stable(pair, "XINFO", "STREAM", "s", "FULL")


def test_xreadgroup_option_errors(pair: Pair) -> None:
    pair.check("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    for args in (["GROUP", "g", "c", "STREAMS", "s"], ["GROUP", "g", "c", "STREAMS", "s", "t",
                                                     ">"],
                 ["STREAMS", "s", ">"], ["COUNT", "2", "STREAMS", "s", ">"],
                 ["GROUP", "g", "c", "STREAMS", "s", "$"], ["GROUP", "g", "c", "s", ">"],
                 ["GROUP", "g", "c", "BLOCK", "-1", "STREAMS", "s", ">"],
                 ["GROUP", "g", "c", "BLOCK", "x", "STREAMS", "s", ">"],
                 ["GROUP", "g", "c", "COUNT", "x", "STREAMS", "s", ">"],
                 ["GROUP", "g", "c", "FOO", "STREAMS", "s", ">"],
                 ["GROUP", "g", "STREAMS", "s", ">"], ["GROUP", "g", "c", "STREAMS", "s", "bad"],
                 ["GROUP", "nog", "c", "STREAMS", "s", ">"],
                 ["NOACK", "GROUP", "g", "c", "COUNT", "-5", "STREAMS", "s", ">"]):
        pair.check("XREADGROUP", *args)
