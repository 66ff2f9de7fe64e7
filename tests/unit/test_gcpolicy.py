"""Full garbage collections run when the server chooses: on a schedule, or when it is idle,
never on the allocation path."""

from __future__ import annotations

import gc

from jobcached.server.gcpolicy import IDLE_MIN_INTERVAL_S, FullCollections


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_install_leaves_the_young_generations_alone() -> None:
    before = gc.get_threshold()
    try:
        FullCollections(300).install()
        young, middle, full = gc.get_threshold()
        assert (young, middle) == before[:2] and full > 10**9
    finally:
        gc.set_threshold(*before)


def test_busy_server_collects_only_on_the_interval() -> None:
    clock = Clock()
    policy = FullCollections(300, clock=clock)
    commands = 0
    for _ in range(2_990):  # 299 s of cron ticks, commands arriving all the time
        clock.now += 0.1
        commands += 5
        policy.step(commands)
    assert policy.collections == 0
    clock.now += 1.5
    policy.step(commands + 1)
    assert policy.collections == 1 and policy.last_pause_ms > 0


def test_idle_server_collects_once_a_minute_if_anything_aged() -> None:
    clock = Clock()
    policy = FullCollections(300, clock=clock)
    clock.now += IDLE_MIN_INTERVAL_S
    policy.step(7)  # a command arrived: not idle
    assert policy.collections == 0
    gc.collect(1)  # something reached the old generation
    clock.now += 1.0
    policy.step(7)  # a second with no command
    assert policy.collections == 1
    clock.now += 30
    gc.collect(1)
    policy.step(7)
    assert policy.collections == 1  # idle, but the last one was 30 s ago
    clock.now += IDLE_MIN_INTERVAL_S
    policy.step(7)
    assert policy.collections == 2
