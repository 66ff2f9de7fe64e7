"""TLS: the server's SSLContext built from the `tls-*` settings, and its reload.

Why a module of its own: the context is built in three places (at start, where a bad file must
stop the start with one line; on `CONFIG SET tls-*`, where a bad file must leave the old context
in force and answer Redis' error; on SIGHUP) and each must validate the whole set of files
before anything changes. Building a fresh `ssl.SSLContext` does exactly that: it either loads
the certificate, key and CAs, or raises, and the context in force is untouched either way.

Reload without dropping connections: an asyncio server's SSL context is fixed when it is
created, so `TlsListener` keeps the bound socket and serves it through a server made on a
duplicate of its descriptor; a reload starts a second server on another duplicate with the new
context, then closes the first. Both accept from the same kernel queue, so no connection is
refused in between; closing a server closes only its listening descriptor, never the
connections it accepted, which keep the session (and certificate) they negotiated.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable

from jobcached.config import Config
from jobcached.errors import ConfigError

log = logging.getLogger("jobcached.tls")

#: Redis' reply when CONFIG SET tls-* cannot build a working context (the reason is logged).
UPDATE_FAILED = "Unable to update TLS configuration. Check server logs."

#: How long closing a TLS connection waits for the client's close_notify before it drops the
#: connection. Replies are flushed before ours is sent, so waiting longer only delays a
#: shutdown: an idle client does not read, and the default (30 s) would outlast
#: shutdown-timeout.
SHUTDOWN_SECONDS = 0.5

_VERSIONS = {"tlsv1": ssl.TLSVersion.TLSv1, "tlsv1.1": ssl.TLSVersion.TLSv1_1,
             "tlsv1.2": ssl.TLSVersion.TLSv1_2, "tlsv1.3": ssl.TLSVersion.TLSv1_3}
_VERIFY = {"yes": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "no": ssl.CERT_NONE}


def build_context(config: Config) -> ssl.SSLContext:
    """A server context from the tls-* settings; ConfigError with the reason if the files or
    settings do not make one (missing, unreadable, mismatched certificate and key, wrong
    key password, unknown protocol or cipher)."""
    if not config.tls_cert_file or not config.tls_key_file:
        raise ConfigError("tls-port is set but tls-cert-file or tls-key-file is not")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    versions = []
    for word in (config.tls_protocols.split() or ["TLSv1.2", "TLSv1.3"]):
        if word.lower() not in _VERSIONS:
            raise ConfigError(f"tls-protocols: unknown protocol '{word}'")
        versions.append(_VERSIONS[word.lower()])
    context.minimum_version, context.maximum_version = min(versions), max(versions)
    password = config.tls_key_file_pass.encode()
    try:
        # a callable, so an encrypted key without tls-key-file-pass fails instead of prompting
        context.load_cert_chain(config.tls_cert_file, config.tls_key_file,
                                password=lambda: password)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load tls-cert-file {config.tls_cert_file} with "
                          f"tls-key-file {config.tls_key_file}: {_reason(exc)}") from None
    if config.tls_ca_cert_file or config.tls_ca_cert_dir:
        try:
            context.load_verify_locations(cafile=config.tls_ca_cert_file or None,
                                          capath=config.tls_ca_cert_dir or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the CA certificates "
                              f"({config.tls_ca_cert_file or config.tls_ca_cert_dir}): "
                              f"{_reason(exc)}") from None
    elif config.tls_auth_clients != "no":
        raise ConfigError("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when "
                          "tls-cluster, tls-replication or tls-auth-clients are enabled!")
    context.verify_mode = _VERIFY[config.tls_auth_clients]
    if config.tls_ciphers:
        try:
            context.set_ciphers(config.tls_ciphers)
        except ssl.SSLError:
            raise ConfigError(f"tls-ciphers: no usable cipher in '{config.tls_ciphers}'") from None
    if config.tls_prefer_server_ciphers:  # Python turns it on by default; Redis' is off
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc).lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


class TlsListener:
    """The TLS port: bound sockets, the context in force, and the servers serving them."""

    def __init__(self, sockets: list[socket.socket], context: ssl.SSLContext,
                 factory: Callable[[], asyncio.Protocol], backlog: int) -> None:
        self.sockets = sockets
        self.context = context
        self._factory = factory
        self._backlog = backlog
        self._servers: list[asyncio.AbstractServer] = []
        self._swap: asyncio.Task[None] | None = None

    async def serve(self) -> None:
        """Listen with the context in force; the servers of the previous one stop accepting."""
        loop = asyncio.get_running_loop()
        old, self._servers = self._servers, []
        for sock in self.sockets:
            self._servers.append(await loop.create_server(
                self._factory, sock=sock.dup(), ssl=self.context, backlog=self._backlog,
                ssl_shutdown_timeout=SHUTDOWN_SECONDS))
        for server in old:
            server.close()

    def reload(self, config: Config) -> None:
        """Check the files and switch new connections to them (ConfigError, old context kept,
        if they do not make a context)."""
        self.context = build_context(config)
        self._swap = asyncio.get_running_loop().create_task(self.serve())
        log.info("TLS certificates reloaded", extra={"cert": config.tls_cert_file})

    def close(self) -> None:
        if self._swap is not None:
            self._swap.cancel()
        for server in self._servers:
            server.close()
        self._servers = []
        for sock in self.sockets:
            sock.close()
        self.sockets = []
