"""Connection commands: PING, ECHO, HELLO, AUTH, QUIT, RESET and CLIENT (SELECT is in
databases.py).

These change or describe the calling connection only; their replies and errors follow Redis 7.
"""

from __future__ import annotations

from typing import Any

from jobcached import REDIS_COMPAT_VERSION, __version__
from jobcached.commands.aclcheck import log_denial
from jobcached.commands.args import Args, to_int
from jobcached.commands.registry import (
    ADMIN,
    ALLOW_BUSY,
    FAST,
    LOADING,
    NOAUTH,
    STALE,
    command,
    container,
    subcommand,
)
from jobcached.errors import CommandError, SyntaxErr
from jobcached.net.replies import NO_REPLY, OK, PONG, Simple, Verbatim
from jobcached.server.session import Session

WRONGPASS = "invalid username-password pair or user is disabled."
NO_PASSWORD_CONFIGURED = ("AUTH <password> called without any password configured for the "
                          "default user. Are you sure your configuration is correct?")


@command("PING", arity=-1, flags=FAST | STALE, group="connection")
def ping(s: Session, argv: list[bytes]) -> Any:
    """PING [message]

    Check that the server answers.

    Reply: `PONG`, or the message as a bulk string; in RESP2 subscribe mode, the array
    `pong message` (message empty when not given).
    """
    if len(argv) > 2:
        raise CommandError("wrong number of arguments for 'ping' command")
    if s.resp2_subscribed:
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    return PONG if len(argv) == 1 else argv[1]


@command("ECHO", arity=2, flags=LOADING | STALE | FAST, group="connection")
def echo(s: Session, argv: list[bytes]) -> bytes:
    """ECHO message

    Return the message.

    Reply: bulk string.
    """
    return argv[1]


def _check_password(s: Session, username: bytes, password: bytes) -> None:
    """Authenticate s as `username`, or raise the error Redis gives (and log it in ACL LOG)."""
    user = s.server.acl.authenticate(username, password)
    if user is None:
        s.server.stats.auth_failures += 1
        log_denial(s, "auth", "toplevel", b"AUTH", username)
        raise CommandError(WRONGPASS, code="WRONGPASS")
    s.login(user)


@command("AUTH", arity=-2, flags=NOAUTH | LOADING | STALE | FAST | ALLOW_BUSY, group="connection")
def auth(s: Session, argv: list[bytes]) -> Any:
    """AUTH [username] password

    Authenticate the connection as an ACL user (`default` when no username is given).

    Reply: `OK`.
    Errors: `WRONGPASS` for an unknown or disabled user or a wrong password; when the default
    user is `nopass`, the one-argument form is an `ERR`, as in Redis.
    """
    if len(argv) > 3:
        raise SyntaxErr()
    username = argv[1] if len(argv) == 3 else b"default"
    if len(argv) == 2 and s.server.acl.default.nopass:
        raise CommandError(NO_PASSWORD_CONFIGURED)
    _check_password(s, username, argv[-1])
    return OK


@command("HELLO", arity=-1, flags=NOAUTH | LOADING | STALE | FAST | ALLOW_BUSY, group="connection")
def hello(s: Session, argv: list[bytes]) -> Any:
    """HELLO [protover [AUTH username password] [SETNAME clientname]]

    Switch the connection to RESP2 or RESP3, optionally authenticating and naming it.

    Reply: a map with server, version, proto, id, mode, role and modules.
    Errors: `NOPROTO` for a protocol other than 2 or 3; `NOAUTH` when a password is required and
    no AUTH option was given.
    """
    args = Args(argv)
    protover = None
    if args:
        try:
            protover = to_int(args.next())
        except CommandError:
            raise CommandError("Protocol version is not an integer or out of range") from None
        if protover not in (2, 3):
            raise CommandError("unsupported protocol version", code="NOPROTO")
    name = None
    credentials = None
    while args:
        option = args.next()
        upper = option.upper()
        if upper == b"AUTH" and args.pos + 1 < len(argv):
            credentials = (args.next(), args.next())
        elif upper == b"SETNAME" and args:
            name = args.next()
        else:
            text = option.decode("utf-8", "surrogateescape")
            raise CommandError(f"Syntax error in HELLO option '{text}'")
    if credentials is not None:
        _check_password(s, *credentials)
    elif not s.authenticated:
        raise CommandError(
            "HELLO must be called with the client already authenticated, otherwise the HELLO "
            "<proto> AUTH <user> <pass> option can be used to authenticate the client and "
            "select the RESP protocol version at the same time", code="NOAUTH")
    if name is not None:
        _set_name(s, name)
    if protover is not None:
        s.resp3 = protover == 3
    return {
        b"server": b"jobcached", b"version": REDIS_COMPAT_VERSION.encode(),
        b"jobcached_version": __version__.encode(), b"proto": 3 if s.resp3 else 2,
        b"id": s.id, b"mode": b"standalone", b"role": b"master", b"modules": [],
    }


