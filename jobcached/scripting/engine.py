"""The script engine: one Lua 5.1 runtime, the script cache, and running a script in slices.

Why Lua 5.1 and not LuaJIT: Redis embeds PUC Lua 5.1, and scripts see its exact behaviour
(number formatting, `string` patterns, error texts, `#t` on tables with holes); lupa's LuaJIT
differs in several of these and ignores `max_memory`, which is how a script's memory is
bounded here. Scripts are short in practice; the cost that matters is the crossing between
Lua and Python on each `redis.call`, the same for both runtimes.

Theory of operation: time limits on one thread
----------------------------------------------
The server is one asyncio thread, so a script runs on the event loop's thread and nothing
else runs meanwhile: that is what makes it atomic. To keep a runaway script from freezing the
server, each script runs in a greenlet (its own C stack), and a Lua count hook calls
`_on_hook` every `HOOK_INSTRUCTIONS` instructions. Until `busy-reply-threshold` the hook only
reads the clock. Past it, if the run is `yieldable`, the hook switches back to the event loop's
greenlet: the command layer answers the script's client later (a blocking Deferred), marks the
server busy (other clients get -BUSY, SCRIPT KILL and SHUTDOWN get through) and resumes the
script for another `SLICE_MS` on each loop iteration. A run that cannot yield (inside
MULTI/EXEC, where the rest of the transaction must not interleave) is stopped with an error at
the threshold instead, so no script can hang the server. SCRIPT KILL sets `kill_reason`; the
next hook raises it as a Lua error at the script's current line (and again at every hook, so
a script that catches it with pcall still stops). Memory is bounded by lupa's `max_memory`.

The engine knows nothing about commands or sockets: `redis.call` goes to the `call_command`
callback, which the command layer implements with the dispatcher.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import greenlet
from lupa import lua51

from jobcached.net.replies import ErrorReply
from jobcached.scripting.convert import Converter
from jobcached.scripting.libs import Libraries, LuaCallError, format_number
from jobcached.scripting.rand48 import Rand48
from jobcached.scripting.sandbox import HOOK_INSTRUCTIONS, PRELUDE, SCRIPT_CHUNK_NAME

log = logging.getLogger("jobcached.scripts")

#: Once a script runs past the threshold, it gets this long between two event-loop turns: short
#: enough that -BUSY replies and SCRIPT KILL are prompt, long enough that the script progresses.
SLICE_MS = 10

#: KEYS and ARGV up to this many go to Lua as call arguments (cheapest); more go as tables,
#: since the Lua 5.1 C stack holds at most 8000 values (LUAI_MAXCSTACK).
STACK_ARGS = 64

#: Script flags, in Redis' order: shebang flags (`#!lua flags=no-writes,allow-oom`) and the
#: flags of functions (`redis.register_function{..., flags={...}}`).
FUNCTION_FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster",
                  "allow-cross-slot-keys")
SHEBANG_FLAGS = frozenset(FUNCTION_FLAGS)

#: How long a library's code may run at FUNCTION LOAD (Redis' LOAD_TIMEOUT_MS).
LOAD_TIMEOUT_MS = 500

KILLED = "ERR Script killed by user with SCRIPT KILL..."
TIMED_OUT = ("ERR Script ran longer than busy-reply-threshold inside MULTI/EXEC, where it cannot "
             "yield, and was stopped")
LOG_LEVELS = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)


class ScriptError(Exception):
    """A script could not be created (compile error, bad shebang): the message is the reply."""


@dataclass(eq=False)
class Script:
    """A compiled script of the cache (its body, sha and shebang flags), or a function of a
    library (`library` set): then `sha` is the function's name, which errors name instead."""

    sha: str
    body: bytes
    function: Any
    flags: frozenset[str] | None  # None: no shebang (Redis' EVAL compatibility mode)
    library: str | None = None

    @property
    def no_writes(self) -> bool:
        return self.flags is not None and "no-writes" in self.flags


@dataclass(eq=False, slots=True)
class ScriptRun:
    """One execution, from start to reply; what SCRIPT KILL and -BUSY need to know."""

    script: Script
    readonly: bool
    caller_resp3: bool
    yieldable: bool
    started: float
    deadline: float  # monotonic seconds of the next check that may suspend or stop the run
    resp3: bool = False  # the protocol chosen with redis.setresp for redis.call replies
    wrote: bool = False  # a write command ran: SCRIPT KILL is refused from then on
    durable: bool = False  # job records were logged: the reply waits until they are durable
    kill_reason: str | None = None
    suspended: bool = False
    reply: Any = None
    task: greenlet.greenlet | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class _Finished:
    """What the runner greenlet switches back with when a script ends (a suspension
    switches back with None)."""

    reply: Any


