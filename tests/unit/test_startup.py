"""The start-up checks on their own: the data dir lock, early binds, the exposure warning."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest

from jobcached.errors import StartupError
from jobcached.server.startup import (
    LOCK_FILE,
    DataDirLock,
    bind_tcp,
    bind_unix,
    prepare_data_dir,
    warn_if_exposed,
)


def test_the_lock_is_exclusive_names_its_holder_and_is_given_back(tmp_path: Path) -> None:
    first = DataDirLock(str(tmp_path))
    first.acquire()
    assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    with pytest.raises(StartupError, match=rf"in use by another jobcached server "
                                           rf"\(pid {os.getpid()}\)"):
        DataDirLock(str(tmp_path)).acquire()  # flock conflicts between two open files too
    first.release()
    first.release()  # idempotent
    second = DataDirLock(str(tmp_path))
    second.acquire()
    second.release()


def test_a_file_is_not_a_data_dir(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(StartupError, match="is not a directory"):
        prepare_data_dir(str(path))
    prepare_data_dir(str(tmp_path / "new" / "nested"))
    assert (tmp_path / "new" / "nested").is_dir()


def test_bound_sockets_do_not_listen_and_a_taken_port_is_refused() -> None:
    [sock] = bind_tcp("127.0.0.1", 0)
    port = sock.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):  # bound, not listening: clients are refused
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    sock.listen()
    with pytest.raises(StartupError, match=rf"127.0.0.1:{port}: Address already in use"):
        bind_tcp("127.0.0.1", port)
    sock.close()


def test_unix_socket_replaces_a_stale_file(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    path.write_text("left by a server that died")
    sock = bind_unix(str(path), 0o700)
    assert path.is_socket() and path.stat().st_mode & 0o777 == 0o700
    sock.close()
    with pytest.raises(StartupError, match="cannot listen on unix socket"):
        bind_unix(str(tmp_path / "missing" / "s.sock"), 0o700)


@pytest.mark.parametrize(("host", "password", "warned"), [
    ("127.0.0.1", "", False), ("0.0.0.0", "", True), ("0.0.0.0", "pw", False)])
def test_exposure_warning(caplog: pytest.LogCaptureFixture, host: str, password: str,
                          warned: bool) -> None:
    sockets = bind_tcp(host, 0)
    with caplog.at_level(logging.WARNING, logger="jobcached.server.startup"):
        warn_if_exposed(sockets, password, protected_mode=True)
    for sock in sockets:
        sock.close()
    assert ("non-loopback address with no password" in caplog.text) is warned
