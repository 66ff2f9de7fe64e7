"""Job commands inside scripts and functions, against a real server.

A script may change the cache and the job server in one atomic step; its reply leaves only
once the job records it wrote are as durable as `appendfsync` promises, and a restart replays
them like any other job write.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import RawClient, ServerProcess
from tests.integration.scripting.test_busy import connected, in_background, wait_busy
from tests.integration.test_jobs import as_map

#: Set a cache key and enqueue the job that will refresh it, in one step (as the README).
SET_AND_PUSH = ("redis.call('SET', KEYS[1], ARGV[1]) "
                "return redis.call('JOB.PUSH', 'refresh', KEYS[1])")
LIBRARY = """#!lua name=jobs
redis.register_function('push_one', function(keys, args)
  redis.call('INCR', keys[1])
  return redis.call('JOB.PUSH', 'fn', args[1])
end)
redis.register_function{function_name='push_ro', flags={'no-writes'},
  callback=function(keys, args) return redis.call('JOB.PUSH', 'fn', 'x') end}
redis.register_function{function_name='stats_ro', flags={'no-writes'},
  callback=function(keys, args) return redis.call('QUEUE.STATS', 'fn') end}
"""


@pytest.fixture(scope="module")
def always(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server that fsyncs every job write before its reply."""
    proc = ServerProcess(tmp_path_factory.mktemp("always"), "--appendfsync", "always")
    proc.wait_ready()
    yield proc
    proc.stop()


def wal_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((data_dir / "wal").iterdir()))


def test_a_script_sets_a_key_and_pushes_a_job_in_one_step(always: ServerProcess) -> None:
    r = always.client()
    job_id = r.eval(SET_AND_PUSH, 1, "price:1", "19.99")
    # The reply came after the WAL batch holding the push was fsynced.
    assert job_id in wal_bytes(always.data_dir)
    assert r.get("price:1") == b"19.99"
    job = as_map(r.execute_command("JOB.GET", job_id))
    assert (job[b"queue"], job[b"payload"], job[b"state"]) == (b"refresh", b"price:1",
                                                                b"queued")


def test_other_clients_never_see_half_a_script(always: ServerProcess) -> None:
    r, observer = always.client(), always.client()
    r.delete("pushed")
    script = ("redis.call('JOB.PUSH', 'atomic', 'x') redis.call('JOB.PUSH', 'atomic', 'y') "
              "return redis.call('INCRBY', 'pushed', 2)")
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def observe() -> None:
        while not stop.is_set():
            pipe = observer.pipeline(transaction=True)  # MULTI/EXEC: one atomic read
            pipe.get("pushed")
            pipe.execute_command("QUEUE.STATS", "atomic")
            count, stats = pipe.execute()
            seen.append((int(count or 0), as_map(stats)[b"queued"]))

    thread = threading.Thread(target=observe)
    thread.start()
    try:
        for _ in range(50):
            r.eval(script, 0)
    finally:
        stop.set()
        thread.join(10)
    assert seen and all(count == queued for count, queued in seen)
    assert seen[-1][0] <= 100


def test_a_push_in_a_script_serves_a_blocked_worker_once_its_lease_is_durable(
        always: ServerProcess) -> None:
    worker, r = always.client(), always.client()
    thread, result = in_background(lambda: worker.execute_command(
        "JOB.FETCH", "BLOCK", "10000", "QUEUES", "wake"))
    deadline = time.monotonic() + 10
    while r.info("clients")["blocked_clients"] < 1:
        assert time.monotonic() < deadline, "the worker never blocked"
        time.sleep(0.01)
    job_id = r.eval("return redis.call('JOB.PUSH', 'wake', 'work')", 0)
    thread.join(10)
    job = as_map(result[0][0])
    assert (job[b"id"], job[b"payload"]) == (job_id, b"work")
    assert job[b"token"] in wal_bytes(always.data_dir)  # the lease was synced before


def test_job_replies_convert_to_lua(always: ServerProcess) -> None:
    r = always.client()
    job_id = r.execute_command("JOB.PUSH", "conv", "p", "PRIORITY", "3")
    assert r.eval("return redis.call('JOB.GET', ARGV[1])[4]", 0, job_id) == b"conv"
    assert r.eval("redis.setresp(3) return redis.call('JOB.GET', ARGV[1]).map.priority", 0,
                  job_id) == 3
    fetched = r.eval("local job = redis.call('JOB.FETCH', 'QUEUES', 'conv')[1] "
                     "redis.call('JOB.ACK', job[2], job[14], 'RESULT', 'done') "
                     "return redis.call('JOB.GET', job[2])", 0)
    assert as_map(fetched)[b"state"] == b"succeeded"
    assert r.eval("return redis.pcall('JOB.CANCEL', ARGV[1]).err", 0,
                  job_id) == b"ERR job %s is succeeded" % job_id
    assert r.eval("return redis.pcall('JOB.GET', 'no-such-id')", 0) is None


