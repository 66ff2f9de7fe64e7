"""Redis' `long double` arithmetic, for INCRBYFLOAT and HINCRBYFLOAT.

Redis 7.0 parses both operands with `strtold`, adds them as a C `long double` (on x86-64 the x87
80-bit extended format: a 64-bit significand, normal exponents down to 2**-16382, subnormals
below that), and prints the sum with `"%.17Lf"` before trimming trailing zeros (`ld2string` in
LD_STR_HUMAN mode). The digits a client sees depend on that precision: in extended precision
10.5 + 0.1 prints as `10.6`, where a double would print `10.59999999999999964`.

Python has no long double, so values are exact `Fraction`s, rounded to the 64-bit significand
after every step exactly as the FPU does (round to nearest, ties to even). Infinities stay
Python floats. Operands are at most MAX_OPERAND_BYTES long, so the exact arithmetic is bounded
and fast (microseconds for the usual short numbers).
"""

from __future__ import annotations

import re
from fractions import Fraction

SIGNIFICAND_BITS = 64  # x87 extended precision: 64-bit significand with an explicit integer bit
MIN_NORMAL_EXP = -16382  # smallest normal value is 2**-16382; below it precision shrinks
OVERFLOW_EXP = 16384  # values at or above 2**16384 round to infinity
MAX_OPERAND_BYTES = 5 * 1024 - 1  # Redis' MAX_LONG_DOUBLE_CHARS buffer, minus its NUL
HUMAN_DECIMALS = 17  # "%.17Lf": digits printed after the decimal point before trimming
# Decimal magnitudes past these cannot be finite non-zero long doubles (max ~1.19e4932, min
# subnormal ~3.6e-4951); the margins keep the exact check for the borderline cases.
_DEC_TOO_BIG = 4940
_DEC_TOO_SMALL = -4970
_BIN_TOO_BIG = OVERFLOW_EXP + 8
_BIN_TOO_SMALL = MIN_NORMAL_EXP - SIGNIFICAND_BITS - 8
_INT_CHUNK_DIGITS = 4000  # int <-> str conversions stay under Python's 4300-digit guard

_DECIMAL = re.compile(rb"([+-]?)(?:([0-9]+)(?:\.([0-9]*))?|\.([0-9]+))(?:[eE]([+-]?[0-9]+))?")
_HEX = re.compile(
    rb"([+-]?)0[xX](?:([0-9a-fA-F]+)(?:\.([0-9a-fA-F]*))?|\.([0-9a-fA-F]+))(?:[pP]([+-]?[0-9]+))?")
_INFINITY = re.compile(rb"([+-]?)(?:inf|infinity)", re.IGNORECASE)

INF = float("inf")
ZERO = Fraction(0)
LongDouble = Fraction | float  # a finite value is a Fraction; float only for +-inf


def _round(q: Fraction) -> LongDouble:
    """q rounded to the nearest long double (ties to even); +-inf when it overflows."""
    if not q:
        return ZERO
    n, d = abs(q.numerator), q.denominator
    e = n.bit_length() - d.bit_length()  # floor(log2(n/d)) is e or e - 1
    if (n < d << e) if e >= 0 else (n << -e < d):
        e -= 1
    quantum = max(e, MIN_NORMAL_EXP) - (SIGNIFICAND_BITS - 1)
    num, den = (n, d << quantum) if quantum >= 0 else (n << -quantum, d)
    m, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and m & 1):
        m += 1
    if m.bit_length() + quantum > OVERFLOW_EXP:
        return INF if q > 0 else -INF
    value = Fraction(m << quantum) if quantum >= 0 else Fraction(m, 1 << -quantum)
    return value if q > 0 else -value


