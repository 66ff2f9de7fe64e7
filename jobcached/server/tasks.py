"""Background tasks started by commands, kept referenced until they finish.

Why: asyncio keeps only weak references to tasks, so a task nobody holds may be collected
before it finishes. The references live on the server state (`background_tasks`), not in a
module global, so each server in a process holds its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobcached.server.state import ServerState


def spawn(server: ServerState, work: Coroutine[Any, Any, Any]) -> None:
    """Run `work` as a task, referenced by `server` until done."""
    task = asyncio.get_running_loop().create_task(work)
    running = server.background_tasks
    running.add(task)
    task.add_done_callback(running.discard)
