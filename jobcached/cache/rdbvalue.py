"""A key's value in Redis 7.0's RDB serialization: what DUMP writes and RESTORE reads.

A payload's fragment is one type byte and the value's encoding (src/rdb.c, rdbSaveObjectType /
rdbSaveObject / rdbLoadObject). We write what Redis 7.0 writes for the encoding it would use
for the same content (the thresholds OBJECT ENCODING reports, cache/iteration.py):

  string   STRING (0)                  list   LIST_QUICKLIST_2 (18): listpack nodes of <= 8 KB
  set      SET_INTSET (11) or SET (2)  hash   HASH_LISTPACK (16) or HASH (4)
  zset     ZSET_LISTPACK (17) or ZSET_2 (5: highest score first, binary doubles)
  stream   STREAM_LISTPACKS_2 (19), in rdbstream.py

and read every type Redis 7.0 reads, including the older ones (plain LIST 1, LIST_ZIPLIST 10,
LIST_QUICKLIST 14 with ziplist nodes, HASH_ZIPMAP 9, HASH_ZIPLIST 13, ZSET 3 with text
doubles, ZSET_ZIPLIST 12, STREAM_LISTPACKS 15). Module types are refused.

Where the bytes can differ from redis-server's for the same content: hash-table encodings
(SET 2, HASH 4) list members in Redis' dict order, which we cannot know; a list whose nodes
Redis split or merged by edits in the middle has other node boundaries. The content is the
same either way.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from jobcached.cache import rdbstream
from jobcached.cache.iteration import (
    HASH_LISTPACK_MAX_ENTRIES,
    INTSET_MAX_ENTRIES,
    LISTPACK_MAX_VALUE_BYTES,
    ZSET_LISTPACK_MAX_ENTRIES,
)
from jobcached.cache.listpack import (
    as_int,
    intset_decode,
    intset_encode,
    lp_build,
    lp_decode,
    lp_encode,
    lp_entry,
    ziplist_decode,
    zipmap_decode,
)
from jobcached.cache.rdbformat import (
    RdbError,
    Reader,
    d2string,
    save_double,
    save_len,
    save_string,
)
from jobcached.cache.stream import Stream
from jobcached.cache.zset import ZSet

(TYPE_STRING, TYPE_LIST, TYPE_SET, TYPE_ZSET, TYPE_HASH, TYPE_ZSET_2) = range(6)
TYPE_HASH_ZIPMAP, TYPE_LIST_ZIPLIST, TYPE_SET_INTSET, TYPE_ZSET_ZIPLIST = 9, 10, 11, 12
TYPE_HASH_ZIPLIST, TYPE_LIST_QUICKLIST, TYPE_STREAM_LISTPACKS = 13, 14, 15
TYPE_HASH_LISTPACK, TYPE_ZSET_LISTPACK, TYPE_LIST_QUICKLIST_2 = 16, 17, 18
TYPE_STREAM_LISTPACKS_2 = 19
QUICKLIST_NODE_PLAIN, QUICKLIST_NODE_PACKED = 1, 2
QUICKLIST_NODE_MAX_BYTES = 8192  # list-max-listpack-size -2
_ZIPLIST_MAX_LEN = 254  # a ziplist entry's previous-length field grows past this
_ZIPLIST_MID_LEN = 64
_ZIPLIST_BIG_LEN = 16384


# ---- writing ------------------------------------------------------------------------------------
def dump_value(value: Any) -> bytes:
    """The fragment of a DUMP payload: type byte and encoded value."""
    cls = type(value)
    if cls is bytes:
        return bytes([TYPE_STRING]) + save_string(value)
    if cls is deque:
        return bytes([TYPE_LIST_QUICKLIST_2]) + _dump_list(value)
    if cls is set:
        return _dump_set(value)
    if cls is dict:
        return _dump_hash(value)
    if cls is ZSet:
        return _dump_zset(value)
    if cls is Stream:
        return bytes([TYPE_STREAM_LISTPACKS_2]) + rdbstream.dump_stream(value)
    raise TypeError(f"cannot serialize {cls.__name__}")


def _node_allows(node_bytes: int, size: int) -> bool:
    """_quicklistNodeAllowInsert under fill -2: the listpack stays within 8 KB, counting the
    element's bytes and a ziplist-sized overhead estimate."""
    overhead = 1 if size < _ZIPLIST_MAX_LEN else 5
    overhead += 1 if size < _ZIPLIST_MID_LEN else 2 if size < _ZIPLIST_BIG_LEN else 5
    return node_bytes + size + overhead <= QUICKLIST_NODE_MAX_BYTES


