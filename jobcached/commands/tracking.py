"""CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO: server-assisted client-side caching.

The handlers parse and check options with Redis 7's rules and error texts (networking.c
clientCommand) and leave the table to `jobcached.server.tracking`. `remember_read` is what the
dispatcher calls after a read-only command of a tracking client: it finds the command's keys
with the key specs (as Redis' getKeysFromCommand) and hands them to the table.
"""

from __future__ import annotations

from typing import Any

import jobcached.commands.connection  # noqa: F401  (declares the CLIENT container)
from jobcached.commands.args import to_int
from jobcached.commands.registry import LOADING, PUBSUB, READONLY, STALE, Command, subcommand
from jobcached.errors import CommandError, SyntaxErr
from jobcached.net.replies import OK, SetOf
from jobcached.server.session import Session

#: Read-only script commands: their keys are not remembered, only those of the commands the
#: script runs (Redis' call()).
SCRIPT_READS = frozenset({"EVAL_RO", "EVALSHA_RO", "FCALL_RO"})

SWITCH_BCAST = ("You can't switch BCAST mode on/off before disabling tracking for this client, "
                "and then re-enabling it with a different mode.")
SWITCH_OPT = ("You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, "
              "and then re-enabling it with a different mode.")
CACHING_NEEDS_OPT = ("CLIENT CACHING can be called only when the client is in tracking mode "
                     "with OPTIN or OPTOUT mode enabled")


def remember_read(s: Session, cmd: Command, argv: list[bytes], current: Session) -> None:
    """After a command of tracking client s: remember the keys it read (default mode).
    `current` sent the command being run (s, or the client running a transaction or script
    s's command belongs to)."""
    t = s.tracking
    assert t is not None
    if (not t.on or t.bcast or not cmd.flags & READONLY or cmd.flags & PUBSUB
            or cmd.name in SCRIPT_READS):
        return
    keys = cmd.keys_in(argv)
    if keys:
        s.server.tracking.remember(s, keys, current)


@subcommand("CLIENT", "TRACKING", arity=-3, flags=LOADING | STALE)
def client_tracking(s: Session, argv: list[bytes]) -> Any:
    """CLIENT TRACKING <ON | OFF> [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]]
    [BCAST] [OPTIN] [OPTOUT] [NOLOOP]

    Turn server-assisted client-side caching on or off for this connection: invalidation
    messages for the keys it read (or, with BCAST, for every key under its prefixes).

    Reply: `OK`.
    Errors: `ERR syntax error`; the option conflicts Redis reports (PREFIX without BCAST,
    OPTIN with OPTOUT or BCAST, switching BCAST or OPTIN/OPTOUT while on, overlapping
    prefixes); `ERR The client ID you want redirect to does not exist`.
    """
    redirect = 0
    bcast = optin = optout = noloop = False
    prefixes: list[bytes] = []
    i = 3
    while i < len(argv):
        option = argv[i].upper()
        more = i + 1 < len(argv)
        if option == b"REDIRECT" and more:
            i += 1
            if redirect:
                raise CommandError("A client can only redirect to a single other client")
            redirect = to_int(argv[i])
            if redirect not in s.server.clients:
                raise CommandError("The client ID you want redirect to does not exist")
        elif option == b"BCAST":
            bcast = True
        elif option == b"OPTIN":
            optin = True
        elif option == b"OPTOUT":
            optout = True
        elif option == b"NOLOOP":
            noloop = True
        elif option == b"PREFIX" and more:
            i += 1
            prefixes.append(argv[i])
        else:
            raise SyntaxErr()
        i += 1
    mode = argv[2].upper()
    tracking = s.server.tracking
    if mode == b"OFF":
        tracking.disable(s)
        return OK
    if mode != b"ON":
        raise SyntaxErr()
    t = s.tracking
    on = t is not None and t.on
    if prefixes and not bcast:
        raise CommandError("PREFIX option requires BCAST mode to be enabled")
    if on and t is not None and t.bcast != bcast:
        raise CommandError(SWITCH_BCAST)
    if bcast and (optin or optout):
        raise CommandError("OPTIN and OPTOUT are not compatible with BCAST")
    if optin and optout:
        raise CommandError("You can't specify both OPTIN mode and OPTOUT mode")
    if on and t is not None and ((optin and t.optout) or (optout and t.optin)):
        raise CommandError(SWITCH_OPT)
    if bcast:
        collision = tracking.prefix_collision(t, prefixes)
        if collision is not None:
            raise CommandError(collision)
    tracking.enable(s, redirect, bcast, optin, optout, noloop, prefixes)
    return OK


@subcommand("CLIENT", "CACHING", arity=3, flags=LOADING | STALE)
def client_caching(s: Session, argv: list[bytes]) -> Any:
    """CLIENT CACHING <YES | NO>

    In OPTIN mode, track the keys of the next command (YES); in OPTOUT mode, do not (NO).

    Reply: `OK`.
    Errors: `ERR CLIENT CACHING can be called only when the client is in tracking mode with
    OPTIN or OPTOUT mode enabled`, and the errors for YES outside OPTIN, NO outside OPTOUT.
    """
    t = s.tracking
    if t is None or not t.on:
        raise CommandError(CACHING_NEEDS_OPT)
    answer = argv[2].upper()
    if answer == b"YES":
        if not t.optin:
            raise CommandError("CLIENT CACHING YES is only valid when tracking is enabled in "
                               "OPTIN mode.")
    elif answer == b"NO":
        if not t.optout:
            raise CommandError("CLIENT CACHING NO is only valid when tracking is enabled in "
                               "OPTOUT mode.")
    else:
        raise SyntaxErr()
    t.caching = True
    return OK


@subcommand("CLIENT", "GETREDIR", arity=2, flags=LOADING | STALE)
def client_getredir(s: Session, argv: list[bytes]) -> int:
    """CLIENT GETREDIR

    The id of the client this connection's invalidations go to.

    Reply: the id; 0 when tracking without redirection; -1 when not tracking.
    """
    t = s.tracking
    return t.redirect if t is not None and t.on else -1


@subcommand("CLIENT", "TRACKINGINFO", arity=2, flags=LOADING | STALE)
def client_trackinginfo(s: Session, argv: list[bytes]) -> Any:
    """CLIENT TRACKINGINFO

    This connection's tracking mode.

    Reply: a map of `flags` (a set: on/off, bcast, optin, caching-yes, optout, caching-no,
    noloop, broken_redirect), `redirect` (as CLIENT GETREDIR) and `prefixes`.
    """
    t = s.tracking
    if t is None:
        return {b"flags": SetOf([b"off"]), b"redirect": -1, b"prefixes": []}
    return {b"flags": SetOf(t.flags()), b"redirect": t.redirect if t.on else -1,
            b"prefixes": sorted(t.prefixes)}
