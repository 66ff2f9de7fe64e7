"""Generate jobcached's copies of Redis 7.0's own tables from a real redis-server.

    python -m tools.redis_tables [path/to/redis-server]

Why: COMMAND INFO / COMMAND DOCS (ACL categories, tips, key specifications, documentation) and
the CONFIG parameter set are large, exact and versioned; copying them by hand would drift.
This script starts the given redis-server (7.0) on a free port with no persistence, asks it
and writes two data files that the server reads at start:

- `jobcached/commands/redis_command_table.json`: per command and subcommand (`client|id`), the
  COMMAND INFO entry and the COMMAND DOCS entry, exactly as the RESP3 wire said them. Wire
  types are kept: a set is `{"$set": [...]}`, a status reply `{"$status": "..."}`, a map a
  JSON object, an array a list, a bulk string a string.
- `jobcached/settings/redis_config_table.json`: per CONFIG parameter (aliases included), its default
  and its type as Redis validates it, found by probing CONFIG SET with bad values and reading
  the error texts (`argument must be 'yes' or 'no'`, `... must be between 0 and 65535
  inclusive`, `can't set immutable config`, ...). A value that was accepted is set back.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COMMAND_TABLE = ROOT / "jobcached" / "commands" / "redis_command_table.json"
CONFIG_TABLE = ROOT / "jobcached" / "settings" / "redis_config_table.json"

#: A value no parameter type accepts except plain strings.
BAD_VALUE = "\x01not-a-value"
EXTREMES = ("-9223372036854775807", "9223372036854775807")
_RANGE_RE = re.compile(r"argument must be between (-?\d+) and (-?\d+) inclusive")
_ONE_OF = "argument(s) must be one of the following: "


class RespError(Exception):
    """An error reply."""


class Conn:
    """A RESP3 connection that keeps the wire types of replies (see the module docstring)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")
        self.call("HELLO", "3")

    def call(self, *argv: str) -> Any:
        out = [f"*{len(argv)}\r\n".encode()]
        for arg in argv:
            data = arg.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self) -> Any:
        line = self.file.readline()[:-2]
        kind, rest = chr(line[0]), line[1:].decode()
        if kind == "+":
            return {"$status": rest}
        if kind in "-!":
            if kind == "!":
                rest = self.file.read(int(rest) + 2)[:-2].decode()
            raise RespError(rest)
        if kind == ":":
            return int(rest)
        if kind in "$=":
            return self.file.read(int(rest) + 2)[:-2].decode()
        if kind == "_":
            return None
        if kind in "*~":
            items = [self._read() for _ in range(int(rest))]
            return items if kind == "*" else {"$set": items}
        if kind == "%":
            pairs = [(self._read(), self._read()) for _ in range(int(rest))]
            return {str(k): v for k, v in pairs}
        raise ValueError(f"unexpected reply type {kind!r}")


def start_redis(binary: str, data_dir: str) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # no other option: CONFIG GET * must show Redis' built-in defaults
    proc = subprocess.Popen([binary, "--port", str(port)], cwd=data_dir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def command_table(conn: Conn) -> dict[str, Any]:
    """{"count": COMMAND COUNT, "commands": {fullname: {"info": ..., "docs": ...}}}."""
    commands: dict[str, Any] = {}
    docs = conn.call("COMMAND", "DOCS")
    for entry in conn.call("COMMAND", "INFO"):
        _add_command(commands, entry, docs)
    return {"version": conn.call("INFO", "server").split("redis_version:")[1].split()[0],
            "count": conn.call("COMMAND", "COUNT"), "commands": dict(sorted(commands.items()))}


def _add_command(commands: dict[str, Any], entry: list[Any], docs: dict[str, Any]) -> None:
    name = entry[0]
    parent, _, child = name.partition("|")
    doc = dict(docs[name] if not child else docs[parent]["subcommands"][name])
    doc.pop("subcommands", None)
    commands[name] = {"info": entry[:9], "docs": doc}
    subs = entry[9]
    for sub in subs["$set"] if isinstance(subs, dict) else subs:
        _add_command(commands, sub, docs)


def config_table(conn: Conn) -> dict[str, Any]:
    """Per parameter: default, and how CONFIG SET validates it."""
    defaults = conn.call("CONFIG", "GET", "*")
    table: dict[str, Any] = {}
    for name in sorted(defaults):
        default = defaults[name]
        entry: dict[str, Any] = {"default": default, **_probe(conn, name, default)}
        table[name] = entry
    return table


def _try_set(conn: Conn, name: str, value: str, default: str) -> str | None:
    """The error text of CONFIG SET name value (None when accepted, and then set back)."""
    try:
        conn.call("CONFIG", "SET", name, value)
    except RespError as exc:
        return str(exc).split(" - ", 1)[1]
    conn.call("CONFIG", "SET", name, default)
    return None


def _probe(conn: Conn, name: str, default: str) -> dict[str, Any]:
    error = _try_set(conn, name, BAD_VALUE, default)
    if error is None:
        return {"type": "string"}
    if error == "can't set immutable config":
        return {"type": "immutable"}
    if error == "can't set protected config":
        return {"type": "protected"}
    if error == "argument must be 'yes' or 'no'":
        return {"type": "bool"}
    if error.startswith(_ONE_OF):
        choices = error[len(_ONE_OF):].split(", ")
        several = _try_set(conn, name, " ".join(choices[-2:]), default) is None
        return {"type": "enum", "choices": choices, "several": several}
    if error in ("argument couldn't be parsed into an integer", "argument must be a memory value",
                 "argument must be a memory or percent value"):
        kind = {"argument couldn't be parsed into an integer": "int",
                "argument must be a memory value": "memory"}.get(error, "memory-or-percent")
        entry: dict[str, Any] = {"type": kind}
        for side, value in zip(("min", "max"), EXTREMES, strict=True):
            match = _RANGE_RE.fullmatch(_try_set(conn, name, value, default) or "")
            if match:
                entry[side] = int(match.group(1 if side == "min" else 2))
                entry["min"], entry["max"] = int(match.group(1)), int(match.group(2))
        return entry
    return {"type": "special", "error": error}


def main() -> None:
    binary = sys.argv[1] if len(sys.argv) > 1 else "redis-server"
    with tempfile.TemporaryDirectory() as data_dir:
        proc, port = start_redis(binary, data_dir)
        try:
            conn = Conn(port)
            commands = command_table(conn)
            config = config_table(conn)
            config["dir"]["default"] = ""  # the scratch directory this run happened to use
        finally:
            proc.terminate()
            proc.wait(10)
    COMMAND_TABLE.write_text(json.dumps(commands, indent=1, sort_keys=False) + "\n")
    CONFIG_TABLE.write_text(json.dumps(config, indent=1) + "\n")
    print(f"{len(commands['commands'])} commands, {len(config)} config parameters")


if __name__ == "__main__":
    main()
