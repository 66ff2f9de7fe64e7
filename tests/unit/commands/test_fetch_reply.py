"""JOB.FETCH formats its job maps itself: the bytes must be what the generic encoder makes."""

from __future__ import annotations

import hiredis
import pytest

from jobcached.commands.jobs import fetched_reply
from jobcached.jobs.model import Job, State
from jobcached.net.resp import encode


@pytest.mark.parametrize("resp3", [True, False])
@pytest.mark.parametrize("meta", [{}, {"traceparent": "00-abc-def-01", "tenant": "é"}])
def test_fetched_reply_is_the_generic_encoding(resp3: bool, meta: dict[str, str]) -> None:
    job = Job(id="01M82DF4FN4C1CWW7BDR92DG4S", queue="queue:ü", type="t", payload=b"a\r\n\x00b",
              state=State.RUNNING, attempt=3, priority=-2, token="0123456789abcdef",
              deadline_ms=1767225600000, meta=meta)
    generic = {b"id": job.id.encode(), b"queue": job.queue.encode(), b"type": b"t",
               b"payload": job.payload, b"attempt": 3, b"priority": -2,
               b"token": b"0123456789abcdef", b"deadline": 1767225600000,
               b"meta": {k.encode(): v.encode() for k, v in meta.items()}}
    wire = encode([fetched_reply(job, resp3)], resp3)
    assert wire == encode([generic], resp3)
    reader = hiredis.Reader()
    reader.feed(wire)
    [decoded] = reader.gets()
    fields = decoded if isinstance(decoded, dict) else dict(zip(decoded[::2], decoded[1::2],
                                                                strict=True))
    assert (fields[b"payload"], fields[b"deadline"]) == (job.payload, 1767225600000)
