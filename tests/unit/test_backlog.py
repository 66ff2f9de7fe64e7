"""The replication backlog ring."""

from jobcached.replication.backlog import RECORD_OVERHEAD_BYTES, Backlog


def test_offsets_and_since() -> None:
    backlog = Backlog(active=True)
    assert backlog.append([b"SET", b"a", b"1"]) == 0
    assert backlog.append([b"DEL", b"a"]) == 1
    assert backlog.since(0) == [[b"SET", b"a", b"1"], [b"DEL", b"a"]]
    assert backlog.since(1) == [[b"DEL", b"a"]]
    assert backlog.since(2) == []
    assert backlog.since(3) is None


def test_bounded_by_bytes() -> None:
    backlog = Backlog(max_bytes=10 * (RECORD_OVERHEAD_BYTES + 4), active=True)
    for i in range(100):
        backlog.append([b"%04d" % i])
    assert len(backlog.records) == 10
    assert backlog.first_offset == 90
    assert backlog.since(50) is None
    assert backlog.since(95) == [[b"%04d" % i] for i in range(95, 100)]


def test_inactive_ring_counts_effects_but_keeps_none() -> None:
    backlog = Backlog()
    assert backlog.append([b"SET", b"a", b"1"]) == 0
    assert backlog.append([b"DEL", b"a"]) == 1
    assert not backlog.records and backlog.size == 0
    assert backlog.first_offset == backlog.next_offset == 2
    assert backlog.since(0) is None  # a follower must sync in full
    backlog.activate()
    assert backlog.append([b"SET", b"b", b"2"]) == 2
    assert backlog.since(2) == [[b"SET", b"b", b"2"]]
