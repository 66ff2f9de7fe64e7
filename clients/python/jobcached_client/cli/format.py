"""Reply formatting as redis-cli does it, plus JSON; and redis-cli's way of splitting a line.

- `tty()` is redis-cli's `cliFormatReplyTTY`: `(integer) 1`, `(nil)`, quoted strings with
  C escapes, numbered aggregates (`1)` arrays, `1#` maps with `=>`, `1~` sets) whose nested
  items are indented by the width of their parent's index.
- `raw()` is `cliFormatReplyRaw`, used when stdout is not a terminal: bare values, one per line.
- `to_json()` makes a reply plain JSON data for `--json`; `parse_info()` makes INFO's text
  sections an object, since one string of `field:value` lines is no use to a JSON reader.
- `split_args()` is `sdssplitargs`: quotes, `\\n`-style and `\\xHH` escapes.
"""

from __future__ import annotations

import re
from typing import Any

from jobcached_client.cli.resp import AGGREGATES, Kind, Reply

#: Commands whose replies redis-cli prints as they are even on a terminal (their text is
#: meant for people): INFO, CLIENT LIST, ... (redis-cli's `output_raw` list).
RAW_COMMANDS = {("info",), ("lolwut",), ("client", "list"), ("client", "info"),
                ("memory", "doctor"), ("memory", "malloc-stats"), ("cluster", "info"),
                ("cluster", "nodes"), ("latency", "doctor"), ("latency", "graph")}

_ESCAPES = {0x5C: "\\\\", 0x22: '\\"', 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x07: "\\a",
            0x08: "\\b"}


def quoted(data: bytes) -> str:
    """redis-cli's `sdscatrepr`: printable ASCII as is, the rest escaped."""
    out = ['"']
    for byte in data:
        escape = _ESCAPES.get(byte)
        if escape is not None:
            out.append(escape)
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    out.append('"')
    return "".join(out)


