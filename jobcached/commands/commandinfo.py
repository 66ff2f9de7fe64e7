"""COMMAND: the command table as clients see it (INFO, DOCS, LIST, COUNT, GETKEYS).

Why a module of its own: cluster-aware clients route by COMMAND INFO's key positions, redis-cli
builds hints from COMMAND DOCS, and COMMAND GETKEYS / GETKEYSANDFLAGS answer "which arguments
are keys" from the Redis 7 key specs (keyspec.py). Every reply is derived from the command
table (registry.py) and Redis' own table (redis_table.py); nothing is typed in twice.
"""

from __future__ import annotations

from typing import Any

from jobcached.cache.glob import glob_match
from jobcached.commands.args import Args
from jobcached.commands.docs import categories, command_docs, command_info, wire_flags
from jobcached.commands.registry import (
    LOADING,
    STALE,
    Command,
    all_commands,
    container,
    lookup,
    subcommand,
    walk,
)
from jobcached.errors import CommandError, SyntaxErr
from jobcached.net.replies import SetOf, Simple
from jobcached.server.session import Session


def _named(names: list[bytes]) -> list[Command | None]:
    """Commands for COMMAND INFO / DOCS arguments; `client|id` names a subcommand."""
    found: list[Command | None] = []
    for raw in names:
        parent, _, child = raw.partition(b"|")
        cmd = lookup(parent)
        if cmd is not None and child:
            cmd = cmd.subcommands.get(child.upper())
        found.append(cmd)
    return found


def _command_all(s: Session, argv: list[bytes]) -> Any:
    """COMMAND

    Describe every command (COMMAND INFO for all of them).

    Reply: array of COMMAND INFO entries.
    """
    return [command_info(cmd) for cmd in all_commands()]


container("COMMAND", group="server", summary="Introspect the command table.",
          flags=LOADING | STALE)
lookup(b"COMMAND").arity = -1  # type: ignore[union-attr]  # bare COMMAND lists everything
lookup(b"COMMAND").handler = _command_all  # type: ignore[union-attr]


@subcommand("COMMAND", "COUNT", arity=2)
def command_count(s: Session, argv: list[bytes]) -> int:
    """COMMAND COUNT

    The number of top-level commands.

    Reply: integer.
    """
    return sum(1 for _ in all_commands())


def _listed(cmd: Command, kind: bytes, value: bytes) -> bool:
    if kind == b"MODULE":
        return False  # no modules here
    if kind == b"ACLCAT":
        return value.decode(errors="replace").lower() in categories(cmd)
    return glob_match(value, cmd.fullname.encode(), nocase=True)


@subcommand("COMMAND", "LIST", arity=-2)
def command_list(s: Session, argv: list[bytes]) -> Any:
    """COMMAND LIST [FILTERBY <MODULE module-name | ACLCAT category | PATTERN pattern>]

    The names of all commands and subcommands (`client|id`), optionally only those of a
    module (none here), of an ACL category (without its `@`) or matching a glob pattern.

    Reply: array of bulk strings.
    Errors: `ERR syntax error` for any other form.
    """
    if len(argv) == 2:
        return [cmd.fullname.encode() for cmd in walk()]
    args = Args(argv, 2)
    if len(argv) != 5 or args.next_upper() != b"FILTERBY":
        raise SyntaxErr()
    kind = args.next_upper()
    if kind not in (b"MODULE", b"ACLCAT", b"PATTERN"):
        raise SyntaxErr()
    value = args.next()
    return [cmd.fullname.encode() for cmd in walk() if _listed(cmd, kind, value)]


@subcommand("COMMAND", "INFO", arity=-2)
def command_info_(s: Session, argv: list[bytes]) -> Any:
    """COMMAND INFO [command-name [command-name ...]]

    Describe the named commands (all when none is named): name, arity, flags, first key,
    last key, key step, ACL categories, tips, key specifications and subcommands, as Redis 7.

    Reply: array with one entry per name, nil for unknown names.
    """
    if len(argv) == 2:
        return _command_all(s, argv)
    return [command_info(c) if c else None for c in _named(argv[2:])]


