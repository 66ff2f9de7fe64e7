"""Job features with a fake clock: dependencies, batches, expiry, logs, cron, archiving.

Records go through msgpack as they do in the WAL, and every test that restarts rebuilds the
engine from those records (or from a snapshot), so replay is checked along the way.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import msgpack
import pytest

from jobcached.clock import ManualClock
from jobcached.errors import CommandError, NotUniqueError, WalVersionError
from jobcached.jobs import purge as purges
from jobcached.jobs.batches import COMPLETE, SUCCESS
from jobcached.jobs.cron import MISSED_GRACE_MS, CronEntry
from jobcached.jobs.engine import JobEngine, PushOptions
from jobcached.jobs.model import RetryPolicy, State
from jobcached.jobs.records import decode_record, encode_record

START = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)


def make_engine(clock: ManualClock | None = None, **kw: int) -> tuple[JobEngine, ManualClock,
                                                                       list[dict]]:
    clock = clock or ManualClock(START)
    records: list[dict] = []
    engine = JobEngine(clock, rng=random.Random(1),
                       sink=lambda body: records.append(decode_record(body)),
                       **kw)
    return engine, clock, records


def restart(clock: ManualClock, records: list[dict], **kw: int) -> JobEngine:
    """A new engine rebuilt from the log, live again (as the app does), logging on."""
    engine = JobEngine(clock, rng=random.Random(2),
                       sink=lambda body: records.append(decode_record(body)),
                       **kw)
    engine.replay(list(records))
    engine.start()
    return engine


def run_one(engine: JobEngine, queue: str, *, ok: bool = True) -> str:
    [job] = engine.fetch([queue])
    if ok:
        engine.ack(job.id, job.token)
    else:
        engine.fail(job.id, job.token, "boom", noretry=True)
    return job.id


def state(engine: JobEngine, job_id: str) -> State:
    job = engine.get(job_id)
    assert job is not None
    return job.state


# ---------------------------------------------------------------- dependencies

def test_three_level_chain_runs_in_order() -> None:
    engine, _, _ = make_engine()
    a, _ = engine.push("q", b"a")
    b, _ = engine.push("q", b"b", PushOptions(after=[a]))
    c, _ = engine.push("q", b"c", PushOptions(after=[b]))
    assert [state(engine, x) for x in (a, b, c)] == [State.QUEUED, State.PENDING, State.PENDING]
    order = [run_one(engine, "q"), run_one(engine, "q"), run_one(engine, "q")]
    assert order == [a, b, c]
    assert engine.fetch(["q"]) == []


def test_child_waits_for_all_parents() -> None:
    engine, _, _ = make_engine()
    a, _ = engine.push("p1", b"a")
    b, _ = engine.push("p2", b"b")
    c, _ = engine.push("q", b"c", PushOptions(after=[a, b]))
    run_one(engine, "p1")
    assert state(engine, c) is State.PENDING
    run_one(engine, "p2")
    assert state(engine, c) is State.QUEUED


def test_dead_parent_cancels_descendants_naming_it() -> None:
    engine, _, _ = make_engine()
    a, _ = engine.push("q", b"a")
    b, _ = engine.push("q", b"b", PushOptions(after=[a]))
    c, _ = engine.push("q", b"c", PushOptions(after=[b]))
    run_one(engine, "q", ok=False)
    for child in (b, c):
        assert state(engine, child) is State.CANCELED
    assert engine.get(b).reason == f"parent {a} is dead"  # type: ignore[union-attr]
    assert engine.get(c).reason == f"parent {b} is canceled"  # type: ignore[union-attr]


def test_long_chain_cancels_without_recursion() -> None:
    engine, _, _ = make_engine()
    first, _ = engine.push("q", b"0")
    previous = first
    for i in range(3000):
        previous, _ = engine.push("q", str(i).encode(), PushOptions(after=[previous]))
    engine.cancel(first)
    assert state(engine, previous) is State.CANCELED


def test_after_unknown_or_failed_parent() -> None:
    engine, _, _ = make_engine()
    with pytest.raises(CommandError, match="no such parent job nope"):
        engine.push("q", b"x", PushOptions(after=["nope"]))
    a, _ = engine.push("q", b"a")
    engine.cancel(a)
    child, _ = engine.push("q", b"c", PushOptions(after=[a]))
    assert state(engine, child) is State.CANCELED
    # a parent that moved to the archive is passed in by the caller
    done, _ = engine.push("q", b"x", PushOptions(after=["old"]),
                          archived_parents={"old": State.SUCCEEDED})
    assert state(engine, done) is State.QUEUED


def test_child_with_delay_waits_for_both() -> None:
    engine, clock, _ = make_engine()
    a, _ = engine.push("q", b"a")
    c, _ = engine.push("q", b"c", PushOptions(after=[a], delay_ms=1000))
    run_one(engine, "q")
    assert state(engine, c) is State.PENDING
    clock.advance(1000)
    engine.tick()
    assert state(engine, c) is State.QUEUED


def test_dependencies_survive_restart() -> None:
    engine, clock, records = make_engine()
    a, _ = engine.push("q", b"a")
    b, _ = engine.push("q", b"b", PushOptions(after=[a]))
    engine = restart(clock, records)
    clock.advance(10)
    engine.tick()
    assert state(engine, b) is State.PENDING  # its timer fired, but the parent has not run
    run_one(engine, "q")
    assert state(engine, b) is State.QUEUED


# ---------------------------------------------------------------- batches

def test_batch_of_100_fires_onsuccess_exactly_once() -> None:
    engine, clock, records = make_engine()
    batch = engine.batches.new(("done", b"all ok"), ("ended", b"ended"))
    members = [engine.push("q", str(i).encode(), PushOptions(batch=batch))[0]
               for i in range(100)]
    for _ in range(99):
        run_one(engine, "q")
    engine.batches.close(batch)
    assert engine.queues.get("done") is None  # one member still to run
    run_one(engine, "q")
    assert engine.queues["done"].counts[State.QUEUED] == 1
    assert engine.queues["ended"].counts[State.QUEUED] == 1
    assert set(engine.batches.batches[batch].fired) == {SUCCESS, COMPLETE}
    # nothing fires again: not on commit, not on a restart, not on a member run again
    engine.batches.close(batch)
    engine.retry(members[0])
    run_one(engine, "q")
    engine = restart(clock, records)
    assert engine.queues["done"].counts[State.QUEUED] == 1
    counts = engine.batches.batches[batch].state_counts()
    assert counts[State.SUCCEEDED] == 100


def test_batch_with_a_dead_member_completes_without_success() -> None:
    engine, _, _ = make_engine()
    batch = engine.batches.new(("done", b"x"), ("ended", b"y"))
    engine.push("q", b"1", PushOptions(batch=batch))
    engine.push("q", b"2", PushOptions(batch=batch))
    engine.batches.close(batch)
    run_one(engine, "q")
    run_one(engine, "q", ok=False)
    assert "done" not in engine.queues
    assert engine.queues["ended"].counts[State.QUEUED] == 1


def test_batch_errors() -> None:
    engine, _, _ = make_engine()
    with pytest.raises(CommandError, match="no such batch"):
        engine.push("q", b"1", PushOptions(batch="nope"))
    batch = engine.batches.new(None, None)
    engine.batches.close(batch)
    with pytest.raises(CommandError, match="committed"):
        engine.push("q", b"1", PushOptions(batch=batch))
    assert COMPLETE in engine.batches.batches[batch].fired  # an empty batch is done at commit


def test_batch_owed_callback_fires_at_start() -> None:
    """A crash between a member's end and the callback: the restart pushes it."""
    engine, clock, records = make_engine()
    batch = engine.batches.new(("done", b"x"), None)
    engine.push("q", b"1", PushOptions(batch=batch))
    engine.batches.close(batch)
    run_one(engine, "q")
    lost = [r for r in records if (r[2] != "done" if type(r) is not dict  # the callback's put
                                   else r["op"] != "batch-fired")]
    engine = restart(clock, lost)
    assert engine.queues["done"].counts[State.QUEUED] == 1


