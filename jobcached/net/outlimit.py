"""Client output buffer limits: when a client that does not read its replies is disconnected.

Redis' `client-output-buffer-limit <class> <hard> <soft> <soft-seconds>`, with its rules:

- the class is `pubsub` while the client is subscribed to a channel or pattern (RESP2 or
  RESP3), `normal` otherwise; the class decides which limits apply to *all* its output;
- pending output at or above the hard limit closes the client at once;
- pending output at or above the soft limit closes it once it has stayed there for more than
  soft-seconds; it is checked, as in Redis, each time output is added, and dropping below the
  soft limit at a check starts the count again;
- 0 disables a limit.

"Pending output" is everything the client has not taken yet: the transport's buffer and any
reply or push the connection holds back behind a reply that is not ready yet (see
`RespProtocol._held`). Counting only the first let a blocked client park messages without
bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobcached.config import Config


@dataclass(frozen=True, slots=True)
class OutputLimit:
    """One class's limits; a zero byte count disables that limit."""

    hard_bytes: int
    soft_bytes: int
    soft_seconds: int


def output_limit(config: Config, subscribed: bool) -> OutputLimit:
    """The limits of the client's class: pubsub while subscribed, normal otherwise."""
    if subscribed:
        return OutputLimit(config.client_output_buffer_limit_pubsub,
                           config.client_output_buffer_limit_pubsub_soft,
                           config.client_output_buffer_limit_pubsub_soft_seconds)
    return OutputLimit(config.client_output_buffer_limit,
                       config.client_output_buffer_limit_soft,
                       config.client_output_buffer_limit_soft_seconds)


class OutputLimiter:
    """One client's soft-limit timer; `exceeded` is Redis' checkClientOutputBufferLimits."""

    __slots__ = ("soft_since_ms",)

    def __init__(self) -> None:
        #: when pending output was first seen at or above the soft limit (None: below it)
        self.soft_since_ms: int | None = None

    def exceeded(self, pending_bytes: int, limit: OutputLimit, now_ms: int) -> bool:
        """True when the client must be closed for `pending_bytes` of pending output."""
        hard = 0 < limit.hard_bytes <= pending_bytes
        if not 0 < limit.soft_bytes <= pending_bytes:
            self.soft_since_ms = None
            return hard
        if self.soft_since_ms is None:
            self.soft_since_ms = now_ms
            return hard
        return hard or now_ms - self.soft_since_ms > limit.soft_seconds * 1000
