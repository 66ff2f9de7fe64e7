"""Redis 7 functions against redis-server 7.0: the same commands, the same replies and errors.

Each test runs on both servers over RESP2 and RESP3 (the `pair` fixture; FLUSHALL keeps
functions, so `fpair` also runs FUNCTION FLUSH). Where Redis' order is a hash table's
(libraries in LIST and DUMP, functions of one library), replies are compared sorted.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.integration.cache.differential import Pair
from tests.integration.scripting.test_eval_differential import same

LIB = """#!lua name=lib
redis.register_function('echo', function(keys, args) return {keys, args} end)
redis.register_function('setget', function(keys, args)
  redis.call('set', keys[1], args[1])
  return redis.call('get', keys[1])
end)
redis.register_function{function_name='peek', description='read a key',
  callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}
redis.register_function{function_name='sneaky',
  callback=function(keys) return redis.call('set', keys[1], 'x') end, flags={'no-writes'}}
redis.register_function('fail', function() return redis.call('nosuch') end)
redis.register_function('boom', function() error('boom') end)
redis.register_function('typed', function() return {1, 'two', {ok='OK'}, {double=1.5},
  {map={a=1}}, false, 3.9} end)
"""


@pytest.fixture
def fpair(pair: Pair) -> Pair:
    pair.both("FUNCTION", "FLUSH")
    return pair


def load(code: str) -> str:
    return "#!lua name=x\n" + code


#: library bodies whose FUNCTION LOAD fails (or not) the same way on both servers
LOADS = [
    "redis.register_function('f', function() return 1 end)",
    "return 1",
    "local a = string.len('x')",
    "redis.call('get','x')",
    "x = 1",
    "error('boom')",
    "return +",
    "local t = redis.setresp",
    "redis.register_function('f 1', function() end)",
    "redis.register_function('fa', function() end) redis.register_function('fa', function() end)",
    "redis.register_function{function_name='f', callback=function() end, flags={'bad'}}",
    "redis.register_function{function_name='f', callback=function() end, flags={1}}",
    "redis.register_function{function_name='f', callback=function() end, flags=1}",
    "redis.register_function{function_name='f', callback=function() end, zz=1}",
    "redis.register_function{function_name='f'}",
    "redis.register_function{callback=function() end}",
    "redis.register_function{function_name='f', callback=1}",
    "redis.register_function{function_name='f', callback=function() end, description={}}",
    "redis.register_function{[1]='f', callback=function() end}",
    "redis.register_function{function_name=1, callback=function() end, description=2}",
    "redis.register_function{FUNCTION_NAME='f', CALLBACK=function() end, "
    "flags={'NO-WRITES', 'allow-oom', 'allow-stale', 'no-cluster', 'allow-cross-slot-keys'}}",
    "redis.register_function(1)",
    "redis.register_function(1, 2)",
    "redis.register_function(true, function() end)",
    "redis.register_function('f', function() end, 3)",
    "redis.register_function()",
    "redis.log(redis.LOG_WARNING, 'loading') "
    "redis.register_function('f', function() return redis.LOG_NOTICE end)",
    "redis.register_function('f', function() return KEYS end)",
    "while true do end",
]


@pytest.mark.parametrize("body", LOADS)
def test_load_and_list(fpair: Pair, body: str) -> None:
    same(fpair, "FUNCTION", "LOAD", load(body))
    same(fpair, "FUNCTION", "LIST", "WITHCODE")
    same(fpair, "FUNCTION", "STATS")


@pytest.mark.parametrize("code", [
    "#!lua", "#!lua name=a name=b\nx", "#!lua name=a foo=bar\nx", "#!lua\nx",
    "#!lua name=a-b\nx", "#!luax name=a\nx", "#!LUA name=X\nredis.register_function('b', "
    "function() end)", "#!lua   name=q  \nredis.register_function('q', function() end)"])
def test_shebang_errors(fpair: Pair, code: str) -> None:
    same(fpair, "FUNCTION", "LOAD", code)


def test_load_options_and_replace(fpair: Pair) -> None:
    first = load("redis.register_function('f', function() return 1 end)")
    second = load("redis.register_function('g', function() return 2 end)")
    same(fpair, "FUNCTION", "LOAD", first)
    same(fpair, "FUNCTION", "LOAD", first)
    same(fpair, "FUNCTION", "LOAD", "FOO", second)
    same(fpair, "FUNCTION", "LOAD", "replace", second)
    same(fpair, "FCALL", "f", 0)
    same(fpair, "FCALL", "g", 0)
    same(fpair, "FUNCTION", "LOAD", "REPLACE", load("return 1"))  # a failed REPLACE keeps x
    same(fpair, "FCALL", "g", 0)
    same(fpair, "FUNCTION", "LOAD", "#!lua name=y\nredis.register_function('G', function() end)")
    same(fpair, "FUNCTION", "LOAD")


def test_fcall(fpair: Pair) -> None:
    same(fpair, "FUNCTION", "LOAD", LIB)
    for argv in [("echo", 2, "k1", "k2", "a1", "a2"), ("echo", 0), ("ECHO", 1, "k"),
                 ("setget", 1, "k", "v"), ("peek", 1, "k"), ("sneaky", 1, "k"),
                 ("fail", 0), ("boom", 0), ("typed", 0), ("nosuch", 0), ("echo", "x"),
                 ("echo", -1), ("echo", 3, "k"), ("echo",)]:
        same(fpair, "FCALL", *argv)
    for argv in [("peek", 1, "k"), ("setget", 1, "k", "v"), ("sneaky", 1, "k"), ("nosuch", 0)]:
        same(fpair, "FCALL_RO", *argv)
    same(fpair, "GET", "k")


def test_runtime_environment(fpair: Pair) -> None:
    same(fpair, "FUNCTION", "LOAD", load("""
