"""Glob matching for KEYS, SCAN MATCH and friends, with Redis `stringmatchlen` semantics.

Supported: `*` (any run, possibly empty), `?` (one byte), `[abc]`, `[^abc]`, `[a-z]` (reversed
ranges like `[z-a]` work), `\\x` escapes inside and outside classes, and the `nocase` flag (ASCII
case folding, as C `tolower`). Quirks kept on purpose because clients can see them: an unterminated
class `[abc` runs to the end of the pattern; a pattern never matches the empty string unless it is
empty itself (Redis loops while both are non-empty; KEYS/SCAN special-case the lone `*` before
calling the matcher, and so do we in the keyspace).

Why not Redis's algorithm: `stringmatchlen` recurses at every `*`, which is exponential on
patterns like `a*a*a*...b`; Redis caps the nesting at 1000 and returns "no match" past it. Why not
`fnmatch`/`re` on the whole pattern: `.*a.*a.*b` backtracks catastrophically in `re` too.

Theory of operation: every token other than `*` consumes exactly one byte, so a pattern is a list
of fixed-length *segments* separated by stars. The first segment must match at offset 0, the last
at the end, and each middle one is found leftmost-first after the previous one (leftmost is always
safe: it leaves the most room for what follows). A segment of plain bytes uses `bytes.startswith` /
`find`; any other segment becomes a quantifier-free regex (each token a byte class), which `re`
searches in O(len(key) * len(segment)) without backtracking. A key shorter than the pattern's number
of non-star tokens is rejected before any work, so a 100 KB pattern costs one length check per key.
"""

from __future__ import annotations

import re
from functools import lru_cache

_STAR = -1  # token marker for `*`
_ALL = frozenset(range(256))
_COMPILE_CACHE_PATTERNS = 256  # distinct (pattern, nocase) pairs kept compiled; SCAN repeats one
_CACHE_MAX_PATTERN_BYTES = 1024  # longer patterns are not cached (bounded cache memory)


def _lower(c: int) -> int:
    return c + 32 if 65 <= c <= 90 else c


_LITERAL = [frozenset((c,)) for c in range(256)]
_LITERAL_NOCASE = [frozenset(x for x in range(256) if _lower(x) == _lower(c)) for c in range(256)]


def _literal(c: int, nocase: bool) -> frozenset[int]:
    return _LITERAL_NOCASE[c] if nocase else _LITERAL[c]


def _parse_class(p: bytes, i: int, nocase: bool) -> tuple[frozenset[int], int]:
    """Parse a `[...]` class starting after its `[`; mirrors util.c's pointer walk exactly."""
    n = len(p)
    negate = i < n and p[i] == 94  # ^
    if negate:
        i += 1
    allowed: set[int] = set()
    while True:
        if i < n and p[i] == 92 and n - i >= 2:  # backslash escape: exact byte, even with nocase
            i += 1
            allowed.add(p[i])
        elif i < n and p[i] == 93:  # ]
            break
        elif i >= n:  # unterminated: the class ends with the pattern
            i = n - 1
            break
        elif n - i >= 3 and p[i + 1] == 45:  # a-z
            start, end = p[i], p[i + 2]
            if start > end:
                start, end = end, start
            if nocase:
                start, end = _lower(start), _lower(end)
                allowed.update(x for x in range(256) if start <= _lower(x) <= end)
            else:
                allowed.update(range(start, end + 1))
            i += 2
        else:
            allowed.update(_literal(p[i], nocase))
        i += 1
    chosen = _ALL - allowed if negate else frozenset(allowed)
    return chosen, i + 1


def _tokenize(p: bytes, nocase: bool) -> list[int | frozenset[int]]:
    tokens: list[int | frozenset[int]] = []
    i, n = 0, len(p)
    while i < n:
        c = p[i]
        if c == 42:  # *
            if not tokens or tokens[-1] != _STAR:
                tokens.append(_STAR)
            i += 1
        elif c == 63:  # ?
            tokens.append(_ALL)
            i += 1
        elif c == 91:  # [
            cls, i = _parse_class(p, i + 1, nocase)
            tokens.append(cls)
        else:
            if c == 92 and n - i >= 2:  # backslash escapes the next byte
                i += 1
                c = p[i]
            tokens.append(_literal(c, nocase))
            i += 1
    return tokens


def _class_regex(allowed: frozenset[int]) -> bytes:
    if allowed == _ALL:
        return b"."
    if not allowed:
        return b"(?!)"
    parts, run = [], sorted(allowed)
    start = prev = run[0]
    for c in [*run[1:], -2]:
        if c != prev + 1:
            one = b"\\x%02x" % start
            parts.append(one if start == prev else one + b"-\\x%02x" % prev)
            start = c
        prev = c
    return b"[" + b"".join(parts) + b"]"


SegmentSpec = tuple[int, bytes, bool]
"""(length in bytes matched, literal bytes or regex source, is_literal)."""