def test_batch_counts_survive_archiving_and_snapshot() -> None:
    engine, clock, _ = make_engine()
    batch = engine.batches.new(None, None)
    engine.push("q", b"1", PushOptions(batch=batch))
    engine.push("q", b"2", PushOptions(batch=batch))
    run_one(engine, "q")
    clock.advance(1000)
    engine.archived([(j, j.finished_ms) for j in engine.archivable(clock.now_ms(), 100)])
    assert len(engine.jobs) == 1
    snap = JobEngine(clock)
    snap.replay([decode_record(encode_record(r)) for r in engine.snapshot()])
    counts = snap.batches.batches[batch].state_counts()
    assert (counts[State.SUCCEEDED], counts[State.QUEUED]) == (1, 1)


# ---------------------------------------------------------------- expiry

def test_expire_cancels_a_job_not_started() -> None:
    engine, clock, _ = make_engine()
    late, _ = engine.push("q", b"x", PushOptions(expire_ms=START + 500, delay_ms=1000))
    queued, _ = engine.push("q", b"y", PushOptions(expire_ms=START + 500))
    started, _ = engine.push("r", b"z", PushOptions(expire_ms=START + 500))
    [job] = engine.fetch(["r"])
    clock.advance(500)
    engine.tick()
    assert engine.get(late).reason == "expired"  # type: ignore[union-attr]
    assert engine.get(queued).reason == "expired"  # type: ignore[union-attr]
    assert state(engine, started) is State.RUNNING
    engine.ack(started, job.token)


