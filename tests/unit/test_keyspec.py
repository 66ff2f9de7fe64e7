"""Key specifications (keyspec.py): where the keys are, without a server."""

from __future__ import annotations

from jobcached.commands.keyspec import KeySpec, after_keyword, at_index


def argv(*words: str) -> list[bytes]:
    return [w.encode() for w in words]


def test_index_and_range() -> None:
    (spec,) = at_index(1, "RW", "insert")
    assert spec.find(argv("JOB.PUSH", "q", "payload")) == [1]
    mset = KeySpec(("OW", "update"), index=1, lastkey=-1, keystep=2)
    assert mset.find(argv("MSET", "a", "1", "b", "2")) == [1, 3]
    assert KeySpec(("RW",), index=1, lastkey=1).find(argv("RENAME", "a")) is None


def test_keyword_forward_and_backward() -> None:
    (spec,) = after_keyword("QUEUES", "RW", lastkey=-1)
    assert spec.find(argv("JOB.FETCH", "COUNT", "2", "QUEUES", "a", "b")) == [4, 5]
    assert spec.find(argv("JOB.FETCH", "COUNT", "2")) == []
    migrate = KeySpec(("RW",), keyword="KEYS", startfrom=-2, lastkey=-1)
    assert migrate.find(argv("MIGRATE", "h", "p", "", "0", "5", "KEYS", "k1", "k2")) == [7, 8]


def test_keynum_and_limit() -> None:
    eval_spec = KeySpec(("RW",), index=2, keynum=True)
    assert eval_spec.find(argv("EVAL", "s", "2", "a", "b", "arg")) == [3, 4]
    assert eval_spec.find(argv("EVAL", "s", "3", "a")) is None
    assert eval_spec.find(argv("EVAL", "s", "x")) is None
    xread = KeySpec(("RO",), keyword="STREAMS", lastkey=-1, limit=2)
    assert xread.find(argv("XREAD", "STREAMS", "s1", "s2", "0", "0")) == [2, 3]


def test_reply_shape() -> None:
    (spec,) = after_keyword("QUEUE", "RO", "access")
    reply = spec.reply()
    assert reply[b"begin_search"] == {b"type": b"keyword",
                                      b"spec": {b"keyword": b"QUEUE", b"startfrom": 1}}
    assert reply[b"find_keys"] == {b"type": b"range",
                                   b"spec": {b"lastkey": 0, b"keystep": 1, b"limit": 0}}
