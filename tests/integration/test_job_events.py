"""Job status events over pub/sub, and the pubsub output buffer limit, against a real server."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import redis

from tests.conftest import ServerProcess


def as_map(reply: Any) -> dict[bytes, Any]:
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


def next_message(ps: redis.client.PubSub) -> dict[str, Any]:
    """The next message or pmessage (confirmations skipped), within 5 seconds."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = ps.get_message(timeout=0.5)
        if message and message["type"] in ("message", "pmessage"):
            return message
    raise AssertionError("no message within 5 s")


def transitions(ps: redis.client.PubSub, count: int) -> list[tuple[Any, ...]]:
    events = [json.loads(next_message(ps)["data"]) for _ in range(count)]
    return [(e["from"], e["to"], e["attempt"]) for e in events]


def test_a_subscriber_sees_every_transition_in_order(server: ServerProcess) -> None:
    r = server.client()
    queue = "events"
    by_queue = r.pubsub()
    by_queue.subscribe(f"__queue__:{queue}")
    by_pattern = r.pubsub()
    by_pattern.psubscribe("__queue__:*")
    for ps in (by_queue, by_pattern):
        assert ps.get_message(timeout=5)["type"] in ("subscribe", "psubscribe")

    job_id = r.execute_command("JOB.PUSH", queue, "p", "RETRIES", "1").decode()
    by_job = r.pubsub()
    by_job.subscribe(f"__job__:{job_id}")
    assert by_job.get_message(timeout=5)["type"] == "subscribe"

    [job] = [as_map(j) for j in r.execute_command("JOB.FETCH", "QUEUES", queue)]
    r.execute_command("JOB.FAIL", job_id, job[b"token"], "boom", "RETRYIN", "50")
    [job] = [as_map(j) for j in r.execute_command("JOB.FETCH", "BLOCK", "5000", "QUEUES", queue)]
    r.execute_command("JOB.ACK", job_id, job[b"token"])

    expected = [(None, "queued", 0), ("queued", "running", 1), ("running", "retrying", 1),
                ("retrying", "queued", 1), ("queued", "running", 2), ("running", "succeeded", 2)]
    assert transitions(by_queue, 6) == expected
    assert transitions(by_pattern, 6) == expected
    assert transitions(by_job, 5) == expected[1:]  # subscribed after the push
    r.execute_command("JOB.PUSH", queue, "second")
    pmessage = next_message(by_pattern)
    assert pmessage["pattern"] == b"__queue__:*"
    payload = json.loads(pmessage["data"])
    assert payload["queue"] == queue and payload["to"] == "queued" and payload["time"] > 0
    for ps in (by_queue, by_pattern, by_job):
        ps.close()


def test_cascaded_cancel_events_say_why(server: ServerProcess) -> None:
    """A dependent canceled because its parent died: its event names the parent."""
    r = server.client()
    queue = "cascade-events"
    parent = r.execute_command("JOB.PUSH", queue, "p", "RETRIES", "0").decode()
    child = r.execute_command("JOB.PUSH", queue, "c", "AFTER", "1", parent).decode()
    ps = r.pubsub()
    ps.subscribe(f"__queue__:{queue}")
    assert ps.get_message(timeout=5)["type"] == "subscribe"
    [job] = [as_map(j) for j in r.execute_command("JOB.FETCH", "QUEUES", queue)]
    r.execute_command("JOB.FAIL", parent, job[b"token"], "boom")
    events = [json.loads(next_message(ps)["data"]) for _ in range(3)]
    assert [(e["id"], e["to"]) for e in events] == [
        (parent, "running"), (parent, "dead"), (child, "canceled")]
    assert events[2]["reason"] == f"parent {parent} is dead" and "reason" not in events[1]
    ps.close()


def test_a_subscriber_that_never_reads_is_disconnected(start_server: Any) -> None:
    srv = start_server("--client-output-buffer-limit-pubsub", "256kb")
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(10)
    slow.connect(("127.0.0.1", srv.port))
    slow.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nfeed\r\n")
    assert slow.recv(64).startswith(b"*3\r\n$9\r\nsubscribe")

    reader = srv.client().pubsub()
    reader.subscribe("other")
    assert reader.get_message(timeout=5)["type"] == "subscribe"

    r = srv.client()
    chunk = b"x" * 65536
    delivered = None
    for _ in range(2000):  # at most 128 MB: far past any socket buffer
        delivered = r.publish("feed", chunk)
        if delivered == 0:
            break
    assert delivered == 0, "the slow subscriber was never disconnected"
    info = r.info("stats")
    assert info["client_output_buffer_limit_disconnections"] >= 1
    assert r.ping() is True and r.set("k", "v") and r.get("k") == b"v"
    assert r.publish("other", "still here") == 1
    assert next_message(reader)["data"] == b"still here"
    assert r.execute_command("PUBSUB", "NUMSUB", "feed") == [b"feed", 0]
    reader.close()
    slow.close()