@command("QUIT", arity=-1, flags=NOAUTH | LOADING | STALE | FAST | ALLOW_BUSY, group="connection")
def quit_(s: Session, argv: list[bytes]) -> Any:
    """QUIT

    Close the connection after replying.

    Reply: `OK`.
    """
    s.conn.close_after_reply()
    return OK


@command("RESET", arity=1, flags=NOAUTH | LOADING | STALE | FAST | ALLOW_BUSY, group="connection")
def reset(s: Session, argv: list[bytes]) -> Any:
    """RESET

    Reset the connection: RESP2, no name, replies on, no MULTI, WATCH or pub/sub subscriptions,
    and unauthenticated if a password is set.

    Reply: `RESET`.
    """
    s.reset()
    return Simple(b"RESET")


# ------------------------------------------------------------------------------- CLIENT

container("CLIENT", group="connection", summary="Inspect and control client connections.")


def _set_name(s: Session, name: bytes) -> None:
    if any(c < 33 or c > 126 for c in name):
        raise CommandError("Client names cannot contain spaces, newlines or special characters.")
    s.name = name


@subcommand("CLIENT", "ID", arity=2, flags=LOADING | STALE)
def client_id(s: Session, argv: list[bytes]) -> int:
    """CLIENT ID

    The id of this connection.

    Reply: integer.
    """
    return s.id


@subcommand("CLIENT", "SETNAME", arity=3, flags=LOADING | STALE)
def client_setname(s: Session, argv: list[bytes]) -> Any:
    """CLIENT SETNAME connection-name

    Name this connection (shown by CLIENT LIST); an empty name clears it.

    Reply: `OK`.
    """
    _set_name(s, argv[2])
    return OK


@subcommand("CLIENT", "GETNAME", arity=2, flags=LOADING | STALE)
def client_getname(s: Session, argv: list[bytes]) -> Any:
    """CLIENT GETNAME

    The name of this connection.

    Reply: bulk string, or nil when unnamed.
    """
    return s.name or None


@subcommand("CLIENT", "SETINFO", arity=4, flags=FAST)
def client_setinfo(s: Session, argv: list[bytes]) -> Any:
    """CLIENT SETINFO <LIB-NAME libname | LIB-VER libver>

    Record the client library's name or version (redis-py sends this on connect).

    Reply: `OK`.
    """
    attr = argv[2].upper()
    if any(c < 33 or c > 126 for c in argv[3]):
        raise CommandError(f"{attr.decode().lower()} cannot contain spaces, newlines or "
                           "special characters.")
    if attr == b"LIB-NAME":
        s.lib_name = argv[3]
    elif attr == b"LIB-VER":
        s.lib_ver = argv[3]
    else:
        raise CommandError(f"Unrecognized option '{argv[2].decode(errors='replace')}'")
    return OK


@subcommand("CLIENT", "INFO", arity=2, flags=LOADING | STALE)
def client_info(s: Session, argv: list[bytes]) -> Any:
    """CLIENT INFO

    Describe this connection in CLIENT LIST's format.

    Reply: verbatim string (a bulk string under RESP2).
    """
    return Verbatim((s.describe() + "\n").encode())


@subcommand("CLIENT", "LIST", arity=-2, flags=ADMIN | LOADING | STALE)
def client_list(s: Session, argv: list[bytes]) -> Any:
    """CLIENT LIST [TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] [ID client-id [client-id ...]]

    Describe every connection, one line each.

    Reply: verbatim string (a bulk string under RESP2).
    """
    args = Args(argv, 2)
    sessions = list(s.server.clients.values())
    while args:
        option = args.next_upper()
        if option == b"TYPE":
            kind = _type_named(args.next())
            sessions = [c for c in sessions if _client_type(c) == kind]
        elif option == b"ID":
            wanted = set()
            for raw in args.rest():
                try:
                    wanted.add(to_int(raw))
                except CommandError:
                    raise CommandError("Invalid client ID") from None
            if not wanted:
                raise SyntaxErr()
            sessions = [c for c in sessions if c.id in wanted]
        else:
            raise SyntaxErr()
    return Verbatim("".join(c.describe() + "\n" for c in sessions).encode())


