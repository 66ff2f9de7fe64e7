"""Redis 7.0's own command table, as data: COMMAND INFO and COMMAND DOCS of every command.

Why: ACL categories, command tips, key specifications and documentation (summary, complexity,
history, arguments) are large and exact; we copy them from a real redis-server 7.0 with
`python -m tools.redis_tables` into redis_command_table.json instead of retyping them. Our
handlers' own declarations (arity, flags, first/last/step keys) stay the source of truth for
dispatch; a test checks that they agree with this table.

The JSON keeps RESP3 wire types: `{"$set": [...]}` is a set, `{"$status": "..."}` a status
reply, an object a map, a list an array, a string a bulk string. `wire()` turns them into
reply values.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jobcached.commands.keyspec import KeySpec
from jobcached.net.replies import SetOf, Simple

TABLE_PATH = Path(__file__).with_name("redis_command_table.json")


@functools.cache
def _table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TABLE_PATH.read_text())
    return data


def entry(fullname: str) -> dict[str, Any] | None:
    """{"info": COMMAND INFO fields 0..8, "docs": COMMAND DOCS map} for one command."""
    found: dict[str, Any] | None = _table()["commands"].get(fullname)
    return found


def members(value: Any) -> list[Any]:
    """The elements of a set or array from the table."""
    if isinstance(value, dict) and "$set" in value:
        return list(value["$set"])
    return list(value)


def statuses(value: Any) -> list[str]:
    """The texts of a set of status replies (flags, ACL categories)."""
    return [item["$status"] for item in members(value)]


def key_specs(fullname: str) -> tuple[KeySpec, ...]:
    found = entry(fullname)
    if found is None:
        return ()
    return tuple(KeySpec.from_table(spec) for spec in members(found["info"][8]))


def wire(value: Any) -> Any:
    """A table value as a reply value with the same RESP3 type."""
    if isinstance(value, dict):
        if "$set" in value:
            return SetOf([wire(item) for item in value["$set"]])
        if "$status" in value:
            return Simple(value["$status"].encode())
        return {key.encode(): wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [wire(item) for item in value]
    if isinstance(value, str):
        return value.encode()
    return value
