"""Stream: ranges, deletes and trims agree with a naive sorted-list model; node boundaries and
the consumer-group counters follow Redis' rules."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from jobcached.cache.stream import (
    ENTRY_SLOT_BYTES,
    INVALID_READ,
    MAX_ID,
    NODE_BYTES,
    NODE_MAX_ENTRIES,
    SHARED_NAMES_MAX,
    STREAM_BASE_BYTES,
    Group,
    Nack,
    Stream,
    format_id,
    id_ms,
    make_id,
)

FIELDS = (b"f", b"v")

ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(1, 3)),
    st.tuples(st.just("del"), st.integers(0, 400)),
    st.tuples(st.just("maxlen"), st.integers(0, 300), st.booleans(), st.integers(0, 150)),
    st.tuples(st.just("minid"), st.integers(0, 400), st.booleans(), st.integers(0, 150)),
), max_size=60)


def grow(s: Stream, n: int) -> None:
    for _ in range(n):
        s.add(s.last_id + 1 + (len(s) % 3) * (1 << 64), FIELDS)


def ids(s: Stream) -> list[int]:
    return [sid for sid, _ in s.range(0, MAX_ID)]


def test_ids_pack_ms_and_seq_in_order() -> None:
    assert make_id(1, 0) > make_id(0, 2**64 - 1)
    assert format_id(make_id(5, 7)) == b"5-7"
    assert id_ms(make_id(123, 9)) == 123
    assert format_id(MAX_ID) == b"18446744073709551615-18446744073709551615"


def test_range_and_after() -> None:
    s = Stream()
    for ms in range(1, 11):
        s.add(make_id(ms, 0), (b"n", b"%d" % ms))
    assert [format_id(i) for i, _ in s.range(make_id(3, 0), make_id(5, 0))] == [b"3-0", b"4-0",
                                                                              b"5-0"]
    assert [i for i, _ in s.range(0, MAX_ID, count=2, reverse=True)] == [make_id(10, 0),
                                                                         make_id(9, 0)]
    assert s.range(make_id(5, 0), make_id(4, 0)) == []
    assert [i for i, _ in s.after(make_id(8, 0))] == [make_id(9, 0), make_id(10, 0)]
    assert s.after(s.last_id) == []


def test_nodes_split_every_hundred_entries_counting_deleted_ones() -> None:
    s = Stream()
    grow(s, NODE_MAX_ENTRIES)
    assert s.delete(ids(s)[5])
    grow(s, 1)
    assert len(s.nodes) == 2  # the first node is full although one of its entries is deleted
    assert s.delete(ids(s)[-1])
    assert len(s.nodes) == 1  # a node whose entries are all deleted goes


def test_approximate_trim_removes_whole_nodes_only() -> None:
    s = Stream()
    grow(s, 250)
    assert s.trim(maxlen=120, minid=None, approx=True, limit=10_000) == 100
    assert len(s) == 150
    assert s.trim(maxlen=120, minid=None, approx=False, limit=0) == 30
    assert s.trim(maxlen=0, minid=None, approx=True, limit=50) == 0  # LIMIT < a node


@settings(max_examples=150, derandomize=True, database=None)
@given(ops)
def test_entries_match_a_list_model(operations: list[tuple]) -> None:  # type: ignore[type-arg]
    s = Stream()
    model: list[int] = []
    for op in operations:
        if op[0] == "add":
            for _ in range(op[1] * 40):
                sid = s.last_id + 1
                s.add(sid, FIELDS)
                model.append(sid)
        elif op[0] == "del" and model:
            sid = model[op[1] % len(model)]
            assert s.get(sid) == list(FIELDS)
            assert s.delete(sid)
            assert not s.delete(sid) and s.get(sid) is None
            model.remove(sid)
        elif op[0] == "maxlen":
            removed = s.trim(op[1], None, op[2], op[3] if op[2] else 0)
            model = model[removed:]
            if not op[2]:
                assert len(model) <= op[1]
        elif op[0] == "minid" and model:
            minid = model[op[1] % len(model)]
            removed = s.trim(None, minid, op[2], op[3] if op[2] else 0)
            model = model[removed:]
            if not op[2]:
                assert not model or model[0] >= minid
        assert len(s) == sum(n.live for n in s.nodes.values()) == len(model)
        assert s.first_id() == (model[0] if model else 0)
        assert s.last_entry_id() == (model[-1] if model else 0)
    assert ids(s) == model
    assert [sid for sid, _ in s.range(0, MAX_ID, reverse=True)] == model[::-1]
    if model:
        lo, hi = model[len(model) // 3], model[2 * len(model) // 3]
        assert [sid for sid, _ in s.range(lo, hi, count=7)] == [
            m for m in model if lo <= m <= hi][:7]
        assert [sid for sid, _ in s.range(lo + 1, hi - 1, reverse=True)] == [
            m for m in model if lo < m < hi][::-1]
        assert [sid for sid, _ in s.range(lo, MAX_ID, count=150, reverse=True)] == [
            m for m in model if lo <= m][::-1][:150]


def test_lag_and_read_counter_follow_redis() -> None:
    s = Stream()
    g = Group(0, INVALID_READ)
    assert s.lag(g) == 0  # nothing ever added
    for ms in range(1, 6):
        s.add(make_id(ms, 0), FIELDS)
    assert s.lag(g) == 5  # 0-0 is before the first entry and nothing was deleted
    s.advance_group(g, make_id(1, 0))
    assert (g.entries_read, s.lag(g)) == (1, 4)
    s.delete(make_id(3, 0))
    assert s.has_tombstones_from(make_id(2, 0))
    s.advance_group(g, make_id(2, 0))
    assert g.entries_read == INVALID_READ  # a tombstone ahead: the counter cannot be known
    assert s.lag(g) is None
    s.advance_group(g, make_id(5, 0))
    assert (g.entries_read, s.lag(g)) == (5, 0)  # the last id's counter is entries_added


def test_copy_is_independent_and_keeps_groups() -> None:
    s = Stream()
    grow(s, 3)
    first = s.first_id()
    g = s.groups[b"g"] = Group(first, 1)
    c = g.consumer(b"c", 10)
    assert c is not None
    g.pel[first] = c.pel[first] = Nack(c, 10, 2)
    dup = s.copy()
    before = ids(s)
    s.delete(ids(s)[1])
    g.ack(first)
    grow(s, 1)  # the tail node's data is not shared either
    assert len(dup) == 3 and list(dup.groups[b"g"].pel) == [dup.first_id()]
    assert ids(dup) == before and dup.get(before[2]) == list(FIELDS)
    nack = dup.groups[b"g"].pel[dup.first_id()]
    assert nack.consumer is dup.groups[b"g"].consumers[b"c"] and nack.count == 2
    assert dup.struct_size() > s.struct_size()


def test_field_names_are_shared_and_memory_is_counted_exactly() -> None:
    s = Stream()
    empty = s.struct_size()
    assert empty == STREAM_BASE_BYTES
    for n in range(1, 3 * NODE_MAX_ENTRIES):
        fresh = bytes(bytearray(b"common"))  # a new object each time, as the parser gives
        fields = (fresh, b"v%d" % n) if n % 7 else (b"odd", b"x" * 300, fresh, b"y")
        s.add(make_id(n, 0), fields)
    common = [node.names for node in s.nodes.values() if node.names == (b"common",)]
    assert len(common) > 1 and len(set(map(id, common))) == 1  # one shared name tuple
    assert s.get(make_id(7, 0)) == [b"odd", b"x" * 300, b"common", b"y"]
    assert s.get(make_id(8, 0)) == [b"common", b"v8"]
    names_cost = s.struct_size() - empty - sum(
        NODE_BYTES + len(node.data) + ENTRY_SLOT_BYTES * node.live for node in s.nodes.values())
    assert names_cost > 0  # the shared tuple, counted once
    for sid in ids(s)[::3]:
        s.delete(sid)
    s.trim(maxlen=40, minid=None, approx=False, limit=0)
    assert s.struct_size() == empty + names_cost + sum(
        NODE_BYTES + len(node.data) + ENTRY_SLOT_BYTES * node.live for node in s.nodes.values())
    s.trim(maxlen=0, minid=None, approx=False, limit=0)
    assert s.struct_size() == empty + names_cost  # every node gone, the name table stays


def test_name_tuples_past_the_limit_are_stored_with_each_entry() -> None:
    s = Stream()
    for n in range(SHARED_NAMES_MAX + 5):
        for k in range(NODE_MAX_ENTRIES):  # one node per name
            s.add(make_id(n, k), (b"name%d" % n, b"v"))
    assert len(s._masters) == SHARED_NAMES_MAX
    assert s.nodes.peekitem(-1)[1].names is None
    assert s.get(make_id(SHARED_NAMES_MAX + 4, 3)) == [b"name%d" % (SHARED_NAMES_MAX + 4), b"v"]


def test_long_values_round_trip() -> None:
    s = Stream()
    values = [b"", b"a" * 127, b"b" * 128, b"c" * 20_000, bytes(range(256))]
    for n, value in enumerate(values, 1):
        s.add(make_id(n, 0), (b"f", value, b"g" * 200, value))
    assert [f for _, f in s.range(0, MAX_ID)] == [[b"f", v, b"g" * 200, v] for v in values]
