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
from dataclasses import dataclass, field
from typing import Any

from jobcached.jobs.model import TERMINAL, State

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
