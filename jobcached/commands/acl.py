"""ACL: manage users (SETUSER, GETUSER, DELUSER, LIST, USERS, LOAD, SAVE) and inspect
permissions (WHOAMI, CAT, DRYRUN, LOG, GENPASS), as Redis 7.0.

Why a module of its own: these are the wire face of security/acl.py's model; replies and errors
are Redis 7.0's so that redis-cli, client libraries (redis-py's `acl_*`) and aclfiles written by
Redis work unchanged. Enforcement is commands/aclcheck.py.
"""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING, Any

from jobcached.commands.aclcheck import denial
from jobcached.commands.acltable import command_table
from jobcached.commands.args import subcommand_syntax_error, to_int
from jobcached.commands.registry import (
    ADMIN,
    LOADING,
    STALE,
    Command,
    container,
    lookup,
    subcommand,
)
from jobcached.errors import CommandError
from jobcached.net.replies import OK, SetOf
from jobcached.security.acl import (
    CATEGORIES,
    DEFAULT_USER_RULES,
    RuleError,
    User,
    merge_selector_arguments,
)
from jobcached.server.session import Session
from jobcached.settings import redisconfig

if TYPE_CHECKING:
    from jobcached.server.state import ServerState

container("ACL", group="server", summary="Manage ACL users and inspect their permissions.")

NO_ACLFILE = ("This Redis instance is not configured to use an ACL file. You may want to specify "
              "users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you "
              "have a Redis configuration file set) in order to store users in the Redis "
              "configuration.")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def parse_user(base: User, rules: list[bytes]) -> User:
    """`base` with the rules applied, on a copy (ACL SETUSER is all or nothing)."""
    user = base.copy()
    try:
        rules = merge_selector_arguments(rules)
    except RuleError as exc:
        raise CommandError(str(exc)) from None
    for rule in rules:
        try:
            user.apply_one(rule, command_table())
        except RuleError as exc:
            raise CommandError(f"Error in ACL SETUSER modifier '{_text(rule)}': {exc}") from None
    user.refresh()
    return user


def install(s: Session, user: User) -> None:
    """Put `user` in the table; the sessions of the user it replaces take its new rules."""
    server = s.server
    old = server.acl.users.get(user.name)
    server.acl.users[user.name] = user
    if old is not None:
        for client in list(server.clients.values()):
            if client.user is not old:
                continue
            client.user = user
            client.refresh_permissions()
            if client.subscribed and not _may_stay_subscribed(client, user):
                _close(s, client)


def _may_stay_subscribed(client: Session, user: User) -> bool:
    """Whether the new rules still allow every channel and pattern the client listens to
    (Redis 7.0 disconnects it otherwise: ACLKillPubsubClientsIfNeeded)."""
    selectors = user.all_selectors()
    if any(sel.allchannels for sel in selectors):
        return True
    channels = [*client.sub_channels, *client.sub_shard_channels]
    return (all(any(sel.channel_allowed(c, False) for sel in selectors) for c in channels)
            and all(any(sel.channel_allowed(p, True) for sel in selectors)
                    for p in client.sub_patterns))


def _close(s: Session, client: Session) -> None:
    if client is s:
        client.conn.close_after_reply()
    else:
        client.conn.abort()


def kill_clients_of(s: Session, user: User) -> None:
    """Close the connections of a user that is gone (DELUSER, LOAD), as Redis does."""
    for client in list(s.server.clients.values()):
        if client.user is user:
            client.login(s.server.acl.default, False)
            _close(s, client)


@subcommand("ACL", "SETUSER", arity=-3, flags=ADMIN | LOADING | STALE)
def acl_setuser(s: Session, argv: list[bytes]) -> Any:
    """ACL SETUSER username [rule [rule ...]]

    Create a user, or change one, by applying the rules from left to right (on, off, >password,
    <password, #hash, !hash, nopass, resetpass, +command, -command, +@category, -@category,
    allcommands, nocommands, ~pattern, %R~pattern, %W~pattern, allkeys, resetkeys, &channel,
    allchannels, resetchannels, reset), `(...)` to add a selector (command, key and channel
    rules that may allow a command on their own) and clearselectors. A new user starts off,
    with no permissions.

    Reply: `OK`.
    Errors: `ERR Error in ACL SETUSER modifier '...': ...` (nothing is changed).
    """
    name = argv[2]
    if any(c in b" \0" for c in name):
        raise CommandError("Usernames can't contain spaces or null characters")
    base = s.server.acl.users.get(name) or User(name)
    install(s, parse_user(base, argv[3:]))
    return OK