def _specs_simple(p: bytes) -> list[SegmentSpec]:
    """Fast path (no classes, no escapes, case-sensitive): split on `*` in C."""
    specs: list[SegmentSpec] = []
    for part in p.split(b"*"):
        if b"?" in part:
            specs.append((len(part), b".".join(re.escape(x) for x in part.split(b"?")), False))
        else:
            specs.append((len(part), part, True))
    return specs


def _specs_general(p: bytes, nocase: bool) -> list[SegmentSpec]:
    runs: list[list[frozenset[int]]] = [[]]
    for t in _tokenize(p, nocase):
        if isinstance(t, frozenset):
            runs[-1].append(t)
        else:
            runs.append([])
    regex_of: dict[frozenset[int], bytes] = {}
    specs: list[SegmentSpec] = []
    for run in runs:
        if all(len(t) == 1 for t in run):
            specs.append((len(run), bytes(next(iter(t)) for t in run), True))
            continue
        parts = []
        for t in run:
            part = regex_of.get(t)
            if part is None:
                part = regex_of[t] = _class_regex(t)
            parts.append(part)
        specs.append((len(run), b"".join(parts), False))
    return specs


class _Segment:
    """A run of single-byte tokens: a literal (fast bytes ops) or a quantifier-free regex.

    The regex is compiled on first use: a long hostile pattern is usually rejected by the length
    check before any segment is needed.
    """

    __slots__ = ("_cache", "_source", "length", "literal", "regex")

    def __init__(self, spec: SegmentSpec, cache: dict[bytes, re.Pattern[bytes]]) -> None:
        self.length, text, is_literal = spec
        self.literal: bytes | None = text if is_literal else None
        self.regex: re.Pattern[bytes] | None = None
        self._source = text
        self._cache = cache

    def _compiled(self) -> re.Pattern[bytes]:
        rx = self.regex
        if rx is None:
            rx = self._cache.get(self._source)
            if rx is None:
                rx = self._cache[self._source] = re.compile(self._source, re.DOTALL)
            self.regex = rx
        return rx

    def match_at(self, s: bytes, i: int) -> bool:
        if self.literal is not None:
            return s.startswith(self.literal, i)
        return self._compiled().match(s, i) is not None

    def search(self, s: bytes, start: int, end: int) -> int:
        """Leftmost start of a match inside s[start:end], or -1."""
        if self.literal is not None:
            return s.find(self.literal, start, end)
        m = self._compiled().search(s, start, end)
        return -1 if m is None else m.start()


class Glob:
    """A compiled pattern; `match(key)` is safe to call on every key of a scan."""

    __slots__ = ("_first", "_last", "_middle", "_min_len", "_star", "pattern")

    def __init__(self, pattern: bytes, nocase: bool = False) -> None:
        self.pattern = pattern
        if nocase or b"[" in pattern or b"\\" in pattern:
            specs = _specs_general(pattern, nocase)
        else:
            specs = _specs_simple(pattern)
        self._star = len(specs) > 1
        if self._star:  # consecutive stars leave empty middle segments: they match anywhere
            specs = [specs[0], *(x for x in specs[1:-1] if x[0]), specs[-1]]
        self._min_len = sum(x[0] for x in specs)
        cache: dict[bytes, re.Pattern[bytes]] = {}
        segments = [_Segment(x, cache) for x in specs]
        self._first = segments[0]
        self._last = segments[-1]
        self._middle = segments[1:-1]

    def match(self, s: bytes) -> bool:
        n = len(s)
        if n == 0:
            return not self.pattern  # Redis quirk: only the empty pattern matches b""
        if n < self._min_len:
            return False
        first = self._first
        if not self._star:
            return n == first.length and first.match_at(s, 0)
        if first.length and not first.match_at(s, 0):
            return False
        pos = first.length
        end = n - self._last.length
        if self._last.length and not self._last.match_at(s, end):
            return False
        for seg in self._middle:
            at = seg.search(s, pos, end)
            if at < 0:
                return False
            pos = at + seg.length
        return pos <= end


@lru_cache(maxsize=_COMPILE_CACHE_PATTERNS)
def _compile_cached(pattern: bytes, nocase: bool) -> Glob:
    return Glob(pattern, nocase)


def compile_glob(pattern: bytes, nocase: bool = False) -> Glob:
    """Compile once, match many times: cached, since SCAN calls repeat the same MATCH.

    Long patterns are compiled fresh each time so a few hostile ones cannot pin megabytes.
    """
    if len(pattern) > _CACHE_MAX_PATTERN_BYTES:
        return Glob(pattern, nocase)
    return _compile_cached(pattern, nocase)


def glob_match(pattern: bytes, s: bytes, nocase: bool = False) -> bool:
    """One-shot `stringmatchlen(pattern, s, nocase)`."""
    return compile_glob(pattern, nocase).match(s)
