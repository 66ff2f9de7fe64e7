"""The clients' `replicas=` / `replicas_timeout=` on push, ack and fail, against a leader with
one follower: the reply comes once the follower has the change, or as a NOREPL error; a wait
longer than the socket timeout is read to its end (the call is sent as a blocking one)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from jobcached_client import State

from tests.conftest import ServerProcess
from tests.integration.clients.conftest import aw, unique
from tests.integration.clients.test_client_methods import KINDS, run_with
from tests.integration.test_replication_sync import NOREPL_TIMEOUT, Start, pair, stopped


@KINDS
def test_push_ack_fail_with_replicas(start_server: Start, kind: str) -> None:
    leader, follower = pair(start_server)
    on_follower = follower.client()

    def state_there(job_id: str) -> bytes:
        job = on_follower.execute_command("JOB.GET", job_id)
        return b"" if job is None else bytes(job[b"state"])

    async def scenario(c: Any) -> None:
        queue = unique("sync")
        first = await aw(c.jobs.push(queue, {"n": 1}, replicas=1, replicas_timeout=5))
        assert state_there(first) == b"queued"  # acknowledged: already applied there
        await aw(c.jobs.push(queue, {"n": 2}, retries=2, replicas=1))
        done, failed = await aw(c.jobs.fetch(queue, count=2))
        await aw(c.jobs.ack(done, result="ok", replicas=1, replicas_timeout=5))
        assert state_there(done.id) == b"succeeded"
        assert await aw(c.jobs.fail(failed, "boom", retry_in=60, replicas=1)) is \
            State.RETRYING
        assert state_there(failed.id) == b"retrying"
        with stopped(follower):
            # longer than the socket timeout: the client still reads the server's answer
            with pytest.raises(redis.ResponseError) as caught:
                await aw(c.jobs.push(queue, {"n": 3}, replicas=1, replicas_timeout=0.8))
            assert str(caught.value) == NOREPL_TIMEOUT
        with pytest.raises(ValueError, match="replicas_timeout needs replicas"):
            await aw(c.jobs.push(queue, {"n": 4}, replicas_timeout=1))
        stats = await aw(c.queues.stats(queue))
        assert stats.queued == 1  # the timed-out push was kept

    run_with(kind, leader, scenario, socket_timeout=0.4)


def test_the_leader_alone_refuses_at_once(start_server: Start) -> None:
    server: ServerProcess = start_server()

    async def scenario(c: Any) -> None:
        with pytest.raises(redis.ResponseError, match=r"^NOREPL Not enough connected replicas"):
            await aw(c.jobs.push(unique("alone"), "p", replicas=1))

    run_with("sync", server, scenario)
