"""Hierarchical timing wheel: O(1) schedule and cancel for delays, retry backoffs and lease expiry.

Theory of operation (Varghese & Lauck 1987, scheme 7; the Linux kernel's pre-4.8 layout)
-----------------------------------------------------------------------------------------
Time is cut into ticks of `tick_ms`; a deadline belongs to tick `deadline_ms // tick_ms`, and
`cur` is the tick that contains the last `now_ms` we were given. There are LEVELS levels of SLOTS
slots. Level 0 holds the next SLOTS ticks, one tick per slot (`tick % SLOTS`). Level L >= 1 holds
timers by their level-L *window* `tick >> (L * SLOT_BITS)`, one window per slot, for the SLOTS
windows after the current one. Anything farther away (about 497 days at 10 ms) waits in an
overflow bucket. A timer is filed in the lowest level whose range reaches it. Levels overlap at
their edges: level 0 reaches SLOTS ticks past `cur`, into a window level 1 may also hold, so a
level-1 timer can be due before a level-0 one.

- `schedule` computes the level and slot with a few shifts and adds the handle to that slot's
  dict: O(1). A deadline already in the past goes to a `due` bucket that the next `advance` fires.
- `cancel` deletes the handle from the dict it sits in: O(1), idempotent.
- `advance(now_ms)` moving from tick `cur` to tick `new` empties, on each level, only the slots
  whose window has begun: at most SLOTS per level, so a jump of 30 days costs at most
  LEVELS * SLOTS slot visits instead of one step per tick. Every timer taken out is re-filed
  against the new time: it fires if `deadline_ms <= now_ms`, otherwise it drops to a lower level
  ("cascades"). A timer cascades at most LEVELS times in its life, so advancing is amortized O(1)
  per timer. The current tick is only partly over (deadlines keep ms precision), so its level-0
  slot is re-filtered on every advance that stays inside it. Overflow is re-filed, in O(len), only
  when the top-level window changes (every ~46 hours at 10 ms).
- `next_wakeup` returns when the loop must wake next (beanstalkd's prottick: the loop sleeps
  exactly until the next work): the earliest deadline if it lies in the due bucket or level 0
  (the next SLOTS ticks, 2.56 s at 10 ms), else the start of the first non-empty window of a
  higher level, a lower bound. Waking there costs one empty advance, which cascades that window
  down to level 0; after it the answer is exact again. The bound is what keeps this cheap: the
  exact minimum of a level-1 slot is a scan of 2.56 s worth of timers, tens of thousands under a
  burst of delayed jobs, and it was recomputed after every advance that fired something. Within
  a level slots are in time order, so each level's first non-empty slot holds its earliest
  timers. The answer is cached: schedule keeps it with a `min`; an advance that fires something
  or reaches the cached time, or cancelling a timer at it, clears it.

No clock is read here: time is always passed in, in unix milliseconds.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_TICK_MS = 10
"""Resolution of the wheel in milliseconds; the event loop rarely wakes more often than this."""
SLOT_BITS = 8
SLOTS = 1 << SLOT_BITS
"""Slots per level: 256 keeps every level's scan cheap and 4 levels reach ~497 days at 10 ms."""
SLOT_MASK = SLOTS - 1
LEVELS = 4
"""Levels in the wheel; deadlines beyond SLOTS**LEVELS ticks wait in the overflow bucket."""

_OVERFLOW = LEVELS  # pseudo-level index of the overflow bucket in `_counts`
_DUE = LEVELS + 1  # pseudo-level index of the past-deadline bucket in `_counts`
_TOP_SHIFT = (LEVELS - 1) * SLOT_BITS
_fire_order = attrgetter("deadline_ms", "seq")


class TimerHandle(Generic[T]):
    """A scheduled timer; keep it to `cancel` it. `active` is False once fired or cancelled."""

    __slots__ = ("_bucket", "_level", "_tick", "deadline_ms", "item", "seq")

    def __init__(self, deadline_ms: int, tick: int, item: T, seq: int) -> None:
        self.deadline_ms = deadline_ms
        self.item = item
        self.seq = seq  # schedule order, the tie-breaker among equal deadlines
        self._tick = tick
        self._bucket: dict[TimerHandle[T], None] | None = None
        self._level = 0

    @property
    def active(self) -> bool:
        return self._bucket is not None

    def __repr__(self) -> str:
        state = "active" if self.active else "done"
        return f"<TimerHandle deadline_ms={self.deadline_ms} seq={self.seq} {state} {self.item!r}>"


