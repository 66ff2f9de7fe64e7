"""Idempotency keys: JOB.PUSH ... KEY k returns the job k already made, within its KEYTTL.

A key points at a job in memory while the job is there. When a finished job moves to the
archive, its key keeps answering until the KEYTTL ends, from a small entry of its own: the
job id, the key's expiry and a fingerprint of queue and payload (enough to tell a repeated push
from a clash without keeping the payload in memory). Those entries are rebuilt at replay (from
the `archive` records) and carried by snapshots; expired ones are swept now and then.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from jobcached.errors import NotUniqueError
from jobcached.jobs.model import Job

#: Archived keys are swept of expired entries past this many (and then when they doubled).
PRUNE_MIN = 10_000


def fingerprint(queue: str, payload: bytes) -> bytes:
    return hashlib.blake2b(queue.encode() + b"\0" + payload, digest_size=16).digest()


class IdempotencyKeys:
    """key -> the job it made; see the module docstring."""

    def __init__(self) -> None:
        self.live: dict[str, str] = {}  # key -> id of a job in memory
        #: key -> (job id, key expiry ms, fingerprint) of an archived job
        self.archived: dict[str, tuple[str, int, bytes]] = {}
        self._prune_at = PRUNE_MIN

    def find(self, key: str, queue: str, payload: bytes, jobs: dict[str, Job],
             now_ms: int) -> str | None:
        """The id of the job `key` made, if it is still in force; NotUniqueError if that job
        had another queue or payload."""
        job_id = self.live.get(key)
        job = jobs.get(job_id) if job_id else None
        if job is not None:
            if job.key_expires_ms <= now_ms:
                return None
            if job.payload != payload or job.queue != queue:
                raise _clash(key, job.id)
            return job.id
        entry = self.archived.get(key)
        if entry is None or entry[1] <= now_ms:
            return None
        if entry[2] != fingerprint(queue, payload):
            raise _clash(key, entry[0])
        return entry[0]

    def added(self, job: Job) -> None:
        assert job.key is not None
        self.live[job.key] = job.id
        self.archived.pop(job.key, None)

    def removed(self, job: Job, *, archived: bool) -> None:
        """The job left memory: deleted (its key is free), or `archived` (it still answers)."""
        assert job.key is not None
        if self.live.get(job.key) != job.id:
            return
        del self.live[job.key]
        if archived:
            self.archived[job.key] = (job.id, job.key_expires_ms,
                                      fingerprint(job.queue, job.payload))

    def prune(self, now_ms: int) -> None:
        """Sweep expired archived keys once there are many (amortized: the threshold doubles)."""
        if len(self.archived) > self._prune_at:
            self.archived = {k: e for k, e in self.archived.items() if e[1] > now_ms}
            self._prune_at = max(PRUNE_MIN, 2 * len(self.archived))

    def snapshot(self, now_ms: int) -> Iterator[dict[str, Any]]:
        entries = [[key, *entry] for key, entry in self.archived.items() if entry[1] > now_ms]
        if entries:
            yield {"op": "keys", "keys": entries}

    def apply_snapshot(self, entries: list[list[Any]]) -> None:
        for key, job_id, expires, print_ in entries:
            self.archived[key] = (job_id, expires, print_)


def _clash(key: str, job_id: str) -> NotUniqueError:
    return NotUniqueError(f"idempotency key '{key}' was used for job {job_id} with a "
                          f"different payload")
