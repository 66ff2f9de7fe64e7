"""LCS: the longest common subsequence of two strings, as Redis 7.0's lcsCommand computes it.

Redis fills the dynamic-programming table LCS(i, j) (the length for the prefixes a[:i], b[:j])
and walks back from (len a, len b): on a match it takes the byte, otherwise it drops a byte of
`a` when LCS(i-1, j) > LCS(i, j-1) and a byte of `b` otherwise. The walk decides which
subsequence and which IDX ranges come out (ranges are reported from the end of the strings to
their start), so it is reproduced step for step.

The table is not stored cell by cell: each row i is one bit vector over b (Hyyro's
bit-parallel LCS), bit j clear when LCS(i, j+1) = LCS(i, j) + 1. A row follows from the one
before in a few big-integer operations, and LCS(i, j) is j minus the set bits below j. That
costs len(a) * len(b) / 8 bytes and C-speed word operations instead of a Python loop per cell.
Tables past LCS_MAX_CELLS cells are refused, as Redis refuses one it cannot allocate.
"""

from __future__ import annotations

from typing import Any

from jobcached.commands.args import to_int
from jobcached.commands.registry import READONLY, command
from jobcached.errors import CommandError, SyntaxErr
from jobcached.server.session import Session

#: The largest table, (len a + 1) * (len b + 1) cells: 32 MB of rows, well under a second.
LCS_MAX_CELLS = 1 << 28


def _rows(a: bytes, b: bytes) -> list[int]:
    """Row bit vectors V_0 .. V_len(a) (see the module docstring)."""
    full = (1 << len(b)) - 1
    matches: dict[int, int] = {}
    for j, byte in enumerate(b):
        matches[byte] = matches.get(byte, 0) | (1 << j)
    row = full
    rows = [row]
    for byte in a:
        u = row & matches.get(byte, 0)
        row = ((row + u) | (row - u)) & full
        rows.append(row)
    return rows


def _cell(rows: list[int], i: int, j: int) -> int:
    """LCS(i, j): the length of the LCS of a[:i] and b[:j]."""
    return j - (rows[i] & ((1 << j) - 1)).bit_count()


def _walk(a: bytes, b: bytes, rows: list[int], minmatchlen: int,
          withmatchlen: bool) -> tuple[bytes, list[list[Any]]]:
    """Redis' walk back through the table: the subsequence, and the matched ranges
    [[a start, a end], [b start, b end](, length)] of at least `minmatchlen` bytes."""
    alen = len(a)
    i, j = alen, len(b)
    out = bytearray()
    matches: list[list[Any]] = []
    a_start = alen  # alen: no range open
    a_end = b_start = b_end = 0
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            out.append(a[i - 1])
            if a_start == alen:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            i -= 1
            j -= 1
        else:
            if _cell(rows, i - 1, j) > _cell(rows, i, j - 1):
                i -= 1
            else:
                j -= 1
            if a_start != alen:
                emit = True
        if emit:
            length = a_end - a_start + 1
            if minmatchlen == 0 or length >= minmatchlen:
                match: list[Any] = [[a_start, a_end], [b_start, b_end]]
                if withmatchlen:
                    match.append(length)
                matches.append(match)
            a_start = alen
    out.reverse()
    return bytes(out), matches


@command("LCS", arity=-3, flags=READONLY, group="string", keys=(1, 2, 1))
def lcs(s: Session, argv: list[bytes]) -> Any:
    """LCS key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]

    The longest common subsequence of the two strings (a missing key is an empty string). LEN:
    only its length. IDX: the matched ranges, from the end of the strings backwards, each as
    [[start1, end1], [start2, end2]], followed by its length with WITHMATCHLEN; MINMATCHLEN
    drops ranges shorter than that.

    Reply: bulk string; with LEN, integer; with IDX, a map (RESP2: flat array) of `matches`
    and `len`.
    Errors: `The specified keys must contain string values`; `If you want both the length and
    indexes, please just use IDX.`; `syntax error`; not an integer; `Insufficient memory,
    failed allocating transient memory for LCS` (a table over 2**28 cells).
    """
    ks = s.keyspace
    values = [ks.lookup_read(argv[1]), ks.lookup_read(argv[2])]
    if any(v is not None and type(v) is not bytes for v in values):
        raise CommandError("The specified keys must contain string values")
    a, b = (v or b"" for v in values)
    getlen = getidx = withmatchlen = False
    minmatchlen = 0
    j = 3
    while j < len(argv):
        option = argv[j].upper()
        if option == b"IDX":
            getidx = True
        elif option == b"LEN":
            getlen = True
        elif option == b"WITHMATCHLEN":
            withmatchlen = True
        elif option == b"MINMATCHLEN" and j + 1 < len(argv):
            minmatchlen = max(to_int(argv[j + 1]), 0)
            j += 1
        else:
            raise SyntaxErr()
        j += 1
    if getidx and getlen:
        raise CommandError("If you want both the length and indexes, please just use IDX.")
    if (len(a) + 1) * (len(b) + 1) > LCS_MAX_CELLS:
        raise CommandError("Insufficient memory, failed allocating transient memory for LCS")
    rows = _rows(a, b)
    length = _cell(rows, len(a), len(b))
    if getlen:
        return length
    common, matches = _walk(a, b, rows, minmatchlen, withmatchlen)
    if getidx:
        return {b"matches": matches, b"len": length}
    return common