def test_expired_job_is_never_leased() -> None:
    engine, clock, _ = make_engine(tick_ms=1000)
    job_id, _ = engine.push("q", b"x", PushOptions(expire_ms=START + 5))
    clock.advance(10)  # the timer has not ticked yet, the fetch checks by itself
    assert engine.fetch(["q"]) == []
    assert state(engine, job_id) is State.CANCELED
    with pytest.raises(CommandError, match="not in the future"):
        engine.push("q", b"x", PushOptions(expire_ms=START))


# ---------------------------------------------------------------- logs

def test_logs_bounded_with_marker_and_stable_numbers() -> None:
    engine, clock, records = make_engine(log_max_lines=3)
    job_id, _ = engine.push("q", b"x")
    [job] = engine.fetch(["q"])
    assert engine.log(job_id, job.token, [b"1", b"2"]) == 2
    assert engine.log(job_id, job.token, [b"3", b"4", b"5"]) == 5
    log = engine.get(job_id)
    assert log is not None
    assert log.log_page(0, 100) == (5, [b"[2 earlier lines dropped: the log keeps the newest "
                                        b"lines only]", b"3", b"4", b"5"])
    assert log.log_page(3, 1) == (4, [b"4"])
    assert log.log_page(5, 10) == (5, [])
    restored = restart(clock, records, log_max_lines=3)
    assert restored.get(job_id).log_page(2, 10) == (5, [b"3", b"4", b"5"])  # type: ignore


def test_log_bytes_bound_and_stale_token() -> None:
    engine, _, _ = make_engine(log_max_bytes=10)
    job_id, _ = engine.push("q", b"x")
    [job] = engine.fetch(["q"])
    engine.log(job_id, job.token, [b"aaaa", b"bbbb", b"cccc"])
    assert engine.get(job_id).logs == [b"bbbb", b"cccc"]  # type: ignore[union-attr]
    engine.ack(job_id, job.token)
    with pytest.raises(CommandError):
        engine.log(job_id, job.token, [b"late"])