local version = redis.REDIS_VERSION_NUM
redis.register_function('keys', function() return KEYS end)
redis.register_function('redis', function() return redis.register_function('y', nil) end)
redis.register_function('global', function() x = 1 end)
redis.register_function('math', function() return math.floor(2.5) end)
redis.register_function('pc', function() return redis.pcall('incr', 'nan') end)
redis.register_function('gl', function() return not_there end)
"""))
    for name in ["keys", "redis", "global", "math", "pc", "gl"]:
        same(fpair, "FCALL", name, 0)
    same(fpair, "SET", "nan", "abc")
    same(fpair, "FCALL", "pc", 0)


def _lists(reply: Any) -> Any:
    """FUNCTION LIST in a comparable form: RESP2's flat pairs as dicts, sorted by name."""
    def as_dict(value: Any) -> dict[Any, Any]:
        if isinstance(value, dict):
            return dict(value)
        return dict(zip(value[::2], value[1::2], strict=True))

    libraries = []
    for library in reply:
        entry = as_dict(library)
        entry[b"functions"] = sorted(
            (sorted((k, sorted(v) if isinstance(v, (list, set)) else v)
                    for k, v in as_dict(f).items()) for f in entry[b"functions"]), key=repr)
        libraries.append(sorted(entry.items()))
    return sorted(libraries, key=repr)


def lists_same(pair: Pair, *argv: Any) -> None:
    ours, theirs = pair.both("FUNCTION", "LIST", *argv)
    assert _lists(ours) == _lists(theirs), f"jobcached {ours!r} != redis {theirs!r}"


def test_list_patterns_and_errors(fpair: Pair) -> None:
    same(fpair, "FUNCTION", "LIST")
    same(fpair, "FUNCTION", "LOAD", LIB)
    same(fpair, "FUNCTION", "LOAD", "#!lua name=Other_2\nredis.register_function('o', "
         "function() end)")
    lists_same(fpair)
    lists_same(fpair, "WITHCODE")
    for pattern in ["lib", "LIB", "o*", "*", "*2", "nomatch", "[lo]*"]:
        lists_same(fpair, "LIBRARYNAME", pattern, "WITHCODE")
        lists_same(fpair, "withcode", "libraryname", pattern)
    for argv in [("LIBRARYNAME",), ("foo",), ("WITHCODE", "WITHCODE"),
                 ("LIBRARYNAME", "a", "LIBRARYNAME", "b")]:
        same(fpair, "FUNCTION", "LIST", *argv)


