"""Redis 7.0's conversions between command replies and Lua values, both ways.

Reply → Lua (what `redis.call` returns), by the protocol the script chose with `redis.setresp`:

    RESP2: integer → number, bulk → string, null bulk / null array → false, array → table,
           status → {ok=...}, error → {err=...}; maps, sets, doubles, booleans arrive as they
           would on a RESP2 connection (flat array, array, bulk string, integer 1/0)
    RESP3: null → nil, map → {map={k=v}}, set → {set={member=true}}, double → {double=n},
           boolean → true/false, verbatim → {verbatim_string={format=..., string=...}}

Lua → reply (what the script returns), by the caller's protocol (Redis' luaReplyToRedisReply):

    string → bulk, number → integer (truncated toward zero; out of int64 range → INT64_MIN, as
    the C cast gives on x86), true → 1 (RESP3: #t), false / nil → null (RESP3 false: #f),
    {err=...} → error, {ok=...} → status, {double=n} → double, {map=t} → map, {set=t} → set,
    {big_number=s} → bulk string, {verbatim_string=...} → verbatim, any other table → array
    of its elements from index 1 up to the first nil.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hiredis

from jobcached.net.replies import NULL_ARRAY, Deferred, Encoded, ErrorReply, Simple, Verbatim
from jobcached.net.resp import format_double

LuaTable = Any  # lupa's _LuaTable
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def to_integer(number: float) -> int:
    """A Lua number as the integer reply Redis sends: `(long long)` of the double."""
    if number != number or not INT64_MIN <= number <= INT64_MAX:
        return INT64_MIN
    return int(number)


def single_line(text: bytes | str) -> str:
    """Status and error texts cannot hold CR or LF: Redis replaces them with spaces."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    return text.replace("\r", " ").replace("\n", " ")


class Converter:
    """Both directions for one Lua runtime (`table` builds a Lua table from a dict)."""

    def __init__(self, table: Callable[[dict[Any, Any]], LuaTable],
                 lua_type: Callable[[Any], str | None]) -> None:
        self.table = table
        self.lua_type = lua_type

    # ------------------------------------------------------------------ reply → Lua

    def to_lua(self, reply: Any, resp3: bool) -> Any:
        kind = type(reply)
        if kind is bytes or kind is int:
            return reply
        if reply is None or reply is NULL_ARRAY:
            return None if resp3 else False
        if kind is list or kind is tuple:
            return self.table({i: self.to_lua(v, resp3) for i, v in enumerate(reply, 1)})
        if kind is Simple:
            return self.table({b"ok": reply.text})
        if kind is ErrorReply:
            return self.error_table(reply.text)
        if kind is bool:
            return reply if resp3 else int(reply)
        if kind is str:
            return reply.encode()
        if kind is float:
            return self.table({b"double": reply}) if resp3 else format_double(reply)
        if kind is dict:
            if resp3:
                return self.table({b"map": self.table({self.to_lua(k, True): self.to_lua(v, True)
                                                       for k, v in reply.items()})})
            flat = [x for pair in reply.items() for x in pair]
            return self.to_lua(flat, False)
        if kind is set or kind is frozenset:
            if resp3:
                return self.table({b"set": self.table({self.to_lua(m, True): True
                                                       for m in reply})})
            return self.to_lua(list(reply), False)
        if kind is Verbatim:
            if resp3:
                return self.table({b"verbatim_string": self.table({b"format": reply.fmt,
                                                                   b"string": reply.text})})
            return reply.text
        if kind is Deferred and reply.done:
            return self.to_lua(reply.value, resp3)
        if kind is Encoded:  # pre-encoded arrays and maps of bulks and integers (JOB.FETCH)
            reader = hiredis.Reader()
            reader.feed(reply.data)
            return self.to_lua(reader.gets(), resp3)
        raise TypeError(f"a script cannot receive a {kind.__name__} reply")

    def error_table(self, text: str) -> LuaTable:
        return self.table({b"err": text.encode("utf-8", "surrogateescape")})

    # ------------------------------------------------------------------ Lua → reply

    def from_lua(self, value: Any, resp3: bool) -> Any:
        """The reply for a script's result; `resp3` is the script's own protocol (setresp),
        which decides how booleans convert: RESP2 true → 1, false → null; RESP3 booleans."""
        kind = type(value)
        if kind is bytes:
            return value
        if kind is int:
            return to_integer(value)
        if kind is float:
            return to_integer(value)
        if kind is bool:
            return value if resp3 else (1 if value else None)
        if value is None or self.lua_type(value) != "table":
            return None
        err = value[b"err"]
        if type(err) is bytes:
            return ErrorReply(single_line(err))
        ok = value[b"ok"]
        if type(ok) is bytes:
            return Simple(single_line(ok).encode("utf-8", "surrogateescape"))
        double = value[b"double"]
        if type(double) in (int, float):
            return float(double)
        big = value[b"big_number"]
        if type(big) is bytes:
            return big
        mapping = value[b"map"]
        if self.lua_type(mapping) == "table":
            return {self.from_lua(k, resp3): self.from_lua(v, resp3)
                    for k, v in mapping.items()}
        members = value[b"set"]
        if self.lua_type(members) == "table":
            return {self.from_lua(k, resp3) for k in members}
        verbatim = value[b"verbatim_string"]
        if self.lua_type(verbatim) == "table":
            return Verbatim(verbatim[b"string"] or b"", verbatim[b"format"] or b"txt")
        items = []
        index = 1
        while True:
            item = value[index]
            if item is None:
                break
            items.append(self.from_lua(item, resp3))
            index += 1
        return items
