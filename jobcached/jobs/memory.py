"""How many bytes a job in memory costs: what `maxmemory` counts for the job engine.

Why: jobs are never evicted, so without a figure for them a server with `maxmemory 200mb`
accepted 30 jobs of 16 MB (608 MB resident, `used_memory` 0). The engine keeps a running total,
`JobEngine.used_memory`, that INFO adds to the cache's `used_memory`, and that the cache
subtracts from `maxmemory` before deciding whether to evict or refuse a DENYOOM command.

Theory of operation. As for cache keys (cache/memory.py), the figure is an estimate kept up to
date incrementally, never a walk over the jobs: the engine's apply path (which WAL replay runs
too, so a restarted server starts from the same figure) adds `job_bytes(job)` when a job comes
into memory (pushed, replayed, restored from the archive), subtracts it when the job leaves
(purged, deleted, archived), and adds the deltas of the only fields that change afterwards: the
result (ack, retry), the error history (fail) and the log (JOB.LOG). Every other field is fixed
at push or is a number, so `job_bytes` of a job always equals what was added for it, and the
subtraction at the end is exact (tests check the total against a full recount).

    JOB_OVERHEAD_BYTES                      the Job object, its id, and its slots in the
                                            engine's tables (jobs, id list, index, ready list)
  + bytes(payload) + bytes(result)          as allocated (cache.memory.item_size)
  + meta, idempotency key, AFTER parents    strings plus their containers
  + errors                                  each kept error: a dict and its strings
  + logs                                    each kept line, plus the list that holds them

Known blind spots: strings shared with other objects are counted for each job (a META value
repeated across jobs); transient per-state objects (a running job's lease token, a timer
handle, a finished job's entry in the archive order) are averaged into the overhead; so is
the instance dict of a job that sets one of the rarely set fields (model.Job's docstring).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jobcached.cache.memory import (
    BYTES_HEADER_BYTES,
    MALLOC_HEADER_BYTES,
    PYMALLOC_MAX_REQUEST_BYTES,
    alloc,
    item_size,
)
from jobcached.jobs.model import MAX_ERRORS_PER_JOB, Job

JOB_OVERHEAD_BYTES = 349
"""A queued job with no options, less its payload: measured with tracemalloc (482 bytes for a
100-byte payload, whose bytes object is 133 of them)."""
STR_HEADER_BYTES = 49  # sys.getsizeof("") for an ASCII str: object header, hash, length, NUL
DICT_BYTES = 232  # a small dict (up to 5 items): sys.getsizeof plus the GC header, allocated
SLOT_BYTES = 8  # one pointer in a list
LIST_BYTES = 72  # an empty list object with its GC header
KEY_INDEX_BYTES = 160  # an idempotency key's entry in the engine's key index
ERROR_NUMBERS_BYTES = 64  # an error's time and attempt ints


def str_size(text: str) -> int:
    """Bytes a str allocates (its length in UTF-8 stands for its length in code points,
    which over-counts non-ASCII text a little, never under-counts it)."""
    return alloc(STR_HEADER_BYTES + len(text))


def bytes_size(data: bytes | None) -> int:
    return 0 if data is None else item_size(data)


def strings_size(items: Iterable[str]) -> int:
    return sum(str_size(item) + SLOT_BYTES for item in items)


def error_size(error: Mapping[str, Any]) -> int:
    """One entry of a job's error history (type, message, trace, time, attempt)."""
    return (DICT_BYTES + ERROR_NUMBERS_BYTES + SLOT_BYTES + str_size(error["type"])
            + str_size(error["message"]) + str_size(error["trace"]))


def log_size(job: Job) -> int:
    """The kept lines of a job's log: O(1), from the byte count the job keeps anyway."""
    if not job.logs:
        return 0
    lines = len(job.logs)
    return LIST_BYTES + job.log_bytes + lines * (alloc(33) + SLOT_BYTES)  # 33: a bytes header


def job_bytes(job: Job) -> int:
    """The estimated cost of one job in memory (see the module docstring). Every push pays
    for this: a job with none of the optional parts costs two attribute tests and the
    payload's size, inlined."""
    n = len(job.payload) + BYTES_HEADER_BYTES
    size = JOB_OVERHEAD_BYTES + (((n + 15) & ~15) if n <= PYMALLOC_MAX_REQUEST_BYTES
                                 else ((n + MALLOC_HEADER_BYTES + 15) & ~15))
    if job.meta or job.result is not None or job.key or job.parents or job.errors or job.logs:
        size += _optional_bytes(job)
    return size


def _optional_bytes(job: Job) -> int:
    size = bytes_size(job.result)
    if job.meta:
        size += DICT_BYTES + sum(str_size(k) + str_size(v) for k, v in job.meta.items())
    if job.key:
        size += KEY_INDEX_BYTES + str_size(job.key)
    if job.parents:
        size += LIST_BYTES + strings_size(job.parents)
    if job.errors:
        size += LIST_BYTES + sum(error_size(error) for error in job.errors)
    return size + log_size(job)


def error_added(job: Job, error: Mapping[str, Any]) -> int:
    """The change `job.add_error(error)` is about to make: the new entry, less the oldest one
    when the history is full (it keeps MAX_ERRORS_PER_JOB), plus the list on the first."""
    errors = job.errors
    if not errors:
        return LIST_BYTES + error_size(error)
    dropped = error_size(errors[0]) if len(errors) >= MAX_ERRORS_PER_JOB else 0
    return error_size(error) - dropped