def test_pcall_catches_a_job_error_and_earlier_writes_stand(always: ServerProcess) -> None:
    r = always.client()
    caught = r.eval("redis.call('SET', 'before', 'kept') "
                    "local reply = redis.pcall('JOB.ACK', 'no-such-id', 'token') "
                    "return reply.err", 0)
    assert caught == b"ERR no such job no-such-id"
    assert r.eval("local ok, err = pcall(redis.call, 'JOB.CANCEL', 'nope') return err",
                  0) == b"ERR no such job nope"
    with pytest.raises(redis.ResponseError, match=r"no such job .* script: .*@user_script:1"):
        r.eval("redis.call('SET', 'before2', 'kept') redis.call('JOB.ACK', 'nope', 't')", 0)
    assert r.mget("before", "before2") == [b"kept", b"kept"]


def test_read_only_scripts_refuse_job_writes(always: ServerProcess) -> None:
    r = always.client()
    refused = "Write commands are not allowed from read-only scripts"
    with pytest.raises(redis.ResponseError, match=refused):
        r.eval_ro("return redis.call('JOB.PUSH', 'ro', 'x')", 0)
    with pytest.raises(redis.ResponseError, match=refused):
        r.eval("#!lua flags=no-writes\nreturn redis.call('JOB.PUSH', 'ro', 'x')", 0)
    assert as_map(r.eval_ro("return redis.call('QUEUE.STATS', 'ro')", 0))[b"queued"] == 0


def test_functions_run_job_commands(always: ServerProcess) -> None:
    r = always.client()
    r.function_load(LIBRARY, replace=True)
    job_id = r.fcall("push_one", 1, "counter", "payload")
    assert as_map(r.execute_command("JOB.GET", job_id))[b"payload"] == b"payload"
    assert r.get("counter") == b"1"
    with pytest.raises(redis.ResponseError, match="not allowed from read-only scripts"):
        r.fcall("push_ro", 0)
    with pytest.raises(redis.ResponseError, match="not allowed from read-only scripts"):
        r.fcall_ro("push_ro", 0)
    assert as_map(r.fcall_ro("stats_ro", 0))[b"queued"] == 1


@pytest.mark.parametrize("call, error", [
    ("'JOB.WAIT', 'id'", "This Redis command is not allowed from script"),
    ("'JOB.FETCH', 'BLOCK', '10', 'QUEUES', 'q'",
     "job.fetch command is not allowed with BLOCK option from scripts"),
    ("'JOB.LOGS', 'id', 'BLOCK', '10'",
     "job.logs command is not allowed with BLOCK option from scripts"),
])
def test_blocking_job_commands_are_refused(always: ServerProcess, call: str,
                                           error: str) -> None:
    with pytest.raises(redis.ResponseError, match=error):
        always.client().eval(f"return redis.call({call})", 0)


def test_fetch_without_block_and_a_worker_named_block(always: ServerProcess) -> None:
    r = always.client()
    r.execute_command("JOB.PUSH", "nb", "x")
    fetched = r.eval("return redis.call('JOB.FETCH', 'WORKER', 'block', 'QUEUES', 'nb')", 0)
    assert as_map(fetched[0])[b"payload"] == b"x"
    assert r.eval("return redis.call('JOB.FETCH', 'QUEUES', 'nb')", 0) == []


def test_a_script_that_pushed_is_unkillable_and_a_restart_replays_what_scripts_pushed(
        start_server: Callable[..., ServerProcess]) -> None:
    proc = start_server("--busy-reply-threshold", "100")
    r = connected(proc)
    ids = r.eval("local ids = {} for i = 1, 5 do "
                 "ids[i] = redis.call('JOB.PUSH', 'replay', 'p' .. i, 'PRIORITY', i) end "
                 "redis.call('QUEUE.PAUSE', 'replay') return ids", 0)
    runner = RawClient(proc.port)
    script = b"redis.call('JOB.PUSH', 'k', 'x') while true do end"
    runner.send(b"*3\r\n$4\r\nEVAL\r\n$%d\r\n%b\r\n$1\r\n0\r\n" % (len(script), script))
    wait_busy(r)
    with pytest.raises(redis.ResponseError, match="UNKILLABLE Sorry the script already"):
        r.script_kill()  # a job write counts as a write
    proc.stop(signal.SIGKILL)  # the script never ends (SHUTDOWN NOSAVE waits for it)
    assert runner.recv_until_closed() == b""  # no reply: nothing was acknowledged
    again = ServerProcess(proc.data_dir).wait_ready()
    try:
        r = again.client()
        jobs = [as_map(r.execute_command("JOB.GET", job_id)) for job_id in ids]
        assert [(j[b"payload"], j[b"priority"]) for j in jobs] == [
            (b"p%d" % i, i) for i in range(1, 6)]
        assert as_map(r.execute_command("QUEUE.STATS", "replay"))[b"paused"] == 1
        r.close()
    finally:
        again.stop()
