"""TLS on its own port: redis-cli --tls, redis-py, our client and Worker; client certificates
(yes / optional), refusals that leave the server serving others, certificate reload without
dropping connections (CONFIG SET and SIGHUP), and a bad certificate stopping the start.

Certificates are made per module with `cryptography` (tlscerts.py); each has its own serial,
which is how a test tells which certificate the server presented.
"""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from jobcached_client import Client, State, Worker
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import ServerProcess, free_port, require_tool
from tests.integration.clients.conftest import running, unique
from tools.tlscerts import Authority, Issued

#: How long a SIGHUP reload may take to show (it is handled on the server's next loop turn).
RELOAD_WAIT_SECONDS = 10.0
#: A stop with an idle TLS client connected (the client never answers close_notify); the
#: default wait for it was 30 s, longer than shutdown-timeout.
STOP_WITHIN_SECONDS = 8.0


class Certs:
    """The module's CA, two server certificates (a reload swaps them) and a client's."""

    def __init__(self, directory: Path) -> None:
        self.ca = Authority(directory)
        self.first = self.ca.issue("server-1")
        self.second = self.ca.issue("server-2")
        self.client = self.ca.issue("client", server=False)
        self.expired_client = self.ca.issue("expired-client", server=False, expired=True)
        self.live = Issued(directory / "live.crt", directory / "live.key", self.first.serial)
        shutil.copy(self.first.cert, self.live.cert)
        shutil.copy(self.first.key, self.live.key)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"))


class TlsServer:
    def __init__(self, proc: ServerProcess, tls_port: int, certs: Certs) -> None:
        self.proc = proc
        self.tls_port = tls_port
        self.certs = certs

    def connect(self, *, cert: Issued | None = None, ca: Path | None = None) -> ssl.SSLSocket:
        """A TLS socket to the server, with a client certificate (default: the client's)."""
        context = ssl.create_default_context(cafile=str(ca or self.certs.ca.cert))
        chosen = self.certs.client if cert is None else cert
        context.load_cert_chain(chosen.cert, chosen.key)
        raw = socket.create_connection(("127.0.0.1", self.tls_port), timeout=10)
        return context.wrap_socket(raw, server_hostname="127.0.0.1")

    def redis(self, **kwargs: object) -> redis.Redis:
        settings: dict[str, object] = {
            "ssl_ca_certs": str(self.certs.ca.cert), "ssl_certfile": str(self.certs.client.cert),
            "ssl_keyfile": str(self.certs.client.key),
            "retry": Retry(NoBackoff(), 0)}  # a refusal is the answer: no retries, no waits
        settings.update(kwargs)
        return redis.Redis(port=self.tls_port, ssl=True, socket_timeout=10,
                           **settings)  # type: ignore[arg-type]


def tls_args(port: int, certs: Certs) -> list[str]:
    return ["--tls-port", str(port), "--tls-cert-file", str(certs.live.cert),
            "--tls-key-file", str(certs.live.key), "--tls-ca-cert-file", str(certs.ca.cert)]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[TlsServer]:
    port = free_port()
    proc = ServerProcess(tmp_path_factory.mktemp("tls"), *tls_args(port, certs)).wait_ready()
    yield TlsServer(proc, port, certs)
    proc.stop()


def serial(sock: ssl.SSLSocket) -> int:
    der = sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def ping(sock: ssl.SSLSocket) -> bytes:
    sock.sendall(b"PING\r\n")
    return sock.recv(64)


def served(tls: TlsServer, cert: Issued) -> bool:
    """Whether a client with `cert` gets an answer (with TLS 1.3 the server's refusal of a
    client certificate arrives after the client's handshake ended: on the first read)."""
    try:
        with tls.connect(cert=cert) as sock:
            return ping(sock) == b"+PONG\r\n"
    except (ssl.SSLError, ConnectionError):
        return False


def test_redis_cli_with_a_client_certificate(tls: TlsServer, certs: Certs) -> None:
    cli = [require_tool("redis-cli"), "--tls", "--cacert", str(certs.ca.cert),
           "-p", str(tls.tls_port)]
    done = subprocess.run([*cli, "--cert", str(certs.client.cert), "--key",
                           str(certs.client.key), "PING"], capture_output=True, timeout=10)
    assert done.stdout == b"PONG\n", done.stderr
    refused = subprocess.run([*cli, "PING"], capture_output=True, timeout=10)
    assert b"PONG" not in refused.stdout  # tls-auth-clients yes: no certificate, no service


def test_redis_py_ssl_and_rediss_url_next_to_the_plain_port(tls: TlsServer,
                                                            certs: Certs) -> None:
    key = unique("tls")
    assert tls.redis().set(key, "over tls")
    url = redis.Redis.from_url(f"rediss://127.0.0.1:{tls.tls_port}/0",
                               ssl_ca_certs=str(certs.ca.cert),
                               ssl_certfile=str(certs.client.cert),
                               ssl_keyfile=str(certs.client.key), socket_timeout=10)
    assert url.get(key) == b"over tls"
    assert tls.proc.client().get(key) == b"over tls"  # the plain port serves the same data


def test_our_client_and_a_worker_over_tls(tls: TlsServer, certs: Certs) -> None:
    client = Client.from_url(f"jobcacheds://127.0.0.1:{tls.tls_port}",
                             ssl_ca_certs=str(certs.ca.cert),
                             ssl_certfile=str(certs.client.cert),
                             ssl_keyfile=str(certs.client.key), socket_timeout=10)
    queue = unique("tlsjobs")
    worker = Worker(client, [queue], concurrency=2)

    @worker.task(queue)
    async def double(payload: int) -> int:
        return payload * 2

    with running(worker):
        done = client.jobs.wait(client.jobs.push(queue, 21), timeout=10)
    assert done.state is State.SUCCEEDED and done.result == 42
    client.close()