# (argv, run) -> reply value: the command layer's dispatcher, as `redis.call` sees it
CallCommand = Callable[[list[bytes], ScriptRun], Any]


class ScriptEngine:
    """The Lua runtime and the script cache (SCRIPT LOAD / EVAL fill it, SCRIPT FLUSH empties
    it). `threshold_ms` is read through a callable so CONFIG SET applies to the next check."""

    def __init__(self, call_command: CallCommand, threshold_ms: Callable[[], int],
                 max_memory: int, version: str) -> None:
        self.call_command = call_command
        self.threshold_ms = threshold_ms
        self.scripts: dict[str, Script] = {}
        self.current: ScriptRun | None = None
        self._runner: greenlet.greenlet | None = None
        self.runtime = lua51.LuaRuntime(encoding=None, register_eval=False,
                                        register_builtins=False, unpack_returned_tuples=True,
                                        attribute_filter=_deny_attributes,
                                        max_memory=max_memory)
        lua_type = lua51.lua_type
        self.table: Callable[[Any], Any] = self.runtime.table_from
        self.convert = Converter(self.table, lua_type)
        null = self.runtime.eval("newproxy(false)")
        libs = Libraries(self.table, lua_type, null)
        rand = Rand48(lua_type)
        major, minor, patch = (int(p) for p in version.split("."))
        bridge = dict(libs.functions(), call=self._lua_call, pcall=self._lua_pcall,
                      unwrap=_unwrap, hook=self._on_hook, stopping=self._stopping,
                      sha1hex=_sha1hex, log=_log,
                      setresp=self._setresp, set_repl=_set_repl, cjson_null=null,
                      math_random=rand.random, math_randomseed=rand.randomseed,
                      chunk_name=SCRIPT_CHUNK_NAME.encode(), version=version.encode(),
                      version_num=(major << 16) | (minor << 8) | patch)
        prelude = self.runtime.compile(PRELUDE)
        bridge["function_flags"] = self.table([f.encode() for f in FUNCTION_FLAGS])
        self._compile, self._run, self._run_with, self._load_library, self._call_function = (
            prelude(self.table({name.encode(): value for name, value in bridge.items()}),
                    HOOK_INSTRUCTIONS))
        #: monotonic deadline of the library load running now (FUNCTION LOAD), if any
        self._load_deadline: float | None = None

    # ------------------------------------------------------------------ the cache

    def load(self, body: bytes) -> Script:
        """Compile `body` (or find it cached); raises ScriptError with Redis' reply text."""
        sha = hashlib.sha1(body).hexdigest()
        script = self.scripts.get(sha)
        if script is not None:
            return script
        flags, source = parse_shebang(body)
        function, error = self._compile(source)
        if function is None:
            raise ScriptError("Error compiling script (new function): "
                              + error.decode("utf-8", "surrogateescape"))
        script = Script(sha, body, function, flags)
        self.scripts[sha] = script
        return script

    def flush(self) -> None:
        self.scripts.clear()
        self.runtime.execute("collectgarbage()")

    def load_library(self, code: bytes) -> list[tuple[bytes, Any, bytes | None, list[bytes]]]:
        """Run a library's code (from the newline that ends its shebang, so line numbers are
        the user's) in the load environment: its registrations as (name, callback,
        description, flags), in order.
        Raises ScriptError with Redis' text; a load gets LOAD_TIMEOUT_MS, as in Redis."""
        self._load_deadline = time.monotonic() + LOAD_TIMEOUT_MS / 1000
        try:
            ok, result = self._load_library(code)
        except lua51.LuaMemoryError:
            ok, result = False, self.table({b"err": b"ERR not enough memory"})
        finally:
            self._load_deadline = None
        if ok is None:
            raise ScriptError("Error compiling function: " + _text(result))
        if not ok:
            message = result[b"err"] if lua51.lua_type(result) == "table" else result
            raise ScriptError("Error registering functions: " + _text(message))
        return [(f[b"name"], f[b"callback"], f[b"description"], list(f[b"flags"].values()))
                for f in result.values()]

    # ------------------------------------------------------------------ running

    def start(self, script: Script, keys: list[bytes], args: list[bytes], *, readonly: bool,
              caller_resp3: bool, yieldable: bool) -> ScriptRun:
        """Run `script` until it ends or is suspended (`run.suspended`); see `resume`."""
        now = time.monotonic()
        run = ScriptRun(script, readonly or script.no_writes, caller_resp3, yieldable, now,
                        now + self.threshold_ms() / 1000)
        if self._runner is None or self._runner.dead:
            self._runner = greenlet.greenlet(self._serve)
        run.task = self._runner
        self.current = run
        self._switch(run, (run, keys, args))
        return run

    def resume(self, run: ScriptRun) -> None:
        """Give a suspended run another slice (the event loop calls this once per turn)."""
        run.suspended = False
        run.deadline = time.monotonic() + SLICE_MS / 1000
        self.current = run
        self._switch(run)

    def _switch(self, run: ScriptRun, *args: Any) -> None:
        assert run.task is not None
        outcome = run.task.switch(*args)
        if type(outcome) is _Finished:
            run.reply = outcome.reply
            self.current = None
        else:
            run.suspended = True

    def _serve(self, job: tuple[ScriptRun, list[bytes], list[bytes]]) -> None:
        """The runner greenlet: runs one script per switch into it, for the engine's life
        (creating a greenlet per script cost 13 µs, more than the rest of an EVAL)."""
        while True:
            try:
                reply = self._body(*job)
            except Exception:  # a bug of ours: the caller gets an error, the runner lives on
                log.exception("script failed", extra={"sha": job[0].script.sha})
                reply = ErrorReply("ERR internal error while running a script")
            parent = greenlet.getcurrent().parent
            assert parent is not None
            job = parent.switch(_Finished(reply))

    def _body(self, run: ScriptRun, keys: list[bytes], args: list[bytes]) -> Any:
        """Run the function under the error handler, convert its result."""
        try:
            if run.script.library is not None:
                ok, result = self._call_function(run.script.function, self.table(keys),
                                                 self.table(args))
            elif len(keys) + len(args) <= STACK_ARGS:
                ok, result = self._run(run.script.function, len(keys), *keys, *args)
            else:
                ok, result = self._run_with(run.script.function, self.table(keys),
                                            self.table(args))
        except lua51.LuaMemoryError:
            ok, result = False, b"not enough memory"
        if ok:
            return self.convert.from_lua(result, run.resp3)
        return self._error_reply(result, run.script.sha)

    def _error_reply(self, error: Any, sha: str) -> ErrorReply:
        if isinstance(error, bytes):  # only a memory error escapes the handler as a string
            self.runtime.execute("collectgarbage()")
            return ErrorReply("OOM Script exceeded the Lua memory limit (lua-max-memory): "
                              + error.decode())
        message = error[b"err"]
        text = message.decode("utf-8", "surrogateescape") if isinstance(message, bytes) else (
            "ERR unknown error")
        source, line = error[b"source"], error[b"line"]
        if source is not None and line is not None:
            text += f" script: {sha}, on {source.decode()}:{int(line)}."
        return ErrorReply(text.replace("\r", " ").replace("\n", " "))

    def kill(self) -> None:
        """SCRIPT KILL: the running script stops at its next hook."""
        if self.current is not None:
            self.current.kill_reason = KILLED

    # ------------------------------------------------------------------ called from Lua

    def _on_hook(self) -> bytes | None:
        run = self.current
        if run is None:
            deadline = self._load_deadline
            if deadline is not None and time.monotonic() >= deadline:
                return b"ERR FUNCTION LOAD timeout"
            return None
        if run.kill_reason is None and time.monotonic() >= run.deadline:
            if run.yieldable:
                task = run.task
                assert task is not None and task.parent is not None
                task.parent.switch(None)  # suspended; `resume` switches back here
            else:
                run.kill_reason = TIMED_OUT
        return run.kill_reason.encode() if run.kill_reason is not None else None

    def _stopping(self) -> bytes | None:
        """The reason the running script is being stopped, if it is (pcall re-raises it)."""
        run = self.current
        return run.kill_reason.encode() if run is not None and run.kill_reason else None

    def _lua_call(self, *args: Any) -> Any:
        """redis.call: the reply, converted; an error reply is raised as {err=...}."""
        run = self.current
        assert run is not None
        reply = self.call_command(_argv(args), run)
        if type(reply) is ErrorReply:
            raise LuaCallError(reply.text, table=True)
        return self.convert.to_lua(reply, run.resp3)

    def _lua_pcall(self, *args: Any) -> Any:
        """redis.pcall: as redis.call, but an error comes back as the {err=...} table."""
        try:
            return self._lua_call(*args)
        except LuaCallError as exc:
            return self.convert.error_table(exc.text)

    def _setresp(self, *args: Any) -> None:
        if len(args) != 1:
            raise LuaCallError("ERR redis.setresp() requires one argument.", table=True)
        if args[0] not in (2, 3):
            raise LuaCallError("ERR RESP version must be 2 or 3.", table=True)
        assert self.current is not None
        self.current.resp3 = args[0] == 3