def _str(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


_EMPTY = {Kind.ARRAY: "(empty array)", Kind.MAP: "(empty hash)", Kind.SET: "(empty set)",
          Kind.PUSH: "(empty push)"}
_SEPARATOR = {Kind.SET: "~", Kind.MAP: "#"}


def tty(reply: Reply, prefix: str = "", indent_first: bool = False) -> str:
    """A reply as redis-cli shows it on a terminal (ends with a newline).

    Items of an aggregate after the first are indented by `prefix`; the first continues the
    parent's line, except in a map's value of several lines (`indent_first`), which redis-cli
    starts on a line of its own."""
    kind = reply.kind
    if kind is Kind.ERROR:
        return f"(error) {_str(reply.value)}\n"
    if kind is Kind.STATUS:
        return _str(reply.value) + "\n"
    if kind is Kind.INTEGER:
        return f"(integer) {reply.value}\n"
    if kind is Kind.DOUBLE:
        return f"(double) {_str(reply.value)}\n"
    if kind is Kind.BIGNUM:
        return f"(big number) {_str(reply.value)}\n"
    if kind is Kind.BULK:
        return quoted(reply.value) + "\n"
    if kind is Kind.VERBATIM:
        return _str(reply.value) + "\n"
    if kind is Kind.NIL:
        return "(nil)\n"
    if kind is Kind.BOOL:
        return "(true)\n" if reply.value else "(false)\n"
    items: list[Reply] = reply.value
    if not items:
        return _EMPTY[kind] + "\n"
    count = len(items) // 2 if kind is Kind.MAP else len(items)
    width = len(str(count))
    # Nested items line up under their parent's first character after "N) ".
    child_prefix = prefix + " " * (width + 2)
    separator = _SEPARATOR.get(kind, ")")
    out = []
    step = 2 if kind is Kind.MAP else 1
    for index in range(0, len(items), step):
        number = index // step + 1
        # The first item's index follows whatever the parent already printed on the line.
        out.append(f"{prefix if index or indent_first else ''}{number:>{width}}{separator} ")
        out.append(tty(items[index], child_prefix))
        if kind is Kind.MAP:
            out[-1] = out[-1][:-1] + " => "
            value = tty(items[index + 1], child_prefix)
            if "\n" in value[:-1]:  # a value of several lines starts on a line of its own
                value = "\n" + tty(items[index + 1], child_prefix, indent_first=True)
            out.append(value)
    return "".join(out)


def raw(reply: Reply) -> str:
    """A reply as redis-cli prints it when stdout is not a terminal (no final newline)."""
    kind = reply.kind
    if kind is Kind.NIL:
        return ""
    if kind is Kind.ERROR:
        return _str(reply.value) + "\n"
    if kind is Kind.INTEGER:
        return str(reply.value)
    if kind is Kind.BOOL:
        return "(true)" if reply.value else "(false)"
    if kind in AGGREGATES:
        items: list[Reply] = reply.value
        if kind is Kind.MAP:
            return "\n".join(f"{raw(k)} {raw(v)}" for k, v in reply.pairs())
        return "\n".join(raw(item) for item in items)
    return _str(reply.value)


def is_raw_command(args: list[bytes]) -> bool:
    words = tuple(a.decode("utf-8", "replace").lower() for a in args[:2])
    return words[:1] in RAW_COMMANDS or words in RAW_COMMANDS


def render(reply: Reply, args: list[bytes], mode: str) -> str:
    """What redis-cli writes for the reply to `args`: mode is "tty", "raw" or "json"."""
    if mode == "json":
        import json

        is_info = bool(args) and args[0].lower() == b"info"
        data = parse_info(reply.text()) if is_info and reply.kind in (Kind.BULK, Kind.VERBATIM) \
            else to_json(reply)
        return json.dumps(data, ensure_ascii=False) + "\n"
    if is_raw_command(args):
        return raw(reply)
    if mode == "tty":
        return tty(reply)
    return raw(reply) + "\n"


def to_json(reply: Reply) -> Any:
    """A reply as JSON data: maps become objects, errors {"error": "..."}, nil null."""
    kind = reply.kind
    if kind is Kind.ERROR:
        return {"error": _text(reply.value)}
    if kind in (Kind.INTEGER, Kind.BOOL, Kind.NIL):
        return reply.value
    if kind is Kind.DOUBLE:
        value = float(reply.value)
        return value if value - value == 0 else _text(reply.value)  # inf and nan as text
    if kind is Kind.BIGNUM:
        return int(reply.value)
    if kind is Kind.MAP:
        return {_key(k): to_json(v) for k, v in reply.pairs()}
    if kind in AGGREGATES:
        return [to_json(item) for item in reply.value]
    return _text(reply.value)


_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?\d+\.\d+")


def info_value(text: str) -> Any:
    """One INFO value as JSON: numbers as numbers, `k=v,k=v` lists (keyspace, per-queue
    counts, error stats) as objects, anything else as the text it is."""
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    parts = text.split(",")
    if text and all("=" in part for part in parts):
        return {k: info_value(v) for k, _, v in (part.partition("=") for part in parts)}
    return text


def parse_info(text: str) -> dict[str, dict[str, Any]]:
    """INFO's reply as {section: {field: value}}, sections named as INFO prints them."""
    sections: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            current = sections.setdefault(line.lstrip("#").strip(), {})
        elif ":" in line:
            field, _, value = line.partition(":")
            if current is None:  # fields before any header: keep them, unnamed
                current = sections.setdefault("", {})
            current[field] = info_value(value)
    return sections


def _text(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")


def _key(reply: Reply) -> str:
    value = to_json(reply)
    return value if isinstance(value, str) else str(value)


class SplitError(ValueError):
    """Unbalanced quotes, or a closing quote not followed by a space."""


_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a"}
_HEX = "0123456789abcdefABCDEF"


def split_args(line: str) -> list[bytes]:
    """Split a command line as redis-cli does (`sdssplitargs`)."""
    args: list[bytes] = []
    pos, end = 0, len(line)
    while True:
        while pos < end and line[pos].isspace():
            pos += 1
        if pos >= end:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            if in_double:
                if pos >= end:
                    raise SplitError("unbalanced quotes")
                char = line[pos]
                if (char == "\\" and pos + 3 < end and line[pos + 1] == "x"
                        and line[pos + 2] in _HEX and line[pos + 3] in _HEX):
                    current.append(int(line[pos + 2:pos + 4], 16))
                    pos += 3
                elif char == "\\" and pos + 1 < end:
                    pos += 1
                    current += _UNESCAPE.get(line[pos], line[pos]).encode()
                elif char == '"':
                    if pos + 1 < end and not line[pos + 1].isspace():
                        raise SplitError("closing quote must be followed by a space")
                    pos += 1
                    break
                else:
                    current += char.encode()
            elif in_single:
                if pos >= end:
                    raise SplitError("unbalanced quotes")
                char = line[pos]
                if char == "\\" and pos + 1 < end and line[pos + 1] == "'":
                    pos += 1
                    current += b"'"
                elif char == "'":
                    if pos + 1 < end and not line[pos + 1].isspace():
                        raise SplitError("closing quote must be followed by a space")
                    pos += 1
                    break
                else:
                    current += char.encode()
            else:
                if pos >= end or line[pos].isspace():
                    break
                char = line[pos]
                if char == '"':
                    in_double = True
                elif char == "'":
                    in_single = True
                else:
                    current += char.encode()
            pos += 1
        args.append(bytes(current))
