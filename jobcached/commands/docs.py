"""COMMAND INFO and COMMAND DOCS replies, derived from the command table.

For a command Redis has, what only describes it (ACL categories, tips, key specifications,
flags such as noscript or movablekeys, and the documentation) comes from Redis 7.0's own table
(redis_table.py); arity, the flags dispatch acts on and first/last/step keys come from our
declaration (a test checks both agree). Job commands describe themselves: key specs and ACL
categories declared with `@command`, categories implied by their flags as Redis derives them.

For job commands, COMMAND DOCS needs each command's arguments as Redis' nested argument specs
(redis-cli builds its hints and help from them). We derive them from the syntax line of the
handler's docstring, which uses the notation of the Redis documentation:

    SET key value [NX | XX] [GET] [EX seconds | PX milliseconds] [KEEPTTL]

UPPERCASE words are tokens, lowercase words are arguments, `[...]` is optional, `<a | b>` or
`a | b` inside brackets is a choice, `...` repeats what precedes it, and `TOKEN arg` inside one
group is an argument introduced by a token.
"""

from __future__ import annotations

import re
from typing import Any

from jobcached.commands import redis_table
from jobcached.commands.registry import Command
from jobcached.net.replies import SetOf, Simple

_TOKEN_RE = re.compile(r"\.\.\.|[\[\]<>|]|[^\s\[\]<>|]+")

#: argument names that get a more precise type than "string" in COMMAND DOCS
_TYPED_NAMES = {"key": "key", "pattern": "pattern", "seconds": "integer",
                "milliseconds": "integer", "count": "integer", "timeout": "double",
                "unix-time-seconds": "unix-time", "unix-time-milliseconds": "unix-time"}


def _arg(word: str) -> dict[bytes, Any]:
    if word.isupper() or not any(c.isalpha() for c in word):
        return {b"name": word.lower().encode(), b"type": b"pure-token", b"token": word.encode()}
    kind = _TYPED_NAMES.get(word, "string")
    return {b"name": word.encode(), b"type": kind.encode()}


def _parse_seq(tokens: list[str], pos: int, closer: str | None) -> tuple[list[Any], int]:
    """Parse items until `closer`; returns (alternatives, pos); each alternative is a list."""
    alternatives: list[list[dict[bytes, Any]]] = [[]]
    while pos < len(tokens):
        tok = tokens[pos]
        if tok == closer:
            return alternatives, pos + 1
        pos += 1
        if tok == "|":
            alternatives.append([])
            continue
        if tok == "...":
            if alternatives[-1]:
                _add_flag(alternatives[-1][-1], b"multiple")
            continue
        if tok in ("[", "<"):
            inner, pos = _parse_seq(tokens, pos, "]" if tok == "[" else ">")
            item = _group(inner)
            current = alternatives[-1]
            if (tok == "[" and current and b"multiple" in item.get(b"flags", [])
                    and item[b"name"] == current[-1][b"name"]):
                _add_flag(current[-1], b"multiple")  # `key [key ...]` is one repeated key
                continue
            if tok == "[":
                _add_flag(item, b"optional")
            current.append(item)
            continue
        alternatives[-1].append(_arg(tok))
    return alternatives, pos


def _add_flag(item: dict[bytes, Any], flag: bytes) -> None:
    item.setdefault(b"flags", [])
    if flag not in item[b"flags"]:
        item[b"flags"].append(flag)


def _group(alternatives: list[list[dict[bytes, Any]]]) -> dict[bytes, Any]:
    """One bracketed group as a single argument spec (plain, token+arg, block or oneof)."""
    if len(alternatives) > 1:
        options = [_group([alt]) for alt in alternatives]
        name = "-".join(o[b"name"].decode() for o in options)[:40]
        return {b"name": name.encode(), b"type": b"oneof", b"arguments": options}
    items = alternatives[0]
    if len(items) == 1:
        return dict(items[0])
    if (len(items) == 2 and items[0][b"type"] == b"pure-token"
            and items[1][b"type"] != b"pure-token" and b"arguments" not in items[1]):
        spec = dict(items[1])
        spec[b"token"] = items[0][b"token"]
        return spec
    name = "-".join(i[b"name"].decode() for i in items)[:40]
    return {b"name": name.encode(), b"type": b"block", b"arguments": items}


def arguments(cmd: Command) -> list[dict[bytes, Any]]:
    """The argument specs of a command, from its syntax line (after its name)."""
    words = cmd.display_name.split()
    tokens = _TOKEN_RE.findall(cmd.syntax)[len(words):]
    alternatives, _ = _parse_seq(tokens, 0, None)
    specs = [_group(alternatives)] if len(alternatives) > 1 else alternatives[0]
    return [_wire_flags(spec) for spec in specs]


