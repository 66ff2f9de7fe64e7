"""The C libraries Redis links into its Lua, as Python bridges: cjson, bit, cmsgpack, struct.

lupa's Lua has none of them, and real clients need them (limits and BullMQ use cjson, rate
limiters use bit, Sidekiq-style queues use cmsgpack). Each bridge reproduces the library's
observable behaviour on the cases Redis' own tests check: cjson's number format (`%.14g`), its
array detection and escaping of `/`; LuaBitOp's 32-bit signed results and rounding; cmsgpack's
integer/float split. Bridges are plain Python callables in the library tables (a C function
to Lua, so a tail call `return cjson.decode(s)` keeps the script's frame and errors name its
line). They fail by raising `LuaCallError`; the sandbox's error handler and its `pcall` turn
it into the Lua error value Redis' C function would have raised.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from typing import Any

import msgpack

#: cjson refuses to encode deeper tables (its default `encode_max_depth`).
CJSON_MAX_DEPTH = 1000
#: cjson calls an integer-keyed table "excessively sparse" past this ratio of holes...
CJSON_SPARSE_RATIO = 2
#: ...once its largest index is above this (cjson's `encode_sparse_safe`).
CJSON_SPARSE_SAFE = 10
#: cmsgpack packs nested tables this deep and nil beyond (LUACMSGPACK_MAX_NESTING).
MSGPACK_MAX_NESTING = 16

LuaTable = Any  # lupa's _LuaTable: untyped


class LuaCallError(Exception):
    """A bridge function failed: raised into Lua as an error at the script's line.

    `table` errors are Redis error replies (redis.call's), raised as `{err=text}`; the others
    are library errors, raised as the message prefixed with the script's position, as
    `luaL_error` does for the C libraries.
    """

    def __init__(self, text: str, table: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.table = table


def format_number(value: float) -> str:
    """How Lua 5.1 prints a number (`LUAI_NUMFFORMAT`, "%.14g"), which cjson and Redis use."""
    return f"{value:.14g}"


class Libraries:
    """The bridge functions for one Lua runtime; `table` builds a Lua table from a dict."""

    def __init__(self, table: Callable[[dict[Any, Any]], LuaTable], lua_type: Callable[[Any],
                 str | None], null: Any) -> None:
        self.table = table
        self.lua_type = lua_type
        self.null = null

    def functions(self) -> dict[str, Callable[..., Any]]:
        """Name -> bridge, as the prelude reads them from its `bridge` table."""
        names = ["cjson_encode", "cjson_decode", "msgpack_pack", "msgpack_unpack",
                 "struct_pack", "struct_unpack", "struct_size"]
        found: dict[str, Callable[..., Any]] = {name: getattr(self, name) for name in names}
        for op in ("tobit", "tohex", "bnot", "band", "bor", "bxor", "lshift", "rshift",
                   "arshift", "rol", "ror", "bswap"):
            found["bit_" + op] = getattr(self, "bit_" + op)
        return found

    # ------------------------------------------------------------------ cjson

    def cjson_encode(self, value: Any = None) -> bytes:
        out: list[str] = []
        try:
            self._encode(value, out, 0)
        except ValueError as exc:
            raise LuaCallError(str(exc)) from None
        return "".join(out).encode("utf-8", "surrogateescape")

    def _encode(self, value: Any, out: list[str], depth: int) -> None:
        if value is None or value is self.null:
            out.append("null")
        elif value is True or value is False:
            out.append("true" if value else "false")
        elif isinstance(value, (int, float)):
            if math.isinf(value) or math.isnan(value):
                raise ValueError("Cannot serialise number: must not be NaN or Inf")
            out.append(format_number(value))
        elif isinstance(value, bytes):
            out.append(_json_string(value))
        elif self.lua_type(value) == "table":
            if depth >= CJSON_MAX_DEPTH:
                raise ValueError(f"Cannot serialise, excessive nesting ({depth + 1})")
            self._encode_table(value, out, depth + 1)
        else:
            raise ValueError(f"Cannot serialise {self.lua_type(value) or 'userdata'}: "
                             "type not supported")

    def _encode_table(self, table: LuaTable, out: list[str], depth: int) -> None:
        items = list(table.items())
        length = _array_length(items)
        if length is not None and length > 0:
            values = dict(items)
            out.append("[")
            for index in range(1, length + 1):
                if index > 1:
                    out.append(",")
                self._encode(values.get(index), out, depth)
            out.append("]")
            return
        out.append("{")
        for n, (key, item) in enumerate(items):
            if n:
                out.append(",")
            if isinstance(key, bytes):
                out.append(_json_string(key))
            elif isinstance(key, (int, float)):
                out.append('"' + format_number(key) + '"')
            else:
                raise ValueError("Cannot serialise table: table key must be a number or string")
            out.append(":")
            self._encode(item, out, depth)
        out.append("}")

    def cjson_decode(self, text: Any = None) -> Any:
        if not isinstance(text, bytes):
            raise LuaCallError("bad argument #1 to 'decode' (string expected)")
        try:
            decoded = json.loads(text.decode("utf-8", "surrogateescape"))
        except json.JSONDecodeError as exc:
            raise LuaCallError("Expected value but found invalid token at character "
                               f"{exc.pos + 1}") from None
        return self._to_lua(decoded)

    def _to_lua(self, value: Any) -> Any:
        if value is None:
            return self.null
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        if isinstance(value, list):
            return self.table({i: self._to_lua(v) for i, v in enumerate(value, 1)})
        if isinstance(value, dict):
            return self.table({k.encode(): self._to_lua(v) for k, v in value.items()})
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    # ------------------------------------------------------------------ bit (LuaBitOp)

    def bit_tobit(self, x: Any = None) -> int:
        return _unary(x, "tobit", lambda v: v)

    def bit_bnot(self, x: Any = None) -> int:
        return _unary(x, "bnot", lambda v: ~v)

    def bit_bswap(self, x: Any = None) -> int:
        return _unary(x, "bswap", lambda v: int.from_bytes((v & 0xFFFFFFFF).to_bytes(4, "big"),
                                                           "little"))

    def bit_tohex(self, x: Any = None, n: Any = 8) -> bytes:
        if not isinstance(x, (int, float)) or not isinstance(n, (int, float)):
            raise LuaCallError("bad argument #1 to 'tohex' (number expected)")
        value, digits = _tobit(x), _tobit(n)
        upper = digits < 0
        digits = min(abs(digits), 8)
        text = f"{value & 0xFFFFFFFF:0{digits}x}"
        text = text[-digits:] if digits else ""
        return (text.upper() if upper else text).encode()

    def bit_band(self, *args: Any) -> int:
        return _fold(args, "band", lambda a, b: a & b)

    def bit_bor(self, *args: Any) -> int:
        return _fold(args, "bor", lambda a, b: a | b)

    def bit_bxor(self, *args: Any) -> int:
        return _fold(args, "bxor", lambda a, b: a ^ b)

    def bit_lshift(self, x: Any = None, n: Any = None) -> int:
        return _shift(x, n, "lshift", lambda v, s: v << s)

    def bit_rshift(self, x: Any = None, n: Any = None) -> int:
        return _shift(x, n, "rshift", lambda v, s: (v & 0xFFFFFFFF) >> s)

    def bit_arshift(self, x: Any = None, n: Any = None) -> int:
        return _shift(x, n, "arshift", lambda v, s: v >> s)

    def bit_rol(self, x: Any = None, n: Any = None) -> int:
        return _shift(x, n, "rol", lambda v, s: ((v & 0xFFFFFFFF) << s) | ((v & 0xFFFFFFFF)
                                                                         >> (32 - s)))

    def bit_ror(self, x: Any = None, n: Any = None) -> int:
        return _shift(x, n, "ror", lambda v, s: ((v & 0xFFFFFFFF) >> s) | ((v & 0xFFFFFFFF)
                                                                         << (32 - s)))

    # ------------------------------------------------------------------ cmsgpack

    def msgpack_pack(self, *args: Any) -> bytes:
        if not args:
            raise LuaCallError("MessagePack pack needs input.")
        return b"".join(msgpack.packb(self._from_lua(a, 0), use_bin_type=False) for a in args)

    def _from_lua(self, value: Any, depth: int) -> Any:
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
            return int(value)
        if self.lua_type(value) == "table":
            if depth >= MSGPACK_MAX_NESTING:
                return None
            items = list(value.items())
            length = _array_length(items, sparse_ok=False)
            if length is not None:
                values = dict(items)
                return [self._from_lua(values[i], depth + 1) for i in range(1, length + 1)]
            return {self._from_lua(k, depth + 1): self._from_lua(v, depth + 1)
                    for k, v in items}
        return value if isinstance(value, (bytes, int, float, bool)) or value is None else None

    def msgpack_unpack(self, data: Any = None) -> tuple[Any, ...]:
        if not isinstance(data, bytes):
            raise LuaCallError("bad argument #1 to 'unpack' (string expected)")
        unpacker = msgpack.Unpacker(raw=True, strict_map_key=False)
        unpacker.feed(data)
        try:
            values = [self._msgpack_to_lua(v) for v in unpacker]
        except (msgpack.OutOfData, ValueError):
            raise LuaCallError("Missing bytes in input.") from None
        return tuple(values)

    def _msgpack_to_lua(self, value: Any) -> Any:
        if isinstance(value, list):
            return self.table({i: self._msgpack_to_lua(v) for i, v in enumerate(value, 1)})
        if isinstance(value, dict):
            return self.table({self._msgpack_to_lua(k): self._msgpack_to_lua(v)
                               for k, v in value.items()})
        return value

    # ------------------------------------------------------------------ struct

    def struct_pack(self, fmt: Any = None, *args: Any) -> bytes:
        if not isinstance(fmt, bytes):
            raise LuaCallError("bad argument #1 to 'pack' (string expected)")
        try:
            out, values = [], list(args)
            for code, size, endian in _struct_items(fmt):
                if code == "x":
                    out.append(b"\0" * size)
                    continue
                if not values:
                    raise LuaCallError("bad argument to 'pack' (no value)")
                value = values.pop(0)
                if code == "s":
                    out.append(bytes(value) + b"\0")
                elif code == "c":
                    data = bytes(value) if isinstance(value, bytes) else b""
                    out.append(data if size == 0 else data[:size].ljust(size, b"\0"))
                elif code in "fd":
                    out.append(struct.pack(endian + code, float(value)))
                else:
                    out.append(int(value).to_bytes(size, "big" if endian == ">" else "little",
                                                   signed=code.islower()))
        except (TypeError, ValueError, OverflowError, struct.error) as exc:
            raise LuaCallError(f"bad argument to 'pack' ({exc})") from None
        return b"".join(out)

    def struct_unpack(self, fmt: Any = None, data: Any = None, init: Any = 1
                      ) -> tuple[Any, ...]:
        if not isinstance(fmt, bytes) or not isinstance(data, bytes):
            raise LuaCallError("bad argument to 'unpack' (string expected)")
        pos = int(init) - 1
        values: list[Any] = []
        try:
            for code, size, endian in _struct_items(fmt):
                if code == "s":
                    end = data.index(b"\0", pos)
                    values.append(data[pos:end])
                    pos = end + 1
                    continue
                if code == "c" and size == 0:
                    size = int(values.pop()) if values else 0
                if pos + size > len(data):
                    raise LuaCallError("bad argument #2 to 'unpack' (data string too short)")
                chunk = data[pos:pos + size]
                pos += size
                if code == "c":
                    values.append(chunk)
                elif code in "fd":
                    values.append(struct.unpack(endian + code, chunk)[0])
                elif code != "x":
                    values.append(int.from_bytes(chunk, "big" if endian == ">" else "little",
                                                 signed=code.islower()))
        except ValueError as exc:
            raise LuaCallError(f"bad argument to 'unpack' ({exc})") from None
        values.append(pos + 1)
        return tuple(values)

    def struct_size(self, fmt: Any = None) -> int:
        if not isinstance(fmt, bytes):
            raise LuaCallError("bad argument #1 to 'size' (string expected)")
        total = 0
        for code, size, _ in _struct_items(fmt):
            if code == "s" or (code == "c" and size == 0):
                raise LuaCallError("options 'c0' - 's' have undefined sizes")
            total += size
        return total


#: struct.c's native sizes on a 64-bit build: b h i l T and their unsigned twins.
_STRUCT_SIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "T": 8,
                 "f": 4, "d": 8, "x": 1, "s": 0, "c": 1}


def _struct_items(fmt: bytes) -> list[tuple[str, int, str]]:
    """(code, size, endianness) for each item of a struct.c format (no alignment: `!` is
    accepted and ignored, as every format real scripts use is packed)."""
    text, items, endian, i = fmt.decode("latin-1"), [], "<", 0
    while i < len(text):
        ch = text[i]
        i += 1
        digits = ""
        while i < len(text) and text[i].isdigit():
            digits += text[i]
            i += 1
        if ch in "<>=":
            endian = ">" if ch == ">" else "<"
        elif ch == "!" or ch == " ":
            continue
        elif ch in _STRUCT_SIZES:
            size = _STRUCT_SIZES[ch]
            if digits and ch in "iIc":
                size = int(digits)
            if ch == "T":
                ch = "L"
            items.append((ch, size, endian))
        else:
            raise ValueError(f"invalid format option '{ch}'")
    return items


def _array_length(items: list[tuple[Any, Any]], sparse_ok: bool = True) -> int | None:
    """The array length cjson/cmsgpack see in a table, or None if it is not an array."""
    largest = 0
    for key, _ in items:
        if not isinstance(key, int) or isinstance(key, bool) or key < 1:
            if not (isinstance(key, float) and key.is_integer() and key >= 1):
                return None
            key = int(key)
        largest = max(largest, key)
    if not sparse_ok and largest != len(items):
        return None
    if largest > CJSON_SPARSE_SAFE and largest > len(items) * CJSON_SPARSE_RATIO:
        raise ValueError("Cannot serialise table: excessively sparse array")
    return largest


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                 "\r": "\\r", "\t": "\\t"}


def _json_string(raw: bytes) -> str:
    text = raw.decode("utf-8", "surrogateescape")
    out = ['"']
    for ch in text:
        escaped = _JSON_ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _tobit(value: float) -> int:
    """LuaBitOp's normalisation: round half to even, keep the low 32 bits, signed."""
    number = round(value) & 0xFFFFFFFF
    return number - (1 << 32) if number & 0x80000000 else number


def _unary(x: Any, name: str, op: Callable[[int], int]) -> int:
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        raise LuaCallError(f"bad argument #1 to '{name}' (number expected, got "
                           f"{_lua_type_name(x)})")
    return _tobit(op(_tobit(x)))


def _fold(args: tuple[Any, ...], name: str, op: Callable[[int, int], int]) -> int:
    if not args:
        raise LuaCallError(f"bad argument #1 to '{name}' (number expected, got no value)")
    result = None
    for n, arg in enumerate(args, 1):
        if not isinstance(arg, (int, float)) or isinstance(arg, bool):
            raise LuaCallError(f"bad argument #{n} to '{name}' (number expected, got "
                               f"{_lua_type_name(arg)})")
        result = _tobit(arg) if result is None else op(result, _tobit(arg))
    return _tobit(result or 0)


def _shift(x: Any, n: Any, name: str, op: Callable[[int, int], int]) -> int:
    for index, arg in enumerate((x, n), 1):
        if not isinstance(arg, (int, float)) or isinstance(arg, bool):
            raise LuaCallError(f"bad argument #{index} to '{name}' (number expected, got "
                               f"{_lua_type_name(arg)})")
    return _tobit(op(_tobit(x), _tobit(n) & 31))


def _lua_type_name(value: Any) -> str:
    if value is None:
        return "no value"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, bytes):
        return "string"
    return "table"
