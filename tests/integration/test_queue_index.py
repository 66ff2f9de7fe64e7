"""QUEUE.PURGE, QUEUE.STATS and DLQ.* against a real server: answered from the per-queue index,
and long purges run in slices while other clients are served."""

from __future__ import annotations

from tests.conftest import RawClient, ServerProcess

#: Enough jobs for a purge of many slices (jobs/purge.py PURGE_SLICE_JOBS is 1000).
MANY_JOBS = 60_000


def push_many(server: ServerProcess, queue: str, n: int) -> None:
    r = server.client()
    for start in range(0, n, 5000):
        pipe = r.pipeline(transaction=False)
        for _ in range(min(5000, n - start)):
            pipe.execute_command("JOB.PUSH", queue, b"x" * 16)
        pipe.execute()


def field(stats: dict[bytes, int] | list[bytes], name: bytes) -> int:
    """A QUEUE.STATS field, whether the client gave the map as a dict or a flat list."""
    if isinstance(stats, list):
        stats = dict(zip(stats[::2], stats[1::2], strict=True))  # type: ignore[arg-type]
    return int(stats[name])


def queued(stats: dict[bytes, int] | list[bytes]) -> int:
    return field(stats, b"queued")


def test_a_long_purge_lets_other_clients_in_between_its_slices(server: ServerProcess) -> None:
    push_many(server, "big", MANY_JOBS)
    push_many(server, "small", 3)
    purger = RawClient(server.port)
    purger.send(b"QUEUE.PURGE big\r\n")
    purger.sock.setblocking(False)
    r = server.client()
    seen: list[int] = []
    reply = b""
    while not reply.endswith(b"\r\n"):
        seen.append(queued(r.execute_command("QUEUE.STATS", "big")))
        try:
            reply += purger.sock.recv(64)
        except BlockingIOError:
            continue
    assert reply == f":{MANY_JOBS}\r\n".encode()
    # Another client saw the queue part-purged: the purge yielded the loop between slices.
    assert any(0 < n < MANY_JOBS for n in seen), seen[:5]
    assert queued(r.execute_command("QUEUE.STATS", "big")) == 0
    assert queued(r.execute_command("QUEUE.STATS", "small")) == 3


def test_jobs_pushed_during_a_purge_are_kept(server: ServerProcess) -> None:
    push_many(server, "busy", MANY_JOBS)
    purger = RawClient(server.port)
    purger.send(b"QUEUE.PURGE busy\r\n")
    r = server.client()
    late = r.execute_command("JOB.PUSH", "busy", "late")
    reply = purger.recv_line()
    # The push landed during the purge (or after it): either way it survives it.
    assert reply == f":{MANY_JOBS}\r\n".encode()
    assert queued(r.execute_command("QUEUE.STATS", "busy")) == 1
    fetched = r.execute_command("JOB.FETCH", "COUNT", "5", "QUEUES", "busy")
    assert len(fetched) == 1 and fetched[0][b"id"] == late


def test_a_purge_inside_multi_runs_whole(server: ServerProcess) -> None:
    push_many(server, "tx", 5000)
    r = server.client()
    pipe = r.pipeline(transaction=True)
    pipe.execute_command("QUEUE.PURGE", "tx")
    pipe.execute_command("QUEUE.STATS", "tx")
    purged, stats = pipe.execute()
    assert purged == 5000 and queued(stats) == 0


def test_purge_of_a_missing_queue_and_dlq_from_the_index(server: ServerProcess) -> None:
    r = server.client()
    assert r.execute_command("QUEUE.PURGE", "nosuch") == 0
    ids = [r.execute_command("JOB.PUSH", "dq", f"j{i}", "RETRIES", "0") for i in range(3)]
    for job in r.execute_command("JOB.FETCH", "COUNT", "3", "QUEUES", "dq"):
        r.execute_command("JOB.FAIL", job[b"id"], job[b"token"], "boom")
    listed = r.execute_command("DLQ.LIST", "QUEUE", "dq", "COUNT", "2")
    assert len(listed) == 2
    assert field(r.execute_command("QUEUE.STATS", "dq"), b"dead") == 3
    assert r.execute_command("DLQ.PURGE", "QUEUE", "dq") == 3
    assert r.execute_command("DLQ.LIST", "QUEUE", "dq") == []
    assert all(r.execute_command("JOB.GET", job_id) is None for job_id in ids)


def test_a_purge_survives_a_restart(start_server: object) -> None:
    server: ServerProcess = start_server()  # type: ignore[operator]
    push_many(server, "keep", 10)
    push_many(server, "gone", 10_000)
    r = server.client()
    assert r.execute_command("QUEUE.PURGE", "gone") == 10_000
    data_dir = server.data_dir
    server.stop()
    again = ServerProcess(data_dir).wait_ready()
    try:
        r = again.client()
        assert queued(r.execute_command("QUEUE.STATS", "gone")) == 0
        assert queued(r.execute_command("QUEUE.STATS", "keep")) == 10
    finally:
        again.stop()
