"""Redis 7 functions: FUNCTION LOAD | DELETE | FLUSH | LIST | DUMP | RESTORE | STATS | KILL,
FCALL and FCALL_RO.

Libraries live in `jobcached/scripting/functions.py`; a function runs like a script, through
`Scripting.execute` (same atomicity, effects, time limit and -BUSY), with its own names in
errors (`script: <function>, on @user_function:<line>.`) and FUNCTION KILL to stop it.

Effects: FUNCTION LOAD, DELETE, FLUSH and RESTORE change the dataset, so they are propagated
as themselves (a replica loads the same code); FCALL propagates the effects of the commands
the function ran, never the call.

Persistence: each of those changes rewrites `functions.rdb` in the data directory before it
replies (scripting/persisted.py), and `restore_functions` loads it at start, before the
server accepts commands, so functions survive a restart as Redis' do in its RDB and AOF. A
library that no longer loads (a newer file, a changed sandbox) is logged and skipped; it
never stops the start.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from jobcached.cache.glob import glob_match
from jobcached.commands.args import subcommand_syntax_error
from jobcached.commands.registry import (
    ALLOW_BUSY,
    DENYOOM,
    READONLY,
    STALE,
    WRITE,
    command,
    container,
    subcommand,
)
from jobcached.commands.scripting import BUSY, UNKILLABLE, numkeys, scripting
from jobcached.errors import CommandError
from jobcached.net.replies import OK, Encoded
from jobcached.scripting import persisted, rdbdump
from jobcached.scripting.engine import ScriptError
from jobcached.scripting.functions import Libraries, Library, load_library
from jobcached.server.session import Session

if TYPE_CHECKING:
    from jobcached.server.state import ServerState

log = logging.getLogger("jobcached.scripts")


def _fcall(s: Session, argv: list[bytes], readonly: bool) -> Any:
    state = scripting(s.server)
    function = state.libraries.function(argv[1])
    if function is None:
        raise CommandError("Function not found")
    try:
        int(argv[2])
    except ValueError:
        raise CommandError("Bad number of keys provided") from None
    count = numkeys(argv)
    if readonly and "no-writes" not in function.flags:
        raise CommandError("Can not execute a script with write flag using *_ro command.")
    return state.execute(s, function.script, argv[3:3 + count], argv[3 + count:], readonly,
                         argv)


@command("FCALL", arity=-3, flags=STALE, group="scripting")
def fcall(s: Session, argv: list[bytes]) -> Any:
    """FCALL function numkeys [key [key ...]] [arg [arg ...]]

    Call a function of a loaded library; its callback gets the keys and the arguments as two
    tables.

    Reply: the function's return value, converted as for EVAL.
    Errors: `ERR Function not found`; `ERR Bad number of keys provided`; `ERR <message>
    script: <function>, on @user_function:<line>.` when it fails while running.
    """
    return _fcall(s, argv, readonly=False)


@command("FCALL_RO", arity=-3, flags=READONLY | STALE, group="scripting")
def fcall_ro(s: Session, argv: list[bytes]) -> Any:
    """FCALL_RO function numkeys [key [key ...]] [arg [arg ...]]

    Call a function flagged `no-writes`.

    Reply: as FCALL.
    Errors: `ERR Can not execute a script with write flag using *_ro command.` for a function
    without the `no-writes` flag; as FCALL.
    """
    return _fcall(s, argv, readonly=True)


container("FUNCTION", group="scripting", summary="Manage Redis 7 function libraries.")


@subcommand("FUNCTION", "LOAD", arity=-3, flags=WRITE | DENYOOM)
def function_load(s: Session, argv: list[bytes]) -> Any:
    """FUNCTION LOAD [REPLACE] function-code

    Load a library: its code starts with `#!lua name=<library>` and registers its functions
    with `redis.register_function` (only that, `redis.log` and the version exist while it
    loads, for at most 500 ms).

    Reply: the library's name, once the libraries are saved to `functions.rdb` (they are
    loaded again at start).
    Errors: `ERR Library '<name>' already exists` without REPLACE; `ERR Missing library
    metadata`; `ERR Error compiling function: ...`; `ERR Error registering functions: ...`;
    `ERR No functions registered`; `ERR Function <name> already exists` (in another library);
    `MISCONF ...` when the file cannot be written (the library is loaded, but not saved).
    """
    replace = False
    for option in argv[2:-1]:
        if option.upper() != b"REPLACE":
            raise CommandError(f"Unknown option given: {_text(option)}")
        replace = True
    state = scripting(s.server)
    try:
        library = load_library(state.libraries, state.engine, argv[-1], replace)
    except ScriptError as exc:
        raise CommandError(str(exc)) from None
    s.server.effects.cache(argv)
    _save(s.server)
    return library.name


@subcommand("FUNCTION", "DELETE", arity=3, flags=WRITE)
def function_delete(s: Session, argv: list[bytes]) -> Any:
    """FUNCTION DELETE library-name

    Delete a library and its functions.

    Reply: `OK`, once saved (as FUNCTION LOAD).
    Errors: `ERR Library not found`; `MISCONF ...` as FUNCTION LOAD.
    """
    libraries = scripting(s.server).libraries
    if argv[2] not in libraries.libraries:
        raise CommandError("Library not found")
    libraries.remove(argv[2])
    s.server.effects.cache(argv)
    _save(s.server)
    return OK


@subcommand("FUNCTION", "FLUSH", arity=-2, flags=WRITE)
def function_flush(s: Session, argv: list[bytes]) -> Any:
    """FUNCTION FLUSH [ASYNC | SYNC]

    Delete every library (both modes free them at once).

    Reply: `OK`, once saved (as FUNCTION LOAD).
    Errors: `ERR FUNCTION FLUSH only supports SYNC|ASYNC option`; `MISCONF ...` as FUNCTION
    LOAD.
    """
    if len(argv) > 3:
        raise subcommand_syntax_error("FUNCTION", argv[1])
    if len(argv) == 3 and argv[2].upper() not in (b"ASYNC", b"SYNC"):
        raise CommandError("FUNCTION FLUSH only supports SYNC|ASYNC option")
    scripting(s.server).libraries.clear()
    s.server.effects.cache(argv)
    _save(s.server)
    return OK


@subcommand("FUNCTION", "LIST", arity=-2)
def function_list(s: Session, argv: list[bytes]) -> Any:
    """FUNCTION LIST [LIBRARYNAME library-name-pattern] [WITHCODE]

    Describe the libraries (those whose name matches the pattern, case-insensitively).

    Reply: an array of maps: `library_name`, `engine`, `functions` (maps of `name`,
    `description`, `flags` as a set) and, WITHCODE, `library_code`.
    Errors: `ERR Unknown argument <arg>`; `ERR library name argument was not given`.
    """
    with_code = False
    pattern: bytes | None = None
    i = 2
    while i < len(argv):
        arg = argv[i]
        if not with_code and arg.lower() == b"withcode":
            with_code = True
        elif pattern is None and arg.lower() == b"libraryname":
            if i >= len(argv) - 1:
                raise CommandError("library name argument was not given")
            i += 1
            pattern = argv[i]
        else:
            raise CommandError(f"Unknown argument {_text(arg)}")
        i += 1
    libraries = scripting(s.server).libraries.libraries.values()
    return [_describe(library, with_code, s.resp3) for library in libraries
            if pattern is None or glob_match(pattern.lower(), library.name.lower())]


def _describe(library: Library, with_code: bool, resp3: bool) -> dict[bytes, Any]:
    reply: dict[bytes, Any] = {
        b"library_name": library.name,
        b"engine": b"LUA",
        b"functions": [{b"name": f.name, b"description": f.description,
                        b"flags": _ordered_set([flag.encode() for flag in f.flags], resp3)}
                       for f in library.functions],
    }
    if with_code:
        reply[b"library_code"] = library.code
    return reply


def _ordered_set(items: list[bytes], resp3: bool) -> Encoded:
    """A set reply in the given order (Redis lists flags in its table's order)."""
    out = [(b"~%d\r\n" if resp3 else b"*%d\r\n") % len(items)]
    out += [b"$%d\r\n%b\r\n" % (len(item), item) for item in items]
    return Encoded(b"".join(out))


@subcommand("FUNCTION", "DUMP", arity=2)
def function_dump(s: Session, argv: list[bytes]) -> Any:
    """FUNCTION DUMP

    Serialize every library in Redis' format (RDB function records, RDB version 10, CRC64),
    for FUNCTION RESTORE here or on redis-server.

    Reply: the payload, as a bulk string.
    """
    libraries = scripting(s.server).libraries.libraries.values()
    return rdbdump.dump([library.code for library in libraries])


@subcommand("FUNCTION", "RESTORE", arity=-3, flags=WRITE | DENYOOM)
def function_restore(s: Session, argv: list[bytes]) -> Any:
    """FUNCTION RESTORE serialized-value [FLUSH | APPEND | REPLACE]

    Load the libraries of a FUNCTION DUMP payload: APPEND (the default) fails on a library
    that exists, REPLACE replaces it, FLUSH deletes every library first. All or nothing.

    Reply: `OK`, once saved (as FUNCTION LOAD).
    Errors: `ERR DUMP payload version or checksum are wrong`; `ERR Wrong restore policy
    given, value should be either FLUSH, APPEND or REPLACE.`; `ERR Library <name> already
    exists`; `ERR Function <name> already exists`; a library's load error; `MISCONF ...` as
    FUNCTION LOAD.
    """
    if len(argv) > 4:
        raise subcommand_syntax_error("FUNCTION", argv[1])
    policy = argv[3].upper() if len(argv) == 4 else b"APPEND"
    if policy not in (b"FLUSH", b"APPEND", b"REPLACE"):
        raise CommandError("Wrong restore policy given, value should be either FLUSH, APPEND "
                           "or REPLACE.")
    state = scripting(s.server)
    try:
        codes = rdbdump.load(argv[2])
        restored = Libraries()
        for code in codes:
            load_library(restored, state.engine, code, replace=False)
        if policy == b"FLUSH":
            state.libraries = restored
        else:
            _join(state.libraries, restored, policy == b"REPLACE")
    except (rdbdump.PayloadError, ScriptError) as exc:
        raise CommandError(str(exc)) from None
    s.server.effects.cache(argv)
    _save(s.server)
    return OK


def _save(server: ServerState) -> None:
    """Rewrite the durable copy after a change (see the module docstring). If the disk
    refuses, the change stays in memory and the client gets the error: the libraries are
    saved whole, so the next change that can be saved saves this one too."""
    path = server.functions_path
    if path is None:
        return
    codes = [library.code for library in scripting(server).libraries.libraries.values()]
    try:
        persisted.save(path, codes)
    except OSError as exc:
        log.error("could not save the function libraries", extra={"error": str(exc)})
        raise CommandError(f"the functions changed in memory but could not be saved to "
                           f"{persisted.FILE_NAME} ({exc}): a restart would lose the change",
                           code="MISCONF") from None


def restore_functions(server: ServerState, path: str) -> int:
    """Load the libraries saved at `path` (at start, before commands are accepted) and save
    later changes there; the number loaded. Nothing here stops a start: a damaged file or a
    library that fails to load is logged and left out."""
    server.functions_path = path
    try:
        codes = persisted.load(path)
    except (OSError, rdbdump.PayloadError) as exc:
        log.error("could not read the saved function libraries: starting without them",
                  extra={"path": path, "error": str(exc)})
        return 0
    if not codes:
        return 0
    state = scripting(server)
    for code in codes:
        try:
            load_library(state.libraries, state.engine, code, replace=False)
        except ScriptError as exc:
            log.error("a saved function library failed to load: skipped",
                      extra={"error": str(exc), "code": code[:80].decode("utf-8", "replace")})
    return len(state.libraries.libraries)


def _join(target: Libraries, source: Libraries, replace: bool) -> None:
    """libraryJoin: check every conflict first, then add, so a failure changes nothing."""
    for name in source.libraries:
        if name in target.libraries and not replace:
            raise ScriptError(f"Library {_text(name)} already exists")
    replaced = [name for name in source.libraries if name in target.libraries]
    replaced_names = {_text(name) for name in replaced}
    for key, function in source.functions.items():
        owner = target.functions.get(key)
        if owner is not None and owner.script.library not in replaced_names:
            raise ScriptError(f"Function {_text(function.name)} already exists")
    for name in replaced:  # first, so a function may move between two replaced libraries
        target.remove(name)
    for library in source.libraries.values():
        target.add(library, replace=False)


@subcommand("FUNCTION", "STATS", arity=2, flags=ALLOW_BUSY)
def function_stats(s: Session, argv: list[bytes]) -> Any:
    """FUNCTION STATS

    Say which function runs now (past `busy-reply-threshold`) and how many are loaded.

    Reply: a map: `running_script` (nil, or a map of `name`, `command`, `duration_ms`) and
    `engines` (`LUA`: `libraries_count`, `functions_count`).
    Errors: `BUSY ...` while a script of EVAL runs.
    """
    state = scripting(s.server)
    busy = s.server.busy_script
    running: dict[bytes, Any] | None = None
    if busy is not None:
        if busy.run.script.library is None:
            raise CommandError(BUSY.text[5:], code="BUSY")
        running = {b"name": busy.run.script.sha.encode(), b"command": busy.argv,
                   b"duration_ms": busy.duration_ms()}
    return {b"running_script": running,
            b"engines": {b"LUA": {b"libraries_count": len(state.libraries.libraries),
                                  b"functions_count": state.libraries.function_count()}}}


@subcommand("FUNCTION", "KILL", arity=2, flags=ALLOW_BUSY)
def function_kill(s: Session, argv: list[bytes]) -> Any:
    """FUNCTION KILL

    Stop the function running past `busy-reply-threshold`, if it has not written yet.

    Reply: `OK`; the function's caller gets `ERR Script killed by user with SCRIPT KILL...`.
    Errors: `NOTBUSY No scripts in execution right now.`; `UNKILLABLE ...` once it wrote;
    `BUSY ...` when the running script is an EVAL (SCRIPT KILL stops those).
    """
    busy = s.server.busy_script
    if busy is None:
        raise CommandError("No scripts in execution right now.", code="NOTBUSY")
    if busy.run.wrote:
        raise CommandError(UNKILLABLE, code="UNKILLABLE")
    if busy.run.script.library is None:
        raise CommandError(BUSY.text[5:], code="BUSY")
    scripting(s.server).engine.kill()
    return OK


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")

