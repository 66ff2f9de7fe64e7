"""The command table's durability policy: how a job write's reply waits for the WAL.

A command declared with `durable=True` (`@command(..., durable=True)`) writes jobs. The table
wraps its handler once, at registration, so handlers neither check the log nor hold replies
themselves (DESIGN: durability is a property of the command, not code in each handler):

- before it runs, a WAL that cannot be written refuses it with `-MISCONF` (nothing changed);
- after it ran, if it logged job records (`Effects.job_records` moved), its reply is held
  until they are as durable as `appendfsync` promises. A command that changed nothing (a
  JOB.BEAT of a canceled job, a QUEUE.LIMIT that only shows) answers at once.

A command that finishes later (it waits for the SQLite archive, or purges in slices) returns a
Deferred; the part that runs later goes through `durably`, which applies the same policy to
it. Inside EXEC and scripts the held replies are gathered by their callers (transactions.py,
scripting.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from jobcached.net.replies import Deferred

if TYPE_CHECKING:
    from jobcached.server.session import Session

T = TypeVar("T")
Handler = Callable[["Session", list[bytes]], Any]


def run_durably(handler: Handler) -> Handler:
    """`handler` under the policy (see the module docstring)."""

    def durable_handler(s: Session, argv: list[bytes]) -> Any:
        # Effects.check_writable and Effects.durable, inlined: this runs for every job write
        effects = s.server.effects
        durability = effects.durability
        if durability is None:
            return handler(s, argv)  # no WAL (unit tests)
        if durability.failure is not None:
            durability.check_writable()
        logged = effects.job_records
        reply = handler(s, argv)
        if effects.job_records == logged or type(reply) is Deferred:
            return reply  # nothing logged, or a continuation that applies `durably` itself
        return durability.reply(reply)

    durable_handler.__doc__ = handler.__doc__
    durable_handler.__name__ = handler.__name__
    return durable_handler


def durably(s: Session, then: Callable[[T], Any]) -> Callable[[T], Any]:
    """The continuation `then` of a durable command under the policy: it is refused while the
    WAL cannot be written, and its reply waits for every record logged so far (its own, and
    those of the slices or lookups before it)."""

    def continuation(value: T) -> Any:
        effects = s.server.effects
        effects.check_writable()
        return effects.durable(then(value))

    return continuation