class TimerWheel(Generic[T]):
    """Timers keyed by unix-ms deadlines; see the module docstring for how it works.

    `start_ms` is the current time (the wheel never reads a clock); `tick_ms` is the resolution
    of the internal slots, not of the deadlines: `advance` fires exactly the timers whose
    `deadline_ms <= now_ms`, sorted by deadline, then by schedule order.
    """

    def __init__(self, *, start_ms: int, tick_ms: int = DEFAULT_TICK_MS) -> None:
        if tick_ms <= 0:
            raise ValueError(f"tick_ms must be positive, got {tick_ms}")
        self._tick_ms = tick_ms
        self._now_ms = start_ms
        self._cur = start_ms // tick_ms
        self._levels: list[list[dict[TimerHandle[T], None]]] = [
            [{} for _ in range(SLOTS)] for _ in range(LEVELS)
        ]
        self._overflow: dict[TimerHandle[T], None] = {}
        self._due: dict[TimerHandle[T], None] = {}
        self._counts = [0] * (LEVELS + 2)  # timers per level, then overflow, then due
        self._len = 0
        self._seq = 0
        self._next: int | None = None
        self._next_valid = True  # an empty wheel has no next deadline

    def __len__(self) -> int:
        return self._len

    @property
    def now_ms(self) -> int:
        """The latest time passed to `advance` (or `start_ms`)."""
        return self._now_ms

    def schedule(self, deadline_ms: int, item: T) -> TimerHandle[T]:
        """Fire `item` at the first `advance(now_ms)` with `now_ms >= deadline_ms`. O(1)."""
        self._seq += 1
        handle = TimerHandle(deadline_ms, deadline_ms // self._tick_ms, item, self._seq)
        self._file(handle)
        self._len += 1
        if self._next_valid and (self._next is None or deadline_ms < self._next):
            self._next = deadline_ms
        return handle

    def cancel(self, handle: TimerHandle[T]) -> bool:
        """Forget a timer. O(1). Returns False if it had already fired or been cancelled."""
        bucket = handle._bucket
        if bucket is None:
            return False
        del bucket[handle]
        handle._bucket = None
        self._counts[handle._level] -= 1
        self._len -= 1
        if not self._len:
            self._next, self._next_valid = None, True
        elif self._next_valid and handle.deadline_ms == self._next:
            self._next_valid = False
        return True

    def advance(self, now_ms: int) -> list[T]:
        """Move time to `now_ms` and return the items whose deadline is `<= now_ms`, in order.

        Time never runs backwards inside the wheel: an earlier `now_ms` (a stepped wall clock)
        only fires the timers scheduled in the past since the last advance.
        """
        counts = self._counts
        fired = list(self._due)
        if fired:
            self._due = {}
            counts[_DUE] = 0
        if now_ms > self._now_ms:
            moved = self._take_started_slots(now_ms // self._tick_ms)
            self._cur = now_ms // self._tick_ms
            self._now_ms = now_ms
            for handle in moved:
                if handle.deadline_ms <= now_ms:
                    fired.append(handle)
                else:
                    self._file(handle)
        if not fired:
            if self._next_valid and self._next is not None and self._next <= now_ms:
                self._next_valid = False  # a window's start, reached: its timers cascaded
            return []
        self._next_valid = False
        self._len -= len(fired)
        for handle in fired:
            handle._bucket = None
        fired.sort(key=_fire_order)
        return [handle.item for handle in fired]

    def next_wakeup(self) -> int | None:
        """When to advance next, in unix ms (maybe in the past), or None when empty: never after
        the earliest pending deadline, and either equal to it or still in the future (so a loop
        that sleeps until it never spins). O(1) while cached; see the module docstring.
        """
        if not self._next_valid:
            self._next = self._earliest()
            self._next_valid = True
        return self._next

    def items(self) -> list[T]:
        """Every pending item, in no particular order (for introspection and tests). O(n)."""
        out = [h.item for h in self._due]
        for level in self._levels:
            for bucket in level:
                out.extend(h.item for h in bucket)
        out.extend(h.item for h in self._overflow)
        return out

    # -- internals ---------------------------------------------------------------------------

    def _file(self, handle: TimerHandle[T]) -> None:
        """Put a handle in the bucket its deadline belongs to, relative to the current time."""
        if handle.deadline_ms <= self._now_ms:
            bucket, level = self._due, _DUE
        else:
            tick, cur = handle._tick, self._cur
            if tick - cur < SLOTS:
                bucket, level = self._levels[0][tick & SLOT_MASK], 0
            elif (tick >> SLOT_BITS) - (cur >> SLOT_BITS) <= SLOTS:
                # Level 1 spelled out (the loop below would find it first): it holds leases
                # and timeouts of seconds to minutes, one schedule per job fetched.
                bucket, level = self._levels[1][(tick >> SLOT_BITS) & SLOT_MASK], 1
            else:
                bucket, level = self._overflow, _OVERFLOW
                for lvl in range(2, LEVELS):
                    shift = lvl * SLOT_BITS
                    window = tick >> shift
                    # Strictly after the current window (guaranteed because the lower level
                    # rejected it) and at most SLOTS windows ahead, so slots never alias.
                    if window - (cur >> shift) <= SLOTS:
                        bucket, level = self._levels[lvl][window & SLOT_MASK], lvl
                        break
        bucket[handle] = None
        handle._bucket = bucket
        handle._level = level
        self._counts[level] += 1

    def _take_started_slots(self, new: int) -> list[TimerHandle[T]]:
        """Empty every slot whose tick or window has begun by tick `new`; return their handles.

        Each level visits at most SLOTS slots, whatever the size of the jump.
        """
        cur = self._cur
        counts = self._counts
        moved: list[TimerHandle[T]] = []
        if counts[0]:
            slots = self._levels[0]
            for tick in range(cur, cur + min(SLOTS, new - cur + 1)):
                bucket = slots[tick & SLOT_MASK]
                if bucket:
                    moved.extend(bucket)
                    counts[0] -= len(bucket)
                    bucket.clear()
        for lvl in range(1, LEVELS):
            if not counts[lvl]:
                continue
            shift = lvl * SLOT_BITS
            first = (cur >> shift) + 1
            last = min(new >> shift, (cur >> shift) + SLOTS)
            slots = self._levels[lvl]
            for window in range(first, last + 1):
                bucket = slots[window & SLOT_MASK]
                if bucket:
                    moved.extend(bucket)
                    counts[lvl] -= len(bucket)
                    bucket.clear()
        if counts[_OVERFLOW] and (new >> _TOP_SHIFT) != (cur >> _TOP_SHIFT):
            moved.extend(self._overflow)  # the far ones go straight back to overflow
            self._overflow = {}
            counts[_OVERFLOW] = 0
        return moved

    def _earliest(self) -> int | None:
        """See `next_wakeup`: exact for the due bucket, level 0 and overflow; for a higher level
        the start of its first non-empty window.

        Levels are not ordered against each other: level 0 reaches up to SLOTS ticks past
        `cur`, which can lie inside a window that level 1 also holds, so every level is asked.
        """
        counts = self._counts
        candidates: list[int] = []
        if counts[_DUE]:
            candidates.append(min(h.deadline_ms for h in self._due))
        if counts[0]:
            slots = self._levels[0]
            for tick in range(self._cur, self._cur + SLOTS):
                bucket = slots[tick & SLOT_MASK]
                if bucket:
                    candidates.append(min(h.deadline_ms for h in bucket))
                    break
        for lvl in range(1, LEVELS):
            if not counts[lvl]:
                continue
            shift = lvl * SLOT_BITS
            first = (self._cur >> shift) + 1
            slots = self._levels[lvl]
            for window in range(first, first + SLOTS):
                if slots[window & SLOT_MASK]:
                    candidates.append((window << shift) * self._tick_ms)
                    break
        if counts[_OVERFLOW]:
            candidates.append(min(h.deadline_ms for h in self._overflow))
        return min(candidates) if candidates else None
