"""COMMAND INFO and COMMAND DOCS replies, derived from the command table.

COMMAND DOCS needs each command's arguments as Redis' nested argument specs (redis-cli builds its
hints and help from them). We derive them from the syntax line of the handler's docstring, which
uses the notation of the Redis documentation:

    SET key value [NX | XX] [GET] [EX seconds | PX milliseconds] [KEEPTTL]

UPPERCASE words are tokens, lowercase words are arguments, `[...]` is optional, `<a | b>` or
`a | b` inside brackets is a choice, `...` repeats what precedes it, and `TOKEN arg` inside one
group is an argument introduced by a token.
"""

from __future__ import annotations

import re
from typing import Any

from jobcached.commands.registry import Command
from jobcached.net.replies import Simple

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


def command_info(cmd: Command) -> list[Any]:
    """One COMMAND INFO entry, in Redis 7's 10-field shape."""
    first, last, step = cmd.keys
    return [
        cmd.fullname.encode(), cmd.arity, {Simple(f.encode()) for f in cmd.flag_names()},
        first, last, step, {Simple(f"@{cmd.group}".encode())}, [], [],
        [command_info(sub) for sub in sorted(cmd.subcommands.values(), key=lambda c: c.name)],
    ]


def command_docs(cmd: Command) -> dict[bytes, Any]:
    """One COMMAND DOCS entry (summary, since, group, arguments, subcommands)."""
    doc: dict[bytes, Any] = {
        b"summary": cmd.summary.encode(), b"since": cmd.since.encode(),
        b"group": cmd.group.encode(),
    }
    if cmd.handler is not None:
        args = arguments(cmd)
        if args:
            doc[b"arguments"] = args
    if cmd.subcommands:
        doc[b"subcommands"] = {sub.fullname.encode(): command_docs(sub)
                               for sub in sorted(cmd.subcommands.values(), key=lambda c: c.name)}
    return doc
