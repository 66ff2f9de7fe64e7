"""Write the sample WAL directories under tests/data/wal (run once; the files are committed).

Why: replay must keep reading every log format a released server wrote. These samples were
written by this script with the record format of the commit that introduced them (records
without a version: maps with an "op" key, and new jobs as the array ["put", *job fields]);
`tests/unit/jobs/test_record_schema.py` replays them and checks the state they rebuild. Do not
regenerate them with a newer build: add a new sample directory for a new format instead.

    python tests/data/wal/make_samples.py OUT_DIR

Two samples, driven on a manual clock with a seeded random source (so the ids are fixed):
- `log/`: one segment with every kind of record the engine writes live (push with and without
  options, AFTER, batches, cron, QUEUE.LIMIT, pause, lease, beat, ack, fail, expiry, cancel,
  retry, logs, delete, archive, restore, idempotency keys);
- `compacted/`: a base (a compaction snapshot: batch, cron-set, keys, limit, pause records and
  puts of every state) followed by a segment of later records.
"""

from __future__ import annotations

import os
import random
import sys

from jobcached.clock import ManualClock
from jobcached.jobs.cron import CronEntry
from jobcached.jobs.engine import JobEngine, PushOptions
from jobcached.jobs.model import Job, RetryPolicy
from jobcached.jobs.records import encode_record
from jobcached.persistence.wal import Wal, write_base


def drive(engine: JobEngine, clock: ManualClock) -> None:
    """Every live record kind, in an order a real server could have written them."""
    plain = [engine.push("emails", f"mail {i}".encode())[0] for i in range(4)]
    keyed, _ = engine.push("reports", b"monthly", PushOptions(
        type="Report", priority=5, retry=RetryPolicy(3, (100, 10_000)), timeout_ms=30_000,
        key="report-2023-11", meta={"traceparent": "00-abc-def-01", "team": "ops"}))
    engine.push("reports", b"monthly", PushOptions(key="report-2023-11"))  # same key: no record
    delayed, _ = engine.push("reports", b"later", PushOptions(delay_ms=5_000,
                                                              expire_ms=clock.now_ms() + 60_000))
    child, _ = engine.push("emails", b"after first", PushOptions(after=[plain[0]]))
    batch = engine.batches.new(("callbacks", b"all good"), ("callbacks", b"all done"))
    members = [engine.push("batchq", f"member {i}".encode(), PushOptions(batch=batch))[0]
               for i in range(2)]
    engine.batches.close(batch)
    engine.crons.set(CronEntry("nightly", "*/10 * * * * *", "UTC", "cronq", b"tick",
                               {"priority": 1, "retries": 2}))
    engine.set_limit("emails", concurrency=2, rate=(10, 1_000))
    engine.set_paused("slow", True)
    engine.set_paused("slow", False)
    engine.set_paused("frozen", True)
    clock.advance(10)

    first, second = engine.fetch(["emails"], count=2, lease_ms=20_000, worker="w1")
    engine.beat(first.id, first.token, 40_000)
    engine.log(first.id, first.token, [b"starting", b"halfway"])
    engine.ack(first.id, first.token, b"sent")
    engine.fail(second.id, second.token, "SMTP down", "IOError", "trace\nline 2",
                retry_in_ms=1_000)
    (report,) = engine.fetch(["reports"], worker="w2")
    engine.fail(report.id, report.token, "bad input", noretry=True)
    for _ in members:
        (job,) = engine.fetch(["batchq"])
        engine.ack(job.id, job.token)
    engine.cancel(plain[3], "no longer needed")
    engine.retry(plain[3])
    clock.advance(11_000)  # the delay, the backoff and a cron slot come due
    engine.tick()
    (lost,) = engine.fetch(["emails"], lease_ms=500, worker="w3")
    clock.advance(1_000)
    engine.tick()  # its lease expires: a fail record with LeaseExpired
    engine.delete([plain[2]])
    engine.crons.pause("nightly", True)
    del keyed, delayed, child, lost


def write(directory: str, bodies: list[bytes]) -> Wal:
    wal = Wal(directory)
    list(wal.replay())
    wal.open_for_append()
    wal.write_batch(bodies)
    return wal


def main(out: str) -> None:
    clock = ManualClock(1_700_000_000_000)
    bodies: list[bytes] = []
    engine = JobEngine(clock, rng=random.Random(17), sink=bodies.append)
    drive(engine, clock)
    # archive record: a succeeded job, a batch member and the dead keyed job (its key then
    # lives on in a snapshot's keys record); restore record: the first comes back, read
    # from the archive as a copy
    done = [job for job in engine.jobs.values() if job.state.value in ("succeeded", "dead")]
    copy = Job.from_record(done[0].to_record())
    engine.archived([(job, job.finished_ms) for job in done[:3]])
    engine.restore(copy)
    write(os.path.join(out, "log"), bodies).close()

    # compacted/: the same engine's snapshot as a base, then a few later records
    bodies.clear()
    engine.crons.pause("nightly", False)
    clock.advance(1_000)
    directory = os.path.join(out, "compacted")
    wal = write(directory, [encode_record({"op": "pause", "queue": "placeholder"})])
    next_seq = wal.cut()
    tmp = os.path.join(directory, "wal-compact.base.tmp")
    write_base(tmp, map(encode_record, engine.snapshot()))
    wal.install_base(tmp, next_seq)
    engine.sink = lambda body: wal.write_batch([body])
    pushed, _ = engine.push("emails", b"after compaction")
    (job,) = engine.fetch(["cronq"], worker="w4")
    engine.ack(job.id, job.token, b"cron done")
    engine.set_limit("emails", concurrency=0, rate=(0, 0))
    engine.batches.drop(clock.now_ms() + 1)
    wal.close()
    del pushed


if __name__ == "__main__":
    main(sys.argv[1])