def parse_shebang(body: bytes) -> tuple[frozenset[str] | None, bytes]:
    """Flags of `#!lua flags=...` (None without a shebang) and the source to compile: the
    shebang line is blanked, so line numbers in errors stay those of the body."""
    if not body.startswith(b"#!"):
        return None, body
    line, newline, rest = body.partition(b"\n")
    parts = line.decode("utf-8", "surrogateescape").split(" ")
    if parts[0] != "#!lua":
        raise ScriptError(f"Unexpected engine in script shebang: {parts[0]}")
    flags: set[str] = set()
    for part in parts[1:]:
        if not part:
            continue
        if not part.startswith("flags="):
            raise ScriptError(f"Unknown lua shebang option: {part}")
        for flag in part[len("flags="):].split(","):
            if flag not in SHEBANG_FLAGS:
                raise ScriptError(f"Unexpected flag in script shebang: {flag}")
            flags.add(flag)
    return frozenset(flags), newline + rest


def _text(value: Any) -> str:
    """A Lua string (or anything else) as reply text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _argv(args: tuple[Any, ...]) -> list[bytes]:
    """redis.call's arguments as a command line: numbers as Lua prints them ("%.14g")."""
    if not args:
        raise LuaCallError("ERR Please specify at least one argument for this redis lib call",
                           table=True)
    argv: list[bytes] = []
    for arg in args:
        if type(arg) is bytes:
            argv.append(arg)
        elif type(arg) is int or type(arg) is float:
            argv.append(format_number(arg).encode())
        else:
            raise LuaCallError("ERR Lua redis lib command arguments must be strings or "
                               "integers", table=True)
    return argv