@subcommand("COMMAND", "DOCS", arity=-2)
def command_docs_(s: Session, argv: list[bytes]) -> Any:
    """COMMAND DOCS [command-name [command-name ...]]

    Documentation of the named commands (all when none is named), as redis-cli reads it:
    Redis' own documentation for Redis commands, ours for the job commands.

    Reply: map of command name to its documentation map; unknown names are left out.
    """
    if len(argv) == 2:
        cmds: list[Command | None] = list(all_commands())
    else:
        cmds = _named(argv[2:])
    return {c.fullname.encode(): command_docs(c) for c in cmds if c is not None}


def _target(argv: list[bytes]) -> Command:
    """The command a GETKEYS call names, with Redis' checks in Redis' order."""
    cmd = lookup(argv[0])
    if cmd is not None and cmd.subcommands and len(argv) >= 2:
        cmd = cmd.subcommands.get(argv[1].upper())
    if cmd is None:
        raise CommandError("Invalid command specified")
    if not any("not_key" not in spec.flags for spec in cmd.specs()):
        raise CommandError("The command has no key arguments")
    if (cmd.arity > 0 and cmd.arity != len(argv)) or len(argv) < -cmd.arity:
        raise CommandError("Invalid number of arguments specified for command")
    return cmd


def variable_flags(cmd: Command, argv: list[bytes]) -> tuple[str, ...] | None:
    """Key flags of the commands whose spec says `variable_flags`: they depend on options
    (Redis' setGetKeys and bitfieldGetKeys)."""
    if cmd.fullname == "set":
        if any(a.upper() == b"GET" for a in argv[3:]):
            return ("RW", "access", "update")
        return ("OW", "update")
    if cmd.fullname == "bitfield":
        return ("RO", "access") if _bitfield_readonly(argv) else ("RW", "access", "update")
    return None


def _bitfield_readonly(argv: list[bytes]) -> bool:
    """Only complete GET and OVERFLOW operations (anything else may write)."""
    i = 2
    while i < len(argv):
        remaining, op = len(argv) - i - 1, argv[i].upper()
        if op == b"GET" and remaining >= 2:
            i += 3
        elif op == b"OVERFLOW" and remaining >= 1:
            i += 2
        else:
            return False
    return True


def keys_and_flags(cmd: Command, argv: list[bytes]) -> list[tuple[int, tuple[str, ...]]] | None:
    """(index, flags) of each key in argv by the command's key specs; None when the
    arguments contradict a spec."""
    found: list[tuple[int, tuple[str, ...]]] = []
    for spec in cmd.specs():
        if "not_key" in spec.flags:
            continue
        indexes = spec.find(argv)
        if indexes is None:
            return None
        flags = variable_flags(cmd, argv) if "variable_flags" in spec.flags else None
        found.extend((i, flags or spec.flags) for i in indexes)
    return found


def _getkeys(argv: list[bytes]) -> list[tuple[int, tuple[str, ...]]]:
    target = argv[2:]
    cmd = _target(target)
    found = keys_and_flags(cmd, target)
    if not found:
        if "no_mandatory_keys" in wire_flags(cmd):
            return []
        raise CommandError("Invalid arguments specified for command")
    return [(i + 2, flags) for i, flags in found]


@subcommand("COMMAND", "GETKEYS", arity=-4)
def command_getkeys(s: Session, argv: list[bytes]) -> Any:
    """COMMAND GETKEYS command [arg [arg ...]]

    The keys of a full command line, found with its key specifications.

    Reply: array of bulk strings.
    Errors: `ERR Invalid command specified`, `ERR The command has no key arguments`,
    `ERR Invalid number of arguments specified for command`, `ERR Invalid arguments specified
    for command`.
    """
    return [argv[i] for i, _ in _getkeys(argv)]


@subcommand("COMMAND", "GETKEYSANDFLAGS", arity=-4)
def command_getkeysandflags(s: Session, argv: list[bytes]) -> Any:
    """COMMAND GETKEYSANDFLAGS command [arg [arg ...]]

    The keys of a full command line with what the command does to each (RW, RO, OW, RM and
    access, update, insert, delete).

    Reply: array of [key, set of flags] pairs.
    Errors: as COMMAND GETKEYS.
    """
    return [[argv[i], SetOf([Simple(f.encode()) for f in flags])] for i, flags in _getkeys(argv)]
