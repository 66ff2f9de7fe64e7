"""The RESP codec, sans-I/O: bytes in -> commands out; reply values in -> bytes out.

Requests
--------
`RequestParser.feed(data)` appends bytes; `gets()` returns the next command as a list of
bytes, or `None` when more bytes are needed ("incomplete" is a normal result, not an error), or
raises `ProtocolError` when the stream cannot be framed. A command starting with `*` is a
multibulk request; anything else is an inline command (`PING\\r\\n` typed into nc or telnet),
split with the same quoting rules as Redis' `sdssplitargs`.

Why not hiredis.Reader for requests: it allocates the whole array as soon as it reads a header, so
`*4000000000\\r\\n` would reserve 32 GB before a single element arrived, it cannot enforce
`proto-max-bulk-len` until the whole bulk is buffered, and it cannot read inline commands. A
server must bound memory by what a client actually sent, so requests are framed here, with
every limit checked on the header line. Headers are found with `bytes.find` (C speed); the common
case, a read that holds whole commands, slices arguments straight out of the received `bytes`.

Replies
-------
`encode(reply, resp3)` returns the bytes of one reply value (see `replies.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobcached.errors import ProtocolError
from jobcached.net.replies import (
    Encoded,
    ErrorReply,
    NoReply,
    Push,
    SetOf,
    Simple,
    Verbatim,
    _NullArray,
)

# Redis' own limits (server.h): PROTO_INLINE_MAX_SIZE, proto-max-bulk-len, and the 1024*1024
# multibulk cap in processMultibulkBuffer.
INLINE_MAX_BYTES = 64 * 1024
MAX_BULK_BYTES = 512 * 1024 * 1024
MAX_MULTIBULK_ARGS = 1024 * 1024
# Before AUTH succeeds, a client may not make us buffer much (Redis' fix for CVE-2021-32675).
UNAUTHENTICATED_MAX_ARGS = 10
UNAUTHENTICATED_MAX_BULK_BYTES = 16 * 1024
#: An unfinished command at most this long is copied in front of the next read, so the next
#: read can still take the fast path; longer ones are assembled in a bytearray.
SMALL_LEFTOVER_BYTES = 4096


@dataclass(slots=True)
class ParserLimits:
    """The bounds parsers enforce; one shared instance, so CONFIG SET reaches every client."""

    max_bulk_bytes: int = MAX_BULK_BYTES
    max_multibulk_args: int = MAX_MULTIBULK_ARGS
    max_inline_bytes: int = INLINE_MAX_BYTES


class RequestParser:
    """Frames client requests from a byte stream; see the module docstring.

    Theory of operation, fast path: a read that starts at a command boundary is framed in one
    go. `bytes.split(b"\\r\\n")` cuts the whole read into header and argument tokens at C
    speed; a run of multibulk commands is then accepted command by command, each with a few
    C-level calls and no Python loop over its arguments: every `$<len>` header must be exactly
    the canonical header of the token that follows it. A bulk that contains `\\r\\n` is cut
    short by the split and fails that test, so it cannot be misread; the run simply stops
    there. Framed commands wait in `_ready` (newest first) and `gets()` hands them out one by
    one, so callers see no difference. The fast path only frames what every current limit
    allows, and `gets()` re-checks the limits before handing out a framed command (CONFIG SET,
    or RESET with a password, may lower them between two pipelined commands); if they no
    longer hold, the framed commands are put back and the general path reads them again.
    Anything else (inline commands, a partial command, odd headers) goes to the general path,
    which reads one token at a time.
    """

    __slots__ = ("_args", "_buf", "_pending", "_pos", "_ready", "authenticated", "limits")

    def __init__(self, limits: ParserLimits | None = None, authenticated: bool = True) -> None:
        self.limits = limits or ParserLimits()
        self.authenticated = authenticated
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self._pending = 0  # multibulk arguments still to read for the current command
        self._args: list[bytes] = []
        #: commands framed ahead by the fast path, last one first (`gets()` pops them)
        self._ready: list[list[bytes]] = []

    def feed(self, data: bytes) -> None:
        """Append received bytes; `b""` is ignored (EOF is the transport's business)."""
        if self._ready:
            self._unread()
        if self._pos >= len(self._buf):
            self._buf = data
            self._pos = 0
            return
        buf = self._buf
        if isinstance(buf, bytes):
            if len(buf) - self._pos <= SMALL_LEFTOVER_BYTES:
                # A command cut by the end of the last read: copying its start is cheaper
                # than leaving the fast path for this whole read.
                self._buf = buf[self._pos :] + data
                self._pos = 0
                return
            buf = bytearray(memoryview(buf)[self._pos :])
            self._pos = 0
        elif self._pos > 65536 and self._pos * 2 > len(buf):
            del buf[: self._pos]
            self._pos = 0
        buf += data
        self._buf = buf

    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as a command (the client's query buffer)."""
        partial = sum(len(a) for a in self._args) if self._pending else 0
        ahead = sum(map(_wire_size, self._ready)) if self._ready else 0
        return len(self._buf) - self._pos + partial + ahead

    def gets(self) -> list[bytes] | None:
        """The next complete command, or None if more bytes are needed."""
        ready = self._ready
        if ready:
            limits = self.limits
            if (self.authenticated and limits.max_multibulk_args >= FAST_MAX_ARGS
                    and limits.max_bulk_bytes >= len(self._buf)):
                return ready.pop()
            self._unread()  # a limit was lowered since they were framed: read them again
        elif self._pos == 0:
            if self._frame_run():
                return ready.pop()
        elif self._pos == len(self._buf) and not self._pending:
            return None  # all read (the usual end of a batch)
        return self._gets_general()

    def _frame_run(self) -> bool:
        """The fast path (see the class docstring): frame the run of simple multibulk commands
        at the start of the buffer into `_ready`; False if there is none."""
        buf = self._buf
        limits = self.limits
        if (type(buf) is not bytes or not buf or buf[0] != 42 or self._pending
                or not self.authenticated or limits.max_multibulk_args < FAST_MAX_ARGS
                or limits.max_bulk_bytes < len(buf)):
            return False  # not multibulk, or a limit could be exceeded: the general path
        tokens = buf.split(b"\r\n")
        last = len(tokens) - 1  # the bytes after the last CRLF: never a whole token
        counts = _MULTIBULK_COUNTS
        header_of = _BULK_HEADERS.__getitem__
        ready = self._ready
        if counts.get(tokens[0]) == last // 2 and last % 2:
            # Exactly one command (a client that does not pipeline): the loop below in short.
            args = tokens[2:last:2]
            if list(map(header_of, map(len, args))) != tokens[1:last:2]:
                return False
            ready.append(args)
            self._pos = len(buf) - len(tokens[last])
            return True
        i = 0
        while i < last:
            count = counts.get(tokens[i])
            if count is None:
                break
            end = i + 2 * count  # the index of the last argument
            if end >= last:
                break  # incomplete
            args = tokens[i + 2 : end + 1 : 2]
            if list(map(header_of, map(len, args))) != tokens[i + 1 : end : 2]:
                break
            ready.append(args)
            i = end + 1
        if not ready:
            return False
        unread = tokens[i:]  # usually just the (empty) bytes after the last CRLF
        self._pos = len(buf) - sum(map(len, unread)) - 2 * (len(unread) - 1)
        ready.reverse()
        return True

    def _unread(self) -> None:
        """Put the commands framed ahead back into the buffer, unread."""
        self._pos -= sum(map(_wire_size, self._ready))
        self._ready.clear()

    def _gets_general(self) -> list[bytes] | None:
        while True:
            buf = self._buf
            pos = self._pos
            if self._pending == 0:
                if pos >= len(buf):
                    return None
                if buf[pos] != 42:  # '*'
                    cmd = self._inline(buf, pos)
                    if cmd is None or cmd:
                        return cmd
                    continue  # an empty line: nothing to run
                if not self._start_multibulk(buf, pos):
                    return None
                if self._pending == 0:
                    continue  # `*0` or `*-1`: an empty command, ignored as Redis does
            cmd = self._read_bulks()
            if cmd is not None:
                return cmd
            return None

    def _start_multibulk(self, buf: bytes | bytearray, pos: int) -> bool:
        """Read a `*<count>` header; False if its line is not complete yet."""
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            if len(buf) - pos > self.limits.max_inline_bytes:
                raise ProtocolError("too big mbulk count string")
            return False
        header = buf[pos + 1 : nl]
        count = _SMALL_NUMBERS.get(header) if isinstance(header, bytes) else None
        if count is None:
            count = _parse_length(header, "invalid multibulk length")
        limit = self.limits.max_multibulk_args if self.authenticated else UNAUTHENTICATED_MAX_ARGS
        if count > limit:
            if not self.authenticated:
                raise ProtocolError("unauthenticated multibulk length")
            raise ProtocolError("invalid multibulk length")
        self._pos = nl + 2
        if count > 0:
            self._pending = count
            self._args = []
        return True

    def _read_bulks(self) -> list[bytes] | None:
        """Read `$<len>` arguments of the current multibulk until it is complete."""
        buf = self._buf
        pos = self._pos
        end_of_buf = len(buf)
        args = self._args
        pending = self._pending
        is_bytes = isinstance(buf, bytes)
        max_bulk = (
            self.limits.max_bulk_bytes if self.authenticated else UNAUTHENTICATED_MAX_BULK_BYTES
        )
        while pending:
            if pos >= end_of_buf:
                break
            if buf[pos] != 36:  # '$'
                raise ProtocolError(f"expected '$', got '{chr(buf[pos])}'")
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                if end_of_buf - pos > self.limits.max_inline_bytes:
                    raise ProtocolError("too big bulk count string")
                break
            header = buf[pos + 1 : nl]
            size = _SMALL_NUMBERS.get(header) if is_bytes else None  # type: ignore[arg-type]
            if size is None:
                size = _parse_length(header, "invalid bulk length")
            if size < 0 or size > max_bulk:
                if not self.authenticated and size > 0:
                    raise ProtocolError("unauthenticated bulk length")
                raise ProtocolError("invalid bulk length")
            start = nl + 2
            end = start + size
            if end + 2 > end_of_buf:
                break
            # `is_bytes` is isinstance(buf, bytes) hoisted out of the loop (the hot path), which
            # mypy does not narrow on: a slice of bytes is bytes.
            args.append(buf[start:end] if is_bytes else bytes(buf[start:end]))  # type: ignore[arg-type]
            pos = end + 2
            pending -= 1
        self._pos = pos
        self._pending = pending
        if pending:
            return None
        self._args = []
        return args

    def _inline(self, buf: bytes | bytearray, pos: int) -> list[bytes] | None:
        """Read one inline command line; [] for a blank line, None if the line is incomplete."""
        nl = buf.find(b"\n", pos)
        if nl < 0:
            if len(buf) - pos > self.limits.max_inline_bytes:
                raise ProtocolError("too big inline request")
            return None
        line = bytes(buf[pos:nl])
        self._pos = nl + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        args = split_args(line)
        if args is None:
            raise ProtocolError("unbalanced quotes in request")
        limit = self.limits.max_multibulk_args if self.authenticated else UNAUTHENTICATED_MAX_ARGS
        if len(args) > limit:
            raise ProtocolError("unauthenticated multibulk length" if not self.authenticated
                                else "invalid multibulk length")
        return args


def _parse_length(digits: bytes | bytearray, message: str) -> int:
    """A header number as Redis' string2ll reads it: optional '-', digits without leading
    zeros, nothing else."""
    body = digits[1:] if digits[:1] == b"-" else digits
    if not body.isdigit() or len(body) > 18 or (len(body) > 1 and body[0] == 48):
        raise ProtocolError(message)
    return int(digits)


#: Header numbers seen on every request, parsed once: b"3" -> 3 (a dict hit beats int()).
_SMALL_NUMBERS = {b"%d" % n: n for n in range(4096)}

#: The fast path frames commands of at most this many arguments (`*<n>` lines it knows).
FAST_MAX_ARGS = 1024
_MULTIBULK_COUNTS = {b"*%d" % n: n for n in range(1, FAST_MAX_ARGS + 1)}


class _BulkHeaderTable(dict[int, bytes]):
    """length -> canonical `$<length>` header; common lengths are stored, others computed."""

    def __missing__(self, length: int) -> bytes:
        return b"$%d" % length


_BULK_HEADERS = _BulkHeaderTable((n, b"$%d" % n) for n in range(4096))


def _wire_size(argv: list[bytes]) -> int:
    """Bytes of argv encoded as a canonical multibulk request (what the fast path framed)."""
    headers = sum(len(_BULK_HEADERS[len(a)]) for a in argv)
    return len(b"*%d\r\n" % len(argv)) + headers + sum(map(len, argv)) + 4 * len(argv)


_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_SPACES = b" \n\r\t\x0b\f\x00"
_HEX = b"0123456789abcdefABCDEF"


def split_args(line: bytes) -> list[bytes] | None:
    """Split an inline command like Redis' sdssplitargs; None on unbalanced quotes."""
    if b'"' not in line and b"'" not in line:
        return line.split()
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _SPACES:
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        in_dq = in_sq = False
        while True:
            if in_dq:
                if i >= n:
                    return None
                c = line[i]
                if (c == 92 and i + 3 < n and line[i + 1] == ord("x")
                        and line[i + 2] in _HEX and line[i + 3] in _HEX):
                    cur.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    cur.append(_ESCAPES.get(line[i], line[i]))
                elif c == 34:
                    if i + 1 < n and line[i + 1] not in _SPACES:
                        return None  # closing quote must be followed by a space
                    in_dq = False
                    i += 1
                    break
                else:
                    cur.append(c)
            elif in_sq:
                if i >= n:
                    return None
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    cur.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in _SPACES:
                        return None
                    in_sq = False
                    i += 1
                    break
                else:
                    cur.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in _SPACES:
                    break
                if c == 34:
                    in_dq = True
                elif c == 39:
                    in_sq = True
                else:
                    cur.append(c)
            i += 1
        args.append(bytes(cur))


# --------------------------------------------------------------------------- replies

_CRLF = b"\r\n"


def encode(reply: Any, resp3: bool) -> bytes:
    """The wire bytes of one reply value under RESP3 (`resp3=True`) or RESP2."""
    kind = type(reply)  # most replies are one scalar: format it without building a list
    if kind is int:
        return b":%d\r\n" % reply
    if kind is Simple:
        return b"+%b\r\n" % reply.text
    if kind is bytes:
        return b"$%d\r\n%b\r\n" % (len(reply), reply)
    out: list[bytes] = []
    _encode_into(reply, out, resp3)
    return b"".join(out)


#: JOB.FETCH's job map (see `encode_fetched_job`) up to its `meta` value.
_FETCHED_JOB = (b"$2\r\nid\r\n$%d\r\n%b\r\n$5\r\nqueue\r\n$%d\r\n%b\r\n$4\r\ntype\r\n"
                b"$%d\r\n%b\r\n$7\r\npayload\r\n$%d\r\n%b\r\n$7\r\nattempt\r\n:%d\r\n"
                b"$8\r\npriority\r\n:%d\r\n$5\r\ntoken\r\n$%d\r\n%b\r\n$8\r\ndeadline\r\n"
                b":%d\r\n$4\r\nmeta\r\n")


def encode_fetched_job(job_id: bytes, queue: bytes, type_: bytes, payload: bytes, attempt: int,
                       priority: int, token: bytes, deadline_ms: int,
                       meta: dict[bytes, bytes], resp3: bool) -> bytes:
    """The map JOB.FETCH returns for each job (id, queue, type, payload, attempt, priority,
    token, deadline, meta; a flat array of pairs under RESP2), formatted in one step: the
    generic encoder walked it item by item at about 5 us a job, a tenth of a whole
    push-fetch-ack cycle. Its shape is fixed, so it is the codec's, like the other shapes."""
    body = _FETCHED_JOB % (len(job_id), job_id, len(queue), queue, len(type_), type_,
                           len(payload), payload, attempt, priority, len(token), token,
                           deadline_ms)
    tail = encode(meta, resp3) if meta else (b"%0\r\n" if resp3 else b"*0\r\n")
    return (b"%9\r\n" if resp3 else b"*18\r\n") + body + tail


def _encode_into(reply: Any, out: list[bytes], resp3: bool) -> None:
    kind = type(reply)
    if kind is bytes:
        out.append(b"$%d\r\n%b\r\n" % (len(reply), reply))
    elif kind is int:
        out.append(b":%d\r\n" % reply)
    elif reply is None:
        out.append(b"_\r\n" if resp3 else b"$-1\r\n")
    elif kind is Simple:
        out.append(b"+%b\r\n" % reply.text)
    elif kind is list or kind is tuple:
        out.append(b"*%d\r\n" % len(reply))
        for item in reply:  # bulk strings and integers inline: most elements are one of them
            if type(item) is bytes:
                out.append(b"$%d\r\n%b\r\n" % (len(item), item))
            elif type(item) is int:
                out.append(b":%d\r\n" % item)
            elif type(item) is Encoded:
                out.append(item.data)
            else:
                _encode_into(item, out, resp3)
    elif kind is ErrorReply:
        text = reply.text.replace("\r", " ").replace("\n", " ")
        out.append(b"-%b\r\n" % text.encode("utf-8", "surrogateescape"))
    elif kind is dict:
        out.append((b"%%%d\r\n" if resp3 else b"*%d\r\n") % (len(reply) * (1 if resp3 else 2)))
        for key, value in reply.items():
            if type(key) is bytes:
                out.append(b"$%d\r\n%b\r\n" % (len(key), key))
            else:
                _encode_into(key, out, resp3)
            if type(value) is bytes:
                out.append(b"$%d\r\n%b\r\n" % (len(value), value))
            elif type(value) is int:
                out.append(b":%d\r\n" % value)
            else:
                _encode_into(value, out, resp3)
    elif kind is float:
        text = format_double(reply)
        out.append(b",%b\r\n" % text if resp3 else b"$%d\r\n%b\r\n" % (len(text), text))
    elif kind is str:
        _encode_into(reply.encode(), out, resp3)
    elif kind is bool:
        out.append((b"#t\r\n" if reply else b"#f\r\n") if resp3 else b":%d\r\n" % reply)
    elif kind is set or kind is frozenset:
        out.append((b"~%d\r\n" if resp3 else b"*%d\r\n") % len(reply))
        for item in reply:
            _encode_into(item, out, resp3)
    elif kind is SetOf:
        out.append((b"~%d\r\n" if resp3 else b"*%d\r\n") % len(reply.items))
        for item in reply.items:
            _encode_into(item, out, resp3)
    elif kind is Verbatim:
        if resp3:
            body = reply.fmt + b":" + reply.text
            out.append(b"=%d\r\n%b\r\n" % (len(body), body))
        else:
            _encode_into(reply.text, out, resp3)
    elif kind is Push:
        out.append((b">%d\r\n" if resp3 else b"*%d\r\n") % len(reply.items))
        for item in reply.items:
            _encode_into(item, out, resp3)
    elif kind is Encoded:
        out.append(reply.data)
    elif kind is _NullArray:
        out.append(b"_\r\n" if resp3 else b"*-1\r\n")
    elif kind is NoReply:
        pass
    else:
        raise TypeError(f"cannot encode {kind.__name__} as a RESP reply")


def format_double(value: float) -> bytes:
    """A double as Redis 7.0 prints it: shortest round-trip form, `inf`/`-inf`/`nan`."""
    if value != value:
        return b"nan"
    if value in (float("inf"), float("-inf")):
        return b"inf" if value > 0 else b"-inf"
    return b"%.17g" % value
