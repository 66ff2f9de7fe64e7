"""Cron entries: when a named schedule fires, and which slots a restart or a clock step missed.

A *slot* is a scheduled time (unix ms) the expression produces. Each firing pushes one job
whose idempotency key is `cron:<name>:<slot>`, and records the slot as the entry's
`last_slot`; the next slot is always computed after max(last_slot, the time the entry was set
or resumed). So a restart, a clock stepped back or a replayed log never fires a slot twice:
the key would return the existing job, and the slot is behind `last_slot` anyway.

A slot more than a grace period (config `cron-missed-grace`, default `MISSED_GRACE_MS`) in the
past when it is looked at was *missed* (the server was down, paused in a debugger, or the
clock jumped forward). Of the slots still within the grace, only the newest fires: slots closer
together than a restart collapse into one late job rather than a burst. `MISSED skip` drops missed
slots; `MISSED once` runs one job for the newest missed slot, like Kubernetes CronJobs catching
up once rather than once per slot.

Expressions have 5 fields (minute hour day month weekday), or 6 with seconds first
(`*/10 * * * * *`), or an alias such as `@hourly` (croniter parses all three); a time zone
(IANA name, default UTC) decides what "9 o'clock" means, daylight saving included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from jobcached.clock import Clock
from jobcached.errors import CommandError
from jobcached.jobs.model import DEFAULT_RETRIES, PushOptions, retry_policy
from jobcached.jobs.timerwheel import TimerWheel

Record = dict[str, Any]
log = logging.getLogger("jobcached.jobs")

#: A slot at most this late is run normally; an older one counts as missed.
MISSED_GRACE_MS = 60_000
MISSED_POLICIES = ("skip", "once")


class CronSchedule:
    """A validated cron expression in a time zone; answers 'which slot comes next'."""

    __slots__ = ("expr", "seconds_first", "zone")

    def __init__(self, expr: str, tz: str = "UTC") -> None:
        try:
            self.zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise CommandError(f"unknown time zone '{tz}'") from None
        self.expr = expr
        self.seconds_first = len(expr.split()) == 6
        if not croniter.is_valid(expr, second_at_beginning=self.seconds_first):
            raise CommandError(f"invalid cron expression '{expr}'")

    def _iter(self, ms: int) -> croniter:
        start = datetime.fromtimestamp(ms / 1000, self.zone)
        return croniter(self.expr, start, second_at_beginning=self.seconds_first)

    def next_after(self, ms: int) -> int:
        """The first slot strictly after `ms`."""
        return round(self._iter(ms).get_next(float) * 1000)

    def last_at_or_before(self, ms: int) -> int:
        """The newest slot at or before `ms`."""
        return round(self._iter(ms + 1).get_prev(float) * 1000)


@dataclass(slots=True, eq=False)
class CronEntry:
    """One CRON.SET: what to push, on which schedule, and which slot fired last."""

    name: str
    expr: str
    tz: str
    queue: str
    payload: bytes
    options: dict[str, Any]  # JOB.PUSH options as plain data (see push_options)
    missed: str = "skip"
    paused: bool = False
    since_ms: int = 0  # set or resumed at: slots before it are not owed
    last_slot: int = 0
    last_job: str = ""
    # not persisted
    schedule: CronSchedule = field(init=False, repr=False)
    next_ms: int = 0
    timer: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.schedule = CronSchedule(self.expr, self.tz)

    def to_record(self) -> list[Any]:
        return [self.name, self.expr, self.tz, self.queue, self.payload, self.options,
                self.missed, self.paused, self.since_ms, self.last_slot, self.last_job]

    @classmethod
    def from_record(cls, r: list[Any]) -> CronEntry:
        return cls(*r)

    def due(self, now_ms: int, grace_ms: int = MISSED_GRACE_MS) -> tuple[list[int], int]:
        """(slots to fire now, oldest first; the next slot after them) for an entry that is
        not paused. At most two slots: the newest missed one (MISSED once) and an on-time one."""
        first = self.schedule.next_after(max(self.last_slot, self.since_ms))
        if first > now_ms:
            return [], first
        latest = self.schedule.last_at_or_before(now_ms)
        cutoff = now_ms - grace_ms
        slots = []
        if first < cutoff and self.missed == "once":
            slots.append(self.schedule.last_at_or_before(cutoff - 1))
        if latest >= cutoff:
            slots.append(latest)
        return slots, self.schedule.next_after(latest)


class CronTable:
    """Every cron entry, its timer, and the records that change them.

    `commit` logs and applies a record (the engine's `_commit`), `push` creates a job (the
    engine's `push`); timers go on the engine's wheel as ("cron", entry), and the engine's
    `tick` hands them back to `fire`. Records only change data: timers are set live (`arm`),
    for every entry at `start` after replay.
    """

    def __init__(self, clock: Clock, timers: TimerWheel[tuple[str, Any]],
                 commit: Callable[[Record], None],
                 push: Callable[[str, bytes, PushOptions], tuple[str, bool]],
                 grace_ms: int = MISSED_GRACE_MS) -> None:
        self.clock = clock
        self.timers = timers
        self._commit = commit
        self._push = push
        self.grace_ms = grace_ms
        self.entries: dict[str, CronEntry] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, name: str) -> CronEntry | None:
        return self.entries.get(name)

    def apply(self, op: str, r: Record) -> None:
        if op == "cron-set":
            entry = CronEntry.from_record(r["entry"])
            self._disarm(self.entries.get(entry.name))
            self.entries[entry.name] = entry
        elif op == "cron-del":
            self._disarm(self.entries.pop(r["name"]))
        elif op in ("cron-pause", "cron-resume"):
            entry = self.entries[r["name"]]
            entry.paused = op == "cron-pause"
            entry.since_ms = r["now"]
        elif op == "cron-fired":
            entry = self.entries[r["name"]]
            entry.last_slot = max(entry.last_slot, r["slot"])
            entry.last_job = r["job"]
        else:
            raise ValueError(f"unknown job record op {op!r}")

    def snapshot(self) -> Iterator[Record]:
        for entry in self.entries.values():
            yield {"op": "cron-set", "entry": entry.to_record()}

    def set(self, entry: CronEntry) -> None:
        """Create or replace an entry. A replaced one keeps its last fired slot, so setting
        the same name again never fires a slot twice."""
        old = self.entries.get(entry.name)
        entry.since_ms = self.clock.now_ms()
        if old is not None:
            entry.last_slot, entry.last_job = old.last_slot, old.last_job
        self._commit({"op": "cron-set", "entry": entry.to_record()})
        self.arm(self.entries[entry.name], entry.since_ms)

    def delete(self, name: str) -> bool:
        if name not in self.entries:
            return False
        self._commit({"op": "cron-del", "name": name})
        return True

    def pause(self, name: str, paused: bool) -> None:
        entry = self.entries.get(name)
        if entry is None:
            raise CommandError(f"no such cron entry '{name}'")
        if entry.paused != paused:
            now = self.clock.now_ms()
            self._commit({"op": "cron-pause" if paused else "cron-resume", "name": name,
                          "now": now})
            self.arm(entry, now)

    def start(self, now: int) -> None:
        for entry in list(self.entries.values()):
            self.arm(entry, now)

    def fire(self, entry: CronEntry, now: int) -> None:
        """Its timer fired."""
        entry.timer = None
        self.arm(entry, now)

    def arm(self, entry: CronEntry, now: int) -> None:
        """Fire what is owed now (after a restart or a resume), then set the timer for the
        next slot."""
        self._disarm(entry)
        entry.next_ms = 0
        if entry.paused or self.entries.get(entry.name) is not entry:
            return
        slots, entry.next_ms = entry.due(now, self.grace_ms)
        for slot in slots:
            self._fire_slot(entry, slot)
        entry.timer = self.timers.schedule(entry.next_ms, ("cron", entry))

    def _disarm(self, entry: CronEntry | None) -> None:
        if entry is not None and entry.timer is not None:
            self.timers.cancel(entry.timer)
            entry.timer = None

    def _fire_slot(self, entry: CronEntry, slot: int) -> None:
        o = entry.options
        opts = PushOptions(
            type=o.get("type"), priority=o.get("priority", 0),
            retry=retry_policy(o.get("retries", DEFAULT_RETRIES), o.get("backoff")),
            timeout_ms=o.get("timeout"), key=f"cron:{entry.name}:{slot}",
            meta={**o.get("meta", {}), "cron": entry.name, "cron_slot": str(slot)})
        try:
            job_id, _ = self._push(entry.queue, entry.payload, opts)
        except CommandError as exc:  # e.g. the payload's key clashes: log, never stop the loop
            log.warning("cron entry could not push its job", extra={
                "cron": entry.name, "slot": slot, "error": str(exc)})
            job_id = ""
        self._commit({"op": "cron-fired", "name": entry.name, "slot": slot, "job": job_id})