def test_log_followers_wake_on_lines_end_and_timeout() -> None:
    engine, clock, _ = make_engine()
    job_id, _ = engine.push("q", b"x")
    [job] = engine.fetch(["q"])
    woken: list[object] = []
    engine.waiters.for_logs(job_id, 0, woken.append)
    engine.log(job_id, job.token, [b"line"])
    assert woken == [engine.get(job_id)]
    engine.waiters.for_logs(job_id, 0, woken.append)
    engine.ack(job_id, job.token)
    assert len(woken) == 2
    other, _ = engine.push("q", b"y")
    engine.waiters.for_logs(other, 100, woken.append)
    clock.advance(100)
    engine.tick()
    assert woken[-1] is None


# ---------------------------------------------------------------- cron

def entry(name: str = "tick", expr: str = "*/5 * * * *", missed: str = "skip",
          **options: object) -> CronEntry:
    return CronEntry(name, expr, "UTC", "cronq", b"payload", dict(options), missed)


def cron_jobs(engine: JobEngine) -> list[int]:
    return sorted(int(j.meta["cron_slot"]) for j in engine.jobs.values() if j.queue == "cronq")


def test_cron_fires_once_per_slot_across_restart() -> None:
    engine, clock, records = make_engine()
    engine.crons.set(entry(priority=3))
    clock.advance(5 * 60_000)
    engine.tick()
    first = START + 5 * 60_000
    assert cron_jobs(engine) == [first]
    # restart just after the slot fired: the same slot never fires again
    clock.advance(20_000)
    engine = restart(clock, records)
    engine.tick()
    assert cron_jobs(engine) == [first]
    job = next(iter(engine.jobs.values()))
    assert (job.priority, job.key) == (3, f"cron:tick:{first}")
    clock.advance(5 * 60_000)
    engine.tick()
    assert cron_jobs(engine) == [first, first + 5 * 60_000]


def test_cron_clock_step_back_does_not_refire() -> None:
    engine, clock, _ = make_engine()
    engine.crons.set(entry())
    clock.advance(5 * 60_000)
    engine.tick()
    clock.step(-4 * 60_000)
    engine.tick()
    clock.advance(4 * 60_000)
    engine.tick()
    assert cron_jobs(engine) == [START + 5 * 60_000]


@pytest.mark.parametrize("missed,expected", [("skip", []), ("once", [START + 15 * 60_000])])
def test_cron_missed_slots_while_down(missed: str, expected: list[int]) -> None:
    engine, clock, records = make_engine()
    engine.crons.set(entry(missed=missed))
    clock.advance(17 * 60_000)  # down across slots 5, 10 and 15
    engine = restart(clock, records)
    assert cron_jobs(engine) == expected
    clock.advance(3 * 60_000)
    engine.tick()
    assert cron_jobs(engine) == [*expected, START + 20 * 60_000]


def test_cron_slot_within_grace_is_not_missed() -> None:
    engine, clock, records = make_engine()
    engine.crons.set(entry())
    clock.advance(5 * 60_000 + MISSED_GRACE_MS - 1)
    engine = restart(clock, records)
    assert cron_jobs(engine) == [START + 5 * 60_000]


def test_cron_pause_resume_delete_and_six_fields() -> None:
    engine, clock, records = make_engine()
    engine.crons.set(entry(expr="*/10 * * * * *"))  # every 10 seconds
    clock.advance(10_000)
    engine.tick()
    engine.crons.pause("tick", True)
    clock.advance(30_000)
    engine.tick()
    assert len(cron_jobs(engine)) == 1
    engine.crons.pause("tick", False)  # the slots passed while paused are not owed
    assert len(cron_jobs(engine)) == 1
    clock.advance(10_000)
    engine.tick()
    assert len(cron_jobs(engine)) == 2
    assert engine.crons.delete("tick") and not engine.crons.delete("tick")
    clock.advance(60_000)
    engine.tick()
    assert len(cron_jobs(engine)) == 2
    assert "tick" not in restart(clock, records).crons.entries


