"""CLIENT PAUSE / UNPAUSE / UNBLOCK / NO-EVICT and CLIENT LIST's fields, against real servers.

Pausing is observed from outside: a command is "held" when its reply has not come after a
short wait while another client's command is answered at once, and "released" when the reply
arrives after UNPAUSE or the pause's timeout. Replies and errors are compared with a real
redis-server where both can run the same steps.
"""

from __future__ import annotations

import socket
import time

import redis

from tests.conftest import RawClient, RedisServerProcess, ServerProcess
from tests.integration.test_monitor import command_bytes, read_reply

#: How long a held command must stay unanswered to count as held (it would answer in ~1 ms).
HELD_SECONDS = 0.2


def assert_held(client: RawClient) -> None:
    client.sock.settimeout(HELD_SECONDS)
    try:
        data = client.sock.recv(64)
    except TimeoutError:
        data = b""
    finally:
        client.sock.settimeout(10)
    assert data == b"", f"answered while paused: {data!r}"


def client_id(client: RawClient) -> int:
    client.send(command_bytes([b"CLIENT", b"ID"]))
    return int(read_reply(client)[1:])


def fields(line: str) -> dict[str, str]:
    return dict(field.split("=", 1) for field in line.split())


def info_of(r: redis.Redis, cid: int) -> dict[str, str]:
    return fields(r.execute_command("CLIENT", "LIST", "ID", cid).decode().strip())


def test_pause_write_holds_set_not_get_and_unpause_releases(server: ServerProcess) -> None:
    admin = server.client()
    writer, reader = RawClient(server.port), RawClient(server.port)
    assert admin.execute_command("CLIENT", "PAUSE", 20_000, "WRITE") in (b"OK", True)
    try:
        writer.send(command_bytes([b"SET", b"paused-key", b"v"]))
        reader.transcript(command_bytes([b"GET", b"paused-key"]), b"$-1\r\n")
        assert_held(writer)
    finally:
        assert admin.execute_command("CLIENT", "UNPAUSE") in (b"OK", True)
    assert read_reply(writer) == b"+OK\r\n"
    assert admin.get("paused-key") == b"v"


def test_pause_flags_the_held_client_blocked(server: ServerProcess) -> None:
    admin = server.client()
    writer = RawClient(server.port)
    writer_id = client_id(writer)
    admin.execute_command("CLIENT", "PAUSE", 20_000, "WRITE")
    try:
        writer.send(command_bytes([b"INCR", b"pause-counter"]))
        assert_held(writer)
        assert "b" in info_of(admin, writer_id)["flags"]
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
    assert read_reply(writer) == b":1\r\n"


def test_pause_ends_by_itself_after_its_timeout(server: ServerProcess) -> None:
    admin = server.client()
    writer = RawClient(server.port)
    started = time.monotonic()
    admin.execute_command("CLIENT", "PAUSE", 300, "WRITE")
    writer.send(command_bytes([b"SET", b"timed", b"v"]))
    assert read_reply(writer) == b"+OK\r\n"
    assert time.monotonic() - started >= 0.25


def test_pause_all_holds_reads_too(server: ServerProcess) -> None:
    admin = server.client()
    reader = RawClient(server.port)
    admin.execute_command("CLIENT", "PAUSE", 300)
    reader.send(command_bytes([b"GET", b"anything"]))
    assert_held(reader)
    assert read_reply(reader) == b"$-1\r\n"  # released by the timeout


def test_pause_write_holds_exec_with_writes_eval_and_job_writes(server: ServerProcess) -> None:
    admin = server.client()
    tx, script, job = RawClient(server.port), RawClient(server.port), RawClient(server.port)
    tx.send(command_bytes([b"MULTI"]) + command_bytes([b"SET", b"tx-key", b"1"]))
    assert read_reply(tx) == b"+OK\r\n" and read_reply(tx) == b"+QUEUED\r\n"
    admin.execute_command("CLIENT", "PAUSE", 20_000, "WRITE")
    try:
        tx.send(command_bytes([b"EXEC"]))
        script.send(command_bytes([b"EVAL", b"return 1", b"0"]))
        job.send(command_bytes([b"JOB.PUSH", b"paused-q", b"payload"]))
        assert_held(tx)
        assert_held(script)
        assert_held(job)
        assert isinstance(admin.execute_command("QUEUE.LIST"), list)  # job reads still run
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
    assert read_reply(tx) == b"*1\r\n+OK\r\n"
    assert read_reply(script) == b":1\r\n"
    assert read_reply(job).startswith(b"$")  # the new job's id


