"""The compiled codec against the pure-Python one, on random and hostile byte streams.

Both parsers are fed the same stream, cut into the same reads, with the same limits (shared,
as the server shares them), and the same changes between two commands (a limit lowered by
CONFIG SET, authentication lost by RESET). After every read they must hand out the same
commands, raise the same protocol error at the same point and report the same query buffer
size. The encoders must give the same bytes for any reply value. The `fuzz` variant (`make
fuzz`) runs many more examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobcached.errors import ProtocolError
from jobcached.net import resp
from jobcached.net.replies import OK, ErrorReply, Simple
from jobcached.net.resp import ParserLimits
from tests.unit.net.codecs import compiled_module


def multibulk(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


ARGUMENT = st.one_of(st.binary(max_size=12),
                     st.sampled_from([b"", b"\r\n", b"a\r\nb", b"$3", b"*2", b"x" * 300]))
VALID = st.lists(ARGUMENT, min_size=1, max_size=6).map(lambda args: multibulk(*args))
INLINE = st.lists(st.sampled_from([b"GET", b"k", b'"a b"', b"'it\\'s'", b'"\\x41\\n"', b'"x',
                                   b"'", b"\t", b"\x00", b"  "]), max_size=5).map(
    lambda words: b" ".join(words) + b"\r\n")
HOSTILE = st.sampled_from([
    b"*", b"$", b"\r", b"\n", b"\r\n", b"*-1\r\n", b"*0\r\n", b"*01\r\n", b"*-0\r\n", b"*+1\r\n",
    b"*1\r\n", b"*3\r\n", b"*11\r\n", b"*1048577\r\n", b"*99999999999999999999\r\n", b"$-0\r\n",
    b"$-1\r\n", b"$0\r\n\r\n", b"$1\r\nx\r\n", b"$04\r\nPING\r\n", b"$16385\r\n", b"$600000000\r\n",
    b"$1\r\nxyz", b":1\r\n", b"*1\r\n$", b"*2\r\n$1\r\na\r\n", b"*1\r\n\xff", b"\r\r\n",
    b"*1\r$1\r\n", b"A" * 120, b"*" + b"1" * 120, b"$" + b"2" * 120,
])
STREAM = st.lists(st.one_of(VALID, VALID, INLINE, HOSTILE, st.binary(max_size=24)),
                  max_size=12).map(b"".join)


@dataclass
class Change:
    """What happens to both parsers after the n-th command they hand out."""

    after: int
    max_bulk_bytes: int | None
    max_multibulk_args: int | None
    authenticated: bool | None


LIMITS = st.builds(
    ParserLimits,
    max_bulk_bytes=st.sampled_from([resp.MAX_BULK_BYTES, 1, 5, 40, 20000]),
    max_multibulk_args=st.sampled_from([resp.MAX_MULTIBULK_ARGS, 1, 3, 1024, 2000]),
    max_inline_bytes=st.sampled_from([resp.INLINE_MAX_BYTES, 4, 30, 100]),
)
CHANGES = st.lists(st.builds(
    Change, after=st.integers(0, 8),
    max_bulk_bytes=st.none() | st.sampled_from([0, 3, 50]),
    max_multibulk_args=st.none() | st.sampled_from([1, 2, 1023]),
    authenticated=st.none() | st.booleans()), max_size=3)


def outcome(parser: Any) -> list[bytes] | str | None:
    try:
        command: list[bytes] | None = parser.gets()
    except ProtocolError as exc:
        return f"error: {exc.message}"
    return command


def compare(stream: bytes, cuts: list[int], limits: ParserLimits, authenticated: bool,
            changes: list[Change]) -> list[list[bytes] | str]:
    """Feed both parsers the stream cut at `cuts`; assert they agree at every step. Returns
    what they handed out (commands, and the error that ended the stream, if one did)."""
    pure = resp.RequestParser(limits, authenticated=authenticated)
    compiled = compiled_module().RequestParser(limits, authenticated=authenticated)
    bounds = [0, *sorted(set(cuts)), len(stream)]
    seen: list[list[bytes] | str] = []
    for start, end in pairwise(bounds):
        pure.feed(stream[start:end])
        compiled.feed(stream[start:end])
        while True:
            got = outcome(pure)
            assert outcome(compiled) == got, (seen, stream)
            if got is None:
                break
            seen.append(got)
            if isinstance(got, str):
                return seen
            assert compiled.buffered_bytes() == pure.buffered_bytes(), (seen, stream)
            for change in changes:
                if change.after == len(seen):
                    apply(change, limits, pure, compiled)
        assert compiled.buffered_bytes() == pure.buffered_bytes(), (seen, stream)
    return seen


def apply(change: Change, limits: ParserLimits, *parsers: Any) -> None:
    if change.max_bulk_bytes is not None:
        limits.max_bulk_bytes = change.max_bulk_bytes
    if change.max_multibulk_args is not None:
        limits.max_multibulk_args = change.max_multibulk_args
    if change.authenticated is not None:
        for parser in parsers:
            parser.authenticated = change.authenticated


CUTS = st.lists(st.integers(min_value=1, max_value=2000), max_size=8)


@settings(max_examples=400, deadline=None)
@given(STREAM, CUTS, LIMITS, st.booleans(), CHANGES)
def test_differential_both_parsers_read_the_same(stream: bytes, cuts: list[int],
                                                 limits: ParserLimits, authenticated: bool,
                                                 changes: list[Change]) -> None:
    compare(stream, [c for c in cuts if c < len(stream)], limits, authenticated, changes)


@pytest.mark.fuzz
@settings(max_examples=20000, deadline=None)
@given(STREAM, CUTS, LIMITS, st.booleans(), CHANGES)
def test_differential_both_parsers_read_the_same_long(stream: bytes, cuts: list[int],
                                                      limits: ParserLimits, authenticated: bool,
                                                      changes: list[Change]) -> None:
    compare(stream, [c for c in cuts if c < len(stream)], limits, authenticated, changes)


def test_the_differential_streams_reach_commands_errors_and_limit_changes() -> None:
    """The comparison itself sees both outcomes: a pipeline read whole, and a stream that
    fails on a limit lowered after its first command."""
    limits = ParserLimits()
    pipeline = multibulk(b"SET", b"k", b"v") + b"PING\r\n" + multibulk(b"GET", b"k")
    assert compare(pipeline, [3, 17], limits, True, []) == [
        [b"SET", b"k", b"v"], [b"PING"], [b"GET", b"k"]]
    lowered = [Change(after=1, max_bulk_bytes=3, max_multibulk_args=None, authenticated=None)]
    assert compare(multibulk(b"A") + multibulk(b"SET", b"k", b"long"), [], limits, True,
                   lowered) == [[b"A"], "error: invalid bulk length"]


REPLY = st.recursive(
    st.one_of(st.binary(max_size=20), st.integers(min_value=-(2**70), max_value=2**70),
              st.none(), st.just(OK), st.builds(Simple, st.binary(max_size=10).filter(
                  lambda b: b"\r" not in b and b"\n" not in b)),
              st.builds(ErrorReply, st.text(max_size=10)), st.floats(allow_nan=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.tuples(inner, inner),
                            st.dictionaries(st.binary(max_size=5), inner, max_size=3)),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(REPLY, st.booleans())
def test_differential_both_encoders_write_the_same(reply: object, resp3: bool) -> None:
    assert compiled_module().encode(reply, resp3) == resp.encode(reply, resp3)
