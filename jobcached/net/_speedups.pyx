# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled twin of the request codec in `resp.py`: `RequestParser` and `encode`.

Why: Python 3.11 runs the codec's bytecode faster than Cython's generic object code does
(bench/PROFILE.md), so compiling `resp.py` as it is made it slower. This module is typed
code instead: the parser scans the buffer through a C pointer (`memchr` for each CRLF, digits
read in C) and creates only the argument `bytes`; the encoder formats the common reply shapes
into one preallocated `bytes`. Behaviour is the pure parser's general path, rule for rule: the
same `feed`/`gets`/`buffered_bytes` contract, the same limits read from the shared
`ParserLimits` on every command (so CONFIG SET and RESET apply between pipelined commands) and
the same `ProtocolError` texts. Inline commands, rare and never hot, are split by the pure
`split_args`; reply shapes not formatted here go to the pure `encode`. The tests run the codec
vectors, the split-at-every-byte test and the fuzzers against both, plus a differential test.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.string cimport memchr, memcpy

from jobcached.errors import ProtocolError
from jobcached.net import resp as _resp
from jobcached.net.replies import Simple

cdef object _ParserLimits = _resp.ParserLimits
cdef object _split_args = _resp.split_args
cdef object _py_encode = _resp.encode
cdef object _Simple = Simple
cdef long long _UNAUTH_ARGS = _resp.UNAUTHENTICATED_MAX_ARGS
cdef long long _UNAUTH_BULK = _resp.UNAUTHENTICATED_MAX_BULK_BYTES
cdef Py_ssize_t _SMALL_LEFTOVER = _resp.SMALL_LEFTOVER_BYTES


cdef inline const char* _data(object buf, Py_ssize_t* size):
    """The buffer's bytes and length; the buffer is a `bytes` or a `bytearray`."""
    if type(buf) is bytes:
        size[0] = PyBytes_GET_SIZE(buf)
        return PyBytes_AS_STRING(buf)
    size[0] = PyByteArray_GET_SIZE(buf)
    return PyByteArray_AS_STRING(buf)


cdef inline Py_ssize_t _find_crlf(const char* p, Py_ssize_t n, Py_ssize_t pos) noexcept:
    """The index of the first CRLF at or after pos, or -1."""
    cdef const char* q
    while pos < n - 1:
        q = <const char*>memchr(p + pos, 13, <size_t>(n - 1 - pos))
        if q == NULL:
            return -1
        pos = q - p
        if p[pos + 1] == 10:
            return pos
        pos += 1
    return -1


cdef inline bint _parse_length(const char* p, Py_ssize_t start, Py_ssize_t end,
                               long long* out) noexcept:
    """A header number as Redis' string2ll reads it (optional '-', 1 to 18 digits, no leading
    zero); False if it is not one."""
    cdef bint negative = False
    cdef long long value = 0
    cdef char c
    if start < end and p[start] == 45:  # '-'
        negative = True
        start += 1
    if end - start < 1 or end - start > 18 or (end - start > 1 and p[start] == 48):
        return False
    while start < end:
        c = p[start]
        if c < 48 or c > 57:
            return False
        value = value * 10 + (c - 48)
        start += 1
    out[0] = -value if negative else value
    return True