def test_keys_do_not_expire_away_during_a_pause(server: ServerProcess) -> None:
    admin = server.client()
    admin.flushall()
    admin.set("fleeting", "v", px=50)
    admin.execute_command("CLIENT", "PAUSE", 20_000, "WRITE")
    try:
        time.sleep(0.3)  # past its TTL, and three active-expiry cycles
        assert admin.get("fleeting") is None
        assert admin.exists("fleeting") == 0
        assert admin.dbsize() == 1  # answered as gone, still stored
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
    deadline = time.monotonic() + 5
    while admin.dbsize():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def unblock_transcript(port: int, blocking: list[bytes], mode: list[bytes]) -> tuple[int, bytes]:
    """(CLIENT UNBLOCK's reply, what the blocked client then got)."""
    admin = redis.Redis(port=port, socket_timeout=10)
    blocked = RawClient(port)
    blocked_id = client_id(blocked)
    blocked.send(command_bytes(blocking))
    deadline = time.monotonic() + 5
    while "b" not in info_of(admin, blocked_id)["flags"]:
        assert time.monotonic() < deadline, "never blocked"
        time.sleep(0.005)
    result = admin.execute_command("CLIENT", "UNBLOCK", blocked_id, *mode)
    reply = read_reply(blocked)
    assert admin.execute_command("CLIENT", "UNBLOCK", blocked_id) == 0  # not blocked now
    admin.close()
    return result, reply


