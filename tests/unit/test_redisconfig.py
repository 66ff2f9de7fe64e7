"""Redis' CONFIG parameter table and its validation (redisconfig.py), without a server."""

from __future__ import annotations

import pytest

from jobcached.config import Config
from jobcached.errors import ConfigError
from jobcached.settings import redisconfig


@pytest.mark.parametrize(("name", "raw", "shown"), [
    ("appendonly", "YES", "yes"), ("hz", "20", "20"), ("hz", "0", "0"),
    ("stream-node-max-bytes", "0010", "10"),
    ("stream-node-max-bytes", "4kb", "4096"), ("stream-node-max-bytes", "1k", "1000"),
    ("maxmemory-clients", "10%", "10%"), ("shutdown-on-sigterm", "NOSAVE now", "nosave now"),
    ("masteruser", "any thing", "any thing"),
])
def test_valid_values_as_config_get_shows_them(name: str, raw: str, shown: str) -> None:
    assert redisconfig.validate(name, raw) == shown


@pytest.mark.parametrize(("name", "raw", "reason"), [
    ("appendonly", "1", "argument must be 'yes' or 'no'"),
    ("hz", "+5", "argument couldn't be parsed into an integer"),
    ("hz", "-0", "argument couldn't be parsed into an integer"),
    ("maxmemory-clients", "101%", "percentage argument must be less or equal to 100"),
    ("hz", "-1", "argument must be between 0 and 2147483647 inclusive"),
    ("stream-node-max-bytes", "1.5mb", "argument must be a memory value"),
    ("maxmemory-clients", "-1%", "argument must be a memory or percent value"),
    ("repl-diskless-load", "never", "argument(s) must be one of the following: disabled, "
                                    "on-empty-db, swapdb"),
])
def test_invalid_values_give_redis_reasons(name: str, raw: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        redisconfig.validate(name, raw)
    assert str(caught.value) == reason


def test_aliases_share_one_value() -> None:
    config = Config()
    config.set("slave-priority", "7", runtime=True)
    assert config.render("replica-priority") == "7"
    config.set("lua-time-limit", "900", runtime=True)
    assert config.busy_reply_threshold == 900
    assert config.render("lua-time-limit") == "900"


def test_immutable_and_protected_are_refused_at_runtime_only() -> None:
    config = Config()
    for name, reason in (("daemonize", "can't set immutable config"),
                         ("enable-debug-command", "can't set immutable config")):
        with pytest.raises(ConfigError, match=reason):
            config.check_settable(name)
    config.set("daemonize", "no")  # a config file may name it
    assert config.render("daemonize") == "no"
    with pytest.raises(ConfigError, match="protected"):
        config.check_settable("dir")
