"""Lua scripting, engine side: the Lua 5.1 runtime, its sandbox, Redis' conversions and the
libraries Redis loads (cjson, bit, cmsgpack, struct). No sockets and no command table here:
`jobcached/commands/scripting.py` connects `redis.call` to the dispatcher.

    engine.py   ScriptEngine: script cache, running in slices (time limit, SCRIPT KILL)
    sandbox.py  the Lua prelude: read-only globals, redis.*, error handler, count hook
    convert.py  reply <-> Lua value conversions (RESP2 and RESP3 rules of Redis 7.0)
    libs.py     cjson, bit, cmsgpack, struct as Python bridges
    functions.py  Redis 7 function libraries: metadata, loading rules, the function index
    rdbdump.py  FUNCTION DUMP / RESTORE payloads (RDB primitives in cache/rdbformat.py)
"""
