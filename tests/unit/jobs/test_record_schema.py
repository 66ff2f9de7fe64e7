"""The WAL record schema (jobs/records.py): every kind round-trips at its current version, every
older version is upgraded, the sample logs of older formats replay to the state they described,
and a record from a newer build is refused rather than misread."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobcached.clock import ManualClock
from jobcached.errors import WalError, WalVersionError
from jobcached.jobs import records
from jobcached.jobs.engine import JobEngine
from jobcached.jobs.model import Job, State
from jobcached.jobs.records import (
    JOB,
    KINDS,
    PUT,
    Field,
    Kind,
    decode_record,
    encode_record,
    put_record,
)
from jobcached.persistence.wal import Wal

SAMPLES = Path(__file__).parents[2] / "data" / "wal"

_SCALARS: dict[type, st.SearchStrategy[Any]] = {
    str: st.text(max_size=8),
    int: st.integers(min_value=-(2**63), max_value=2**64 - 1),
    bytes: st.binary(max_size=8),
    bool: st.booleans(),
    type(None): st.none(),
}
_LEAF = st.one_of(*_SCALARS.values())
_STRATEGIES: dict[type, st.SearchStrategy[Any]] = {
    **_SCALARS,
    list: st.lists(_LEAF, max_size=3).map(tuple),  # arrays decode as tuples
    dict: st.dictionaries(st.text(max_size=5), _LEAF, max_size=3),
}


def _value(f: Field) -> st.SearchStrategy[Any]:
    types = f.type if isinstance(f.type, tuple) else (f.type,)
    return st.one_of(*[_STRATEGIES[t] for t in types])


_JOB_FIELDS = st.tuples(*[_value(f) for f in JOB])


def _record(kind: Kind) -> st.SearchStrategy[dict[str, Any] | tuple[Any, ...]]:
    """A record of `kind` as the engine holds it in memory (and as decode gives it back)."""
    if kind.name == PUT:
        return _JOB_FIELDS.map(lambda fields: tuple(put_record(fields)))
    values = [_JOB_FIELDS if f.name == "job" else _value(f) for f in kind.fields]
    return st.tuples(*values).map(
        lambda v: {"op": kind.name, **dict(zip(kind.names, v, strict=True))})


ANY_RECORD = st.sampled_from(sorted(KINDS)).flatmap(lambda name: _record(KINDS[name]))


def _v1(record: dict[str, Any] | tuple[Any, ...]) -> bytes:
    """The same record as the unversioned format (version 1) wrote it."""
    if isinstance(record, dict):
        return msgpack.packb(record, use_bin_type=True)
    return msgpack.packb([PUT, *record[2:]], use_bin_type=True)


@settings(max_examples=300, deadline=None)
@given(ANY_RECORD)
def test_every_kind_round_trips_at_its_current_version(record: Any) -> None:
    body = encode_record(record)
    assert msgpack.unpackb(body)[:2] == [_op(record), KINDS[_op(record)].version]
    assert decode_record(body) == record


@settings(max_examples=300, deadline=None)
@given(ANY_RECORD)
def test_every_version_1_record_is_upgraded(record: Any) -> None:
    assert decode_record(_v1(record)) == record


def test_version_2_is_version_1_in_declared_order() -> None:
    """While a kind is at version 2, its declared fields are its version-1 map's (history)."""
    for kind in KINDS.values():
        if kind.version == 2 and kind.name != PUT:
            assert kind.names == records.V1_FIELDS[kind.name]
    assert set(records.V1_FIELDS) == set(KINDS) - {PUT}


