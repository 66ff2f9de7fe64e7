"""Configuration parsing and precedence, without starting a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobcached.config import Config, load_config, parse_memory
from jobcached.errors import ConfigError


@pytest.mark.parametrize(("text", "expected"), [
    ("1000", 1000), ("64kb", 65536), ("1k", 1000), ("100mb", 100 * 1024**2), ("2gb", 2 * 1024**3),
    ("2GB", 2 * 1024**3), ("5m", 5_000_000),
])
def test_memory_units(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["", "mb", "1.5mb", "-1", "12zb", "1 2"])
def test_bad_memory_units(text: str) -> None:
    with pytest.raises(ValueError):
        parse_memory(text)


def test_defaults_are_valid_and_documented() -> None:
    config = Config()
    config.validate()
    assert config.port == 7380 and config.bind == "127.0.0.1"
    for name in Config.names():
        assert config.help(name), name
        config.set(name, config.render(name))  # every default survives a round trip


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text("maxclients 10\ntimeout 1\nrequirepass \"two words\"\n")
    config = load_config({"timeout": "3"}, {"JOBCACHED_TIMEOUT": "2", "JOBCACHED_MAXCLIENTS": "20",
                                            "JOBCACHED_UNRELATED": "x"}, str(conf))
    assert config.maxclients == 20
    assert config.timeout == 3
    assert config.requirepass == "two words"
    assert config.port == 7380


def test_errors_name_their_source(tmp_path: Path) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text("maxclients many\n")
    with pytest.raises(ConfigError, match=r"c.conf: maxclients: 'many' is not an integer"):
        load_config({}, {}, str(conf))
    conf.write_text("maxclients\n")
    with pytest.raises(ConfigError, match=r"c.conf:1: expected 'name value'"):
        load_config({}, {}, str(conf))
    with pytest.raises(ConfigError, match="environment: timeout"):
        load_config({}, {"JOBCACHED_TIMEOUT": "x"})
    with pytest.raises(ConfigError, match="command line: unknown config key 'nope'"):
        load_config({"nope": "1"}, {})


def test_runtime_changes_only_to_mutable_keys() -> None:
    config = Config()
    config.set("maxclients", "5", runtime=True)
    assert config.maxclients == 5
    with pytest.raises(ConfigError, match=r"can.t set immutable config"):
        config.set("port", "1", runtime=True)


def test_matching_uses_globs() -> None:
    assert Config().matching("proto-*") == ["proto-max-bulk-len", "proto-max-multibulk-len",
                                            "proto-inline-max-size"]


def test_http_endpoints_default_to_loopback() -> None:
    """/metrics, /healthz and /readyz have no authentication: loopback unless told."""
    config = Config()
    assert config.metrics_bind == "127.0.0.1"
    assert load_config({"bind": "0.0.0.0"}, {}).metrics_bind == "127.0.0.1"
    assert load_config({"metrics-bind": "0.0.0.0"}, {}).metrics_bind == "0.0.0.0"