def test_cron_entry_validation() -> None:
    with pytest.raises(CommandError, match="invalid cron expression"):
        entry(expr="61 * * * *")
    with pytest.raises(CommandError, match="unknown time zone"):
        CronEntry("x", "@hourly", "Mars/Olympus", "q", b"", {})


def test_cron_time_zone() -> None:
    engine, _, _ = make_engine()
    engine.crons.set(CronEntry("nine", "0 9 * * *", "Europe/Paris", "cronq", b"", {}))
    assert engine.crons.entries["nine"].next_ms == START + 8 * 3600_000  # 09:00 CET is 08:00 UTC


# ---------------------------------------------------------------- archive hand-off

def test_archivable_oldest_first_and_skips_rerun_jobs() -> None:
    engine, clock, records = make_engine()
    a, _ = engine.push("q", b"a", PushOptions(retry=RetryPolicy(0)))
    run_one(engine, "q")
    clock.advance(10)
    b, _ = engine.push("q", b"b")
    run_one(engine, "q")
    clock.advance(10)
    assert [j.id for j in engine.archivable(clock.now_ms(), 10)] == [a, b]
    assert [j.id for j in engine.archivable(START + 5, 10)] == [a]
    taken = [(j, j.finished_ms) for j in engine.archivable(clock.now_ms(), 10)]
    engine.retry(a)  # run again while the archive was writing: stays in memory
    engine.archived(taken)
    assert list(engine.jobs) == [a]
    assert list(restart(clock, records).jobs) == [a]


def test_idempotency_key_outlives_archiving_until_keyttl() -> None:
    engine, clock, records = make_engine()
    job_id, _ = engine.push("q", b"x", PushOptions(key="once", key_ttl_ms=60_000))
    run_one(engine, "q")
    clock.advance(10)
    engine.archived([(j, j.finished_ms) for j in engine.archivable(clock.now_ms(), 10)])
    assert job_id not in engine.jobs
    assert engine.push("q", b"x", PushOptions(key="once")) == (job_id, False)
    with pytest.raises(NotUniqueError):
        engine.push("q", b"other", PushOptions(key="once"))
    # a restart from the log, and one from a snapshot, remember it too
    assert restart(clock, records).push("q", b"x", PushOptions(key="once")) == (job_id, False)
    snap = JobEngine(clock)
    snap.replay([decode_record(encode_record(r)) for r in engine.snapshot()])
    assert snap.push("q", b"x", PushOptions(key="once")) == (job_id, False)
    clock.advance(60_000)  # KEYTTL over: the key is free again
    new_id, created = engine.push("q", b"x", PushOptions(key="once"))
    assert created and new_id != job_id


def test_purged_parent_cancels_its_dependents() -> None:
    engine, _, _ = make_engine()
    parent, _ = engine.push("q", b"p", PushOptions(delay_ms=1000))
    child, _ = engine.push("r", b"c", PushOptions(after=[parent]))
    grandchild, _ = engine.push("r", b"g", PushOptions(after=[child]))
    assert purges.queue_purge(engine, "q").run() == 1
    assert engine.get(child).reason == f"parent {parent} was deleted"  # type: ignore[union-attr]
    assert engine.get(grandchild).reason == f"parent {child} is canceled"  # type: ignore


def test_puts_are_versioned_arrays_and_the_development_map_form_is_refused() -> None:
    """A push logs `["put", version, *fields]`. The `{"op": "put", "job": ...}` maps of the
    first development builds (never released) are refused, not guessed at."""
    engine, clock, records = make_engine()
    job_id = engine.push("q", b"payload", PushOptions(priority=3, meta={"k": "v"}))[0]
    engine.fetch(["q"])
    assert records[0][:3] == ("put", 2, job_id)
    again = restart(clock, list(records))
    assert again.jobs[job_id].to_record() == engine.jobs[job_id].to_record()
    with pytest.raises(WalVersionError, match="'put'"):
        decode_record(msgpack.packb({"op": "put", "job": list(records[0][2:])},
                                    use_bin_type=True))