@subcommand("ACL", "GETUSER", arity=3, flags=ADMIN | LOADING | STALE)
def acl_getuser(s: Session, argv: list[bytes]) -> Any:
    """ACL GETUSER username

    The rules of a user: flags, password hashes, command rules, key and channel patterns and
    its selectors (each with its command rules, key and channel patterns).

    Reply: map; nil for an unknown user.
    """
    user = s.server.acl.users.get(argv[2])
    if user is None:
        return None
    root = user.root
    return {b"flags": SetOf([f.encode() for f in user.flags()]),
            b"passwords": [h.encode() for h in user.passwords],
            b"commands": root.describe_commands(command_table()).encode(),
            b"keys": root.describe_keys().encode(),
            b"channels": root.describe_channels().encode(),
            b"selectors": [{b"commands": sel.describe_commands(command_table()).encode(),
                            b"keys": sel.describe_keys().encode(),
                            b"channels": sel.describe_channels().encode()}
                           for sel in user.selectors]}


@subcommand("ACL", "DELUSER", arity=-3, flags=ADMIN | LOADING | STALE)
def acl_deluser(s: Session, argv: list[bytes]) -> Any:
    """ACL DELUSER username [username ...]

    Delete users and close their connections.

    Reply: integer, the number of users deleted.
    Errors: `ERR The 'default' user cannot be removed`.
    """
    users = s.server.acl.users
    if b"default" in argv[2:]:
        raise CommandError("The 'default' user cannot be removed")
    deleted = 0
    for name in argv[2:]:
        user = users.pop(name, None)
        if user is not None:
            deleted += 1
            kill_clients_of(s, user)
    return deleted


@subcommand("ACL", "LIST", arity=2, flags=ADMIN | LOADING | STALE)
def acl_list(s: Session, argv: list[bytes]) -> Any:
    """ACL LIST

    Every user as an ACL rule line (the aclfile format).

    Reply: array of bulk strings, sorted by user name.
    """
    users = s.server.acl.users
    return [users[name].describe(command_table()).encode() for name in sorted(users)]


@subcommand("ACL", "USERS", arity=2, flags=ADMIN | LOADING | STALE)
def acl_users(s: Session, argv: list[bytes]) -> Any:
    """ACL USERS

    The user names.

    Reply: array of bulk strings, sorted.
    """
    return sorted(s.server.acl.users)


@subcommand("ACL", "WHOAMI", arity=2, flags=LOADING | STALE)
def acl_whoami(s: Session, argv: list[bytes]) -> Any:
    """ACL WHOAMI

    The user this connection is authenticated as.

    Reply: bulk string.
    """
    return s.user.name


@subcommand("ACL", "CAT", arity=-2, flags=LOADING | STALE)
def acl_cat(s: Session, argv: list[bytes]) -> Any:
    """ACL CAT [category]

    The ACL categories (Redis' and `job-produce`, `job-work`, `job-admin`), or the commands of
    one (`parent|sub` for a subcommand).

    Reply: array of bulk strings.
    Errors: `ERR Unknown category '...'`.
    """
    if len(argv) > 3:
        raise subcommand_syntax_error("ACL", argv[1])
    if len(argv) == 2:
        return [name.encode() for name in CATEGORIES]
    name = _text(argv[2]).lower()
    members = command_table().members.get(name)
    if members is None:
        raise CommandError(f"Unknown category '{_text(argv[2])}'")
    return sorted(cmd.fullname.encode() for cmd in members)