@subcommand("CLIENT", "KILL", arity=-3, flags=ADMIN | LOADING | STALE)
def client_kill(s: Session, argv: list[bytes]) -> Any:
    """CLIENT KILL <ip:port | <[ID client-id] | [ADDR ip:port] | [LADDR ip:port]
    | [TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] | [USER username] | [SKIPME <YES | NO>]>
    [...]>

    Close connections: the old form names one address, the new form takes filters. `TYPE
    replica` closes our followers' links (they reconnect), `TYPE master` our link to our
    leader (it reconnects and continues), `TYPE normal` neither (Sentinel sends it with
    `TYPE pubsub` after each REPLICAOF it orders).

    Reply: `OK` for the old form; the number of connections closed for the new form.
    Errors: `ERR No such client` (old form).
    """
    clients = list(s.server.clients.values())
    if len(argv) == 3:
        addr = argv[2].decode(errors="replace")
        victims = [c for c in clients if c.addr == addr]
        if not victims:
            raise CommandError("No such client")
        _kill(s, victims)
        return OK
    args = Args(argv, 2)
    skipme = True
    kind = b""
    while args:
        option = args.next_upper()
        if not args:
            raise SyntaxErr()
        value = args.next()
        if option == b"ID":
            try:
                client_id = to_int(value)
            except CommandError:
                raise CommandError("client-id should be greater than 0") from None
            clients = [c for c in clients if c.id == client_id]
        elif option == b"ADDR":
            clients = [c for c in clients if c.addr.encode() == value]
        elif option == b"LADDR":
            clients = [c for c in clients if c.laddr.encode() == value]
        elif option == b"USER":
            if value not in s.server.acl.users:
                raise CommandError(f"No such user '{value.decode(errors='replace')}'")
            clients = [c for c in clients if c.user.name == value]
        elif option == b"TYPE":
            kind = _type_named(value)
            clients = [c for c in clients if _client_type(c) == kind]
        elif option == b"SKIPME":
            if value.upper() not in (b"YES", b"NO"):
                raise SyntaxErr()
            skipme = value.upper() == b"YES"
        else:
            raise SyntaxErr()
    if skipme:
        clients = [c for c in clients if c is not s]
    _kill(s, clients)
    follower = s.server.follower
    if kind == b"MASTER" and follower is not None and follower.drop_link():
        return len(clients) + 1  # the link to our leader is a client only in Redis' books
    return len(clients)


def _type_named(name: bytes) -> bytes:
    """The client type TYPE names (Redis' getClientTypeByName; `replica` and `slave` are one),
    or Redis' error."""
    kind = name.upper()
    if kind == b"REPLICA":
        return b"SLAVE"
    if kind not in (b"NORMAL", b"MASTER", b"SLAVE", b"PUBSUB"):
        raise CommandError(f"Unknown client type '{name.decode(errors='replace')}'")
    return kind


def _client_type(c: Session) -> bytes:
    """Redis' getClientType: SLAVE for a follower attached to us (what Sentinel's CLIENT KILL
    TYPE normal must spare), PUBSUB while subscribed, NORMAL otherwise (monitors included, as
    in Redis). Our link to a leader (MASTER) is no session here: CLIENT KILL handles it."""
    if c in c.server.leader.links:
        return b"SLAVE"
    return b"PUBSUB" if c.subscribed else b"NORMAL"


def _kill(s: Session, victims: list[Session]) -> None:
    for victim in victims:
        if victim is s:
            victim.conn.close_after_reply()
        else:
            victim.conn.abort()


@subcommand("CLIENT", "REPLY", arity=3, flags=LOADING | STALE)
def client_reply(s: Session, argv: list[bytes]) -> Any:
    """CLIENT REPLY <ON | OFF | SKIP>

    Turn replies off, back on, or skip the reply of the next command.

    Reply: `OK` for ON; nothing for OFF and SKIP.
    """
    mode = argv[2].upper()
    if mode == b"ON":
        s.reply_mode = "on"
        return OK
    if mode == b"OFF":
        s.reply_mode = "off"
        return NO_REPLY
    if mode == b"SKIP":
        s.reply_mode = "skip-next"
        return NO_REPLY
    raise SyntaxErr()
