"""INFO sections added for operators parse with redis-py's own INFO parser."""

from __future__ import annotations

from redis._parsers.helpers import parse_info

from jobcached.clock import ManualClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import walk
from jobcached.jobs.engine import PushOptions
from jobcached.observability.info import escape_queue_name, percentile_us, render_info
from jobcached.server.session import Session
from jobcached.server.state import ServerState, new_latency_histogram


def test_everything_parses_with_redis_py(state: ServerState, session: Session,
                                         clock: ManualClock) -> None:
    engine = state.jobs
    assert engine is not None
    for _ in range(3):
        engine.push("mail", b"p")
    engine.push("mail", b"p", PushOptions(delay_ms=1000))
    engine.push("odd: name,=x", b"p")
    clock.advance(1500)
    execute(session, [b"SET", b"k", b"v"])
    execute(session, [b"JOB.PUSH", b"q", b"p", b"DELAY", b"soon"])
    info = parse_info(render_info(state, ["everything"], walk))
    assert info["queue_mail"] == {"pending": 1, "queued": 3, "running": 0, "retrying": 0,
                                  "succeeded": 0, "dead": 0, "canceled": 0, "lag_ms": 1500,
                                  "paused": 0, "pushed": 4, "fetched": 0,
                                  "failed_attempts": 0}
    assert info["queue_odd%3A%20name%2C%3Dx"]["queued"] == 1
    assert info["jobs"] == 5 and info["queues"] == 2
    assert info["errorstat_ERR"] == {"count": 1}
    assert info["latency_percentiles_usec_set"]["p50"] >= 1
    assert info["loading"] == 0 and info["wal_enabled"] == 0  # no WAL in this state
    assert "cmdstat_set" in info


def test_default_has_jobs_and_errorstats_but_not_commandstats(state: ServerState) -> None:
    text = render_info(state, [], walk).decode()
    assert "# Jobs\r\n" in text and "# Errorstats\r\n" in text
    assert "# Commandstats" not in text and "# Latencystats" not in text


def test_escape_queue_name() -> None:
    assert escape_queue_name("emails.high-prio_1") == "emails.high-prio_1"
    assert escape_queue_name("a:b c") == "a%3Ab%20c"
    assert escape_queue_name("é") == "%C3%A9"


def test_percentiles_are_bucket_upper_bounds() -> None:
    histogram = new_latency_histogram()
    assert percentile_us(histogram, 50) == 0
    histogram[3] = 99  # 4..7 us
    histogram[10] = 1  # 512..1023 us
    assert percentile_us(histogram, 50) == 8
    assert percentile_us(histogram, 99) == 8
    assert percentile_us(histogram, 99.9) == 1024
