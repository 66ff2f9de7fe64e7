"""Start-up checks that must pass before the server touches its state.

Why a module of its own: everything here can fail because of the machine, not the data (a
second server on the same directory, a port another process holds, an address this host does
not have), and each such failure must end the start with one line and exit code 1, before the
WAL is read or a thread is started. So these steps run first, and own nothing but file
descriptors, which `close()` gives back.

- **One server per data dir.** `DataDirLock` takes `flock(LOCK_EX | LOCK_NB)` on
  `DIR/jobcached.lock` and writes its pid there. Two servers replaying and appending to one WAL
  would interleave records and leave a log neither can start from; the lock refuses the
  second at once and names the first. The lock is the kernel's: it goes away with the process
  (even after `kill -9`), so a stale lock file never blocks a restart, and it is not deleted
  on stop (deleting a flock'd file lets two servers lock two different inodes).
- **Bind before replay.** `bind_tcp` and `bind_unix` bind the listening sockets but do not
  `listen()`: the port is ours (a taken port or a foreign address fails here, in
  milliseconds), while clients still get "connection refused" until the job state is whole.
  The app calls `listen()` (through `create_server(sock=...)`) after the replay.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import logging
import os
import socket
import time
from pathlib import Path

from jobcached.errors import StartupError

log = logging.getLogger("jobcached.server.startup")

#: The lock file in the data dir; it holds the pid of the server that has the directory.
LOCK_FILE = "jobcached.lock"
#: How long a refused server waits for the holder to write its pid (it locks, then writes).
LOCK_PID_WAIT_SECONDS = 0.2

_BIND_HINTS = {errno.EADDRINUSE: "another process listens there",
               errno.EADDRNOTAVAIL: "not an address of this host",
               errno.EACCES: "ports below 1024 need privileges"}


def prepare_data_dir(path: str) -> None:
    """Create the data dir if needed; a path that exists but is not a directory is an error
    (mkdir's own "File exists" would not say what is wrong)."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise StartupError(f"dir {path} is not a directory (--dir names the data directory)")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create the data dir {path}: {exc.strerror}") from None


class DataDirLock:
    """An exclusive, non-blocking flock on DIR/jobcached.lock for the server's lifetime."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, LOCK_FILE)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Lock the directory or raise StartupError naming the pid that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise StartupError(
                f"the data dir {os.path.dirname(self.path)} is in use by another jobcached "
                f"server (pid {holder}); one server per data dir") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Unlock (closing the descriptor is what releases a flock). Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)


def _read_pid(fd: int) -> str:
    """The holder's pid from the lock file; it may not be written yet (lock, then write)."""
    deadline = time.monotonic() + LOCK_PID_WAIT_SECONDS
    while True:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text or time.monotonic() > deadline:
            return text or "unknown"
        time.sleep(0.01)


def bind_error(what: str, exc: OSError, advice: str = "") -> StartupError:
    """The one line for a socket that cannot be bound: the errno's text (asyncio's own
    message repeats the address), what it usually means, and what to do about it."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    notes = "; ".join(note for note in (_BIND_HINTS.get(exc.errno or 0), advice) if note)
    return StartupError(f"cannot listen on {what}: {reason}" + (f" ({notes})" if notes else ""))


def bind_tcp(host: str, port: int) -> list[socket.socket]:
    """Bound, not yet listening, TCP sockets for every address `host` resolves to ('' is every
    interface, as asyncio's create_server reads it). Raises StartupError, closing what it
    opened, if any of them cannot be bound."""
    where = f"{host or '*'}:{port}"
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on {where}: {exc.strerror}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # '::' must not also claim the IPv4 port
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise bind_error(where, exc) from None
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def bind_unix(path: str, mode: int) -> socket.socket:
    """A bound, not yet listening, unix socket at `path` with file mode `mode`; a file left
    there by a server that died is replaced (as Redis does)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, mode)
    except OSError as exc:
        sock.close()
        raise bind_error(f"unix socket {path}", exc) from None
    return sock


def is_loopback(sock: socket.socket) -> bool:
    """Whether a bound TCP socket only accepts connections from this host."""
    return ipaddress.ip_address(sock.getsockname()[0]).is_loopback


def warn_if_exposed(sockets: list[socket.socket], requirepass: str,
                    protected_mode: bool) -> None:
    """Log why listening beyond loopback with no password is risky (Redis' protected mode
    explains the same at its DENIED reply): every key and every job is open to whoever can
    reach the port."""
    exposed = [s.getsockname()[0] for s in sockets if not is_loopback(s)]
    if not exposed or requirepass:
        return
    if protected_mode:
        consequence = ("protected mode is on, so clients from other hosts are refused "
                       "(-DENIED) until you set requirepass")
    else:
        consequence = ("protected mode is off, so anyone who can reach the port can read and "
                       "change every key and job, and run CONFIG SET and SHUTDOWN")
    log.warning(f"listening on a non-loopback address with no password: {consequence}; set "
                f"requirepass, or bind 127.0.0.1 and reach the server through a tunnel",
                extra={"addresses": exposed})