def test_delete_flush_stats(fpair: Pair) -> None:
    same(fpair, "FUNCTION", "LOAD", LIB)
    same(fpair, "FUNCTION", "STATS")
    for argv in [("DELETE", "nosuch"), ("DELETE",), ("DELETE", "Lib"), ("DELETE", "lib"),
                 ("STATS",), ("FCALL",), ("FLUSH", "foo"), ("FLUSH", "sync", "async"),
                 ("FLUSH", "async"), ("FLUSH", "SYNC"), ("FLUSH",), ("STATS", "x"),
                 ("KILL",), ("KILL", "x"), ("DUMP", "x"), ("NOSUCH",)]:
        same(fpair, "FUNCTION", *argv)


def _generated_code(seed: int, size: int) -> str:
    """A library padded with comment text of a few words in random order: repeats near and
    far (past LZF's 8 KiB window), long runs (past its 264-byte match limit), and literals."""
    rng = random.Random(seed)
    words = ["redis", "call", "x" * 300, "function", "end", "--", "abc", "\n-- ", " "]
    padding = "".join(rng.choice(words) for _ in range(size))
    return load(f"-- {padding}\nredis.register_function('g', function() return 1 end)")


@pytest.mark.parametrize("code", [
    load("redis.register_function('a', function() return 1 end)"), LIB,
    load("--" + "a" * 5000 + "\nredis.register_function('a', function() return 1 end)"),
    *(_generated_code(seed, size) for seed, size in [(1, 10), (2, 200), (3, 5000)]),
], ids=["short", "lib", "run", "gen10", "gen200", "gen5000"])
def test_dump_is_byte_identical_to_redis(fpair: Pair, code: str) -> None:
    """One library at a time (Redis orders several by hash): the same bytes, LZF included."""
    same(fpair, "FUNCTION", "LOAD", code)
    same(fpair, "FUNCTION", "DUMP")
    same(fpair, "FUNCTION", "FLUSH")
    same(fpair, "FUNCTION", "DUMP")


def _three(pair: Pair) -> None:
    same(pair, "FUNCTION", "LOAD", LIB)
    same(pair, "FUNCTION", "LOAD", "#!lua name=b\n" + "-- padding so LZF compresses it\n" * 20
         + "redis.register_function('b', function() return 'b' end)")
    same(pair, "FUNCTION", "LOAD", "#!lua name=c\nredis.register_function{function_name='c', "
         "callback=function() return 'c' end, flags={'no-writes'}, description='c'}")


@pytest.mark.parametrize("direction", ["redis-to-jobcached", "jobcached-to-redis"])
def test_dump_restores_across_servers(fpair: Pair, direction: str) -> None:
    _three(fpair)
    source, target = ((fpair.theirs, fpair.ours) if direction == "redis-to-jobcached"
                      else (fpair.ours, fpair.theirs))
    payload = source.execute_command("FUNCTION", "DUMP")
    before = _lists(source.execute_command("FUNCTION", "LIST", "WITHCODE"))
    target.execute_command("FUNCTION", "FLUSH")
    assert target.execute_command("FUNCTION", "RESTORE", payload) in (b"OK", "OK", True)
    assert _lists(target.execute_command("FUNCTION", "LIST", "WITHCODE")) == before
    assert target.execute_command("FCALL", "b", 0) == b"b"


