"""Redis 7.0's CONFIG parameters: their defaults and how CONFIG SET validates them.

Why: tools and clients read and write Redis' parameters by name (`CONFIG GET maxmemory-policy`,
`CONFIG SET hz 20`, `CONFIG GET *` in monitoring), and expect Redis' validation errors. The
table (redis_config_table.json) is generated from a real redis-server 7.0 by
`python -m tools.redis_tables`: every parameter with its default and its type (bool, int with
range, memory, enum, string, immutable, protected, special). Parameters jobcached also has
(config.py) are validated here first, so the error texts are Redis', and then applied there;
the others are stored and reported but have no effect (protocol/spec-preamble.md lists them).

Aliases (`slaveof` for `replicaof`, `hash-max-ziplist-entries` for `hash-max-listpack-entries`,
`lua-time-limit` for `busy-reply-threshold`) share one value, as in Redis.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from jobcached.errors import ConfigError

TABLE_PATH = Path(__file__).with_name("redis_config_table.json")

#: Redis renamed these words in 5.0 and 7.0 and kept the old names as aliases
_ALIAS_WORDS = (("slaveof", "replicaof"), ("lua-time-limit", "busy-reply-threshold"),
                ("slave", "replica"), ("ziplist", "listpack"))
_INT_RE = re.compile(r"0|-?[1-9][0-9]*")  # Redis' string2ll: no sign on 0, no leading 0s
_MEMORY_RE = re.compile(r"([0-9]+)(|b|k|kb|m|mb|g|gb)", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2,
                 "g": 1000**3, "gb": 1024**3}
IMMUTABLE = "can't set immutable config"


@functools.cache
def table() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads(TABLE_PATH.read_text())
    return data


def canonical(name: str) -> str:
    """The parameter an alias stands for (the name itself for the others)."""
    name = name.lower()
    for old, new in _ALIAS_WORDS:
        candidate = name.replace(old, new)
        if candidate != name and candidate in table():
            return candidate
    return name


def known(name: str) -> bool:
    return name.lower() in table()


def default(name: str) -> str:
    return str(table()[canonical(name)]["default"])


def check_settable(name: str) -> None:
    """Raise ConfigError (Redis' text) for parameters CONFIG SET refuses whatever the value."""
    kind = table()[name.lower()]["type"]
    if kind == "immutable":
        raise ConfigError(IMMUTABLE)
    if kind == "protected":
        raise ConfigError("can't set protected config")


def parse_memory(text: str) -> int | None:
    """Bytes from Redis' memory notation (`64mb`, `1k`), None when it is not one."""
    match = _MEMORY_RE.fullmatch(text)
    if match is None:
        return None
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()]


def validate(name: str, raw: str) -> str:
    """The value as CONFIG GET will show it, or ConfigError with Redis' reason."""
    spec = table()[name.lower()]
    kind = spec["type"]
    if kind == "bool":
        if raw.lower() not in ("yes", "no"):
            raise ConfigError("argument must be 'yes' or 'no'")
        return raw.lower()
    if kind == "enum":
        return _enum(spec, raw)
    if kind == "int":
        if not _INT_RE.fullmatch(raw) or not -2**63 <= int(raw) < 2**63:
            raise ConfigError("argument couldn't be parsed into an integer")
        return str(_in_range(spec, int(raw)))
    if kind in ("memory", "memory-or-percent"):
        if kind == "memory-or-percent" and raw.endswith("%") and _INT_RE.fullmatch(raw[:-1]):
            if int(raw[:-1]) < 0:
                raise ConfigError("argument must be a memory or percent value")
            if int(raw[:-1]) > 100:
                raise ConfigError("percentage argument must be less or equal to 100")
            return raw
        value = parse_memory(raw)
        if value is None:
            raise ConfigError("argument must be a memory value" if kind == "memory"
                              else "argument must be a memory or percent value")
        return str(_in_range(spec, value))
    return raw


def _enum(spec: dict[str, Any], raw: str) -> str:
    words = raw.lower().split() if spec.get("several") else [raw.lower()]
    if not words or any(word not in spec["choices"] for word in words):
        raise ConfigError("argument(s) must be one of the following: "
                          + ", ".join(spec["choices"]))
    return " ".join(words)


def _in_range(spec: dict[str, Any], value: int) -> int:
    low, high = spec.get("min"), spec.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"argument must be between {low} and {high} inclusive")
    return value


def names() -> list[str]:
    """Every Redis parameter name, aliases included."""
    return list(table())
