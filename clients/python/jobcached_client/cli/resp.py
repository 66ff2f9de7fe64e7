"""RESP for the CLI: replies that keep their wire type, a sans-I/O parser, a blocking connection.

The CLI cannot use redis-py's parsed replies: redis-cli prints a status (`OK`) and a bulk
string (`"OK"`) differently, a map as `1# "k" => ...` and an array as `1) ...`, and redis-py
merges those. So this module keeps each reply's type, as hiredis does for redis-cli.
"""

from __future__ import annotations

import enum
import select
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: Bytes read from the socket at a time.
READ_CHUNK_BYTES = 64 * 1024


class Kind(enum.Enum):
    STATUS = "+"
    ERROR = "-"
    INTEGER = ":"
    BULK = "$"
    NIL = "_"
    ARRAY = "*"
    MAP = "%"
    SET = "~"
    PUSH = ">"
    DOUBLE = ","
    BOOL = "#"
    VERBATIM = "="
    BIGNUM = "("


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply. `value`: bytes (status, error, bulk, verbatim text, double and big number
    as sent), int, bool, None, or a list of replies (a map's list is key, value, key, ...)."""

    kind: Kind
    value: Any

    @property
    def is_error(self) -> bool:
        return self.kind is Kind.ERROR

    def text(self) -> str:
        return bytes(self.value).decode("utf-8", "replace")

    def pairs(self) -> list[tuple[Reply, Reply]]:
        """A map, or a RESP2 flat array of pairs, as (key, value) tuples."""
        items = self.value or []
        return list(zip(items[::2], items[1::2], strict=True))


NIL = Reply(Kind.NIL, None)
AGGREGATES = frozenset({Kind.ARRAY, Kind.MAP, Kind.SET, Kind.PUSH})


class ProtocolError(Exception):
    """The server sent something that is not RESP."""


class _Incomplete(Exception):
    pass


class Parser:
    """Feed bytes, take replies (`gets()` returns None until a whole reply has arrived)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def gets(self) -> Reply | None:
        try:
            reply, end = self._parse(0)
        except _Incomplete:
            return None
        del self._buffer[:end]
        return reply

    def _line(self, pos: int) -> tuple[bytes, int]:
        end = self._buffer.find(b"\r\n", pos)
        if end < 0:
            raise _Incomplete
        return bytes(self._buffer[pos:end]), end + 2

    def _parse(self, pos: int) -> tuple[Reply, int]:
        if pos >= len(self._buffer):
            raise _Incomplete
        marker = chr(self._buffer[pos])
        line, pos = self._line(pos + 1)
        try:
            kind = Kind(marker)
        except ValueError:
            if marker == "|":  # attributes: read and drop, then the reply they annotate
                _, pos = self._aggregate(Kind.MAP, int(line), pos)
                return self._parse(pos)
            raise ProtocolError(f"unexpected reply type byte {marker!r}") from None
        if kind in (Kind.STATUS, Kind.ERROR, Kind.DOUBLE, Kind.BIGNUM):
            return Reply(kind, line), pos
        if kind is Kind.INTEGER:
            return Reply(kind, int(line)), pos
        if kind is Kind.BOOL:
            return Reply(kind, line == b"t"), pos
        if kind is Kind.NIL:
            return NIL, pos
        length = int(line)
        if kind in (Kind.BULK, Kind.VERBATIM):
            if length < 0:
                return NIL, pos
            if pos + length + 2 > len(self._buffer):
                raise _Incomplete
            data = bytes(self._buffer[pos:pos + length])
            if kind is Kind.VERBATIM:
                data = data[4:]  # "txt:" / "mkd:": hiredis drops the format, so does redis-cli
            return Reply(kind, data), pos + length + 2
        if length < 0:
            return NIL, pos
        return self._aggregate(kind, length, pos)

    def _aggregate(self, kind: Kind, length: int, pos: int) -> tuple[Reply, int]:
        count = length * 2 if kind is Kind.MAP else length
        items = []
        for _ in range(count):
            item, pos = self._parse(pos)
            items.append(item)
        return Reply(kind, items), pos


def encode(args: Sequence[bytes | str | int]) -> bytes:
    """A command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Connection:
    """A blocking connection to one server, over TCP or a unix socket."""

    def __init__(self, host: str = "127.0.0.1", port: int = 7380, path: str | None = None,
                 timeout: float | None = None) -> None:
        self.host, self.port, self.path, self.timeout = host, port, path, timeout
        self._sock: socket.socket | None = None
        self._parser = Parser()
        #: Commands sent on this connection so far (across reconnects): `--stat` leaves its
        #: own out of the server's request count.
        self.commands_sent = 0

    @property
    def address(self) -> str:
        return self.path or f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        self.close()
        if self.path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
            except OSError:
                sock.close()
                raise
        else:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._parser = Parser()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def send(self, *commands: Sequence[bytes | str | int]) -> None:
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        self._sock.sendall(b"".join(encode(args) for args in commands))
        self.commands_sent += len(commands)

    def read(self) -> Reply:
        """The next reply (push messages included)."""
        # The parser starts over on each try, so a big reply arriving in many chunks is only
        # parsed again once the socket is drained for now or the buffer has doubled.
        attempt, failed_at = True, 0
        while True:
            if attempt:
                reply = self._parser.gets()
                if reply is not None:
                    return reply
                failed_at = self._parser.buffered
            assert self._sock is not None
            data = self._sock.recv(READ_CHUNK_BYTES)
            if not data:
                self.close()
                raise ConnectionError("Server closed the connection")
            self._parser.feed(data)
            drained = not select.select([self._sock], [], [], 0)[0]
            attempt = drained or self._parser.buffered >= 2 * failed_at

    def call(self, *args: bytes | str | int) -> Reply:
        """Send one command, return its reply (skipping RESP3 push messages)."""
        self.send(args)
        return self._reply()

    def call_many(self, commands: Iterable[Sequence[bytes | str | int]]) -> list[Reply]:
        """Pipeline several commands: one write, then their replies in order."""
        commands = list(commands)
        if not commands:
            return []
        self.send(*commands)
        return [self._reply() for _ in commands]

    def _reply(self) -> Reply:
        while True:
            reply = self.read()
            if reply.kind is not Kind.PUSH:
                return reply
