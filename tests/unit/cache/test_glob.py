"""Glob matching: Redis stringmatchlen semantics, and bounded time on hostile patterns.

The oracle below is a line-by-line port of Redis 7.0's recursive `stringmatchlen` (util.c). It is
exponential, so it is only run on short inputs; our matcher must agree with it everywhere.
The table was also checked against a real redis-server 7.0 with KEYS (about 6000 random patterns,
no difference).
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobcached.cache.glob import Glob, compile_glob, glob_match

#: A bound on the CPU time (not wall time: other processes share CI's two cores) of ten hostile
#: matches; a backtracking matcher takes hours on these, ours a few hundred milliseconds.
PATHOLOGICAL_SECONDS = 2.0


def _lower(c: int) -> int:
    return c + 32 if 65 <= c <= 90 else c


def redis_stringmatch(p: bytes, s: bytes, nocase: bool = False) -> bool:
    """Port of Redis util.c stringmatchlen_impl, without the nesting cap (inputs are short)."""

    def rec(pi: int, si: int) -> bool:
        pn = len(p)
        while pi < pn and si < len(s):
            c = p[pi]
            if c == 42:  # *
                while pi + 1 < pn and p[pi + 1] == 42:
                    pi += 1
                if pi + 1 == pn:
                    return True
                while si < len(s):
                    if rec(pi + 1, si):
                        return True
                    si += 1
                return False
            elif c == 63:  # ?
                si += 1
            elif c == 91:  # [
                pi += 1
                neg = pi < pn and p[pi] == 94
                if neg:
                    pi += 1
                match = False
                while True:
                    if pi < pn and p[pi] == 92 and pn - pi >= 2:
                        pi += 1
                        if p[pi] == s[si]:
                            match = True
                    elif pi < pn and p[pi] == 93:
                        break
                    elif pi >= pn:
                        pi -= 1
                        break
                    elif pn - pi >= 3 and p[pi + 1] == 45:
                        start, end, ch = p[pi], p[pi + 2], s[si]
                        if start > end:
                            start, end = end, start
                        if nocase:
                            start, end, ch = _lower(start), _lower(end), _lower(ch)
                        pi += 2
                        if start <= ch <= end:
                            match = True
                    elif (_lower(p[pi]) == _lower(s[si])) if nocase else (p[pi] == s[si]):
                        match = True
                    pi += 1
                if neg:
                    match = not match
                if not match:
                    return False
                si += 1
            else:
                if c == 92 and pn - pi >= 2:
                    pi += 1
                    c = p[pi]
                if (_lower(c) != _lower(s[si])) if nocase else (c != s[si]):
                    return False
                si += 1
            pi += 1
            if si == len(s):
                while pi < pn and p[pi] == 42:
                    pi += 1
                break
        return pi == pn and si == len(s)

    return rec(0, 0)


TABLE = [
    (b"*", b"anything", True),
    (b"*", b"", False),  # Redis quirk: only an empty pattern matches the empty string
    (b"", b"", True),
    (b"", b"a", False),
    (b"h?llo", b"hello", True),
    (b"h?llo", b"hllo", False),
    (b"h*llo", b"hllo", True),
    (b"h*llo", b"heeeello", True),
    (b"h[ae]llo", b"hallo", True),
    (b"h[ae]llo", b"hillo", False),
    (b"h[^e]llo", b"hallo", True),
    (b"h[^e]llo", b"hello", False),
    (b"h[a-b]llo", b"hbllo", True),
    (b"h[b-a]llo", b"hbllo", True),  # reversed range
    (b"h[a-b]llo", b"hcllo", False),
    (b"h\\*llo", b"h*llo", True),
    (b"h\\*llo", b"hello", False),
    (b"[\\]]", b"]", True),
    (b"[a-]", b"]", True),  # `a-]` is the range a..] in Redis
    (b"[abc", b"b", True),  # unterminated class runs to the end
    (b"[", b"[", False),
    (b"[^", b"x", True),
    (b"a\\", b"a\\", True),  # a trailing backslash is literal
    (b"*a*b*c*", b"xxaxxbxxcxx", True),
    (b"*a*b*c*", b"xxaxxcxxbxx", False),
    (b"user:*:name", b"user:42:name", True),
    (b"user:*:name", b"user:42:nam", False),
    (b"ab*ba", b"aba", False),  # first and last segment may not overlap
    (b"ab*ba", b"abba", True),
]


@pytest.mark.parametrize(("pattern", "s", "expected"), TABLE)
def test_table(pattern: bytes, s: bytes, expected: bool) -> None:
    assert glob_match(pattern, s) is expected
    assert redis_stringmatch(pattern, s) is expected


def test_nocase() -> None:
    assert glob_match(b"HeLLo*", b"hello world", nocase=True)
    assert glob_match(b"[A-C]x", b"bx", nocase=True)
    assert glob_match(b"[^A-C]x", b"bx", nocase=True) is False
    assert not glob_match(b"HeLLo*", b"hello world")


ALPHABET = b"abAB*?[]^-\\"
patterns = st.binary(max_size=8).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b))
subjects = st.binary(max_size=8).map(lambda b: bytes(b"abAB[]^-\\*?"[x % 11] for x in b))


@settings(max_examples=3000, deadline=None)
@given(patterns, subjects, st.booleans())
def test_agrees_with_redis_algorithm(pattern: bytes, s: bytes, nocase: bool) -> None:
    assert Glob(pattern, nocase).match(s) == redis_stringmatch(pattern, s, nocase)


@pytest.mark.parametrize(
    ("pattern", "subject"),
    [
        (b"a*" * 50_000 + b"b", b"a" * 200),  # exponential for a naive recursive matcher
        (b"*a" * 50_000, b"a" * 60_000 + b"b"),  # long key, tens of thousands of segments
        (b"*?" * 50_000 + b"x", b"?" * 120_000),
        (b"*[ab]" * 30_000 + b"c", b"ab" * 40_000),  # regex segments, no match at the end
        (b"[" * 100_000, b"x" * 100),
        (b"\\" * 100_000, b"\\" * 50_000),
        (b"*" * 100_000 + b"z", b"y" * 100_000),
    ],
)
def test_pathological_patterns_are_bounded(pattern: bytes, subject: bytes) -> None:
    started = time.process_time()
    g = Glob(pattern)
    for _ in range(10):
        g.match(subject)
    assert time.process_time() - started < PATHOLOGICAL_SECONDS


def test_pathological_short_cases_agree() -> None:
    p, s = b"a*a*a*a*a*a*a*b", b"a" * 30
    assert glob_match(p, s) is False
    assert glob_match(p, s + b"b") is True


def test_compile_is_cached() -> None:
    assert compile_glob(b"x*y") is compile_glob(b"x*y")
