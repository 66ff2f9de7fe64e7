"""notify.py: the flag string read and spelled as Redis 7.0 does, and notify() publishing on
the keyspace and keyevent channels of the right database, only for enabled classes."""

from __future__ import annotations

from typing import Any

import pytest

from jobcached.clock import ManualClock
from jobcached.config import Config, ConfigError
from jobcached.server import notify
from jobcached.server.state import ServerState
from jobcached.settings import notifyflags


class Listener:
    def __init__(self) -> None:
        self.sub_channels: dict[bytes, None] = {}
        self.sub_patterns: dict[bytes, None] = {}
        self.sub_shard_channels: dict[bytes, None] = {}
        self.messages: list[list[Any]] = []

    def deliver(self, message: list[Any]) -> None:
        self.messages.append(message)


@pytest.mark.parametrize(("given", "shown"), [
    ("KEA", "AKE"), ("Elg", "glE"), ("", ""), ("AKEn", "AKE"), ("nK", "nK"), ("x", "x"),
    ("AKEm", "AKEm"), ("gsn$lhzxetdKEm", "AKEm"), ("g$lshzxetd", "A")])
def test_flag_strings_are_spelled_as_redis_spells_them(given: str, shown: str) -> None:
    assert notifyflags.canonical(given) == shown


def test_a_with_n_keeps_new_events_although_the_spelling_hides_n() -> None:
    assert notifyflags.parse_flags("AKEn") & notifyflags.NEW
    config = Config()
    config.set("notify-keyspace-events", "AKEn", runtime=True)
    assert config.render("notify-keyspace-events") == "AKE"
    state = ServerState(config, clock=ManualClock())
    assert state.notify_flags & notify.NEW


def test_unknown_class_characters_are_refused_with_redis_text() -> None:
    with pytest.raises(ConfigError,
                       match=r"Invalid event class character. Use 'Ag\$lshzxeKEtmdn'."):
        Config().set("notify-keyspace-events", "KEQ", runtime=True)


def publish_all(flags: str) -> list[list[Any]]:
    config = Config()
    config.set("notify-keyspace-events", flags)
    state = ServerState(config, clock=ManualClock())
    listener = Listener()
    state.pubsub.psubscribe(listener, b"*")
    state.db = 3
    notify.notify(state, notify.STRING, b"set", b"k")
    notify.notify(state, notify.HASH, b"hset", b"h", db=5)
    state.dbs[0].set(b"fresh", b"v")  # the `new` hook
    state.dbs[1].lookup_read(b"absent")  # the `keymiss` hook
    return [m[2:] for m in listener.messages]


def test_notify_publishes_per_class_and_database() -> None:
    assert publish_all("KEA") == [
        [b"__keyspace@3__:k", b"set"], [b"__keyevent@3__:set", b"k"],
        [b"__keyspace@5__:h", b"hset"], [b"__keyevent@5__:hset", b"h"]]
    assert publish_all("Kh") == [[b"__keyspace@5__:h", b"hset"]]
    assert publish_all("A") == []  # classes without K or E publish nothing
    assert publish_all("Enm") == [[b"__keyevent@0__:new", b"fresh"],
                                  [b"__keyevent@1__:keymiss", b"absent"]]


def test_engine_removals_are_expired_and_evicted_events_of_their_database() -> None:
    clock = ManualClock()
    config = Config()
    config.set("notify-keyspace-events", "Exe")
    state = ServerState(config, clock=clock)
    listener = Listener()
    state.pubsub.psubscribe(listener, b"*")
    state.dbs[4].set(b"brief", b"v", expire_at_ms=clock.now_ms() + 10)
    clock.advance(20)
    state.dbs.active_expire_cycle()
    state.dbs[6].set(b"victim", b"v" * 1000)
    state.dbs.configure(1, "allkeys-random", 5, 10, 1)
    state.dbs.ensure_memory()
    assert [m[2:] for m in listener.messages] == [
        [b"__keyevent@4__:expired", b"brief"], [b"__keyevent@6__:evicted", b"victim"]]
