"""Instantaneous rates and peaks for INFO: ops/sec, kbps, used_memory_peak.

Why: monitoring tools graph Redis' `instantaneous_ops_per_sec` and `used_memory_peak`, which
Redis samples in its cron. We have no cron of our own for this, so each INFO reading samples
the counters: a rate is the change since the previous sample taken at least MIN_INTERVAL_S
before (readings closer together repeat the last rate), and the peak is the highest
`used_memory` any reading has seen. Kept per server state, outside it, weakly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from jobcached.server.state import ServerState

#: Shortest span a rate is computed over (Redis averages 16 samples of 100 ms).
MIN_INTERVAL_S = 0.1


@dataclass
class Rates:
    """The last sample and the rates computed from it."""

    at: float = field(default_factory=time.monotonic)
    ops: int = 0
    net_in: int = 0
    net_out: int = 0
    ops_per_sec: int = 0
    input_kbps: float = 0.0
    output_kbps: float = 0.0
    memory_peak: int = 0

    def sample(self, state: ServerState) -> None:
        now, stats = time.monotonic(), state.stats
        elapsed = now - self.at
        if elapsed < MIN_INTERVAL_S:
            return
        self.ops_per_sec = round((stats.total_commands_processed - self.ops) / elapsed)
        self.input_kbps = (stats.total_net_input_bytes - self.net_in) / elapsed / 1024
        self.output_kbps = (stats.total_net_output_bytes - self.net_out) / elapsed / 1024
        self.at, self.ops = now, stats.total_commands_processed
        self.net_in, self.net_out = stats.total_net_input_bytes, stats.total_net_output_bytes


def rates(state: ServerState) -> Rates:
    """The Rates of a server state, created (with the counters as they are) on first use."""
    found = state.rates
    if found is None:
        stats = state.stats
        found = state.rates = Rates(ops=stats.total_commands_processed,
                                    net_in=stats.total_net_input_bytes,
                                    net_out=stats.total_net_output_bytes)
    return found
