"""liblzf's compressor and decompressor, as Redis builds them, in pure Python.

Redis compresses every RDB string over 20 bytes that LZF shrinks by at least 4 bytes (DUMP
payloads, FUNCTION DUMP, quicklist nodes); compressing step for step like liblzf 3.6 makes our
payloads byte-identical to redis-server's, and the decompressor reads theirs. Pure computation:
`lzf_decompress` raises ValueError on corrupt input, which callers report in their own words.
"""

from __future__ import annotations

# liblzf's parameters as Redis builds it (lzfP.h): a 2^16-slot hash table, VERY_FAST.
_HLOG = 16
_MAX_LIT = 1 << 5
_MAX_OFF = 1 << 13
_MAX_REF = (1 << 8) + (1 << 3)


def lzf_compress(data: bytes, out_len: int) -> bytes | None:
    """liblzf 3.6's lzf_compress, step for step, so our payloads are Redis' bytes: None when
    the result would not fit in `out_len` bytes. Liblzf leaves its hash table uninitialized
    (whatever the stack held); an empty slot here means "no match", which is what Redis' own
    output shows for the payloads checked in the tests."""
    in_len = len(data)
    if not in_len or not out_len:
        return None
    htab: dict[int, int] = {}
    out = bytearray(out_len + 3)
    op, ip, lit = 1, 0, 0  # out[op - lit - 1] is the current literal run's header
    hval = (data[0] << 8 | data[1]) if in_len > 1 else 0
    while ip < in_len - 2:
        hval = (hval << 8 | data[ip + 2]) & 0xFFFFFFFF
        slot = (((hval >> (24 - _HLOG)) - hval * 5) & 0xFFFFFFFF) & ((1 << _HLOG) - 1)
        ref = htab.get(slot, 0)
        htab[slot] = ip
        off = ip - ref - 1
        if (0 <= off < _MAX_OFF and ref > 0 and data[ref + 2] == data[ip + 2]
                and data[ref] == data[ip] and data[ref + 1] == data[ip + 1]):
            length = 2
            maxlen = min(in_len - ip - length, _MAX_REF)
            if op + 3 + 1 >= out_len and op - (not lit) + 3 + 1 >= out_len:
                return None
            out[op - lit - 1] = (lit - 1) & 0xFF  # stop run
            op -= not lit  # undo run if length is zero
            stopped = False
            if maxlen > 16:  # liblzf's 16 unrolled steps, without a bound check: a match
                for _ in range(16):  # may end one byte past maxlen, and must here too
                    length += 1
                    if data[ref + length] != data[ip + length]:
                        stopped = True
                        break
            while not stopped:
                length += 1
                stopped = length >= maxlen or data[ref + length] != data[ip + length]
            length -= 2  # the number of bytes, minus one
            ip += 1
            if length < 7:
                out[op] = (off >> 8) + (length << 5)
                op += 1
            else:
                out[op] = (off >> 8) + (7 << 5)
                out[op + 1] = length - 7
                op += 2
            out[op] = off & 0xFF
            op += 2  # and start a new run
            lit = 0
            ip += length + 1
            if ip >= in_len - 2:
                break
            ip -= 2  # VERY_FAST: hash the two positions before the next one
            hval = data[ip] << 8 | data[ip + 1]
            for _ in range(2):
                hval = (hval << 8 | data[ip + 2]) & 0xFFFFFFFF
                htab[(((hval >> (24 - _HLOG)) - hval * 5) & 0xFFFFFFFF)
                     & ((1 << _HLOG) - 1)] = ip
                ip += 1
        else:
            if op >= out_len:
                return None
            lit += 1
            out[op] = data[ip]
            op += 1
            ip += 1
            if lit == _MAX_LIT:
                out[op - lit - 1] = lit - 1
                lit = 0
                op += 1
    if op + 3 > out_len:
        return None
    while ip < in_len:
        lit += 1
        out[op] = data[ip]
        op += 1
        ip += 1
        if lit == _MAX_LIT:
            out[op - lit - 1] = lit - 1
            lit = 0
            op += 1
    out[op - lit - 1] = (lit - 1) & 0xFF  # end run
    op -= not lit
    return bytes(out[:op])


def lzf_decompress(data: bytes, size: int) -> bytes:
    """liblzf's lzf_decompress: literal runs (ctrl < 32: ctrl+1 bytes) and back references
    (length ctrl>>5, +next byte when 7; offset from the low 5 bits and the next byte)."""
    out = bytearray()
    i, end = 0, len(data)
    try:
        while i < end:
            ctrl = data[i]
            i += 1
            if ctrl < 32:
                out += data[i:i + ctrl + 1]
                if i + ctrl + 1 > end:
                    raise IndexError
                i += ctrl + 1
                continue
            length = ctrl >> 5
            if length == 7:
                length += data[i]
                i += 1
            ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
            i += 1
            if ref < 0:
                raise IndexError
            for _ in range(length + 2):  # may overlap what it copies: byte by byte
                out.append(out[ref])
                ref += 1
    except IndexError:
        raise ValueError("truncated or corrupt LZF data") from None
    if len(out) != size:
        raise ValueError("LZF data does not expand to the announced length")
    return bytes(out)
