"""Timer wheel: ordering, cancel, cascading, big jumps, and a model-based hypothesis test."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobcached.jobs.timerwheel import LEVELS, SLOTS, TimerWheel

START_MS = 1_700_000_000_000
DAY_MS = 86_400_000


def make(tick_ms: int = 10) -> TimerWheel[str]:
    return TimerWheel(start_ms=START_MS, tick_ms=tick_ms)


def test_fires_in_deadline_then_schedule_order() -> None:
    wheel = make()
    wheel.schedule(START_MS + 50, "c")
    wheel.schedule(START_MS + 20, "a")
    wheel.schedule(START_MS + 50, "d")
    wheel.schedule(START_MS + 21, "b")
    assert len(wheel) == 4
    assert wheel.advance(START_MS + 19) == []
    assert wheel.advance(START_MS + 100) == ["a", "b", "c", "d"]
    assert len(wheel) == 0
    assert wheel.next_wakeup() is None


def test_millisecond_precision_inside_a_tick() -> None:
    wheel = make(tick_ms=10)
    wheel.schedule(START_MS + 13, "x")
    wheel.schedule(START_MS + 17, "y")
    wheel.schedule(START_MS + 100, "z")
    assert wheel.advance(START_MS + 12) == []
    assert wheel.next_wakeup() == START_MS + 13
    assert wheel.advance(START_MS + 13) == ["x"]
    assert wheel.next_wakeup() == START_MS + 17
    assert wheel.advance(START_MS + 16) == []
    assert wheel.advance(START_MS + 17) == ["y"]
    assert wheel.next_wakeup() == START_MS + 100


def test_cancel_is_idempotent_and_noop_after_fire() -> None:
    wheel = make()
    keep = wheel.schedule(START_MS + 10, "keep")
    drop = wheel.schedule(START_MS + 5, "drop")
    assert wheel.cancel(drop) is True
    assert wheel.cancel(drop) is False
    assert not drop.active
    assert len(wheel) == 1
    assert wheel.next_wakeup() == START_MS + 10
    assert wheel.advance(START_MS + 10) == ["keep"]
    assert wheel.cancel(keep) is False
    assert len(wheel) == 0


def test_past_deadlines_fire_on_next_advance_even_if_time_stands_still() -> None:
    wheel = make()
    wheel.advance(START_MS + 1_000)
    wheel.schedule(START_MS, "late")
    wheel.schedule(START_MS + 1_000, "now")
    assert wheel.next_wakeup() == START_MS
    assert wheel.advance(START_MS + 1_000) == ["late", "now"]
    wheel.schedule(START_MS + 500, "backwards")
    assert wheel.advance(START_MS) == ["backwards"]  # a stepped-back clock still fires due work


def test_far_future_deadlines_cascade_down_and_fire_exactly() -> None:
    wheel = make()
    offsets = [SLOTS * 10 * 256**level + 7 for level in range(LEVELS)]  # one per level
    offsets.append(600 * DAY_MS)  # beyond four levels at 10 ms: overflow
    for i, offset in enumerate(offsets):
        wheel.schedule(START_MS + offset, f"t{i}")
    fired: list[str] = []
    wakeups = 0
    while len(wheel):  # hop from wake-up to wake-up, checking nothing fires early or is missed
        wakeup = wheel.next_wakeup()
        assert wakeup is not None
        assert wheel.advance(wakeup - 1) == []
        fired += wheel.advance(wakeup)
        wakeups += 1
    assert fired == [f"t{i}" for i in range(len(offsets))]
    assert wakeups <= len(offsets) * (LEVELS + 1)  # one per timer, plus one per cascade


def test_thirty_day_jump_is_bounded_not_tick_by_tick() -> None:
    wheel = make(tick_ms=1)  # 2.6e9 ticks in 30 days: stepping would take minutes
    for i in range(1_000):
        wheel.schedule(START_MS + i * 2_591 * 1_000, i)
    started = time.perf_counter()
    fired = wheel.advance(START_MS + 30 * DAY_MS)
    elapsed = time.perf_counter() - started
    assert fired == list(range(1_000))
    assert elapsed < 1.0, elapsed  # ~1 ms in practice; a per-tick loop would be minutes


def test_next_wakeup_tracks_cancel_and_schedule() -> None:
    wheel = make()  # tick 10 ms: level 0 reaches 2.56 s ahead
    a = wheel.schedule(START_MS + 500, "a")
    wheel.schedule(START_MS + 1_500, "b")
    assert wheel.next_wakeup() == START_MS + 500
    wheel.cancel(a)
    assert wheel.next_wakeup() == START_MS + 1_500
    wheel.schedule(START_MS + 1, "c")
    assert wheel.next_wakeup() == START_MS + 1
    assert sorted(wheel.items()) == ["b", "c"]


def test_far_deadlines_give_a_window_start_not_a_scan() -> None:
    """Beyond level 0 the wake-up is the start of the first busy window: never late, never a
    scan of every timer in it, and exact again once that window has cascaded down."""
    wheel = make()
    for i in range(1_000):
        wheel.schedule(START_MS + 90_000 + i, i)
    wakeup = wheel.next_wakeup()
    assert wakeup is not None and START_MS < wakeup <= START_MS + 90_000
    while wheel.next_wakeup() != START_MS + 90_000:
        assert wheel.advance(wheel.next_wakeup() or 0) == []
    assert wheel.advance(START_MS + 90_000) == [0]
    assert wheel.next_wakeup() == START_MS + 90_001


# Offsets (in ticks) next to every slot and window boundary of every level, and overflow.
EDGES = sorted(
    {
        times * SLOTS**level + jitter
        for level in range(LEVELS + 1)
        for times in (1, 2, SLOTS - 1, SLOTS, SLOTS + 1)
        for jitter in (-1, 0, 1)
    }
)


@pytest.mark.parametrize("phase", [0, 1, SLOTS - 1, SLOTS**2 - 1, SLOTS**3 + 5])
def test_boundary_sweep(phase: int) -> None:
    """Deadlines on every boundary, one jump of every size, then deadline by deadline."""
    for jump in EDGES[1::2]:
        wheel: TimerWheel[int] = TimerWheel(start_ms=phase, tick_ms=1)  # ticks == ms
        for edge in EDGES:
            wheel.schedule(phase + edge, edge)
        assert wheel.advance(phase + jump) == [e for e in EDGES if e <= jump]
        for edge in (e for e in EDGES if e > jump):
            while (wakeup := wheel.next_wakeup()) != phase + edge:
                assert wakeup is not None and wheel.now_ms < wakeup < phase + edge
                assert wheel.advance(wakeup) == []  # a window start: it cascades, fires nothing
            assert wheel.advance(phase + edge - 1) == []
            assert wheel.advance(phase + edge) == [edge]
        assert len(wheel) == 0


def test_overflow_comes_back_when_time_walks_in_top_level_steps() -> None:
    top_window = SLOTS ** (LEVELS - 1)  # ticks per top-level slot
    far = SLOTS**LEVELS + 3 * top_window + 7  # starts in overflow
    wheel: TimerWheel[str] = TimerWheel(start_ms=0, tick_ms=1)
    wheel.schedule(far, "far")
    now = 0
    while now + top_window < far:
        now += top_window
        assert wheel.advance(now) == []
    assert wheel.advance(far) == ["far"]


# -- model-based check ----------------------------------------------------------------------

# Deltas near multiples of each level's span hit the slot and window boundaries.
BOUNDARIES = st.builds(
    lambda level, times, jitter: times * SLOTS**level + jitter,
    st.integers(0, LEVELS),
    st.one_of(st.sampled_from([1, 2, SLOTS - 1, SLOTS, SLOTS + 1]), st.integers(1, SLOTS + 1)),
    st.integers(-2, 2),
)
DELTAS = st.one_of(
    st.integers(-100, 600),
    BOUNDARIES,
    st.integers(0, 2**20),
    st.integers(0, 2**38),  # past every level, into overflow at tick_ms=1
)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("schedule"), DELTAS),
        st.tuples(st.just("cancel"), st.integers(0, 10_000)),
        st.tuples(st.just("advance"), st.one_of(st.integers(-20, 300), DELTAS)),
    ),
    max_size=120,
)


@settings(max_examples=500, deadline=None)
@given(ops=OPS, tick_ms=st.sampled_from([1, 3, 10]))
def test_matches_sorted_list_model(ops: list[tuple[str, int]], tick_ms: int) -> None:
    wheel: TimerWheel[int] = TimerWheel(start_ms=START_MS, tick_ms=tick_ms)
    model: list[tuple[int, int]] = []  # (deadline, seq); seq doubles as the item
    handles = {}
    now = START_MS
    seq = 0
    for op, arg in ops:
        if op == "schedule":
            seq += 1
            handles[seq] = wheel.schedule(now + arg, seq)
            model.append((now + arg, seq))
        elif op == "cancel" and handles:
            key = list(handles)[arg % len(handles)]
            was_pending = any(s == key for _, s in model)
            assert wheel.cancel(handles.pop(key)) is was_pending
            model = [(d, s) for d, s in model if s != key]
        elif op == "advance":
            target = now + arg
            now = max(now, target)
            expected = sorted(e for e in model if e[0] <= now)
            model = [e for e in model if e[0] > now]
            assert wheel.advance(target) == [s for _, s in expected]
        assert len(wheel) == len(model)
        wakeup = wheel.next_wakeup()
        if not model:
            assert wakeup is None
        else:  # never late; exact, or a future window start that a loop can sleep until
            earliest = min(d for d, _ in model)
            assert wakeup is not None and wakeup <= earliest
            assert wakeup == earliest or wakeup > wheel.now_ms
