"""Run one write in a forked child, so the event loop never pauses for it.

Used by the WAL compaction, a follower's full sync (server/leader.py) and BGSAVE
(server/saving.py). Why fork: compaction writes a snapshot of every live job. Built on the loop,
that took about 10 µs per job, a second of silence for every client at 100,000 jobs and ten at a
million; built on a thread, it would still hold the GIL while the loop's own state kept changing
under it. A forked child gets a frozen copy of the whole state for the cost of copying page
tables, and its CPU is the other core's. This is how Redis rewrites its AOF (BGREWRITEAOF). The
price is the same as Redis's too: pages the parent changes meanwhile, and pages the child
touches (Python's reference counts write to every object it reads), are copied, so memory can
grow by up to the size of the job state while a compaction runs.

The child closes every file descriptor of the parent's but the pipe it reports on, writes its
own file, reports `ok <count>` or `error <text>`, and leaves with `os._exit`, so no
`atexit` handler, buffered stream or thread of the parent runs in it. It stops by itself if the
parent dies (it checks between chunks).
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
from collections.abc import Callable
from typing import NoReturn

_MAX_REPORT = 4096


class ChildFailed(Exception):
    """The child could not do its write; the message is its error."""


class ForkedWrite:
    """A child process running `write(check_parent)`; `wait()` for its result."""

    def __init__(self, pid: int, report_fd: int) -> None:
        self.pid = pid
        self._report_fd = report_fd
        self._done = False

    @classmethod
    def start(cls, write: Callable[[Callable[[], None]], int]) -> ForkedWrite:
        """Fork now: the child sees the state as it is at this call. `write` gets a callable
        to run now and then, which ends the child if the server has gone."""
        parent = os.getpid()
        read_fd, write_fd = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            raise
        if pid == 0:  # the child
            os.close(read_fd)
            _child(write, write_fd, parent)
        os.close(write_fd)
        return cls(pid, read_fd)

    def wait(self) -> int:
        """Block until the child ends (run it in a thread); the count its write returned.
        Raises ChildFailed with the child's error, or saying how it died."""
        chunks = []
        try:
            while chunk := os.read(self._report_fd, _MAX_REPORT):
                chunks.append(chunk)
        finally:
            os.close(self._report_fd)
            _, status = os.waitpid(self.pid, 0)
            self._done = True
        report = b"".join(chunks).decode(errors="replace")
        if report.startswith("ok ") and os.waitstatus_to_exitcode(status) == 0:
            return int(report[3:])
        if report.startswith("error "):
            raise ChildFailed(report[6:])
        raise ChildFailed(f"the forked writer died (exit status "
                          f"{os.waitstatus_to_exitcode(status)})")

    def kill(self) -> None:
        """Stop the child at once (server shutdown); `wait` then raises ChildFailed."""
        if not self._done:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def _child(write: Callable[[Callable[[], None]], int], report_fd: int, parent: int) -> NoReturn:
    code = 1
    try:
        # Signals are the parent's business: its handlers would write to the loop's wake-up
        # fd, which this copy shares with it.
        with contextlib.suppress(ValueError):  # not the main thread (tests): nothing to undo
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
        # Nothing of the parent's is for the child: a client socket the parent closes must
        # not stay open here (its peer would see no FIN until the child ends).
        os.closerange(3, report_fd)
        os.closerange(report_fd + 1, os.sysconf("SC_OPEN_MAX"))
        gc.disable()  # a collection would touch, and so copy, every object in the heap

        def check_parent() -> None:
            if os.getppid() != parent:
                raise ChildFailed("the server exited")

        report = f"ok {write(check_parent)}"
        code = 0
    except BaseException as exc:  # anything: the parent must hear why
        report = f"error {exc}"
    with contextlib.suppress(OSError):
        os.write(report_fd, report.encode(errors="replace")[:_MAX_REPORT])
    os._exit(code)
