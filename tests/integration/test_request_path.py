"""The server runs the compiled request codec when it is built, the pure one when
JOBCACHED_PURE_PYTHON=1 says so, reports which in `INFO server`, and both answer the same
bytes to the same session, protocol errors included."""

from __future__ import annotations

from typing import Any

from tests.conftest import RawClient, ServerProcess
from tests.unit.net.codecs import compiled_module


def multibulk(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


SESSION = (
    b"PING\r\n" + multibulk(b"SET", b"k", b"a\r\nb") + multibulk(b"GET", b"k")
    + b"*0\r\n" + b'SET q "x y\\n"\r\n' + multibulk(b"GET", b"q") + multibulk(b"INCR", b"n") * 3
    + multibulk(b"MGET", b"k", b"q", b"missing") + b"\r\n" + multibulk(b"NOSUCH")
    + b"*2\r\n$3\r\nGET\r\n$-5\r\n" + multibulk(b"GET", b"k")
)


def session(server: ServerProcess) -> bytes:
    client = RawClient(server.port)
    for start in range(0, len(SESSION), 7):  # in small reads: commands cut anywhere
        client.send(SESSION[start : start + 7])
    return client.recv_until_closed()


def test_compiled_and_pure_codecs_answer_byte_for_byte(start_server: Any) -> None:
    compiled_module()  # fails under JOBCACHED_REQUIRE_EXTERNAL when it was not built
    compiled = start_server(env={"JOBCACHED_PURE_PYTHON": "0"})
    pure = start_server(env={"JOBCACHED_PURE_PYTHON": "1"})
    assert compiled.client().info("server")["request_path"] == "compiled"
    assert pure.client().info("server")["request_path"] == "python"
    transcript = session(compiled)
    assert transcript == session(pure)
    assert transcript.startswith(b"+PONG\r\n+OK\r\n$4\r\na\r\nb\r\n+OK\r\n$4\r\nx y\n\r\n")
    assert transcript.endswith(b"-ERR Protocol error: invalid bulk length\r\n")
