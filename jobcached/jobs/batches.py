"""Batches: a group of jobs with callbacks when all of them succeeded, or all ended.

A batch counts its members per state. The engine keeps the counts as members move (in
`_move`, which runs at replay too, so counts rebuild themselves from the log); members that
moved to the archive are counted in `archived`, which is persisted with the batch. Once the
batch is committed (no more members) and no member is still to run, the callbacks are owed:
ONCOMPLETE when every member ended (succeeded, dead or canceled), ONSUCCESS when every member
succeeded. Each is pushed once: its firing is a logged record, and the callback job carries
the idempotency key `batch:<id>:<which>` in case a crash split the two.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jobcached.clock import Clock
from jobcached.errors import CommandError
from jobcached.jobs.model import TERMINAL, Job, PushOptions, State

Record = dict[str, Any]

SUCCESS = "success"
COMPLETE = "complete"


@dataclass(slots=True, eq=False)
class Batch:
    """One BATCH.NEW; `counts` are its members in memory, `archived` those in the archive."""

    id: str
    created_ms: int
    on_success: tuple[str, bytes] | None = None  # (queue, payload)
    on_complete: tuple[str, bytes] | None = None
    committed: bool = False
    fired: dict[str, int] = field(default_factory=dict)  # which -> when
    counts: Counter[State] = field(default_factory=Counter)
    archived: Counter[State] = field(default_factory=Counter)

    def state_counts(self) -> dict[State, int]:
        return {state: self.counts[state] + self.archived[state] for state in State}

    def owed(self) -> list[str]:
        """The callbacks due now and not yet fired (COMPLETE is recorded even without a
        callback job: it marks when the batch ended)."""
        if not self.committed:
            return []
        counts = self.state_counts()
        if any(n for state, n in counts.items() if state not in TERMINAL):
            return []
        owed = [] if COMPLETE in self.fired else [COMPLETE]
        if SUCCESS not in self.fired and self.on_success is not None and \
                counts[State.SUCCEEDED] == sum(counts.values()):
            owed.append(SUCCESS)
        return owed

    def callback(self, which: str) -> tuple[str, bytes] | None:
        return self.on_success if which == SUCCESS else self.on_complete

    def to_record(self) -> list[Any]:
        return [self.id, self.created_ms, self.on_success and list(self.on_success),
                self.on_complete and list(self.on_complete), self.committed, dict(self.fired),
                {state.value: n for state, n in self.archived.items() if n}]

    @classmethod
    def from_record(cls, r: list[Any]) -> Batch:
        batch_id, created, success, complete, committed, fired, archived = r
        return cls(batch_id, created, tuple(success) if success else None,
                   tuple(complete) if complete else None, committed, dict(fired),
                   archived=Counter({State(k): n for k, n in archived.items()}))


class BatchTable:
    """Every batch, and the records that change them.

    The engine calls `count` whenever a member appears, moves or disappears (at replay too),
    and `settle` after a live change that may complete a batch. `commit` logs and applies a
    record (the engine's `_commit`); `push` creates a callback job (the engine's `push`).
    """

    def __init__(self, clock: Clock, new_id: Callable[[int], str],
                 commit: Callable[[Record], None],
                 push: Callable[[str, bytes, PushOptions], Any]) -> None:
        self.clock = clock
        self._new_id = new_id
        self._commit = commit
        self._push = push
        self.batches: dict[str, Batch] = {}

    def __len__(self) -> int:
        return len(self.batches)

    def get(self, batch_id: str) -> Batch | None:
        return self.batches.get(batch_id)

    def apply(self, op: str, r: Record) -> None:
        if op == "batch":
            batch = Batch.from_record(r["batch"])
            self.batches[batch.id] = batch
        elif op == "batch-new":
            self.batches[r["id"]] = Batch(r["id"], r["now"], _pair(r["success"]),
                                          _pair(r["complete"]))
        elif op == "batch-commit":
            self.batches[r["id"]].committed = True
        elif op == "batch-fired":
            self.batches[r["id"]].fired[r["which"]] = r["now"]
        elif op == "batch-drop":
            for batch_id in r["ids"]:
                self.batches.pop(batch_id, None)
        else:
            raise ValueError(f"unknown job record op {op!r}")

    def snapshot(self) -> Iterator[Record]:
        for batch in self.batches.values():
            yield {"op": "batch", "batch": batch.to_record()}

    def count(self, job: Job, old: State | None, new: State | None, *,
              archived: bool = False) -> None:
        """A member appeared (old None), moved, or left memory (new None): deleted, or
        `archived`, where it still counts; restored from the archive (old None, archived)."""
        batch = self.batches.get(job.batch)
        if batch is None:
            return
        if old is not None:
            batch.counts[old] -= 1
        elif archived:
            batch.archived[new] -= 1  # type: ignore[index]
        if new is not None:
            batch.counts[new] += 1
        elif archived:
            batch.archived[old] += 1  # type: ignore[index]

    def check_open(self, batch_id: str) -> None:
        """Raise unless the batch exists and takes members."""
        if self._known(batch_id).committed:
            raise CommandError(f"batch {batch_id} is committed: it takes no more jobs")

    def _known(self, batch_id: str) -> Batch:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise CommandError(f"no such batch {batch_id}")
        return batch

    def new(self, on_success: tuple[str, bytes] | None,
            on_complete: tuple[str, bytes] | None) -> str:
        now = self.clock.now_ms()
        batch_id = self._new_id(now)
        self._commit({"op": "batch-new", "id": batch_id, "now": now,
                      "success": on_success and list(on_success),
                      "complete": on_complete and list(on_complete)})
        return batch_id

    def close(self, batch_id: str) -> None:
        """BATCH.COMMIT: no more members; the callbacks fire when the members are done (at
        once if they already are). Closing twice is harmless."""
        if not self._known(batch_id).committed:
            self._commit({"op": "batch-commit", "id": batch_id})
            self.settle(batch_id)

    def settle(self, batch_id: str) -> None:
        """Push the callbacks the batch owes now, each once."""
        batch = self.batches.get(batch_id)
        if batch is None:
            return
        for which in batch.owed():
            callback = batch.callback(which)
            if callback is not None:
                queue, payload = callback
                self._push(queue, payload, PushOptions(
                    key=f"batch:{batch.id}:{which}",
                    meta={"batch": batch.id, "callback": which}))
            self._commit({"op": "batch-fired", "id": batch.id, "which": which,
                          "now": self.clock.now_ms()})

    def start(self) -> None:
        """After replay: callbacks a crash kept from firing fire now."""
        for batch_id in list(self.batches):
            self.settle(batch_id)

    def drop(self, ended_before_ms: int) -> int:
        """Forget batches that ended before the cutoff and have no member left in memory."""
        ids = [b.id for b in self.batches.values()
               if 0 < b.fired.get(COMPLETE, ended_before_ms) < ended_before_ms
               and not any(b.counts.values())]
        if ids:
            self._commit({"op": "batch-drop", "ids": ids})
        return len(ids)


def _pair(value: list[Any] | None) -> tuple[str, bytes] | None:
    return (value[0], value[1]) if value else None