def test_a_version_bump_decodes_older_records_through_its_upgrade(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """How the next layout change works: `due` version 3 adds a field; its version-2 records
    (and version-1 maps, through both steps) are upgraded by the registered function."""
    due3 = Kind("due", 3, (*KINDS["due"].fields, Field("why", str)))

    def upgrade_due_v2_to_v3(r: tuple[Any, ...]) -> tuple[Any, ...]:
        return ("due", 3, *r[2:], "timer")

    monkeypatch.setitem(records.KINDS, "due", due3)
    monkeypatch.setitem(records.UPGRADES, ("due", 2), upgrade_due_v2_to_v3)
    monkeypatch.setitem(records._DECODING, "due", records._decoding(due3))
    monkeypatch.setitem(records._ENCODING, "due", records._encoding(due3))
    expected = {"op": "due", "id": "j", "now": 7, "why": "timer"}
    assert decode_record(msgpack.packb(["due", 2, "j", 7])) == expected
    assert decode_record(msgpack.packb({"op": "due", "id": "j", "now": 7})) == expected
    assert decode_record(encode_record({**expected, "why": "parent"}))["why"] == "parent"
    monkeypatch.delitem(records.UPGRADES, ("due", 2))
    with pytest.raises(WalVersionError, match="no upgrade of WAL record due from version 2"):
        decode_record(msgpack.packb(["due", 2, "j", 7]))


def _op(record: Any) -> str:
    return str(record[0] if isinstance(record, tuple) else record["op"])


# ---------------------------------------------------------------- refused records

def test_a_record_from_a_newer_version_is_refused() -> None:
    lease = {"op": "lease", "id": "j", "now": 1, "worker": "w", "token": "t", "deadline": 2}
    body = encode_record(lease)
    newer = msgpack.packb(["lease", 3, *msgpack.unpackb(body)[2:]])
    with pytest.raises(WalVersionError, match=r"lease is version 3; this build reads versions "
                                              r"up to 2: refusing to start"):
        decode_record(newer)
    with pytest.raises(WalVersionError, match="unknown kind 'lease-v9'"):
        decode_record(msgpack.packb(["lease-v9", 1, "j"]))
    with pytest.raises(WalVersionError, match="version 0"):
        decode_record(msgpack.packb(["due", 0, "j", 1]))


def test_malformed_records_are_refused() -> None:
    with pytest.raises(WalError, match="has 1 fields; the schema has 2"):
        decode_record(msgpack.packb(["due", 2, "j"]))
    with pytest.raises(WalVersionError, match="25 job fields"):  # a development layout
        decode_record(msgpack.packb([PUT, *put_record(["x"] * 30)[2:27]]))
    with pytest.raises(WalVersionError, match="lacks field 'now'"):
        decode_record(msgpack.packb({"op": "due", "id": "j"}))
    with pytest.raises(WalVersionError, match="not a record"):
        decode_record(msgpack.packb(7))


def test_replay_of_a_log_with_a_newer_record_stops_before_applying_it(tmp_path: Path) -> None:
    """What the server does at start: decoding raises, so nothing past it is applied."""
    wal = Wal(str(tmp_path))
    list(wal.replay())
    wal.open_for_append()
    engine = JobEngine(ManualClock(), sink=lambda body: wal.write_batch([body]))
    engine.push("q", b"p")
    wal.write_batch([msgpack.packb(["put", 3, "future"])])
    wal.close()
    fresh = JobEngine(ManualClock())
    with pytest.raises(WalVersionError, match="put is version 3"):
        fresh.replay(map(decode_record, Wal(str(tmp_path)).replay()))


# ---------------------------------------------------------------- sample logs

def _replay_sample(name: str, tmp_path: Path) -> JobEngine:
    """Replay a committed sample (a copy: replay may fix a torn tail in place)."""
    path = tmp_path / name
    shutil.copytree(SAMPLES / name, path)
    engine = JobEngine(ManualClock(1_700_000_100_000))
    engine.replay(map(decode_record, Wal(str(path)).replay()))
    assert engine.skipped_records == 0
    return engine


def _tally(engine: JobEngine) -> Counter[tuple[str, str]]:
    return Counter((job.queue, job.state.value) for job in engine.jobs.values())


def _common_expectations(engine: JobEngine) -> None:
    """What both samples hold (see tests/data/wal/make_samples.py)."""
    jobs = engine.jobs
    restored = jobs["01HF7YAT00CX0PM1Q9NE2T1F61"]
    assert (restored.state, restored.result, restored.attempt) == (State.SUCCEEDED, b"sent", 1)
    assert restored.logs == [b"starting", b"halfway"]
    retried = jobs["01HF7YAT00CX0PM1Q9NE2T1F62"]
    assert (retried.state, retried.attempt) == (State.QUEUED, 1)
    assert [(e["type"], e["message"], e["trace"]) for e in retried.errors] == [
        ("IOError", "SMTP down", "trace\nline 2")]
    assert jobs["01HF7YAT00CX0PM1Q9NE2T1F64"].retry_base == 0
    child = jobs["01HF7YAT00CX0PM1Q9NE2T1F67"]
    assert (child.state, child.parents) == (State.QUEUED, ("01HF7YAT00CX0PM1Q9NE2T1F61",))
    assert "01HF7YAT00CX0PM1Q9NE2T1F63" not in jobs  # deleted
    assert "01HF7YAT00CX0PM1Q9NE2T1F65" not in jobs  # archived, its key still answers
    key = engine.keys.archived["report-2023-11"]
    assert key[:2] == ("01HF7YAT00CX0PM1Q9NE2T1F65", 1_700_086_400_000)
    member = jobs["01HF7YAT00CX0PM1Q9NE2T1F6A"]
    assert (member.state, member.batch) == (State.SUCCEEDED, "01HF7YAT00CX0PM1Q9NE2T1F68")
    batch = engine.batches.get("01HF7YAT00CX0PM1Q9NE2T1F68")
    assert batch is not None and batch.committed
    assert batch.fired == {"complete": 1_700_000_000_010, "success": 1_700_000_000_010}
    assert batch.archived[State.SUCCEEDED] == 1
    callbacks = {jobs[i].meta["callback"] for i in ("01HF7YAT0AENR1RCWMCH3KT89B",
                                                     "01HF7YAT0AENR1RCWMCH3KT89C")}
    assert callbacks == {"complete", "success"}
    entry = engine.crons.get("nightly")
    assert entry is not None and entry.expr == "*/10 * * * * *"
    assert (entry.last_slot, entry.last_job) == (1_700_000_010_000, "01HF7YB4R264P3ZE0X4W3EAN16")
    assert entry.options == {"priority": 1, "retries": 2}
    assert engine.queues["frozen"].paused and not engine.queues["emails"].paused


def test_sample_log_replays_to_its_state(tmp_path: Path) -> None:
    engine = _replay_sample("log", tmp_path)
    assert _tally(engine) == {("emails", "queued"): 3, ("callbacks", "queued"): 2,
                              ("reports", "queued"): 1, ("batchq", "succeeded"): 1,
                              ("cronq", "queued"): 1, ("emails", "succeeded"): 1}
    _common_expectations(engine)
    limit = engine.queues["emails"].limit
    assert limit is not None and (limit.concurrency, limit.rate, limit.per_ms) == (2, 10, 1000)
    assert engine.crons.entries["nightly"].paused
    cron_job = engine.jobs["01HF7YB4R264P3ZE0X4W3EAN16"]
    assert (cron_job.state, cron_job.key) == (State.QUEUED, "cron:nightly:1700000010000")
    assert cron_job.retry.retries == 2 and cron_job.priority == 1


def test_sample_compacted_log_replays_to_its_state(tmp_path: Path) -> None:
    engine = _replay_sample("compacted", tmp_path)
    assert _tally(engine) == {("emails", "queued"): 4, ("callbacks", "queued"): 2,
                              ("reports", "queued"): 1, ("batchq", "succeeded"): 1,
                              ("cronq", "succeeded"): 1, ("emails", "succeeded"): 1}
    _common_expectations(engine)
    assert engine.queues["emails"].limit is None  # lifted after the compaction
    assert not engine.crons.entries["nightly"].paused
    cron_job = engine.jobs["01HF7YB4R264P3ZE0X4W3EAN16"]
    assert (cron_job.state, cron_job.result) == (State.SUCCEEDED, b"cron done")


@pytest.mark.parametrize("name", ["log", "compacted"])
def test_samples_replay_the_same_after_a_rewrite_in_the_current_version(
        name: str, tmp_path: Path) -> None:
    """Upgrading is lossless: the sample's state, written again as current records (a
    compaction's snapshot), replays to the same jobs."""
    engine = _replay_sample(name, tmp_path)
    again = JobEngine(ManualClock(1_700_000_100_000))
    again.replay([decode_record(encode_record(r)) for r in engine.snapshot()])
    assert {i: j.to_record() for i, j in again.jobs.items()} == \
           {i: j.to_record() for i, j in engine.jobs.items()}
    assert isinstance(next(iter(again.jobs.values())), Job)
