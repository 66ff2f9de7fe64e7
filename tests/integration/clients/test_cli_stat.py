"""`jobcached-cli --stat` and `--json INFO` against a real server: the request count leaves
out the tool's own commands, jobs count in exactly one column, INFO reads as sections."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from jobcached_client import Client
from jobcached_client.cli.resp import Connection
from jobcached_client.cli.stat import HEADER, Stat

from tests.conftest import ServerProcess
from tests.integration.clients.conftest import script, unique
from tests.integration.clients.test_cli import cli


def columns(line: str) -> dict[str, str]:
    """A --stat line by its header's titles ("requests" holds "N (+d)")."""
    titles = HEADER.splitlines()[1].split()
    values = line.split()
    values[4:6] = [" ".join(values[4:6])]
    return dict(zip(titles, values, strict=False))


def test_stat_leaves_out_its_own_requests(server: ServerProcess) -> None:
    conn = Connection(port=server.port)
    other = Connection(port=server.port)
    try:
        stat = Stat(conn)
        stat.sample()
        quiet = columns(stat.sample())
        assert quiet["requests"].endswith("(+0)") and quiet["ops/s"] == "0"
        other.call_many([["PING"]] * 7)
        busy = columns(stat.sample())
        assert busy["requests"].endswith("(+7)")
        assert int(busy["requests"].split()[0]) == int(quiet["requests"].split()[0]) + 7
        assert columns(stat.sample())["requests"].endswith("(+0)")
    finally:
        conn.close()
        other.close()


def test_stat_lines_of_an_idle_server_show_no_requests(server: ServerProcess) -> None:
    proc = subprocess.Popen([script("jobcached-cli"), "-p", str(server.port), "--stat",
                             "-i", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().decode() for _ in range(5)]
    finally:
        proc.kill()
        proc.communicate()
    assert [columns(line)["requests"].split()[1] for line in lines[2:]] == ["(+0)"] * 3


def test_stat_shows_pending_jobs_apart_from_waiting_ones(start_server: Any) -> None:
    """`waiting` once added pending and retrying jobs to the queued ones, so delayed jobs
    looked like a backlog and retrying ones were counted twice (also in `retrying`)."""
    server = start_server()
    client = Client(port=server.port)
    queue = unique("depth")
    try:
        client.jobs.push_many(queue, range(3))
        for n in range(2):
            client.jobs.push(queue, n, delay=3600)
        client.jobs.push(queue, "again", retries=3, priority=10)
        [job] = client.jobs.fetch(queue)
        client.jobs.fail(job, "later", retry_in=3600)
        client.jobs.push(queue, "now", priority=10)
        [running] = client.jobs.fetch(queue)
        conn = Connection(port=server.port)
        try:
            line = columns(Stat(conn).sample())
        finally:
            conn.close()
    finally:
        client.close()
    assert HEADER.splitlines()[1].split()[6:] == ["waiting", "pending", "running", "retrying",
                                                  "dead", "queues"]
    assert {title: line[title] for title in ("waiting", "pending", "running", "retrying",
                                             "dead", "queues")} == \
        {"waiting": "3", "pending": "2", "running": "1", "retrying": "1", "dead": "0",
         "queues": f"{queue}=3/1"}
    assert (job.payload, running.payload) == ("again", "now")


def test_json_info_is_sections_of_fields(server: ServerProcess) -> None:
    client = Client(port=server.port)
    queue = unique("info")
    try:
        client.set(unique("key"), "v")
        client.jobs.push(queue, "x")
    finally:
        client.close()
    for resp3 in ([], ["-3"]):
        done = cli("-p", str(server.port), *resp3, "--json", "INFO")
        assert done.returncode == 0, done.stderr
        info = json.loads(done.stdout)
        assert info["Server"]["redis_version"] == "7.0.0"
        assert info["Server"]["tcp_port"] == server.port
        assert info["Keyspace"]["db0"]["keys"] >= 1
        assert info["Jobs"][f"queue_{queue}"]["queued"] == 1
        assert isinstance(info["CPU"]["used_cpu_sys"], float)
        assert {"Clients", "Memory", "Persistence", "Stats"} <= set(info)
    only = json.loads(cli("-p", str(server.port), "--json", "INFO", "keyspace").stdout)
    assert list(only) == ["Keyspace"]
