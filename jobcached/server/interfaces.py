"""What the server state holds of the command layer, named by what it and its readers use.

Why: `ServerState` carries objects that `commands/` creates on first use (the registry of
clients blocked on keys, the CLIENT PAUSE in force, the scripting glue, a script running past
busy-reply-threshold) and counters per command-table row, while `server/` and
`observability/` sit below `commands/` and may not import it. So the state's fields are typed
with these protocols; each owning module keeps the concrete class, which satisfies its
protocol structurally (mypy checks it where the object is stored).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from jobcached.net.replies import Deferred, ErrorReply
    from jobcached.scripting.engine import ScriptEngine, ScriptRun
    from jobcached.server.session import Session


class CommandRow(Protocol):
    """A row of the command table (commands.registry.Command), the key of
    ServerState.command_stats: what INFO commandstats / latencystats and /metrics read."""

    @property
    def fullname(self) -> str:
        """`get`, or `client|id` for a subcommand."""
        ...

    @property
    def group(self) -> str: ...


class KeyWaiters(Protocol):
    """The clients blocked on keys (commands.blocking.BlockedKeys)."""

    @property
    def blocked(self) -> int:
        """Waiters alive now: INFO's blocked_clients."""
        ...

    def serve_ready(self) -> None:
        """Serve the waiters of the keys signalled ready (the dispatcher, after a command)."""
        ...


class PauseGate(Protocol):
    """The CLIENT PAUSE in force (commands.pause.ClientPause)."""

    @property
    def held(self) -> deque[tuple[Session, list[bytes], Deferred]]:
        """The commands it holds back, oldest first, each with its pending reply."""
        ...

    def holds(self, s: Session, cmd: Any) -> bool:
        """Whether `cmd` (a commands.registry.Command) from `s` must wait for the end."""
        ...

    def hold(self, s: Session, argv: list[bytes]) -> Deferred:
        """Hold argv back; its reply once the pause ends."""
        ...

    def extend(self, writes_only: bool, end_ms: int) -> None: ...

    def end(self) -> None: ...


class ScriptHost(Protocol):
    """The server's scripting glue (commands.scripting.Scripting)."""

    @property
    def engine(self) -> ScriptEngine:
        """The Lua runtime and its script cache."""
        ...

    @property
    def session(self) -> Session:
        """The client scripts run their commands as."""
        ...


class BusyScript(Protocol):
    """A script running past busy-reply-threshold (commands.scripting.BusyScript)."""

    @property
    def run(self) -> ScriptRun: ...

    @property
    def argv(self) -> list[bytes]:
        """The EVAL / FCALL that started it."""
        ...

    def duration_ms(self) -> int: ...

    def refuse(self, s: Session, argv: list[bytes]) -> ErrorReply | None:
        """-BUSY for what may not run meanwhile; None for what may."""
        ...