cdef class RequestParser:
    """Frames client requests from a byte stream, as `resp.RequestParser` does (its docstring
    and the module docstrings say how); one command per `gets()`, nothing framed ahead."""

    cdef public object limits
    cdef public bint authenticated
    cdef object _buf  # bytes, or a bytearray while a long unfinished command is assembled
    cdef Py_ssize_t _pos
    cdef Py_ssize_t _pending  # multibulk arguments still to read for the current command
    cdef list _args

    def __init__(self, limits=None, bint authenticated=True):
        self.limits = limits if limits is not None else _ParserLimits()
        self.authenticated = authenticated
        self._buf = b""
        self._pos = 0
        self._pending = 0
        self._args = []

    def feed(self, bytes data):
        """Append received bytes; `b""` is ignored (EOF is the transport's business)."""
        cdef Py_ssize_t size = 0
        cdef const char* p = _data(self._buf, &size)
        cdef Py_ssize_t left = size - self._pos
        cdef bytearray assembled
        if left <= 0:
            self._buf = data
            self._pos = 0
            return
        if type(self._buf) is bytes:
            if left <= _SMALL_LEFTOVER:
                self._buf = PyBytes_FromStringAndSize(p + self._pos, left) + data
                self._pos = 0
                return
            assembled = bytearray(PyBytes_FromStringAndSize(p + self._pos, left))
            self._pos = 0
        else:
            assembled = self._buf
            if self._pos > 65536 and self._pos * 2 > size:
                del assembled[: self._pos]
                self._pos = 0
        assembled += data
        self._buf = assembled

    def buffered_bytes(self):
        """Bytes received but not yet returned as a command (the client's query buffer)."""
        cdef Py_ssize_t size = 0
        cdef Py_ssize_t partial = 0
        _data(self._buf, &size)
        if self._pending:
            for arg in self._args:
                partial += PyBytes_GET_SIZE(arg)
        return size - self._pos + partial

    def gets(self):
        """The next complete command, or None if more bytes are needed."""
        cdef Py_ssize_t size = 0
        cdef const char* p
        cdef list cmd
        while True:
            if self._pending == 0:
                p = _data(self._buf, &size)
                if self._pos >= size:
                    return None
                if p[self._pos] != 42:  # '*'
                    cmd = self._inline(p, size)
                    if cmd is None or cmd:
                        return cmd
                    continue  # an empty line: nothing to run
                if not self._start_multibulk(p, size):
                    return None
                if self._pending == 0:
                    continue  # `*0` or `*-1`: an empty command, ignored as Redis does
            return self._read_bulks()

    cdef bint _start_multibulk(self, const char* p, Py_ssize_t size) except -1:
        """Read a `*<count>` header; False if its line is not complete yet."""
        cdef Py_ssize_t pos = self._pos
        cdef Py_ssize_t nl = _find_crlf(p, size, pos)
        cdef long long count = 0
        cdef long long limit
        if nl < 0:
            if size - pos > self.limits.max_inline_bytes:
                raise ProtocolError("too big mbulk count string")
            return False
        if not _parse_length(p, pos + 1, nl, &count):
            raise ProtocolError("invalid multibulk length")
        limit = self.limits.max_multibulk_args if self.authenticated else _UNAUTH_ARGS
        if count > limit:
            if not self.authenticated:
                raise ProtocolError("unauthenticated multibulk length")
            raise ProtocolError("invalid multibulk length")
        self._pos = nl + 2
        if count > 0:
            self._pending = <Py_ssize_t>count
            self._args = []
        return True

    cdef list _read_bulks(self):
        """Read `$<len>` arguments of the current multibulk until it is complete."""
        cdef Py_ssize_t size = 0
        cdef const char* p = _data(self._buf, &size)
        cdef Py_ssize_t pos = self._pos
        cdef Py_ssize_t pending = self._pending
        cdef Py_ssize_t nl
        cdef Py_ssize_t start
        cdef long long length = 0
        cdef long long max_bulk
        cdef list args = self._args
        max_bulk = self.limits.max_bulk_bytes if self.authenticated else _UNAUTH_BULK
        while pending:
            if pos >= size:
                break
            if p[pos] != 36:  # '$'
                raise ProtocolError(f"expected '$', got '{chr(<unsigned char>p[pos])}'")
            nl = _find_crlf(p, size, pos)
            if nl < 0:
                if size - pos > self.limits.max_inline_bytes:
                    raise ProtocolError("too big bulk count string")
                break
            if not _parse_length(p, pos + 1, nl, &length):
                raise ProtocolError("invalid bulk length")
            if length < 0 or length > max_bulk:
                if not self.authenticated and length > 0:
                    raise ProtocolError("unauthenticated bulk length")
                raise ProtocolError("invalid bulk length")
            start = nl + 2
            if start + length + 2 > size:
                break
            args.append(PyBytes_FromStringAndSize(p + start, <Py_ssize_t>length))
            pos = start + <Py_ssize_t>length + 2
            pending -= 1
        self._pos = pos
        self._pending = pending
        if pending:
            return None
        self._args = []
        return args

    cdef list _inline(self, const char* p, Py_ssize_t size):
        """Read one inline command line; [] for a blank line, None if it is incomplete."""
        cdef Py_ssize_t pos = self._pos
        cdef const char* q = <const char*>memchr(p + pos, 10, <size_t>(size - pos))
        cdef Py_ssize_t end
        cdef long long limit
        if q == NULL:
            if size - pos > self.limits.max_inline_bytes:
                raise ProtocolError("too big inline request")
            return None
        end = q - p
        self._pos = end + 1
        if end > pos and p[end - 1] == 13:
            end -= 1
        args = _split_args(PyBytes_FromStringAndSize(p + pos, end - pos))
        if args is None:
            raise ProtocolError("unbalanced quotes in request")
        limit = self.limits.max_multibulk_args if self.authenticated else _UNAUTH_ARGS
        if len(args) > limit:
            raise ProtocolError("unauthenticated multibulk length" if not self.authenticated
                                else "invalid multibulk length")
        return args