def test_client_certificate_required_then_optional(tls: TlsServer) -> None:
    anonymous = tls.redis(ssl_certfile=None, ssl_keyfile=None)
    with pytest.raises(redis.ConnectionError):
        anonymous.ping()
    admin = tls.proc.client()
    assert admin.config_set("tls-auth-clients", "optional")
    try:
        assert tls.redis(ssl_certfile=None, ssl_keyfile=None).ping()
        assert tls.redis().ping()  # a certificate sent is still checked, and good
    finally:
        admin.config_set("tls-auth-clients", "yes")
    with pytest.raises(redis.ConnectionError):
        tls.redis(ssl_certfile=None, ssl_keyfile=None).ping()


def test_wrong_ca_expired_certificate_and_plain_text_are_refused(tls: TlsServer, certs: Certs,
                                                                 tmp_path: Path) -> None:
    other = Authority(tmp_path, "another CA")
    with pytest.raises(ssl.SSLCertVerificationError):  # we do not trust the server's CA
        tls.connect(ca=other.cert)
    stranger = other.issue("stranger", server=False)  # the server does not trust ours
    assert not served(tls, stranger)
    assert not served(tls, certs.expired_client)
    with socket.create_connection(("127.0.0.1", tls.tls_port), timeout=10) as plain:
        plain.sendall(b"PING\r\n")
        assert b"PONG" not in plain.recv(64)  # closed (or a TLS alert), never served
    assert served(tls, certs.client)  # the server serves the others


def test_config_set_reloads_for_new_connections_and_keeps_the_open_ones(
        tls: TlsServer, certs: Certs, request: pytest.FixtureRequest) -> None:
    admin = tls.proc.client()
    before = tls.connect()
    request.addfinalizer(before.close)
    assert serial(before) == certs.first.serial
    with pytest.raises(redis.ResponseError) as refused:
        admin.config_set("tls-cert-file", str(certs.second.cert))  # its key is still the first's
    assert str(refused.value) == ("CONFIG SET failed (possibly related to argument "
                                  "'tls-cert-file') - Unable to update TLS configuration. "
                                  "Check server logs.")
    assert admin.config_get("tls-cert-file")["tls-cert-file"] == str(certs.live.cert)
    assert admin.execute_command("CONFIG", "SET", "tls-cert-file", str(certs.second.cert),
                                 "tls-key-file", str(certs.second.key)) == b"OK"
    try:
        with tls.connect() as after:
            assert serial(after) == certs.second.serial
            assert ping(after) == b"+PONG\r\n"
        assert ping(before) == b"+PONG\r\n"  # the open connection keeps its session
    finally:
        admin.execute_command("CONFIG", "SET", "tls-cert-file", str(certs.live.cert),
                              "tls-key-file", str(certs.live.key))
    with tls.connect() as restored:
        assert serial(restored) == certs.first.serial


def test_sighup_reloads_the_files_in_place(tls: TlsServer, certs: Certs,
                                           request: pytest.FixtureRequest) -> None:
    before = tls.connect()
    request.addfinalizer(before.close)
    shutil.copy(certs.second.cert, certs.live.cert)
    shutil.copy(certs.second.key, certs.live.key)
    try:
        tls.proc.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_WAIT_SECONDS
        while True:
            with tls.connect() as probe:
                if serial(probe) == certs.second.serial:
                    break
            assert time.monotonic() < deadline, "SIGHUP did not reload the certificate"
            time.sleep(0.05)
        assert ping(before) == b"+PONG\r\n"
    finally:
        shutil.copy(certs.first.cert, certs.live.cert)
        shutil.copy(certs.first.key, certs.live.key)
        tls.proc.client().execute_command("CONFIG", "SET", "tls-cert-file",
                                          str(certs.live.cert))


def test_tls_only_with_port_0(start_server: object, certs: Certs, tmp_path: Path) -> None:
    port = free_port()
    proc = ServerProcess(tmp_path / "only", "--port", "0", *tls_args(port, certs))
    try:
        server = TlsServer(proc, port, certs)
        deadline = time.monotonic() + 15
        while True:
            try:
                client = server.redis()
                info = client.info("server")
                break
            except redis.ConnectionError:
                assert proc.proc.poll() is None and time.monotonic() < deadline, proc.log()
                time.sleep(0.05)
        assert info["tcp_port"] == port  # as Redis: tcp_port is the TLS port then
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proc.port), timeout=5)
        started = time.monotonic()
        assert proc.stop() == 0  # an idle TLS client does not hold the shutdown up
        assert time.monotonic() - started < STOP_WITHIN_SECONDS
        client.close()
    finally:
        proc.stop()


@pytest.mark.parametrize("case", ["mismatched", "missing"])
def test_a_bad_certificate_stops_the_start_with_one_line(case: str, certs: Certs,
                                                         tmp_path: Path) -> None:
    key = certs.second.key if case == "mismatched" else tmp_path / "nope.key"
    done = subprocess.run(
        [sys.executable, "-m", "jobcached", "serve", "--loglevel", "warning", "--dir",
         str(tmp_path / "d"), "--port", str(free_port()), "--metrics-port", "0",
         "--tls-port", str(free_port()), "--tls-cert-file", str(certs.first.cert),
         "--tls-key-file", str(key), "--tls-ca-cert-file", str(certs.ca.cert)],
        capture_output=True, timeout=30, check=False)
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, lines
    assert "tls-cert-file" in lines[0]
    assert ("key values mismatch" if case == "mismatched" else "No such file") in lines[0]