def test_restore_policies_and_errors(fpair: Pair) -> None:
    _three(fpair)
    payload = fpair.theirs.execute_command("FUNCTION", "DUMP")
    same(fpair, "FUNCTION", "DELETE", "b")  # one clash only: Redis reports the first it meets
    same(fpair, "FUNCTION", "DELETE", "c")
    for argv in [(payload,), (payload, "APPEND"), (payload, "replace"), (payload, "FLUSH"),
                 (payload, "bad"), (payload, "APPEND", "x"), ("xxx",), ("x" * 30,),
                 (payload[:-1] + b"\x00",), (payload[:-10] + b"\xff\x00" + payload[-8:],)]:
        same(fpair, "FUNCTION", "RESTORE", *argv)
        lists_same(fpair)
    same(fpair, "FUNCTION", "DELETE", "lib")
    same(fpair, "FUNCTION", "LOAD", "#!lua name=clash\nredis.register_function('ECHO', "
         "function() end)")
    same(fpair, "FUNCTION", "DELETE", "c")
    same(fpair, "FUNCTION", "RESTORE", payload)  # the library b exists: refused
    same(fpair, "FUNCTION", "RESTORE", payload, "REPLACE")  # echo belongs to clash: refused
    lists_same(fpair)
    same(fpair, "FUNCTION", "RESTORE", payload, "FLUSH")
    lists_same(fpair, "WITHCODE")


def test_oom_refuses_functions_without_allow_oom_or_no_writes(fpair: Pair) -> None:
    same(fpair, "FUNCTION", "LOAD", """#!lua name=m
redis.register_function('plain', function() return redis.call('get', 'x') end)
redis.register_function{function_name='ro', callback=function() return redis.call('get', 'x')
  end, flags={'no-writes'}}
redis.register_function{function_name='oom', callback=function()
  return redis.call('set', 'x', 'y') end, flags={'allow-oom'}}
redis.register_function{function_name='stale', callback=function() return 1 end,
  flags={'allow-stale'}}""")
    same(fpair, "SET", "big", "v" * 1000)
    fpair.both("CONFIG", "SET", "maxmemory-policy", "noeviction")
    fpair.both("CONFIG", "SET", "maxmemory", "1")
    try:
        for argv in [("FCALL", "plain", 0), ("FCALL", "ro", 0), ("FCALL", "oom", 0),
                     ("FCALL", "stale", 0), ("FCALL_RO", "ro", 0),
                     ("EVAL", "#!lua\nreturn 1", 0), ("EVAL", "#!lua flags=no-writes\nreturn 1",
                                                      0), ("EVAL", "return 1", 0)]:
            same(fpair, *argv)
    finally:
        fpair.both("CONFIG", "SET", "maxmemory", "0")


def test_function_moves_between_libraries_on_restore_replace(fpair: Pair) -> None:
    a = "#!lua name=a\nredis.register_function('fa', function() return 'a' end)"
    b = "#!lua name=b\nredis.register_function('fb', function() return 'b' end)"
    same(fpair, "FUNCTION", "LOAD", a)
    same(fpair, "FUNCTION", "LOAD", b)
    same(fpair, "FUNCTION", "DELETE", "a")
    same(fpair, "FUNCTION", "DELETE", "b")
    same(fpair, "FUNCTION", "LOAD", a.replace("fa", "fb"))  # a: fb
    same(fpair, "FUNCTION", "LOAD", b.replace("fb", "fa"))  # b: fa
    swapped = fpair.theirs.execute_command("FUNCTION", "DUMP")
    same(fpair, "FUNCTION", "FLUSH")
    same(fpair, "FUNCTION", "LOAD", a)
    same(fpair, "FUNCTION", "LOAD", b)
    same(fpair, "FUNCTION", "RESTORE", swapped, "REPLACE")
    lists_same(fpair, "WITHCODE")
    same(fpair, "FCALL", "fa", 0)


def test_functions_in_transactions_and_scripts(fpair: Pair) -> None:
    same(fpair, "FUNCTION", "LOAD", LIB)
    for argv in [("MULTI",), ("FCALL", "setget", 1, "k", "v"), ("FCALL_RO", "peek", 1, "k"),
                 ("FUNCTION", "STATS"), ("EXEC",),
                 ("EVAL", "return redis.call('fcall', 'peek', 1, 'k')", 0),
                 ("EVAL", "return redis.pcall('function', 'list')", 0),
                 ("EVAL", "return redis.pcall('function', 'flush')", 0)]:
        same(fpair, *argv)
