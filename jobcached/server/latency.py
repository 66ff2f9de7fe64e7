"""The latency monitor: Redis' LATENCY LATEST / HISTORY / RESET / GRAPH / DOCTOR data.

Why a second latency record next to the per-command histograms: those say how a command's
durations are spread; this says *when* the server stalled and on what. Each event class
("command", "fast-command", "expire-cycle", "eviction-cycle", "wal-fsync") keeps, like Redis'
latency.c, one sample per second at most (the worst of that second), a ring of the last 160,
and its all-time maximum. Nothing is recorded while `latency-monitor-threshold` is 0, and a
duration under the threshold costs one comparison at the caller.
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass, field

#: Samples kept per event (Redis' LATENCY_TS_LEN).
HISTORY_LEN = 160

#: What `threshold_ms` is while the monitor is off: no duration reaches it.
DISABLED = sys.maxsize


@dataclass(slots=True)
class EventSeries:
    """One event class: its samples as [unix seconds, ms] pairs, oldest first, and its max."""

    samples: deque[list[int]] = field(default_factory=lambda: deque(maxlen=HISTORY_LEN))
    max_ms: int = 0


class LatencyMonitor:
    """Every event class seen since the last reset; see the module docstring."""

    __slots__ = ("events", "threshold_ms", "threshold_us")

    def __init__(self) -> None:
        self.events: dict[str, EventSeries] = {}
        self.threshold_ms = DISABLED
        #: the same bound in microseconds, for callers that time in us (dispatch.call)
        self.threshold_us = DISABLED

    def configure(self, threshold_ms: int) -> None:
        """`latency-monitor-threshold`: 0 turns the monitor off."""
        self.threshold_ms = threshold_ms or DISABLED
        self.threshold_us = threshold_ms * 1000 if threshold_ms else DISABLED

    def add(self, event: str, duration_ms: int, now_s: int) -> None:
        """Record `event` lasting `duration_ms` if it reaches the threshold (latencyAddSample:
        a second sample in the same second keeps the larger duration)."""
        if duration_ms < self.threshold_ms:
            return
        series = self.events.get(event)
        if series is None:
            series = self.events[event] = EventSeries()
        series.max_ms = max(series.max_ms, duration_ms)
        last = series.samples[-1] if series.samples else None
        if last is not None and last[0] == now_s:
            last[1] = max(last[1], duration_ms)
        else:
            series.samples.append([now_s, duration_ms])

    def reset(self, names: list[str]) -> int:
        """Forget the named events (all when none are named); how many were forgotten."""
        if not names:
            count = len(self.events)
            self.events.clear()
            return count
        return sum(self.events.pop(name, None) is not None for name in dict.fromkeys(names))


#: LATENCY GRAPH's height in rows and the characters of its columns (Redis' sparkline).
GRAPH_ROWS = 4
GRAPH_CHARSET = "_-`"


def graph(event: str, series: EventSeries, now_s: int) -> str:
    """LATENCY GRAPH: a header, then one column per sample scaled between the lowest and the
    highest sample, labelled with its age (latencyCommandGenSparkeline's layout)."""
    samples = list(series.samples)
    low = min(ms for _, ms in samples)
    high = max(ms for _, ms in samples)
    lines = [f"{event} - high {high} ms, low {low} ms (all time high {series.max_ms} ms)",
             "-" * 80]
    span = max(high - low, 1)
    levels = GRAPH_ROWS * len(GRAPH_CHARSET)
    heights = [(ms - low) * (levels - 1) // span + 1 for _, ms in samples]
    for row in range(GRAPH_ROWS - 1, -1, -1):
        line = ""
        for height in heights:
            filled = height - row * len(GRAPH_CHARSET)
            if filled >= len(GRAPH_CHARSET):
                line += "#" if row < GRAPH_ROWS - 1 else GRAPH_CHARSET[-1]
            elif filled > 0:
                line += GRAPH_CHARSET[filled - 1]
            else:
                line += " "
        lines.append(line.rstrip() or " ")
    labels = [_age_label(now_s - at) for at, _ in samples]
    width = max(len(label) for label in labels)
    for index in range(width):
        lines.append("".join(label[index] if index < len(label) else " " for label in labels))
    return "\n".join(lines) + "\n"


def _age_label(seconds: int) -> str:
    """A sample's age as Redis prints it under each column: 12s, 3m, 2h, 1d."""
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def doctor(monitor: LatencyMonitor, threshold_ms: int) -> str:
    """LATENCY DOCTOR: a short human report built from the recorded events."""
    if threshold_ms == 0:
        return ("I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this "
                "jobcached instance. You may use \"CONFIG SET latency-monitor-threshold "
                "<milliseconds>.\" in order to enable it.\n")
    if not monitor.events:
        return "Dave, no latency spike was observed during the lifetime of this instance.\n"
    lines = ["Dave, I have observed latency spikes in this instance. You don't mind talking "
             "about it, do you Dave?", ""]
    for number, (name, series) in enumerate(sorted(monitor.events.items()), 1):
        values = [ms for _, ms in series.samples]
        average = sum(values) // len(values)
        lines.append(f"{number}. {name}: {len(values)} latency spikes (average {average}ms, "
                     f"worst all time {series.max_ms}ms).")
    lines += ["", "I have a few advices for you:", "",
              "- Check SLOWLOG GET for the commands behind \"command\" events, and INFO "
              "commandstats for their average cost."]
    return "\n".join(lines) + "\n"