def _unwrap(error: Any) -> tuple[bytes | None, bool]:
    """A Python exception raised into Lua: (its text, raised as a reply error?), or
    (None, False) for anything else."""
    if isinstance(error, LuaCallError):
        return error.text.encode("utf-8", "surrogateescape"), error.table
    return None, False


def _sha1hex(*args: Any) -> bytes:
    if len(args) != 1:
        raise LuaCallError("ERR wrong number of arguments", table=True)
    data = args[0]
    if not isinstance(data, bytes):
        data = format_number(data).encode() if isinstance(data, (int, float)) else b""
    return hashlib.sha1(data).hexdigest().encode()


def _log(*args: Any) -> None:
    """redis.log(level, message, ...): to our log, at the matching level."""
    if len(args) < 2:
        raise LuaCallError("ERR redis.log() requires two arguments or more.", table=True)
    level = args[0]
    if type(level) not in (int, float):
        raise LuaCallError("ERR First argument must be a number (log level).", table=True)
    if not 0 <= level <= 3:
        raise LuaCallError("ERR Invalid debug level.", table=True)
    words = [a.decode("utf-8", "replace") if isinstance(a, bytes) else format_number(a)
             if type(a) in (int, float) else str(a) for a in args[1:]]
    log.log(LOG_LEVELS[int(level)], " ".join(words))


def _set_repl(*args: Any) -> None:
    """redis.set_repl: checked, then ignored: effects always propagate (see SPEC.md)."""
    if len(args) != 1:
        raise LuaCallError("ERR redis.set_repl() requires one argument.", table=True)
    if type(args[0]) not in (int, float) or not 0 <= args[0] <= 3:
        raise LuaCallError("ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, "
                           "REPL_ALL or REPL_NONE.", table=True)


def _deny_attributes(obj: Any, name: Any, setting: bool) -> Any:
    """lupa's attribute filter: a script may not reach into any Python object."""
    raise AttributeError("access to Python objects is not allowed from scripts")