@subcommand("ACL", "GENPASS", arity=-2, flags=LOADING | STALE)
def acl_genpass(s: Session, argv: list[bytes]) -> Any:
    """ACL GENPASS [bits]

    A random password: `bits` random bits (default 256) as hex digits.

    Reply: bulk string.
    """
    if len(argv) > 3:
        raise subcommand_syntax_error("ACL", argv[1])
    bits = 256
    if len(argv) == 3:
        bits = to_int(argv[2])
        if not 0 < bits <= 4096:
            raise CommandError("ACL GENPASS argument must be the number of bits for the output "
                               "password, a positive number up to 4096")
    chars = (bits + 3) // 4
    return secrets.token_hex((chars + 1) // 2)[:chars].encode()


def _dryrun_command(argv: list[bytes]) -> Command:
    cmd = lookup(argv[0])
    if cmd is not None and cmd.subcommands and len(argv) >= 2:
        cmd = cmd.subcommands.get(argv[1].upper())
    if cmd is None:
        raise CommandError(f"Command '{_text(argv[0])}' not found")
    if (cmd.arity > 0 and cmd.arity != len(argv)) or len(argv) < -cmd.arity:
        raise CommandError(f"wrong number of arguments for '{cmd.fullname}' command")
    return cmd


@subcommand("ACL", "DRYRUN", arity=-4, flags=ADMIN | LOADING | STALE)
def acl_dryrun(s: Session, argv: list[bytes]) -> Any:
    """ACL DRYRUN username command [arg [arg ...]]

    Whether a user could run a command line, without running it.

    Reply: `OK`, or a bulk string saying what is refused.
    Errors: `ERR User '...' not found`, `ERR Command '...' not found`, wrong arity.
    """
    user = s.server.acl.users.get(argv[2])
    if user is None:
        raise CommandError(f"User '{_text(argv[2])}' not found")
    target = argv[3:]
    cmd = _dryrun_command(target)
    found = denial(s, user, cmd, target)
    if found is None:
        return OK
    reason, obj = found
    if reason == "command":
        return f"This user has no permissions to run the '{cmd.fullname}' command".encode()
    return f"This user has no permissions to access the '{_text(obj)}' {reason}".encode()


@subcommand("ACL", "LOG", arity=-2, flags=ADMIN | LOADING | STALE)
def acl_log(s: Session, argv: list[bytes]) -> Any:
    """ACL LOG [count | RESET]

    The latest refusals (commands, keys, channels) and failed AUTHs, newest first (10 by
    default); RESET empties the log.

    Reply: array of maps (count, reason, context, object, username, age-seconds,
    client-info); `OK` for RESET.
    """
    log = s.server.acl.log
    if len(argv) > 3:
        raise subcommand_syntax_error("ACL", argv[1])
    count = 10
    if len(argv) == 3:
        if argv[2].upper() == b"RESET":
            log.entries.clear()
            return OK
        count = max(to_int(argv[2]), 0)
    now = s.server.clock.now_ms()
    return [{b"count": e.count, b"reason": e.reason.encode(), b"context": e.context.encode(),
             b"object": e.object, b"username": e.username,
             b"age-seconds": (now - e.created_ms) / 1000, b"client-info": e.client_info.encode()}
            for e in log.entries[:count]]


def aclfile(s: Session) -> str:
    path = s.server.config.redis_params.get("aclfile", redisconfig.default("aclfile"))
    if not path:
        raise CommandError(NO_ACLFILE)
    return path


def load_users(lines: list[str], path: str) -> dict[bytes, User]:
    """The users of an aclfile (`user <name> <rules...>` lines), or Redis' error."""
    users: dict[bytes, User] = {}
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words:
            continue
        if words[0] != "user" or len(words) < 2:
            raise CommandError(f"{path}:{number}: line should start with user keyword")
        name = words[1].encode()
        if name in users:
            raise CommandError(f"{path}:{number}: Duplicate user '{words[1]}' found")
        try:
            user = User(name)
            user.apply(merge_selector_arguments([w.encode() for w in words[2:]]), command_table())
        except RuleError as exc:
            raise CommandError(f"{path}:{number}: {exc}. ") from None
        users[name] = user
    return users


def read_aclfile(path: str) -> dict[bytes, User]:
    """The users of the aclfile at `path`, `default` always among them (Redis creates it as
    `on nopass ~* &* +@all` when the file has none)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise CommandError(f"Error loading ACLs, opening file '{path}': {exc.strerror}") from None
    users = load_users(lines, path)
    if b"default" not in users:
        default = User(b"default")
        default.apply(DEFAULT_USER_RULES, None)
        users[b"default"] = default
    return users


def load_at_start(server: ServerState) -> None:
    """Startup: the users of the aclfile, when one is configured (as Redis, a bad file stops
    the server)."""
    path = server.config.redis_params.get("aclfile", redisconfig.default("aclfile"))
    if path:
        try:
            server.acl.users = read_aclfile(path)
        except CommandError as exc:
            raise SystemExit(f"aclfile: {exc}") from None


@subcommand("ACL", "LOAD", arity=2, flags=ADMIN | LOADING | STALE)
def acl_load(s: Session, argv: list[bytes]) -> Any:
    """ACL LOAD

    Replace the users with those of the aclfile (all or nothing); connections of users that
    were replaced are closed, as in Redis.

    Reply: `OK`.
    Errors: `ERR This Redis instance is not configured to use an ACL file...`, or the first
    error in the file.
    """
    users = read_aclfile(aclfile(s))
    acl = s.server.acl
    old = acl.users
    default = users.pop(b"default")
    acl.users = {b"default": old[b"default"], **users}
    install(s, default)
    for name, user in old.items():
        if name != b"default":
            kill_clients_of(s, user)
    return OK


@subcommand("ACL", "SAVE", arity=2, flags=ADMIN | LOADING | STALE)
def acl_save(s: Session, argv: list[bytes]) -> Any:
    """ACL SAVE

    Write the users to the aclfile (atomically: a new file renamed over the old one).

    Reply: `OK`.
    """
    path = aclfile(s)
    users = s.server.acl.users
    text = "".join(users[name].describe(command_table()) + "\n" for name in sorted(users))
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise CommandError(f"There was an error trying to save the ACLs. Please check the "
                           f"server logs for more information ({exc.strerror})") from None
    return OK
