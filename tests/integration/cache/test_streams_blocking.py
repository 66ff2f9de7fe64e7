"""Blocking XREAD and XREADGROUP with real clients, against jobcached and redis-server alike.

Same harness as test_blocking.py: clients block in threads and the test waits until the server
lists them as running their command before it writes, so the order of events is certain.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.test_blocking import WAIT_SECONDS, Target
from tests.integration.cache.test_zsets import raw_replies


class StreamTarget(Target):
    def last_command(self, name: str) -> str | None:
        admin = self.clients[0] if self.clients else self.client()
        for info in admin.client_list():
            if info.get("name") == name and info.get("cmd", "").startswith("xread"):
                return str(info["cmd"])
        return None


@pytest.fixture(params=["jobcached", "redis"])
def target(request: pytest.FixtureRequest, server: ServerProcess,
           redis_server: RedisServerProcess) -> Iterator[StreamTarget]:
    port = server.port if request.param == "jobcached" else redis_server.port
    t = StreamTarget(port, request.param)
    t.client().flushall()
    yield t
    t.close()


def caught(call: Any) -> Any:
    def run(r: redis.Redis) -> Any:
        try:
            return call(r)
        except redis.ResponseError as exc:
            return str(exc)
    return run


def test_xread_is_woken_by_xadd_on_any_of_its_keys(target: StreamTarget) -> None:
    admin = target.clients[0]
    admin.xadd("a", {"f": "old"}, id="1-0")
    waiting = target.start("w", lambda r: r.xread({"a": "$", "b": "$"}, block=0))
    assert not waiting.done()
    admin.xadd("b", {"f": "new"}, id="5-0")
    assert waiting.result(WAIT_SECONDS) == [[b"b", [(b"5-0", {b"f": b"new"})]]]


def test_every_xread_waiter_gets_the_entry(target: StreamTarget) -> None:
    admin = target.clients[0]
    waiters = [target.start(f"w{i}", lambda r: r.xread({"s": "$"}, block=0)) for i in range(3)]
    admin.xadd("s", {"f": "1"}, id="1-0")
    for w in waiters:
        assert w.result(WAIT_SECONDS) == [[b"s", [(b"1-0", {b"f": b"1"})]]]


def test_xread_count_applies_when_woken(target: StreamTarget) -> None:
    admin = target.clients[0]
    admin.xadd("s", {"f": "0"}, id="1-0")
    waiting = target.start("w", lambda r: r.xread({"s": "$"}, count=1, block=0))
    pipe = admin.pipeline(transaction=True)
    pipe.xadd("s", {"f": "a"}, id="2-0")
    pipe.xadd("s", {"f": "b"}, id="3-0")
    pipe.execute()
    assert waiting.result(WAIT_SECONDS) == [[b"s", [(b"2-0", {b"f": b"a"})]]]


def test_xread_times_out_with_a_null_array(target: StreamTarget) -> None:
    r = target.client()
    started = time.monotonic()
    assert not r.xread({"s": "$"}, block=100)
    assert time.monotonic() - started >= 0.09
    for resp3 in (False, True):
        replies = raw_replies(target.port, [("XREAD", "BLOCK", "50", "STREAMS", "s", "$"),
                                            ("XGROUP", "CREATE", "g", "grp", "$", "MKSTREAM"),
                                            ("XREADGROUP", "GROUP", "grp", "c", "BLOCK", "50",
                                             "STREAMS", "g", ">"),
                                            ("DEL", "g")], resp3)
        null = b"_\r\n" if resp3 else b"*-1\r\n"
        assert replies == [null, b"+OK\r\n", null, b":1\r\n"]


def test_xreadgroup_waiters_are_served_in_order(target: StreamTarget) -> None:
    admin = target.clients[0]
    admin.xgroup_create("s", "g", id="$", mkstream=True)
    first = target.start("first", lambda r: r.xreadgroup("g", "c1", {"s": ">"}, block=0))
    second = target.start("second", lambda r: r.xreadgroup("g", "c2", {"s": ">"}, block=0))
    admin.xadd("s", {"f": "1"}, id="1-0")
    assert first.result(WAIT_SECONDS) == [[b"s", [(b"1-0", {b"f": b"1"})]]]
    assert not second.done()
    admin.xadd("s", {"f": "2"}, id="2-0")
    assert second.result(WAIT_SECONDS) == [[b"s", [(b"2-0", {b"f": b"2"})]]]
    pending = admin.xpending("s", "g")
    assert pending["pending"] == 2
    assert sorted(c["name"] for c in pending["consumers"]) == [b"c1", b"c2"]


def test_xreadgroup_waiter_gets_nogroup_when_the_group_is_destroyed(
        target: StreamTarget) -> None:
    admin = target.clients[0]
    admin.xgroup_create("s", "g", id="$", mkstream=True)
    waiting = target.start("w", caught(lambda r: r.xreadgroup("g", "c", {"s": ">"}, block=0)))
    assert admin.xgroup_destroy("s", "g") == 1
    assert waiting.result(WAIT_SECONDS) == (
        "NOGROUP the consumer group this client was blocked on no longer exists")


def test_xreadgroup_after_setid_back_is_served_from_there_by_the_next_xadd(
        target: StreamTarget) -> None:
    admin = target.clients[0]
    admin.xadd("s", {"f": "1"}, id="1-0")
    admin.xgroup_create("s", "g", id="$")
    waiting = target.start("w", lambda r: r.xreadgroup("g", "c", {"s": ">"}, count=5, block=0))
    admin.xgroup_setid("s", "g", id="0")
    time.sleep(0.1)
    assert not waiting.done()  # SETID wakes nobody; the next XADD serves from the new position
    admin.xadd("s", {"f": "2"}, id="2-0")
    assert waiting.result(WAIT_SECONDS) == [
        [b"s", [(b"1-0", {b"f": b"1"}), (b"2-0", {b"f": b"2"})]]]


def test_xreadgroup_noack_when_woken(target: StreamTarget) -> None:
    admin = target.clients[0]
    admin.xgroup_create("s", "g", id="$", mkstream=True)
    waiting = target.start(
        "w", lambda r: r.xreadgroup("g", "c", {"s": ">"}, block=0, noack=True))
    admin.xadd("s", {"f": "1"}, id="1-0")
    assert waiting.result(WAIT_SECONDS) == [[b"s", [(b"1-0", {b"f": b"1"})]]]
    assert admin.xpending("s", "g")["pending"] == 0
    assert admin.xinfo_groups("s")[0]["last-delivered-id"] == b"1-0"


def test_blocked_readers_inside_multi_answer_at_once(target: StreamTarget) -> None:
    admin = target.clients[0]
    admin.xgroup_create("s", "g", id="$", mkstream=True)
    pipe = admin.pipeline(transaction=True)
    pipe.xread({"s": "$"}, block=0)
    pipe.xreadgroup("g", "c", {"s": ">"}, block=0)
    assert pipe.execute() == [[], []]  # null arrays, as redis-py reads them


@pytest.mark.parametrize("how", ["DEL", "SET", "FLUSHALL", "PEXPIRE"])
def test_xreadgroup_waiter_is_unblocked_when_the_key_goes(target: StreamTarget, how: str) -> None:
    admin = target.clients[0]
    admin.xgroup_create("s", "g", id="$", mkstream=True)
    group_reader = target.start(
        "w", caught(lambda r: r.xreadgroup("g", "c", {"s": ">"}, block=0)))
    plain_reader = target.start("p", lambda r: r.xread({"s": "$"}, block=0))
    if how == "DEL":
        admin.delete("s")
    elif how == "SET":
        admin.set("s", "string")
    elif how == "PEXPIRE":
        admin.pexpire("s", 20)  # active expiry removes it
    else:
        admin.flushall()
    assert group_reader.result(WAIT_SECONDS) == "UNBLOCKED the stream key no longer exists"
    time.sleep(0.1)
    assert not plain_reader.done()  # XREAD keeps waiting, as in Redis 7.0
    admin.delete("s")
    admin.xadd("s", {"f": "1"}, id="1-0")
    assert plain_reader.result(WAIT_SECONDS) == [[b"s", [(b"1-0", {b"f": b"1"})]]]


def test_rename_onto_a_waited_name_serves_xread(target: StreamTarget) -> None:
    admin = target.clients[0]
    waiting = target.start("w", lambda r: r.xread({"dst": "$"}, block=0))
    admin.xadd("src", {"f": "1"}, id="1-0")
    assert admin.rename("src", "dst")
    assert waiting.result(WAIT_SECONDS) == [[b"dst", [(b"1-0", {b"f": b"1"})]]]


@pytest.mark.parametrize("source_group", ["g", "other"])
def test_rename_over_a_waited_stream_serves_xreadgroup_from_the_new_value(
        target: StreamTarget, source_group: str) -> None:
    admin = target.clients[0]
    admin.xgroup_create("dst", "g", id="$", mkstream=True)
    admin.xadd("src", {"f": "1"}, id="1-0")
    admin.xgroup_create("src", source_group, id="0")
    waiting = target.start("w", caught(lambda r: r.xreadgroup("g", "c", {"dst": ">"}, block=0)))
    assert admin.rename("src", "dst")
    expected: Any = [[b"dst", [(b"1-0", {b"f": b"1"})]]] if source_group == "g" else (
        "NOGROUP the consumer group this client was blocked on no longer exists")
    assert waiting.result(WAIT_SECONDS) == expected


@pytest.mark.parametrize("how", ["RENAME", "MOVE"])
def test_xreadgroup_waiter_is_unblocked_when_its_key_is_renamed_or_moved_away(
        target: StreamTarget, how: str) -> None:
    admin = target.clients[0]
    admin.xgroup_create("s", "g", id="$", mkstream=True)
    group_reader = target.start(
        "w", caught(lambda r: r.xreadgroup("g", "c", {"s": ">"}, block=0)))
    plain_reader = target.start("p", lambda r: r.xread({"s": "$"}, block=0))
    if how == "RENAME":
        assert admin.rename("s", "elsewhere")
    else:
        assert admin.move("s", 1)
    assert group_reader.result(WAIT_SECONDS) == "UNBLOCKED the stream key no longer exists"
    time.sleep(0.1)
    assert not plain_reader.done()  # XREAD keeps waiting for the name, as in Redis 7.0
    admin.xadd("s", {"f": "1"}, id="1-0")
    assert plain_reader.result(WAIT_SECONDS) == [[b"s", [(b"1-0", {b"f": b"1"})]]]
