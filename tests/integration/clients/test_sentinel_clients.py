"""Our clients behind Redis Sentinel: `jobcached+sentinel://` URLs, and Client, AsyncClient and
Worker following the leader across a failover (real redis-sentinel and jobcached processes)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest
from jobcached_client import AsyncClient, Client, State, Worker
from jobcached_client.urls import SentinelTarget, sentinel_target

from tests.integration.clients.conftest import running
from tests.integration.sentinels import (
    SERVICE,
    Deployment,
    deployment,  # noqa: F401
    wait_for,
)


def test_sentinel_urls_name_the_sentinels_the_service_and_the_database() -> None:
    assert sentinel_target("jobcached://h:1") is None
    assert sentinel_target("jobcached+sentinel://s1,s2:5000,[::1]:7/jobs") == SentinelTarget(
        (("s1", 26379), ("s2", 5000), ("::1", 7)), "jobs")
    assert sentinel_target(
        "jobcached+sentinel://app:p%40ss@s1:1/jobs/3?sentinel_password=sp") == SentinelTarget(
        (("s1", 1),), "jobs", 3, "app", "p@ss", "sp")
    assert sentinel_target("jobcached+sentinel://:pw@s1/jobs") == SentinelTarget(
        (("s1", 26379),), "jobs", password="pw")
    for bad, why in [("jobcached+sentinel:///jobs", "no sentinel address"),
                     ("jobcached+sentinel://s1", "the path must be"),
                     ("jobcached+sentinel://s1/jobs/x", "must be a number"),
                     ("jobcached+sentinel://s1:http/jobs", "is not a port")]:
        with pytest.raises(ValueError, match=why):
            sentinel_target(bad)


def _url(group: Deployment) -> str:
    hosts = ",".join(f"{host}:{port}" for host, port in group.addresses)
    return f"jobcached+sentinel://{hosts}/{SERVICE}"


def test_clients_follow_the_leader_across_a_failover(
        deployment: Deployment) -> None:  # noqa: F811
    deployment.wait_watched()
    client = Client.from_url(_url(deployment), socket_timeout=5)
    before = client.jobs.push("q", {"n": 1})
    assert client.set("k", "before") and client.get("k") == b"before"
    old = deployment.leader
    old.stop(signal.SIGKILL)
    # No wait: the client's retries span Sentinel noticing, voting and promoting.
    assert client.set("k", "after")
    new = deployment.wait_new_leader(old)
    assert new.client().get("k") == b"after"
    after = client.jobs.push("q", {"n": 2})
    assert {job.id for job in client.jobs.list(queue="q")} >= {after}
    assert client.jobs.get(before).state is State.QUEUED

    async def use_async() -> list[Any]:
        made = AsyncClient.from_url(_url(deployment), socket_timeout=5)
        alike = AsyncClient.like(client)
        try:
            return [await made.get("k"), await alike.get("k"),
                    (await alike.jobs.get(after)).state]
        finally:
            await made.aclose()
            await alike.aclose()

    assert asyncio.run(use_async()) == [b"after", b"after", State.QUEUED]
    client.close()


def test_a_worker_keeps_running_jobs_across_a_failover(
        deployment: Deployment) -> None:  # noqa: F811
    deployment.wait_watched()
    client = Client.from_url(_url(deployment), socket_timeout=5)
    worker = Worker(client, queues=["work"], concurrency=2)
    done: list[int] = []

    @worker.task("work")
    def work(payload: dict[str, int]) -> int:
        done.append(payload["n"])
        return payload["n"]

    with running(worker):
        first = client.jobs.push("work", {"n": 1})
        assert client.jobs.wait(first, timeout=10).state is State.SUCCEEDED
        old = deployment.leader
        old.stop(signal.SIGKILL)
        second = client.jobs.push("work", {"n": 2})  # waits for the new leader
        finished = wait_for(lambda: (job := client.jobs.get(second)).state
                            is State.SUCCEEDED and job, what="a job run after the failover")
        assert finished.result == 2
    assert done[:1] == [1] and 2 in done
    client.close()