def _dump_list(items: deque[bytes]) -> bytes:
    """Quicklist nodes as RPUSH builds them: each a listpack saved as an RDB string."""
    nodes: list[list[bytes]] = []
    current: list[bytes] = []
    current_bytes = 0
    for item in items:
        if current and not _node_allows(current_bytes, len(item)):
            nodes.append(current)
            current, current_bytes = [], 0
        entry = lp_entry(item)
        current.append(entry)
        current_bytes = (current_bytes or 7) + len(entry)  # 7: header and end marker
    if current:
        nodes.append(current)
    out = [save_len(len(nodes))]
    for node in nodes:
        out.append(save_len(QUICKLIST_NODE_PACKED))
        out.append(save_string(lp_build(node)))
    return b"".join(out)


def _dump_set(members: set[bytes]) -> bytes:
    if len(members) <= INTSET_MAX_ENTRIES:
        ints = [as_int(m) for m in members]
        if all(v is not None for v in ints):
            return bytes([TYPE_SET_INTSET]) + save_string(intset_encode(ints))  # type: ignore[arg-type]
    return (bytes([TYPE_SET]) + save_len(len(members))
            + b"".join(save_string(m) for m in members))


def _dump_hash(fields: dict[bytes, bytes]) -> bytes:
    if len(fields) <= HASH_LISTPACK_MAX_ENTRIES and all(
            len(k) <= LISTPACK_MAX_VALUE_BYTES and len(v) <= LISTPACK_MAX_VALUE_BYTES
            for k, v in fields.items()):
        flat = [x for pair in fields.items() for x in pair]
        return bytes([TYPE_HASH_LISTPACK]) + save_string(lp_encode(flat))
    out = [bytes([TYPE_HASH]), save_len(len(fields))]
    for k, v in fields.items():
        out += (save_string(k), save_string(v))
    return b"".join(out)


def _dump_zset(zset: ZSet) -> bytes:
    if len(zset) <= ZSET_LISTPACK_MAX_ENTRIES and all(
            len(m) <= LISTPACK_MAX_VALUE_BYTES for m in zset.members()):
        flat = [x for m, score in zset.items() for x in (m, d2string(score))]
        return bytes([TYPE_ZSET_LISTPACK]) + save_string(lp_encode(flat))
    out = [bytes([TYPE_ZSET_2]), save_len(len(zset))]
    for member, score in zset.items(reverse=True):
        out += (save_string(member), save_double(score))
    return b"".join(out)


# ---- reading ------------------------------------------------------------------------------------
def load_value(fragment: bytes) -> Any:
    """The value of a DUMP fragment; RdbError when it is not one Redis 7.0 would load."""
    reader = Reader(fragment)
    kind = reader.byte()
    loader = _LOADERS.get(kind)
    if loader is None:
        raise RdbError(f"unknown value type {kind}")
    value = loader(reader)
    if type(value) is not Stream and type(value) is not bytes and not value:
        raise RdbError("empty value")  # Redis refuses empty containers ("Empty keys")
    return value


def _pairs(items: list[bytes]) -> list[tuple[bytes, bytes]]:
    if len(items) % 2:
        raise RdbError("odd number of elements in a map encoding")
    return list(zip(items[::2], items[1::2], strict=True))


def _load_string(r: Reader) -> bytes:
    return r.string()


def _load_list(r: Reader) -> deque[bytes]:
    return deque(r.string() for _ in range(r.length()))


def _load_list_ziplist(r: Reader) -> deque[bytes]:
    return deque(ziplist_decode(r.string()))