def _int(digits: bytes, base: int = 10) -> int:
    """int(digits) for long digit strings (Python refuses >4300 decimal digits in one go)."""
    if base != 10 or len(digits) <= _INT_CHUNK_DIGITS:
        return int(digits, base)
    value = 0
    for i in range(0, len(digits), _INT_CHUNK_DIGITS):
        chunk = digits[i : i + _INT_CHUNK_DIGITS]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def _digits(n: int) -> str:
    """str(n) for n >= 0 of any length."""
    if n < 10**_INT_CHUNK_DIGITS:
        return str(n)
    high, low = divmod(n, 10**_INT_CHUNK_DIGITS)
    return _digits(high) + str(low).zfill(_INT_CHUNK_DIGITS)


def _exponent(raw: bytes | None) -> int:
    """The exponent digits as an int; any exponent past 9 digits is far out of range anyway,
    so it is clamped (and a 5000-digit exponent never reaches int())."""
    if not raw:
        return 0
    negative = raw[:1] == b"-"
    digits = raw.lstrip(b"+-").lstrip(b"0")
    value = int(digits or b"0") if len(digits) <= 9 else 10**10
    return -value if negative else value


def parse(raw: bytes) -> LongDouble | None:
    """The value `strtold` gives for raw, or None where Redis' string2ld refuses it.

    Refused: empty or longer than MAX_OPERAND_BYTES, any space or trailing byte, NaN, and
    values that overflow (to infinity) or underflow all the way to zero. Accepted: decimal and
    hexadecimal (`0x1.8p3`) notation and `inf` / `infinity` in any case, with a sign.
    """
    if not raw or len(raw) > MAX_OPERAND_BYTES:
        return None
    m = _DECIMAL.fullmatch(raw)
    if m is not None:
        sign, whole, frac, only_frac, exp = m.groups()
        digits = ((whole or b"") + (frac or only_frac or b"")).lstrip(b"0")
        if not digits:
            return ZERO
        exponent = _exponent(exp) - len(frac or only_frac or b"")
        magnitude = len(digits) + exponent  # value < 10**magnitude
        if magnitude > _DEC_TOO_BIG or magnitude < _DEC_TOO_SMALL:
            return None
        n = _int(digits)
        exact = Fraction(n * 10**exponent) if exponent >= 0 else Fraction(n, 10**-exponent)
    else:
        m = _HEX.fullmatch(raw)
        if m is None:
            inf = _INFINITY.fullmatch(raw)
            if inf is None:
                return None
            return -INF if inf.group(1) == b"-" else INF
        sign, whole, frac, only_frac, exp = m.groups()
        digits = ((whole or b"") + (frac or only_frac or b"")).lstrip(b"0")
        if not digits:
            return ZERO
        exponent = _exponent(exp) - 4 * len(frac or only_frac or b"")
        n = _int(digits, 16)
        magnitude = n.bit_length() + exponent
        if magnitude > _BIN_TOO_BIG or magnitude < _BIN_TOO_SMALL:
            return None
        exact = Fraction(n << exponent) if exponent >= 0 else Fraction(n, 1 << -exponent)
    value = _round(-exact if sign == b"-" else exact)
    if isinstance(value, float) or not value:  # ERANGE: overflow, or underflow to zero
        return None
    return value


def add(a: LongDouble, b: LongDouble) -> Fraction | None:
    """a + b as the FPU computes it; None when the sum is NaN or infinite."""
    if isinstance(a, float) or isinstance(b, float):
        return None  # an infinite operand gives an infinite or NaN sum
    total = _round(a + b)
    return None if isinstance(total, float) else total


def is_finite(value: LongDouble) -> bool:
    return not isinstance(value, float)


def format_human(value: Fraction) -> bytes:
    """`"%.17Lf"` with trailing zeros (and a bare point) removed, `-0` shown as `0`."""
    scaled = round(abs(value) * 10**HUMAN_DECIMALS)  # round() on a Fraction: ties to even
    whole, frac = divmod(scaled, 10**HUMAN_DECIMALS)
    text = f"{_digits(whole)}.{frac:0{HUMAN_DECIMALS}d}".rstrip("0").rstrip(".")
    if value < 0 and text != "0":
        text = "-" + text
    return text.encode()
