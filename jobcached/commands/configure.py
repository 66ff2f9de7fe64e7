"""CONFIG: read and change the configuration at runtime, and write it back to its file.

Why its own module: CONFIG is the surface where jobcached's keys (config.py) and Redis 7.0's
parameters (redisconfig.py) meet. CONFIG GET answers every name of both, with globs and several
patterns in one call; CONFIG SET checks every pair before it changes anything (unknown,
immutable and duplicate names first, then the values, all with Redis' error texts) and applies
all of them or none; CONFIG REWRITE writes the file the server was started with.
"""

from __future__ import annotations

import logging
from typing import Any

from jobcached.cache.glob import glob_match
from jobcached.commands.registry import (
    ADMIN,
    LOADING,
    STALE,
    container,
    subcommand,
)
from jobcached.config import Config, resolve
from jobcached.errors import CommandError, ConfigError, SyntaxErr
from jobcached.net.replies import OK
from jobcached.net.tls import UPDATE_FAILED
from jobcached.server.configrewrite import rewrite_file
from jobcached.server.session import Session
from jobcached.server.state import Stats

log = logging.getLogger("jobcached.config")

container("CONFIG", group="server", summary="Read and change the configuration.",
          flags=ADMIN | LOADING | STALE)

_GLOB_CHARS = frozenset(b"*?[")


@subcommand("CONFIG", "GET", arity=-3)
def config_get(s: Session, argv: list[bytes]) -> Any:
    """CONFIG GET parameter [parameter ...]

    The values of the parameters named or matching the glob patterns: jobcached's keys and
    every Redis 7.0 parameter (aliases such as `slaveof` included). An exact name is echoed as
    written; a pattern lists the matching names in lower case.

    Reply: map of name to value (a flat array under RESP2).
    """
    config = s.server.config
    reply: dict[bytes, bytes] = {}
    for pattern in argv[2:]:
        if _GLOB_CHARS.isdisjoint(pattern):
            name = pattern.decode(errors="replace")
            if Config.known(name):
                reply[pattern] = config.render(name).encode()
            continue
        for name in config.all_names():
            if glob_match(pattern, name.encode(), nocase=True):
                reply[name.encode()] = config.render(name).encode()
    return reply


def _failed(name: str, reason: str) -> CommandError:
    return CommandError(f"CONFIG SET failed (possibly related to argument '{name}') - {reason}")


@subcommand("CONFIG", "SET", arity=-4)
def config_set(s: Session, argv: list[bytes]) -> Any:
    """CONFIG SET parameter value [parameter value ...]

    Change parameters at runtime, all of them or none. Redis parameters jobcached has no use
    for are stored and reported by CONFIG GET without effect. Changing tls-* files reloads the
    TLS certificates for new connections (set tls-cert-file and tls-key-file in one call).

    Reply: `OK`.
    Errors: `Unknown option or number of arguments for CONFIG SET - 'name'`; `CONFIG SET failed
    (possibly related to argument 'name') - ` then `can't set immutable config`, `can't set
    protected config`, `duplicate parameter`, or the value's problem as Redis words it
    (`argument must be 'yes' or 'no'`, `argument must be between 0 and 65535 inclusive`...);
    `Unable to update TLS configuration. Check server logs.` when the tls-* files do not load.
    """
    if len(argv) % 2:
        raise SyntaxErr()
    config = s.server.config
    pairs = [(argv[i].decode(errors="replace"), argv[i + 1].decode(errors="replace"))
             for i in range(2, len(argv), 2)]
    seen: set[str] = set()
    for name, _ in pairs:
        if not Config.known(name):
            raise CommandError(f"Unknown option or number of arguments for CONFIG SET - '{name}'")
        try:
            config.check_settable(name)
        except ConfigError as exc:
            raise _failed(name, str(exc)) from None
        if name.lower() in seen:
            raise _failed(name, "duplicate parameter")
        seen.add(name.lower())
    trial = config.copy()
    for name, value in pairs:
        try:
            trial.set(name, value, runtime=True)
        except ConfigError as exc:
            raise _failed(name, str(exc)) from None
    _reload_tls(s, trial, [name for name, _ in pairs if resolve(name).startswith("tls-")])
    for field_name in config.__dataclass_fields__:
        setattr(config, field_name, getattr(trial, field_name))
    s.server.apply_config()
    return OK


def _reload_tls(s: Session, trial: Config, names: list[str]) -> None:
    """Build the TLS context the changed tls-* settings describe before any of them is in
    force: a file that is missing or does not match its key gets Redis' reply (the reason
    goes to the log, as Redis') and the certificates in force stay."""
    reload = s.server.tls_reload
    if not names or reload is None:
        return
    try:
        reload(trial)
    except ConfigError as exc:
        log.warning("TLS configuration not changed", extra={"reason": str(exc)})
        raise _failed(names[0], UPDATE_FAILED) from None


@subcommand("CONFIG", "REWRITE", arity=2)
def config_rewrite(s: Session, argv: list[bytes]) -> Any:
    """CONFIG REWRITE

    Write the configuration in force to the file the server was started with (`--config`):
    comments and lines it does not know stay; changed parameters get their new values; new
    ones are appended after `# Generated by CONFIG REWRITE`.

    Reply: `OK`.
    Errors: `ERR The server is running without a config file`; `ERR Rewriting config file:
    <reason>` when it cannot be written.
    """
    config = s.server.config
    if not config.config_file:
        raise CommandError("The server is running without a config file")
    try:
        rewrite_file(config)
    except OSError as exc:
        raise CommandError(f"Rewriting config file: {exc.strerror}") from None
    return OK


@subcommand("CONFIG", "RESETSTAT", arity=2)
def config_resetstat(s: Session, argv: list[bytes]) -> Any:
    """CONFIG RESETSTAT

    Reset the counters INFO stats, commandstats, errorstats and latencystats show, and the
    slow log.

    Reply: `OK`.
    """
    server = s.server
    server.stats = Stats()
    server.errorstats.clear()
    server.command_stats.clear()
    server.slowlog.reset()
    return OK
