"""EVAL against redis-server 7.0: the same scripts, the same replies and error texts.

Each case runs on both servers over RESP2 and RESP3 (the `pair` fixture). The scripts cover
Redis' conversion rules both ways, the error shapes (compile errors, runtime errors with the
script's sha and line, errors of redis.call), the sandbox and the libraries Redis loads.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.cache.differential import Pair, normalize


def same(pair: Pair, *argv: Any) -> Any:
    """`Pair.check`, with error replies nested in arrays compared by type and text."""
    ours, theirs = pair.both(*argv)
    assert _plain(ours) == _plain(theirs), f"{argv!r}: jobcached {ours!r} != redis {theirs!r}"
    return theirs


def _plain(reply: Any) -> Any:
    if isinstance(reply, Exception):
        return ("error", type(reply).__name__, str(reply))
    if isinstance(reply, list):
        return [_plain(x) for x in reply]
    return normalize(reply)

#: (script, keys, args): run as EVAL script numkeys keys... args...
SCRIPTS: list[tuple[str, list[str], list[str]]] = [
    # Lua -> reply
    ("return 1", [], []),
    ("return 3.99", [], []),
    ("return -3.99", [], []),
    ("return 1e20", [], []),
    ("return 'a' .. 1e20", [], []),
    ("return 'hello'", [], []),
    ("return true", [], []),
    ("return false", [], []),
    ("return nil", [], []),
    ("return {1, 2, 3.7, nil, 4}", [], []),
    ("return {1, 'a', {ok='fine'}, {err='ERR nested'}, true, false, 7.9}", [], []),
    ("return {}", [], []),
    ("return {{1, {2, {3}}}}", [], []),
    ("return {ok='FINE'}", [], []),
    ("return {err='x y'}", [], []),
    ("return {err='multi\\nline'}", [], []),
    ("return {double=3.5}", [], []),
    ("return {map={a=1}}", [], []),
    ("return {set={a=true}}", [], []),
    ("return redis.status_reply('FINE')", [], []),
    ("return redis.error_reply('MY err')", [], []),
    ("return redis.error_reply('plain')", [], []),
    ("return redis.error_reply('-X')", [], []),
    ("return redis.error_reply()", [], []),
    ("return redis.sha1hex('')", [], []),
    ("return redis.sha1hex('abc')", [], []),
    ("return {KEYS[1], KEYS[2], ARGV[1], #ARGV}", ["k1", "k2"], ["a1", "a2"]),
    ("return {type(KEYS), type(ARGV)}", [], []),
    ("redis.setresp(3) return {true, false, nil}", [], []),
    # redis.call -> Lua
    ("redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])", ["k"], ["v"]),
    ("return redis.call('set', KEYS[1], 'v')", ["k"], []),
    ("return redis.call('get', 'missing')", [], []),
    ("local t = redis.call('mget', 'f', 'nokey') return {type(t[1]), type(t[2])}", [], []),
    ("redis.call('hset', 'h', 'a', '1') return redis.call('hgetall', 'h')", [], []),
    ("redis.setresp(3) redis.call('hset', 'h', 'a', '1') return redis.call('hgetall', 'h')",
     [], []),
    ("redis.setresp(3) return type(redis.call('hgetall', 'h').map)", [], []),
    ("redis.setresp(3) return redis.call('get', 'missing') == nil", [], []),
    ("return redis.call('incrbyfloat', 'f', '1.5')", [], []),
    ("return redis.call('incr', 'n')", [], []),
    ("return redis.call('set', 'n', 5, 'EX', 100)", [], []),
    ("return redis.call('ping')", [], []),
    ("local r = redis.call('ping') return type(r) .. r.ok", [], []),
    ("redis.call('rpush', 'l', 'a', 'b') return redis.call('lrange', 'l', 0, -1)", [], []),
    ("redis.call('sadd', 's', 'a') return redis.call('smembers', 's')", [], []),
    ("redis.call('zadd', 'z', 1.5, 'a') return redis.call('zrange', 'z', 0, -1, 'WITHSCORES')",
     [], []),
    ("redis.setresp(3) redis.call('zadd', 'z', 1.5, 'a') "
     "return redis.call('zrange', 'z', 0, -1, 'WITHSCORES')", [], []),
    ("redis.setresp(3) redis.call('zadd', 'z', 2.5, 'a') "
     "return type(redis.call('zscore', 'z', 'a'))", [], []),
    # errors
    ("return foo", [], []),
    ("error('boom')", [], []),
    ("error({err='CUSTOM boom'})", [], []),
    ("local x = nil\nreturn x.y", [], []),
    ("\n\nerror('third line')", [], []),
    ("return 1 +", [], []),
    ("return redis.call('nosuch')", [], []),
    ("return redis.call('get')", [], []),
    ("return redis.call('get', 'a', 'b')", [], []),
    ("return redis.call('set', 'k', 'v', 'x')", [], []),
    ("return redis.call('client')", [], []),
    ("return redis.call('client', 'nosuch')", [], []),
    ("redis.call('set', 'l', '1') return redis.call('lpush', 'l', 'x')", [], []),
    ("redis.call('set', 'l', '1') return redis.pcall('lpush', 'l', 'x')", [], []),
    ("redis.call('set', 'l', '1') local r = redis.pcall('lpush', 'l', 'x') return r.err", [],
     []),
    ("return redis.call()", [], []),
    ("return redis.call({})", [], []),
    ("return redis.call('get', {})", [], []),
    ("return redis.pcall()", [], []),
    ("return redis.call('blpop', 'nol', 0)", [], []),
    ("return redis.call('eval', 'return 1', 0)", [], []),
    ("return redis.call('multi')", [], []),
    ("return redis.call('subscribe', 'x')", [], []),
    ("local ok, e = pcall(redis.call, 'nosuch') return {type(e), e}", [], []),
    ("local ok, e = pcall(function() redis.call('nosuch') end) return {type(e), e}", [], []),
    ("local ok, e = pcall(cjson.decode, 'x') return {type(e), e}", [], []),
    ("local ok, e = pcall(error, {err='X y'}) return e", [], []),
    ("return redis.setresp(4)", [], []),
    ("return redis.log(redis.LOG_WARNING)", [], []),
    ("return redis.log('x', 'y')", [], []),
    ("redis.log(redis.LOG_NOTICE, 'hello', 'world') return 1", [], []),
    ("return redis.set_repl(redis.REPL_ALL)", [], []),
    ("return redis.replicate_commands()", [], []),
    # streams: XREAD and XREADGROUP run, without BLOCK only (refused when the option is reached)
    ("redis.call('XADD', KEYS[1], '1-1', 'f', 'v') "
     "redis.call('XGROUP', 'CREATE', KEYS[1], 'g', '0') "
     "return {redis.call('XREAD', 'COUNT', '5', 'STREAMS', KEYS[1], '0'), "
     "redis.call('XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', KEYS[1], '>')}", ["xs"], []),
    ("return redis.call('xread', 'BLOCK', 'x', 'STREAMS', 'xs2', '0')", [], []),
    ("return redis.call('XREAD', 'COUNT', 'x', 'BLOCK', '0', 'STREAMS', 'xs2', '0')", [], []),
    ("return redis.pcall('XREADGROUP', 'GROUP', 'g', 'c', 'BLOCK', '0', 'STREAMS', 'xs2', '>')",
     [], []),
    # sandbox
    ("x = 1", [], []),
    ("rawset(_G, 'x', 1)", [], []),
    ("setmetatable(_G, nil)", [], []),
    ("string.x = 1", [], []),
    ("redis.call = nil", [], []),
    ("return os", [], []),
    ("return io", [], []),
    ("return debug", [], []),
    ("return print", [], []),
    ("return require", [], []),
    ("return dofile", [], []),
    ("return getfenv", [], []),
    ("return {type(loadstring), type(load), type(coroutine), type(rawget(_G, 'string'))}",
     [], []),
    ("local f = loadstring('return 7') return f()", [], []),
    ("local f = loadstring('x = 7') return pcall(f)", [], []),
    ("local t = {} t.x = 1 return t.x", [], []),
    ("local function f(n) if n == 0 then return 0 end return 1 + f(n - 1) end return f(100)",
     [], []),
    ("return string.format('%d-%s', 5, 'x')", [], []),
    ("return tostring(0.1)", [], []),
    ("return tostring(1/3)", [], []),
    ("return #{1, 2, nil, 4}", [], []),
    ("return table.concat({'a', 'b'}, ',')", [], []),
    # libraries
    ("return cjson.encode({1, 2, {a=1}})", [], []),
    ("return cjson.encode({a='x/y', b=true, c=1.5})", [], []),
    ("return cjson.encode({})", [], []),
    ("return cjson.encode('a\"b\\n')", [], []),
    ("return cjson.encode({[1]=1, [5]=2})", [], []),
    ("return cjson.encode({[1]=1, [20]=2})", [], []),
    ("local t = cjson.decode('[1,2,{\"a\":\"x\"}]') return {t[1], t[3].a}", [], []),
    ("return cjson.decode('{\"a\":null}').a == cjson.null", [], []),
    ("return cjson.decode('x')", [], []),
    ("return tostring(cjson.decode('1.5'))", [], []),
    ("return bit.band(0xff, 0x0f)", [], []),
    ("return {bit.bor(1, 2, 4), bit.bxor(5, 1), bit.bnot(0), bit.lshift(1, 31)}", [], []),
    ("return {bit.rshift(-1, 28), bit.arshift(-16, 2), bit.rol(1, 33), bit.ror(1, 1)}", [],
     []),
    ("return {bit.tohex(255), bit.tohex(255, -4), bit.tobit(2^32 + 5), bit.bswap(1)}", [], []),
    ("return bit.band('x')", [], []),
    ("return cmsgpack.unpack(cmsgpack.pack({1, 2, 3}))", [], []),
    ("local a, b = cmsgpack.unpack(cmsgpack.pack('x', 5)) return {a, b}", [], []),
    ("return #cmsgpack.pack({a=1})", [], []),
    ("return {struct.unpack('>I2', struct.pack('>I2', 258))}", [], []),
    ("return {struct.unpack('<i4h', struct.pack('<i4h', -5, 7))}", [], []),
    ("return struct.size('>I2i4')", [], []),
]


@pytest.mark.parametrize("script,keys,args", SCRIPTS, ids=[s[0][:40] for s in SCRIPTS])
def test_script_matches_redis(pair: Pair, script: str, keys: list[str], args: list[str]
                              ) -> None:
    same(pair, "EVAL", script, len(keys), *keys, *args)


def test_numkeys_errors_match(pair: Pair) -> None:
    same(pair, "EVAL", "return 1", -1)
    same(pair, "EVAL", "return 1", 3, "a")
    same(pair, "EVAL", "return 1", "x")
    same(pair, "EVAL")


def test_shebang_flags_match(pair: Pair) -> None:
    same(pair, "EVAL", "#!lua flags=no-writes\nreturn redis.call('set', 'a', 'b')", 0)
    same(pair, "EVAL", "#!lua flags=no-writes\nreturn redis.call('get', 'a')", 0)
    same(pair, "EVAL", "#!lua flags=bogus\nreturn 1", 0)
    same(pair, "EVAL", "#!python\nreturn 1", 0)
    same(pair, "EVAL", "#!lua\nerror('x')", 0)
    same(pair, "EVAL_RO", "#!lua\nreturn 1", 0)
    same(pair, "EVAL_RO", "#!lua flags=no-writes\nreturn 1", 0)


def test_read_only_variants_match(pair: Pair) -> None:
    same(pair, "EVAL_RO", "return redis.call('set', 'a', 'b')", 0)
    same(pair, "EVAL_RO", "return redis.call('get', 'a')", 0)
    sha = same(pair, "SCRIPT", "LOAD", "return redis.call('set', 'a', 'b')")
    same(pair, "EVALSHA_RO", sha, 0)
    same(pair, "EVALSHA", sha, 0)


def test_script_cache_commands_match(pair: Pair) -> None:
    same(pair, "SCRIPT", "FLUSH")
    sha = same(pair, "SCRIPT", "LOAD", "return 'cached'")
    same(pair, "EVALSHA", sha, 0)
    same(pair, "EVALSHA", sha.upper(), 0)
    same(pair, "SCRIPT", "EXISTS", sha, "0" * 40)
    same(pair, "EVALSHA", "f" * 40, 0)
    same(pair, "EVALSHA", "short", 0)
    same(pair, "SCRIPT", "LOAD", "return 1 +")
    same(pair, "SCRIPT", "FLUSH", "ASYNC")
    same(pair, "SCRIPT", "FLUSH", "bogus")
    same(pair, "SCRIPT", "EXISTS", sha)
    same(pair, "SCRIPT", "KILL")
    same(pair, "SCRIPT", "nosuch")


def test_many_keys_and_args_match(pair: Pair) -> None:
    args = [str(i) for i in range(20_000)]
    same(pair, "EVAL", "return {#KEYS, #ARGV, KEYS[1], ARGV[#ARGV]}", 100, *args)
    same(pair, "EVAL", "return {unpack(ARGV)}", 0, *args)


def test_scripts_work_in_the_callers_database(pair: Pair) -> None:
    """A script starts in its caller's database; a SELECT inside it does not move the caller."""
    same(pair, "SELECT", "1")
    same(pair, "EVAL", "return redis.call('SET', KEYS[1], 'one')", "1", "k")
    same(pair, "EXISTS", "k")
    same(pair, "FUNCTION", "LOAD", "REPLACE",
         "#!lua name=dbs\nredis.register_function('getk', function(k) "
         "return redis.call('GET', k[1]) end)")
    same(pair, "FCALL", "getk", "1", "k")
    same(pair, "EVAL", "redis.call('SELECT', 2) return redis.call('SET', KEYS[1], 'two')",
         "1", "k")
    same(pair, "GET", "k")
    same(pair, "SELECT", "2")
    same(pair, "GET", "k")
    same(pair, "SELECT", "0")
    same(pair, "EXISTS", "k")
    same(pair, "FUNCTION", "DELETE", "dbs")
    for db in ("1", "2"):
        same(pair, "SELECT", db)
        same(pair, "FLUSHDB")
    same(pair, "SELECT", "0")