def _wire_flags(spec: dict[bytes, Any]) -> dict[bytes, Any]:
    """Flags go out as a set of status replies, as Redis sends them (redis-cli asserts it)."""
    out = dict(spec)
    if b"flags" in out:
        out[b"flags"] = {Simple(flag) for flag in out[b"flags"]}
    if b"arguments" in out:
        out[b"arguments"] = [_wire_flags(arg) for arg in out[b"arguments"]]
    return out


#: Redis' command flags in the order COMMAND INFO lists them (server.c's flag table); ours map
#: onto them by name, `noauth` being Redis' `no_auth`
FLAG_ORDER = ("write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript",
              "blocking", "loading", "stale", "skip_monitor", "skip_slowlog", "asking", "fast",
              "no_auth", "may_replicate", "sentinel", "only_sentinel", "no_mandatory_keys",
              "protected", "module_no_cluster", "no_async_loading", "no_multi", "movablekeys",
              "allow_busy")
#: ACL categories in the order Redis lists them (acl.c), then ours
CATEGORY_ORDER = ("keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
                  "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
                  "blocking", "dangerous", "connection", "transaction", "scripting",
                  "job-produce", "job-work", "job-admin")


def declared_flags(cmd: Command) -> set[str]:
    """Our declared flags under Redis' names. A container's flags are only defaults for its
    subcommands: as in Redis, it has none of its own."""
    if cmd.handler is None:
        return set()
    return {"no_auth" if name == "noauth" else name for name in cmd.flag_names()}


def wire_flags(cmd: Command) -> list[str]:
    """COMMAND INFO's flags: what the handler declares, plus the flags that only describe a
    command (noscript, movablekeys, skip_slowlog...) from Redis' table or the key specs."""
    flags = declared_flags(cmd)
    found = redis_table.entry(cmd.fullname)
    if found is not None:
        flags |= {f for f in redis_table.statuses(found["info"][2]) if f in DESCRIPTIVE_FLAGS}
    elif any(spec.keyword or spec.keynum for spec in cmd.key_specs):
        flags.add("movablekeys")
    return [f for f in FLAG_ORDER if f in flags]


#: flags with no effect on dispatch here, so they come from Redis' table
DESCRIPTIVE_FLAGS = frozenset(FLAG_ORDER) - {"write", "readonly", "denyoom", "admin", "pubsub",
                                             "no_auth", "loading", "stale", "fast", "blocking",
                                             "no_multi", "allow_busy"}


def categories(cmd: Command) -> list[str]:
    """ACL categories: Redis' for its commands; for ours, those the flags imply (as Redis
    derives them) plus the declared job category."""
    found = redis_table.entry(cmd.fullname)
    if found is not None:
        return [c.lstrip("@") for c in redis_table.statuses(found["info"][6])]
    names = set(cmd.acl)
    flags = declared_flags(cmd)
    implied = {"write": "write", "readonly": "read", "admin": "admin", "pubsub": "pubsub",
               "blocking": "blocking"}
    names |= {category for flag, category in implied.items() if flag in flags}
    names.add("fast" if "fast" in flags else "slow")
    if "admin" in flags:
        names.add("dangerous")
    return [c for c in CATEGORY_ORDER if c in names]


def command_info(cmd: Command) -> list[Any]:
    """One COMMAND INFO entry, in Redis 7's 10-field shape."""
    first, last, step = cmd.keys
    found = redis_table.entry(cmd.fullname)
    if found is not None:
        tips, specs = redis_table.wire(found["info"][7]), redis_table.wire(found["info"][8])
    else:
        tips, specs = SetOf([]), SetOf([spec.reply() for spec in cmd.key_specs])
    subs = [command_info(sub) for sub in sorted(cmd.subcommands.values(), key=lambda c: c.name)]
    return [
        cmd.fullname.encode(), cmd.arity, SetOf([Simple(f.encode()) for f in wire_flags(cmd)]),
        first, last, step, SetOf([Simple(f"@{c}".encode()) for c in categories(cmd)]),
        tips, specs, subs if subs else SetOf([]),
    ]


def command_docs(cmd: Command) -> dict[bytes, Any]:
    """One COMMAND DOCS entry: Redis' own for its commands, else summary, since, group,
    arguments (from the syntax line) and subcommands."""
    found = redis_table.entry(cmd.fullname)
    if found is not None:
        doc: dict[bytes, Any] = redis_table.wire(found["docs"])
    else:
        doc = {b"summary": cmd.summary.encode(), b"since": cmd.since.encode(),
               b"group": cmd.group.encode()}
        if cmd.handler is not None:
            args = arguments(cmd)
            if args:
                doc[b"arguments"] = args
    if cmd.subcommands:
        doc[b"subcommands"] = {sub.fullname.encode(): command_docs(sub)
                               for sub in sorted(cmd.subcommands.values(), key=lambda c: c.name)}
    return doc
