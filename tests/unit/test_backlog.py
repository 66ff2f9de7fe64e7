"""The replication backlog ring: byte offsets, bounds, what a reconnecting follower can get."""

from jobcached.replication.backlog import Backlog, decode_commands, encode_command

SET = [b"SET", b"a", b"1"]
DEL = [b"DEL", b"a"]


def test_offsets_are_bytes_of_the_encoded_stream() -> None:
    backlog = Backlog(active=True)
    assert backlog.append(SET) == 0
    assert backlog.append(DEL) == len(encode_command(SET))
    assert backlog.offset == len(encode_command(SET)) + len(encode_command(DEL))
    assert backlog.since(0) == [SET, DEL]
    assert backlog.since(len(encode_command(SET))) == [DEL]
    assert backlog.since(backlog.offset) == []
    assert backlog.since(backlog.offset + 1) is None
    assert backlog.bytes_since(3) is None  # not where an effect starts


def test_encoding_round_trips() -> None:
    argv = [b"HSET", b"h", b"", b"\r\n\x00"]
    assert encode_command(argv) == b"*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$0\r\n\r\n$3\r\n\r\n\x00\r\n"
    assert decode_commands(encode_command(argv) * 2) == [argv, argv]


def test_bounded_by_bytes() -> None:
    size = len(encode_command([b"0000"]))
    backlog = Backlog(max_bytes=10 * size, active=True)
    for i in range(100):
        backlog.append([b"%04d" % i])
    assert len(backlog.chunks) == 10
    assert backlog.first_offset == 90 * size and backlog.histlen == 10 * size
    assert backlog.bytes_since(50 * size) is None
    assert backlog.since(95 * size) == [[b"%04d" % i] for i in range(95, 100)]
    assert backlog.last(2) == [[b"0098"], [b"0099"]]


def test_inactive_ring_counts_effects_but_keeps_none() -> None:
    backlog = Backlog()
    assert backlog.append(SET) == 0
    assert backlog.append(DEL) == 0
    assert backlog.count == 2 and not backlog.chunks and backlog.offset == 0
    assert backlog.since(0) is None  # a follower must sync in full
    backlog.activate()
    assert backlog.append(SET) == 0
    assert backlog.since(0) == [SET]


def test_feed_is_called_once_per_burst() -> None:
    calls: list[int] = []
    backlog = Backlog(active=True)
    backlog.feed = lambda: calls.append(backlog.offset)
    backlog.append(SET)
    backlog.append(DEL)
    assert calls == [len(encode_command(SET))]  # once, after the first effect
    assert decode_commands(backlog.take_unsent()) == [SET, DEL]
    backlog.append(DEL)
    assert len(calls) == 2 and backlog.take_unsent() == encode_command(DEL)


def test_a_promotion_keeps_the_old_history() -> None:
    backlog = Backlog(active=True)
    backlog.append(SET)
    old = backlog.replid
    backlog.new_history()
    assert backlog.replid2 == old and backlog.replid != old and len(backlog.replid) == 40
    assert backlog.second_offset == backlog.offset + 1
    backlog.reset("f" * 40, 1000)
    assert backlog.replid == "f" * 40 and backlog.offset == 1000 and backlog.histlen == 0