# --------------------------------------------------------------------------- replies


cdef inline Py_ssize_t _digits(long long value) noexcept:
    """How many characters `%d` of value takes."""
    cdef Py_ssize_t n = 1
    cdef unsigned long long v
    if value < 0:
        n += 1
        v = <unsigned long long>(-(value + 1)) + 1
    else:
        v = <unsigned long long>value
    while v >= 10:
        v //= 10
        n += 1
    return n


cdef inline char* _put_int(char* w, long long value, Py_ssize_t width) noexcept:
    """Write `%d` of value (width characters, from `_digits`) at w; return the end."""
    cdef unsigned long long v
    cdef char* end = w + width
    cdef char* q = end
    if value < 0:
        w[0] = 45
        v = <unsigned long long>(-(value + 1)) + 1
    else:
        v = <unsigned long long>value
    while True:
        q -= 1
        q[0] = <char>(48 + v % 10)
        v //= 10
        if v == 0:
            break
    return end


cdef inline char* _put_bulk(char* w, bytes item) noexcept:
    """Write `$<len>\\r\\n<item>\\r\\n` at w; return the end."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(item)
    w[0] = 36
    w = _put_int(w + 1, n, _digits(n))
    w[0] = 13
    w[1] = 10
    memcpy(w + 2, PyBytes_AS_STRING(item), <size_t>n)
    w[n + 2] = 13
    w[n + 3] = 10
    return w + n + 4


cdef bytes _bulk(bytes item):
    cdef Py_ssize_t n = PyBytes_GET_SIZE(item)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 1 + _digits(n) + 4 + n)
    _put_bulk(PyBytes_AS_STRING(out), item)
    return out


cdef bytes _line(char kind, long long value):
    """`:<value>\\r\\n` and the like: a type byte, a number, CRLF."""
    cdef Py_ssize_t width = _digits(value)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, width + 3)
    cdef char* w = PyBytes_AS_STRING(out)
    w[0] = kind
    w = _put_int(w + 1, value, width)
    w[0] = 13
    w[1] = 10
    return out


cdef object _bulk_array(object items):
    """An array of bulk strings in one allocation; None if an item is not `bytes`."""
    cdef Py_ssize_t count = len(items)
    cdef Py_ssize_t total = _digits(count) + 3
    cdef Py_ssize_t n
    cdef bytes out
    cdef char* w
    for item in items:
        if type(item) is not bytes:
            return None
        n = PyBytes_GET_SIZE(item)
        total += _digits(n) + 5 + n
    out = PyBytes_FromStringAndSize(NULL, total)
    w = PyBytes_AS_STRING(out)
    w[0] = 42
    w = _put_int(w + 1, count, _digits(count))
    w[0] = 13
    w[1] = 10
    w += 2
    for item in items:
        w = _put_bulk(w, <bytes>item)
    return out


def encode(reply, bint resp3):
    """The wire bytes of one reply value under RESP3 (`resp3=True`) or RESP2; the shapes
    formatted here are bulk strings, integers, status lines, nil and arrays of bulk strings,
    everything else is the pure `encode`'s."""
    cdef int overflow = 0
    cdef long long value
    cdef bytes text
    cdef char* w
    kind = type(reply)
    if kind is bytes:
        return _bulk(<bytes>reply)
    if kind is int:
        value = PyLong_AsLongLongAndOverflow(reply, &overflow)
        if not overflow:
            return _line(58, value)  # ':'
    elif kind is _Simple and type(reply.text) is bytes:
        text = <bytes>reply.text
        out = PyBytes_FromStringAndSize(NULL, PyBytes_GET_SIZE(text) + 3)
        w = PyBytes_AS_STRING(out)
        w[0] = 43  # '+'
        memcpy(w + 1, PyBytes_AS_STRING(text), <size_t>PyBytes_GET_SIZE(text))
        w[PyBytes_GET_SIZE(text) + 1] = 13
        w[PyBytes_GET_SIZE(text) + 2] = 10
        return out
    elif reply is None:
        return b"_\r\n" if resp3 else b"$-1\r\n"
    elif kind is list or kind is tuple:
        out = _bulk_array(reply)
        if out is not None:
            return out
    return _py_encode(reply, resp3)