def _load_quicklist(r: Reader) -> deque[bytes]:
    out: deque[bytes] = deque()
    for _ in range(r.length()):
        blob = r.string()
        items = ziplist_decode(blob)
        if not items:
            raise RdbError("empty quicklist node")
        out.extend(items)
    return out


def _load_quicklist_2(r: Reader) -> deque[bytes]:
    out: deque[bytes] = deque()
    for _ in range(r.length()):
        container = r.length()
        blob = r.string()
        if container == QUICKLIST_NODE_PLAIN:
            out.append(blob)
            continue
        if container != QUICKLIST_NODE_PACKED:
            raise RdbError("bad quicklist container")
        items = lp_decode(blob)
        if not items:
            raise RdbError("empty quicklist node")
        out.extend(items)
    return out


def _load_set(r: Reader) -> set[bytes]:
    n = r.length()
    members = {r.string() for _ in range(n)}
    if len(members) != n:
        raise RdbError("duplicate set member")
    return members


def _load_intset(r: Reader) -> set[bytes]:
    return set(intset_decode(r.string()))


def _hash_of(items: list[bytes]) -> dict[bytes, bytes]:
    pairs = _pairs(items)
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise RdbError("duplicate hash field")
    return fields


def _load_hash(r: Reader) -> dict[bytes, bytes]:
    n = r.length()
    return _hash_of([r.string() for _ in range(2 * n)])


def _load_hash_zipmap(r: Reader) -> dict[bytes, bytes]:
    return _hash_of(zipmap_decode(r.string()))


def _load_hash_ziplist(r: Reader) -> dict[bytes, bytes]:
    return _hash_of(ziplist_decode(r.string()))


def _load_hash_listpack(r: Reader) -> dict[bytes, bytes]:
    return _hash_of(lp_decode(r.string()))


def _score(text: bytes) -> float:
    try:
        score = float(text)
    except ValueError:
        raise RdbError("bad score") from None
    if score != score:
        raise RdbError("NaN score")
    return score


def _zset_of(pairs: list[tuple[bytes, float]]) -> ZSet:
    scores = dict(pairs)
    if len(scores) != len(pairs) or any(score != score for score in scores.values()):
        raise RdbError("duplicate member or NaN score")
    return ZSet(scores)


def _load_zset(r: Reader) -> ZSet:
    return _zset_of([(r.string(), r.text_double()) for _ in range(r.length())])


def _load_zset_2(r: Reader) -> ZSet:
    return _zset_of([(r.string(), r.binary_double()) for _ in range(r.length())])


def _load_zset_packed(items: list[bytes]) -> ZSet:
    return _zset_of([(m, _score(s)) for m, s in _pairs(items)])


def _load_zset_ziplist(r: Reader) -> ZSet:
    return _load_zset_packed(ziplist_decode(r.string()))


def _load_zset_listpack(r: Reader) -> ZSet:
    return _load_zset_packed(lp_decode(r.string()))


def _load_stream(r: Reader) -> Stream:
    return rdbstream.load_stream(r, version_2=False)


def _load_stream_2(r: Reader) -> Stream:
    return rdbstream.load_stream(r, version_2=True)


_LOADERS = {
    TYPE_STRING: _load_string,
    TYPE_LIST: _load_list,
    TYPE_SET: _load_set,
    TYPE_ZSET: _load_zset,
    TYPE_HASH: _load_hash,
    TYPE_ZSET_2: _load_zset_2,
    TYPE_HASH_ZIPMAP: _load_hash_zipmap,
    TYPE_LIST_ZIPLIST: _load_list_ziplist,
    TYPE_SET_INTSET: _load_intset,
    TYPE_ZSET_ZIPLIST: _load_zset_ziplist,
    TYPE_HASH_ZIPLIST: _load_hash_ziplist,
    TYPE_LIST_QUICKLIST: _load_quicklist,
    TYPE_STREAM_LISTPACKS: _load_stream,
    TYPE_HASH_LISTPACK: _load_hash_listpack,
    TYPE_ZSET_LISTPACK: _load_zset_listpack,
    TYPE_LIST_QUICKLIST_2: _load_quicklist_2,
    TYPE_STREAM_LISTPACKS_2: _load_stream_2,
}
