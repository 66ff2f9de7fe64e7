"""The sandbox holds: no way from a script to Python, the real globals, bytecode, or the hook.

Driven through `ScriptEngine` alone, with a `redis.call` that echoes its arguments.
"""

from __future__ import annotations

from typing import Any

import pytest

from jobcached.net.replies import ErrorReply
from jobcached.scripting.engine import ScriptEngine, ScriptError, ScriptRun, parse_shebang


def echo(argv: list[bytes], run: ScriptRun) -> Any:
    return argv


@pytest.fixture
def engine() -> ScriptEngine:
    return ScriptEngine(echo, lambda: 5000, 64 * 1024 * 1024, "7.0.0")


def run(engine: ScriptEngine, body: str, keys: tuple[str, ...] = ()) -> Any:
    script = engine.load(body.encode())
    result = engine.start(script, [k.encode() for k in keys], [], readonly=False,
                          caller_resp3=False, yieldable=False)
    assert not result.suspended
    return result.reply


def error_text(reply: Any) -> str:
    assert isinstance(reply, ErrorReply), reply
    return reply.text


def test_redis_call_reaches_the_callback_with_lua_number_formatting(engine: ScriptEngine
                                                                    ) -> None:
    assert run(engine, "return redis.call('x', 1, 2.5, 1e20, -0.1)") == [
        b"x", b"1", b"2.5", b"1e+20", b"-0.1"]


@pytest.mark.parametrize("body", [
    "return redis.call.__globals__",
    "return redis.call.__self__",
    "local ok, e = pcall(cjson.decode, 'x') return e.__class__",
    "return python",
])
def test_python_objects_are_out_of_reach(engine: ScriptEngine, body: str) -> None:
    reply = run(engine, body)
    assert reply is None or isinstance(reply, ErrorReply)


def test_precompiled_chunks_are_refused(engine: ScriptEngine) -> None:
    assert run(engine, "return loadstring(string.dump(function() return 1 end))") is None
    assert run(engine, "local f, e = loadstring(string.dump(function() end)) return e") == (
        b"loading precompiled chunks is not allowed")
    assert run(engine, "local parts = {string.dump(function() end)} local i = 0 "
               "return load(function() i = i + 1 return parts[i] end)") is None


def test_loaded_code_gets_the_sandboxed_environment(engine: ScriptEngine) -> None:
    assert "Attempt to modify a readonly table" in error_text(
        run(engine, "local f = loadstring('y = 1') f()"))
    assert "nonexistent global variable 'os'" in error_text(
        run(engine, "return loadstring('return os')()"))


def test_globals_do_not_leak_between_scripts(engine: ScriptEngine) -> None:
    run(engine, "rawset(KEYS, 'x', 1) pcall(rawset, _G, 'leak', 1)")
    assert "nonexistent global variable 'leak'" in error_text(run(engine, "return leak"))


def test_string_metatable_is_protected(engine: ScriptEngine) -> None:
    assert run(engine, "return getmetatable('')") is None
    assert run(engine, "return ('abc'):upper()") == b"ABC"
    assert "readonly table" in error_text(run(engine, "string.upper = nil"))


def test_the_hook_cannot_be_removed(engine: ScriptEngine) -> None:
    for name in ("debug", "setfenv", "getfenv", "newproxy", "module", "require"):
        assert "nonexistent global variable" in error_text(run(engine, f"return {name}"))


def test_kill_reason_is_raised_at_the_next_hook(engine: ScriptEngine) -> None:
    script = engine.load(b"local i = 0 while true do i = i + 1 end")
    engine.threshold_ms = lambda: 0
    result = engine.start(script, [], [], readonly=False, caller_resp3=False, yieldable=False)
    assert error_text(result.reply).startswith(
        "ERR Script ran longer than busy-reply-threshold inside MULTI/EXEC")
    assert engine.current is None


@pytest.mark.parametrize("body", [
    "local co = coroutine.wrap(function() while true do end end) co()",
    "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
    "while true do pcall(function() while true do end end) end",
])
def test_loops_in_coroutines_and_pcall_cannot_escape_the_limit(engine: ScriptEngine,
                                                                body: str) -> None:
    engine.threshold_ms = lambda: 20
    script = engine.load(body.encode())
    result = engine.start(script, [], [], readonly=False, caller_resp3=False, yieldable=False)
    assert "busy-reply-threshold" in error_text(result.reply)


def test_coroutines_still_work(engine: ScriptEngine) -> None:
    assert run(engine, "local co = coroutine.wrap(function(a) coroutine.yield(a + 1) "
               "return 7 end) return {co(1), co()}") == [2, 7]
    assert "inner" in error_text(run(engine, "coroutine.wrap(function() error('inner') end)()"))


def test_a_bug_in_a_bridge_is_an_error_reply_and_the_engine_goes_on(
        engine: ScriptEngine, caplog: pytest.LogCaptureFixture) -> None:
    def broken(reply: Any, resp3: bool) -> Any:
        raise RuntimeError("bug")

    engine.convert.from_lua = broken  # type: ignore[method-assign]
    assert error_text(run(engine, "return 1")) == "ERR internal error while running a script"
    assert "script failed" in caplog.text
    del engine.convert.from_lua
    assert run(engine, "return 2") == 2
    assert engine.current is None


def test_shebang_parsing() -> None:
    assert parse_shebang(b"return 1") == (None, b"return 1")
    assert parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1") == (
        frozenset({"no-writes", "allow-oom"}), b"\nreturn 1")
    with pytest.raises(ScriptError, match="Unexpected flag in script shebang: x"):
        parse_shebang(b"#!lua flags=x\n")
    with pytest.raises(ScriptError, match="Unknown lua shebang option: name=x"):
        parse_shebang(b"#!lua name=x\n")


def test_flush_empties_the_cache(engine: ScriptEngine) -> None:
    sha = engine.load(b"return 1").sha
    assert sha in engine.scripts
    engine.flush()
    assert engine.scripts == {}
