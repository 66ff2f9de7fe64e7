"""Stream: ranges, deletes and trims agree with a naive sorted-list model; node boundaries and
the consumer-group counters follow Redis' rules."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from jobcached.cache.memory import item_size
from jobcached.cache.stream import (
    INVALID_READ,
    MAX_ID,
    NODE_MAX_ENTRIES,
    SHARED_NAME_SLOT_BYTES,
    SHARED_NAMES_MAX,
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
    s.delete(s.ids[5])
    grow(s, 1)
    assert len(s.nodes) == 2  # the first node is full although one of its entries is deleted
    for sid in list(s.ids)[-1:]:
        s.delete(sid)
    assert len(s.nodes) == 1  # a node whose entries are all deleted goes


def test_approximate_trim_removes_whole_nodes_only() -> None:
    s = Stream()
    grow(s, 250)
    assert len(s.trim(maxlen=120, minid=None, approx=True, limit=10_000)) == 100
    assert len(s) == 150
    assert len(s.trim(maxlen=120, minid=None, approx=False, limit=0)) == 30
    assert len(s.trim(maxlen=0, minid=None, approx=True, limit=50)) == 0  # LIMIT < a node


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
            assert s.delete(sid) == FIELDS
            model.remove(sid)
        elif op[0] == "maxlen":
            removed = s.trim(op[1], None, op[2], op[3] if op[2] else 0)
            model = model[len(removed):]
            if not op[2]:
                assert len(model) <= op[1]
        elif op[0] == "minid" and model:
            minid = model[op[1] % len(model)]
            removed = s.trim(None, minid, op[2], op[3] if op[2] else 0)
            model = model[len(removed):]
            if not op[2]:
                assert not model or model[0] >= minid
        assert list(s.ids) == model
        assert set(s.entries) == set(model)
        assert sum(n.live for n in s.nodes.values()) == len(model)


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
    g = s.groups[b"g"] = Group(s.ids[0], 1)
    c = g.consumer(b"c", 10)
    assert c is not None
    g.pel[s.ids[0]] = c.pel[s.ids[0]] = Nack(c, 10, 2)
    dup = s.copy()
    s.delete(s.ids[1])
    g.ack(s.ids[0])
    assert len(dup) == 3 and list(dup.groups[b"g"].pel) == [dup.ids[0]]
    nack = dup.groups[b"g"].pel[dup.ids[0]]
    assert nack.consumer is dup.groups[b"g"].consumers[b"c"] and nack.count == 2
    assert dup.struct_size() > s.struct_size()


def test_field_names_are_shared_and_memory_stays_exact() -> None:
    s = Stream()
    for n in range(1, SHARED_NAMES_MAX + 50):
        name = b"name%d" % (n % (SHARED_NAMES_MAX + 20))  # more names than the table keeps
        fresh = bytes(bytearray(b"common"))  # a new object each time, as the parser gives
        s.add(make_id(n, 0), (name, b"v%d" % n, fresh, b"x"))
    a, b = s.entries[make_id(1, 0)], s.entries[make_id(2, 0)]
    assert a[2] is b[2]  # one `common` object for every entry
    for sid in list(s.ids)[::3]:
        s.delete(sid)
    s.trim(maxlen=40, minid=None, approx=False, limit=0)
    table = sum(item_size(k) + SHARED_NAME_SLOT_BYTES for k in s._names)
    entries = 0
    for fields in s.entries.values():
        own_names = [f for f in fields[::2] if s._names.get(f) is not f]
        entries += sum(map(item_size, own_names)) + sum(map(item_size, fields[1::2]))
    assert s._nbytes == table + entries
