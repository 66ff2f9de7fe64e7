"""Distributed tracing for jobs: continue the producer's trace in the worker.

A producer passes its W3C trace context in the job's META (`traceparent`, and `tracestate` if it
has one); the server stores META and returns it with the job. The Worker runs each handler
inside `job_span(job)`: when `opentelemetry-api` is installed, a CONSUMER span named
`process <type>` whose parent is the producer's span, with the messaging attributes of the
OpenTelemetry conventions; when it is not installed, nothing happens and nothing is imported
twice. `producer_meta()` gives a producer the META entries for its current span.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

try:  # optional: tracing costs nothing for users who do not trace
    from opentelemetry import propagate, trace
except ImportError:  # pragma: no cover - exercised when the package is absent
    propagate = None  # type: ignore[assignment]
    trace = None  # type: ignore[assignment]

#: The META keys of the W3C Trace Context headers.
TRACE_KEYS = ("traceparent", "tracestate")


def producer_meta() -> dict[str, str]:
    """META entries carrying the current span's context (empty without OpenTelemetry)."""
    if propagate is None:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {key: value for key, value in carrier.items() if key in TRACE_KEYS}


@contextlib.contextmanager
def job_span(job: Any) -> Iterator[Any]:
    """Run the block in a span that continues the trace of the job's `traceparent`."""
    if trace is None or propagate is None:
        yield None
        return
    carrier = {key: job.meta[key] for key in TRACE_KEYS if key in job.meta}
    parent = propagate.extract(carrier) if carrier else None
    tracer = trace.get_tracer("jobcached_client")
    attributes = {
        "messaging.system": "jobcached", "messaging.operation.type": "process",
        "messaging.destination.name": job.queue, "messaging.message.id": job.id,
        "jobcached.job.type": job.type, "jobcached.job.attempt": job.attempt,
    }
    with tracer.start_as_current_span(f"process {job.type}", context=parent,
                                      kind=trace.SpanKind.CONSUMER,
                                      attributes=attributes) as span:
        yield span
