"""`math.random` and `math.randomseed` as Redis' (src/script_lua.c over src/rand.c).

Lua's own `math.random` calls libc's `rand()`, whose sequence differs between systems; Redis
replaces both functions so that a seed gives the same numbers everywhere, and so do we: the
same calls give the same numbers as on redis-server.

Theory of operation: rand48 is the 48-bit linear congruential generator of drand48,
x = (0x5DEECE66D * x + 11) mod 2^48, starting from x = 0x1234ABCD330E; each draw returns the
state's top 31 bits (`redisLrand48`), and `redisSrand48(seed)` sets x = seed << 16 | 0x330E.
`redis_math_random` turns a draw into r = (draw % INT32_MAX) / INT32_MAX in [0, 1), then
answers r, floor(r * u) + 1 or floor(r * (u - l + 1)) + l, with its bounds read by
`luaL_checkint`: a number (or a numeric string), cast to a C int through a 64-bit integer.
The state belongs to the server, as in Redis 7.0: scripts are not reseeded one by one, only
`math.randomseed` (or a restart) resets it.

The functions are Python bridges, C functions to Lua, as Redis' are: a tail call
`return math.random(0)` keeps the script's frame, so an error names the script's line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from jobcached.scripting.libs import LuaCallError

MULTIPLIER = 0x5DEECE66D
INCREMENT = 0xB
INITIAL_STATE = 0x1234ABCD330E
STATE_MASK = (1 << 48) - 1
#: REDIS_LRAND48_MAX
INT32_MAX = 2**31 - 1

#: What Lua 5.1's `lua_tonumber` accepts in a string (`luaO_str2d`: strtod, or a hex
#: integer), surrounded by spaces.
_DECIMAL = re.compile(rb"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*\Z")
_HEX = re.compile(rb"\s*0[xX]([0-9a-fA-F]+)\s*\Z")
_SPECIAL = re.compile(rb"\s*[-+]?(inf|infinity|nan)\s*\Z", re.IGNORECASE)


class Rand48:
    """The generator and the two Lua functions over it. `lua_type` names a Lua value's
    type (lupa's), for argument errors."""

    def __init__(self, lua_type: Callable[[Any], str | None]) -> None:
        self.state = INITIAL_STATE
        self.lua_type = lua_type

    def lrand48(self) -> int:
        self.state = (MULTIPLIER * self.state + INCREMENT) & STATE_MASK
        return self.state >> 17

    def srand48(self, seed: int) -> None:
        self.state = ((seed & 0xFFFFFFFF) << 16) | 0x330E

    def random(self, *args: Any) -> float:
        """math.random([m [, n]]): the draw happens before the arguments are checked."""
        r = (self.lrand48() % INT32_MAX) / INT32_MAX
        if not args:
            return r
        if len(args) == 1:
            upper = self._checkint(args, 1, "random")
            if upper < 1:
                raise LuaCallError("bad argument #1 to 'random' (interval is empty)")
            return math.floor(r * upper) + 1
        if len(args) == 2:
            lower = self._checkint(args, 1, "random")
            upper = self._checkint(args, 2, "random")
            if lower > upper:
                raise LuaCallError("bad argument #2 to 'random' (interval is empty)")
            return math.floor(r * _int32(upper - lower + 1)) + lower
        raise LuaCallError("wrong number of arguments")

    def randomseed(self, *args: Any) -> None:
        self.srand48(self._checkint(args, 1, "randomseed"))

    def _checkint(self, args: tuple[Any, ...], n: int, name: str) -> int:
        """luaL_checkint: the argument as a C int, or Lua's error for it."""
        value = args[n - 1] if n <= len(args) else None
        number = _to_number(value)
        if number is None:
            got = "no value" if n > len(args) else self._type_name(value)
            raise LuaCallError(f"bad argument #{n} to '{name}' (number expected, got {got})")
        return _int32(number)

    def _type_name(self, value: Any) -> str:
        if value is None:
            return "nil"
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, bytes):
            return "string"
        return self.lua_type(value) or "userdata"  # a Python bridge is userdata to Lua


def _to_number(value: Any) -> float | None:
    """lua_tonumber: a number, or a string that reads as one; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if not isinstance(value, bytes):
        return None
    hexadecimal = _HEX.match(value)
    if hexadecimal:
        return float(int(hexadecimal.group(1), 16))
    if _DECIMAL.match(value) or _SPECIAL.match(value):
        return float(value)
    return None


def _int32(number: float) -> int:
    """(int)(lua_Integer)number: truncated toward zero to 64 bits (x86 gives INT64_MIN when it
    does not fit), then the low 32 bits, signed."""
    if number != number or not -(2.0**63) <= number < 2.0**63:
        return 0
    low = int(number) & 0xFFFFFFFF
    return low - 2**32 if low >= 2**31 else low