def test_unblock_timeout_and_error_like_redis(server: ServerProcess,
                                              redis_server: RedisServerProcess) -> None:
    cases = [([b"BLPOP", b"nothing", b"0"], []), ([b"BLPOP", b"nothing", b"0"], [b"TIMEOUT"]),
             ([b"BZPOPMIN", b"nothing", b"0"], [b"ERROR"]),
             ([b"XREAD", b"BLOCK", b"0", b"STREAMS", b"nothing", b"$"], [b"TIMEOUT"])]
    for blocking, mode in cases:
        ours = unblock_transcript(server.port, blocking, mode)
        theirs = unblock_transcript(redis_server.port, blocking, mode)
        assert ours == theirs, blocking
    assert ours[0] == 1
    assert unblock_transcript(server.port, [b"BLPOP", b"x", b"0"], [b"ERROR"])[1] == (
        b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n")


def test_unblock_a_blocking_job_fetch(server: ServerProcess) -> None:
    fetch = [b"JOB.FETCH", b"BLOCK", b"0", b"QUEUES", b"unblock-q"]
    assert unblock_transcript(server.port, fetch, [b"TIMEOUT"]) == (1, b"*0\r\n")
    assert unblock_transcript(server.port, fetch, [b"ERROR"])[1].startswith(b"-UNBLOCKED")


def test_admin_errors_like_redis(server: ServerProcess,
                                 redis_server: RedisServerProcess) -> None:
    calls = [("CLIENT", "PAUSE", "abc"), ("CLIENT", "PAUSE", "-1"),
             ("CLIENT", "PAUSE", "10", "SOME"), ("CLIENT", "UNBLOCK", "1", "LATER"),
             ("CLIENT", "UNBLOCK", "x"), ("CLIENT", "UNBLOCK", "999999"),
             ("CLIENT", "NO-EVICT", "maybe"), ("CLIENT", "NO-EVICT", "on"),
             ("CLIENT", "NO-EVICT", "off"), ("CLIENT", "UNPAUSE")]
    ours, theirs = server.client(), redis_server.client()
    for call in calls:
        replies = []
        for r in (ours, theirs):
            try:
                replies.append(r.execute_command(*call))
            except redis.ResponseError as exc:
                replies.append(str(exc))
        assert replies[0] == replies[1], call


def test_client_list_has_redis_fields_in_order(server: ServerProcess,
                                               redis_server: RedisServerProcess) -> None:
    ours = server.client().execute_command("CLIENT", "LIST").decode().splitlines()[0]
    theirs = redis_server.client().execute_command("CLIENT", "LIST").decode().splitlines()[0]
    assert list(fields(ours)) == list(fields(theirs))
    info = server.client().execute_command("CLIENT", "INFO").decode()
    assert list(fields(info)) == list(fields(theirs))


def test_client_list_flags(server: ServerProcess) -> None:
    admin = server.client()
    tx = RawClient(server.port)
    tx_id = client_id(tx)
    tx.transcript(command_bytes([b"MULTI"]), b"+OK\r\n")
    tx.transcript(command_bytes([b"SET", b"a", b"b"]), b"+QUEUED\r\n")
    row = info_of(admin, tx_id)
    assert row["flags"] == "x" and row["multi"] == "1" and int(row["multi-mem"]) > 0
    tx.transcript(command_bytes([b"CLIENT", b"NO-EVICT", b"ON"]), b"+QUEUED\r\n")
    tx.send(command_bytes([b"EXEC"]))
    assert read_reply(tx) == b"*2\r\n+OK\r\n+OK\r\n"
    assert info_of(admin, tx_id)["flags"] == "e"
    assert info_of(admin, tx_id)["cmd"] == "exec"
    assert int(info_of(admin, tx_id)["fd"]) > 0


def test_qbuf_grows_with_a_partial_pipelined_request(server: ServerProcess) -> None:
    admin = server.client()
    sender = RawClient(server.port)
    sender_id = client_id(sender)
    size = 1_000_000
    sender.send(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % size + b"x" * (size // 2))
    deadline = time.monotonic() + 5
    while int(info_of(admin, sender_id)["qbuf"]) < size // 2:
        assert time.monotonic() < deadline, info_of(admin, sender_id)
        time.sleep(0.01)
    sender.send(b"x" * (size - size // 2) + b"\r\n")
    assert read_reply(sender) == b"+OK\r\n"
    assert int(info_of(admin, sender_id)["qbuf"]) == 0


def test_omem_grows_when_a_client_does_not_read_a_big_reply(server: ServerProcess) -> None:
    admin = server.client()
    admin.set("huge", b"y" * 8_000_000)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    try:
        sock.sendall(command_bytes([b"CLIENT", b"SETNAME", b"slow-reader"]))
        time.sleep(0.05)
        sock.sendall(command_bytes([b"GET", b"huge"]))
        deadline = time.monotonic() + 5
        while True:
            row = next(fields(line) for line in
                       admin.execute_command("CLIENT", "LIST").decode().splitlines()
                       if " name=slow-reader " in line)
            if int(row["omem"]) > 1_000_000:
                break
            assert time.monotonic() < deadline, row
            time.sleep(0.01)
        assert int(row["obl"]) == 16384 and int(row["oll"]) >= 1
        assert "w" in row["events"]
    finally:
        sock.close()
        admin.delete("huge")


def test_client_list_type_separates_subscribers(server: ServerProcess) -> None:
    admin = server.client()
    subscriber = RawClient(server.port)
    sub_id = client_id(subscriber)
    subscriber.send(command_bytes([b"SUBSCRIBE", b"news"]))
    read_reply(subscriber)

    def ids(kind: str) -> set[int]:
        text = admin.execute_command("CLIENT", "LIST", "TYPE", kind).decode()
        return {int(fields(line)["id"]) for line in text.splitlines()}

    assert sub_id in ids("pubsub") and sub_id not in ids("normal")
    assert client_id(RawClient(server.port)) in ids("normal")
    assert ids("replica") == set()
