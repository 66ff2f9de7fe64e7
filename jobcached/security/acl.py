"""Redis 7.0 ACL users: who may run which commands, on which keys and channels.

Why a model of its own: users outlive connections (a session points at its user, and ACL
SETUSER changes what every connection of that user may do next), and the rule language
(`on`, `>pass`, `+@read`, `%R~cache:*`, `&news`...) must parse, fail and print exactly as Redis
7.0's does, because aclfiles and client libraries read ACL LIST / GETUSER back. Commands are
held as the set of `Command` rows (subcommands included) a user may run, the same rows dispatch
resolves, so the permission test is one set membership. ACL GETUSER's command string is rebuilt
from that set the way Redis 7.0's ACLDescribeUserCommandRules does (+@all or -@all, the
categories that cover more than they miss, then single commands).

The command table lives above this module (commands/ registers its rows), so the rules that
name commands get the table as an argument (`CommandTable`, built by commands/acltable.py);
`+@all` and `-@all` need none, so the default user and `requirepass` work without it.

Key patterns are the queue names for job commands: `~builds-*` grants the queues named
`builds-*` (commands/aclcheck.py). A user has a root selector and optionally more (Redis 7.0's
`(...)`): a command is allowed when one selector allows all of it.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from jobcached.cache.glob import Glob, compile_glob, glob_match
from jobcached.security.acllog import AclLog

READ, WRITE = 1, 2
RW = READ | WRITE

#: Redis' ACLCommandCategories in its order, then ours
CATEGORIES = ("keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
              "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
              "blocking", "dangerous", "connection", "transaction", "scripting",
              "job-produce", "job-work", "job-admin")

HASH_ERROR = ("The password hash must be exactly 64 characters and contain only lowercase "
              "hexadecimal characters")
NO_SUCH_PASSWORD = "The password you are trying to remove from the user does not exist"
UNKNOWN_NAME = "Unknown command or category name in ACL"
KEYS_AFTER_ALL = ("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and "
                  "does not have any effect. Try 'resetkeys' to start with an empty list of "
                  "patterns")
CHANNELS_AFTER_ALL = ("Adding a pattern after the * pattern (or the 'allchannels' flag) is not "
                      "valid and does not have any effect. Try 'resetchannels' to start with an "
                      "empty list of channels")


class RuleError(Exception):
    """A rule Redis refuses; `str()` is the reason after "modifier '...': "."""


def password_hash(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


class Command(Protocol):
    """What ACL reads of a command-table row (commands/registry.py's `Command`)."""

    @property
    def name(self) -> str: ...
    @property
    def fullname(self) -> str: ...
    @property
    def subcommands(self) -> Mapping[bytes, Command]: ...


class CommandTable(Protocol):
    """The complete command table as ACL rules see it (commands/acltable.py builds it)."""

    #: the top-level commands in table order (ACL GETUSER's single-command rules)
    @property
    def top(self) -> Sequence[Command]: ...
    #: every command and subcommand
    @property
    def every(self) -> frozenset[Command]: ...
    #: the commands each category names (what ACL CAT lists and counts)
    @property
    def members(self) -> Mapping[str, frozenset[Command]]: ...
    #: what `+@category` changes: those commands with their subcommands (Redis'
    #: ACLChangeSelectorPerm)
    @property
    def effective(self) -> Mapping[str, frozenset[Command]]: ...

    def lookup(self, name: bytes) -> Command | None: ...


@dataclass(slots=True)
class KeyPattern:
    pattern: bytes
    perms: int
    #: compiled once: every checked command of the user matches its keys against it
    glob: Glob = field(init=False)

    def __post_init__(self) -> None:
        self.glob = compile_glob(self.pattern)

    def describe(self) -> str:
        prefix = {RW: "~", READ: "%R~", WRITE: "%W~"}[self.perms]
        return prefix + self.pattern.decode("utf-8", "surrogateescape")


class Selector:
    """Commands, key patterns and channel patterns: a user's root permissions, or one of its
    Redis 7.0 selectors `(...)` (a command is allowed when any of them allows all of it)."""

    def __init__(self) -> None:
        #: the commands allowed, unless `everything` is set (then it is empty)
        self.commands: set[Command] = set()
        #: every command is allowed (`+@all`, or rules that added up to all of them)
        self.everything = False
        #: Redis' reserved "future commands" bit: set by +@all, cleared only by -@all
        self.future = False
        self.allkeys = False
        self.keys: list[KeyPattern] = []
        self.allchannels = False
        self.channels: list[bytes] = []
        #: Redis' first-arg rules (`+select|0`): a command not allowed as a whole, allowed
        #: with one of these first arguments (compared without case)
        self.firstargs: dict[Command, list[bytes]] = {}

    def copy(self) -> Selector:
        other = Selector()
        other.commands, other.future = set(self.commands), self.future
        other.everything = self.everything
        other.firstargs = {cmd: list(args) for cmd, args in self.firstargs.items()}
        other.allkeys = self.allkeys
        other.keys = [KeyPattern(k.pattern, k.perms) for k in self.keys]
        other.allchannels, other.channels = self.allchannels, list(self.channels)
        return other

    @property
    def unrestricted(self) -> bool:
        return self.allkeys and self.allchannels and self.everything

    def allowed(self, table: CommandTable) -> set[Command]:
        """The commands allowed, as a new set."""
        return set(table.every) if self.everything else set(self.commands)

    def apply_one(self, rule: bytes, table: CommandTable | None) -> None:
        """One selector rule (Redis' ACLSetSelector); raises RuleError with Redis' reason."""
        simple = _SELECTOR_RULES.get(rule.lower())
        if simple is not None:
            simple(self)
            return
        first = rule[:1]
        if first in (b"~", b"%"):
            self._add_key_pattern(rule)
        elif first == b"&":
            self._add_channel(rule[1:])
        elif first in (b"+", b"-") and len(rule) > 1:
            self._change_commands(rule[1:], first == b"+", table)
        else:
            raise RuleError("Syntax error")

    def _add_key_pattern(self, rule: bytes) -> None:
        if rule[:1] == b"%":
            flags, tilde, pattern = rule[1:].partition(b"~")
            perms = 0
            for c in flags.upper():
                if c == ord("R"):
                    perms |= READ
                elif c == ord("W"):
                    perms |= WRITE
                else:
                    raise RuleError("Syntax error")
            if not tilde or not perms:
                raise RuleError("Syntax error")
        else:
            perms, pattern = RW, rule[1:]
        if self.allkeys:
            raise RuleError(KEYS_AFTER_ALL)
        if pattern == b"*" and perms == RW:
            self.allkeys, self.keys = True, []
            return
        for existing in self.keys:
            if existing.pattern == pattern:
                existing.perms |= perms
                return
        self.keys.append(KeyPattern(pattern, perms))

    def _add_channel(self, pattern: bytes) -> None:
        if self.allchannels:
            raise RuleError(CHANNELS_AFTER_ALL)
        if pattern == b"*":
            self.allchannels, self.channels = True, []
        elif pattern not in self.channels:
            self.channels.append(pattern)

    def _change_commands(self, name: bytes, allow: bool, table: CommandTable | None) -> None:
        if name.lower() == b"@all":
            (_allcommands if allow else _nocommands)(self)
            return
        if table is None:
            raise TypeError("a rule naming commands needs the command table")
        parent_name, bar, first_arg = name.partition(b"|")
        if bar and first_arg and allow:
            cmd = table.lookup(parent_name)
            if cmd is not None and not cmd.subcommands:
                self._allow_first_arg(cmd, first_arg)
                return
        if bar and not first_arg:
            raise RuleError("Syntax error")
        found = _commands_named(name, table)
        if found is None:
            raise RuleError(UNKNOWN_NAME)
        for cmd in found:
            self.firstargs.pop(cmd, None)
        commands = self.allowed(table)
        if allow:
            commands |= found
        else:
            commands -= found
        self.everything = len(commands) == len(table.every)
        self.commands = set() if self.everything else commands

    def _allow_first_arg(self, cmd: Command, first_arg: bytes) -> None:
        """`+select|0`: nothing to add when the whole command is allowed already."""
        if self.everything or cmd in self.commands:
            return
        args = self.firstargs.setdefault(cmd, [])
        if first_arg.lower() not in (a.lower() for a in args):
            args.append(first_arg)

    def command_allowed(self, cmd: Command, argv: list[bytes]) -> bool:
        if self.everything or cmd in self.commands:
            return True
        args = self.firstargs.get(cmd)
        return (args is not None and len(argv) >= 2
                and argv[1].lower() in (a.lower() for a in args))

    # --------------------------------------------------------------- checks

    def key_allowed(self, key: bytes, needed: int) -> bool:
        if self.allkeys:
            return True
        return any(p.perms & needed == needed and p.glob.match(key) for p in self.keys)

    def channel_allowed(self, channel: bytes, is_pattern: bool) -> bool:
        if self.allchannels:
            return True
        if is_pattern:
            return channel in self.channels
        return any(glob_match(p, channel) for p in self.channels)

    # ------------------------------------------------------------- describe

    def describe_keys(self) -> str:
        if self.allkeys:
            return "~*"
        return " ".join(p.describe() for p in self.keys)

    def describe_channels(self) -> str:
        if self.allchannels:
            return "&*"
        return " ".join("&" + c.decode("utf-8", "surrogateescape") for c in self.channels)

    def describe_commands(self, table: CommandTable) -> str:
        """Redis 7.0's ACLDescribeSelectorCommandRules (single commands in name order: Redis
        emits them in its hash table's order, which changes from run to run)."""
        allowed = self.allowed(table)
        additive = not self.future
        rules = ["-@all" if additive else "+@all"]
        fake: set[Command] = set() if additive else set(table.every)
        # Redis 7.0's greedy fit: the category with the fewest differences (then the most in
        # common) among those with more in common than different, until none is left.
        temp = set(allowed)
        applied: set[str] = set()
        while True:
            best, mindiff, maxsame = "", sys.maxsize, 0
            for name in CATEGORIES:
                if name in applied:
                    continue
                members = table.members[name]
                on = len(members & temp)
                off = len(members) - on
                diff, same = (off, on) if additive else (on, off)
                if same > diff and (diff < mindiff or (diff == mindiff and same > maxsame)):
                    best, mindiff, maxsame = name, diff, same
            if not best:
                break
            changed = table.effective[best]
            if additive:
                fake |= changed
                temp -= changed
            else:
                fake -= changed
                temp |= changed
            rules.append(("+@" if additive else "-@") + best)
            applied.add(best)
        for cmd in table.top:
            _describe_single(cmd, allowed, fake, rules)
            for sub in sorted(cmd.subcommands.values(), key=lambda c: c.name):
                _describe_single(sub, allowed, fake, rules)
            if cmd not in allowed:
                rules += [f"+{cmd.fullname}|{a.decode('utf-8', 'surrogateescape')}"
                          for a in self.firstargs.get(cmd, ())]
        return " ".join(rules)

    def describe(self, table: CommandTable) -> str:
        """Keys, channels and commands, as in an ACL LIST line."""
        parts = []
        keys = self.describe_keys()
        if keys:
            parts.append(keys)
        if self.allchannels:
            parts.append("&*")
        else:
            parts.append("resetchannels")
            if self.channels:
                parts.append(self.describe_channels())
        parts.append(self.describe_commands(table))
        return " ".join(parts)


class User:
    """One user: flags, passwords, its root selector and its other selectors."""

    def __init__(self, name: bytes) -> None:
        self.name = name
        self.enabled = False
        self.nopass = False
        #: "", "sanitize-payload" or "skip-sanitize-payload": shown once a rule set it
        self.sanitize = ""
        self.passwords: list[str] = []
        self.root = Selector()
        self.selectors: list[Selector] = []
        #: may run anything on anything: dispatch skips every check for its sessions
        self.unrestricted = False

    def copy(self) -> User:
        other = User(self.name)
        other.enabled, other.nopass, other.sanitize = self.enabled, self.nopass, self.sanitize
        other.passwords = list(self.passwords)
        other.root = self.root.copy()
        other.selectors = [s.copy() for s in self.selectors]
        other.refresh()
        return other

    def refresh(self) -> None:
        self.unrestricted = any(s.unrestricted for s in self.all_selectors())

    def all_selectors(self) -> list[Selector]:
        """The root first, then the selectors in the order they were added (Redis' order)."""
        return [self.root, *self.selectors]

    # ------------------------------------------------------------------ rules

    def apply(self, rules: Iterable[bytes], table: CommandTable | None) -> None:
        for rule in rules:
            self.apply_one(rule, table)
        self.refresh()

    def apply_one(self, rule: bytes, table: CommandTable | None) -> None:
        """One ACL SETUSER modifier, a whole `(...)` selector included; raises RuleError with
        Redis' reason. `table` may be None only for rules that name no command but `@all`."""
        simple = _USER_RULES.get(rule.lower())
        if simple is not None:
            simple(self)
            return
        first = rule[:1]
        if first == b">":
            self._add_hash(password_hash(rule[1:]))
        elif first == b"<":
            self._remove_hash(password_hash(rule[1:]))
        elif first == b"#":
            self._add_hash(_checked_hash(rule[1:]))
        elif first == b"!":
            self._remove_hash(_checked_hash(rule[1:]))
        elif first == b"(" and rule.endswith(b")"):
            selector = Selector()
            for op in rule[1:-1].split(b" "):
                if op:
                    selector.apply_one(op, table)
            self.selectors.append(selector)
        else:
            self.root.apply_one(rule, table)

    def _add_hash(self, digest: str) -> None:
        if digest not in self.passwords:
            self.passwords.append(digest)
        self.nopass = False

    def _remove_hash(self, digest: str) -> None:
        if digest not in self.passwords:
            raise RuleError(NO_SUCH_PASSWORD)
        self.passwords.remove(digest)
        self.nopass = False

    def password_ok(self, password: bytes) -> bool:
        if self.nopass:
            return True
        digest = password_hash(password)
        return any(hmac.compare_digest(digest, h) for h in self.passwords)

    # ------------------------------------------------------------- describe

    def flags(self) -> list[str]:
        out = ["on" if self.enabled else "off"]
        if self.nopass:
            out.append("nopass")
        if self.sanitize:
            out.append(self.sanitize)
        return out

    def describe(self, table: CommandTable) -> str:
        """One ACL LIST line (and aclfile line)."""
        parts = ["user", self.name.decode("utf-8", "surrogateescape"), *self.flags()]
        parts += ["#" + h for h in self.passwords]
        parts.append(self.root.describe(table))
        parts += [f"({s.describe(table)})" for s in self.selectors]
        return " ".join(parts)


def merge_selector_arguments(args: list[bytes]) -> list[bytes]:
    """ACL SETUSER's arguments with each `(...)` selector spread over several joined into one
    (Redis' ACLMergeSelectorArguments); RuleError names an unclosed one."""
    merged: list[bytes] = []
    opened: bytes | None = None
    parts: list[bytes] = []
    for arg in args:
        if opened is None and arg[:1] == b"(" and arg[-1:] != b")":
            opened, parts = arg, [arg]
        elif opened is not None:
            parts.append(arg)
            if arg[-1:] == b")":
                merged.append(b" ".join(parts))
                opened = None
        else:
            merged.append(arg)
    if opened is not None:
        raise RuleError(f"Unmatched parenthesis in acl selector starting at "
                        f"'{opened.decode('utf-8', 'surrogateescape')}'.")
    return merged


def _describe_single(cmd: Command, allowed: set[Command], fake: set[Command],
                     rules: list[str]) -> None:
    userbit = cmd in allowed
    if userbit != (cmd in fake):
        rules.append(("+" if userbit else "-") + cmd.fullname)
        changed = {cmd, *cmd.subcommands.values()}
        if userbit:
            fake |= changed
        else:
            fake -= changed


def _checked_hash(raw: bytes) -> str:
    text = raw.decode("latin-1")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise RuleError(HASH_ERROR)
    return text


def _commands_named(name: bytes, table: CommandTable) -> frozenset[Command] | None:
    """The rows `+name` / `-name` change: a category's members, a command with its
    subcommands, or one subcommand (`client|id`); None for an unknown name."""
    lower = name.lower().decode("latin-1")
    if lower.startswith("@"):
        return table.effective.get(lower[1:])
    parent_name, bar, child = name.partition(b"|")
    cmd = table.lookup(parent_name)
    if cmd is None:
        return None
    if bar:
        sub = cmd.subcommands.get(child.upper())
        return None if sub is None else frozenset({sub})
    return frozenset({cmd, *cmd.subcommands.values()})


def _set_on(u: User) -> None:
    u.enabled = True


def _set_off(u: User) -> None:
    u.enabled = False


def _nopass(u: User) -> None:
    u.nopass, u.passwords = True, []


def _resetpass(u: User) -> None:
    u.nopass, u.passwords = False, []


def _allkeys(s: Selector) -> None:
    s.allkeys, s.keys = True, []


def _resetkeys(s: Selector) -> None:
    s.allkeys, s.keys = False, []


def _allchannels(s: Selector) -> None:
    s.allchannels, s.channels = True, []


def _resetchannels(s: Selector) -> None:
    s.allchannels, s.channels = False, []


def _allcommands(s: Selector) -> None:
    s.commands, s.everything, s.future = set(), True, True
    s.firstargs.clear()


def _nocommands(s: Selector) -> None:
    s.commands, s.everything, s.future = set(), False, False
    s.firstargs.clear()


def _clearselectors(u: User) -> None:
    u.selectors = []


def _reset(u: User) -> None:
    _resetpass(u)
    _set_off(u)
    u.root = Selector()
    u.selectors = []
    u.sanitize = "sanitize-payload"


def _skip_sanitize(u: User) -> None:
    u.sanitize = "skip-sanitize-payload"


def _sanitize(u: User) -> None:
    u.sanitize = "sanitize-payload"


_SELECTOR_RULES = {b"allkeys": _allkeys, b"resetkeys": _resetkeys,
                   b"allchannels": _allchannels, b"resetchannels": _resetchannels,
                   b"allcommands": _allcommands, b"nocommands": _nocommands}
_USER_RULES = {b"on": _set_on, b"off": _set_off, b"nopass": _nopass, b"resetpass": _resetpass,
               b"reset": _reset, b"clearselectors": _clearselectors,
               b"skip-sanitize-payload": _skip_sanitize, b"sanitize-payload": _sanitize}


#: Redis' default user: on, no password, everything
DEFAULT_USER_RULES = (b"on", b"nopass", b"~*", b"&*", b"+@all")


class Users:
    """The users of a server, `default` first; requirepass is the default user's password."""

    def __init__(self) -> None:
        self.users: dict[bytes, User] = {}
        self.requirepass: str | None = None
        self.log = AclLog()
        self.reset_default()

    def reset_default(self) -> None:
        default = User(b"default")
        default.apply(DEFAULT_USER_RULES, None)
        self.users = {b"default": default}
        self.requirepass = None

    @property
    def default(self) -> User:
        return self.users[b"default"]

    def set_requirepass(self, password: str) -> bool:
        """CONFIG SET requirepass (and startup): the default user's password; True when it
        changed."""
        if password == self.requirepass:
            return False
        self.requirepass = password
        rule = b">" + password.encode() if password else b"nopass"
        self.default.apply([b"resetpass", rule], None)
        return True

    def authenticate(self, name: bytes, password: bytes) -> User | None:
        user = self.users.get(name)
        if user is None or not user.enabled or not user.password_ok(password):
            return None
        return user

    def open_to_new_connections(self) -> bool:
        """New connections start authenticated as `default` (Redis: nopass and on)."""
        default = self.default
        return default.nopass and default.enabled
