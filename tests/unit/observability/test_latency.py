"""The latency monitor's bookkeeping (server/latency.py), without a server."""

from __future__ import annotations

from jobcached.server.latency import HISTORY_LEN, LatencyMonitor, doctor, graph


def test_nothing_is_recorded_while_the_threshold_is_zero() -> None:
    monitor = LatencyMonitor()
    monitor.configure(0)
    monitor.add("command", 10_000, 1_700_000_000)
    assert monitor.events == {}
    assert "disabled" in doctor(monitor, 0)


def test_samples_under_the_threshold_are_dropped_and_one_second_keeps_its_worst() -> None:
    monitor = LatencyMonitor()
    monitor.configure(5)
    monitor.add("command", 4, 100)
    monitor.add("command", 6, 100)
    monitor.add("command", 9, 100)
    monitor.add("command", 7, 100)
    monitor.add("command", 5, 101)
    series = monitor.events["command"]
    assert list(series.samples) == [[100, 9], [101, 5]]
    assert series.max_ms == 9
    assert monitor.threshold_us == 5000


def test_history_keeps_the_last_160_samples_and_the_all_time_max() -> None:
    monitor = LatencyMonitor()
    monitor.configure(1)
    monitor.add("expire-cycle", 500, 0)
    for second in range(1, HISTORY_LEN + 10):
        monitor.add("expire-cycle", 2, second)
    series = monitor.events["expire-cycle"]
    assert len(series.samples) == HISTORY_LEN
    assert series.samples[0] == [10, 2] and series.max_ms == 500


def test_reset_named_or_all() -> None:
    monitor = LatencyMonitor()
    monitor.configure(1)
    for name in ("command", "fast-command", "wal-fsync"):
        monitor.add(name, 3, 10)
    assert monitor.reset(["command", "command", "unknown"]) == 1
    assert set(monitor.events) == {"fast-command", "wal-fsync"}
    assert monitor.reset([]) == 2
    assert monitor.events == {}


def test_graph_has_a_header_a_column_per_sample_and_ages() -> None:
    monitor = LatencyMonitor()
    monitor.configure(1)
    for second, ms in ((100, 10), (160, 40), (200, 20)):
        monitor.add("command", ms, second)
    lines = graph("command", monitor.events["command"], 200).splitlines()
    assert lines[0] == "command - high 40 ms, low 10 ms (all time high 40 ms)"
    assert lines[1] == "-" * 80
    assert lines[-3:] == ["140", "m0s", " s "]  # the ages 1m, 40s and 0s, read downwards
    assert len(lines) == 2 + 4 + 3  # header, four rows of bars, three rows of labels
    assert "1. command: 3 latency spikes (average 23ms, worst all time 40ms)." in doctor(
        monitor, 1)
