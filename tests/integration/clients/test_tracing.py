"""Tracing: a job pushed inside a span is processed in a child span of it (OpenTelemetry)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jobcached_client import Client, JobContext, Worker
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.integration.clients.conftest import running, unique


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process: OpenTelemetry allows no reset
    yield exporter


def test_worker_span_continues_the_producer_trace(client: Client,
                                                  spans: InMemorySpanExporter) -> None:
    queue = unique("traced")
    worker = Worker(client, [queue])
    seen: dict[str, str] = {}

    @worker.task(queue)
    def handle(payload: str, job: JobContext) -> str:
        seen.update(job.meta)
        return trace.get_current_span().get_span_context().trace_id.to_bytes(16, "big").hex()

    tracer = trace.get_tracer("producer")
    with tracer.start_as_current_span("checkout") as parent:
        job_id = client.jobs.push(queue, "order-1")
    with running(worker):
        done = client.jobs.wait(job_id, timeout=10)
    trace_id = f"{parent.get_span_context().trace_id:032x}"
    assert seen["traceparent"].split("-")[1] == trace_id
    assert done.result == trace_id  # the handler ran inside the continued trace
    [span] = [s for s in spans.get_finished_spans() if s.name == f"process {queue}"]
    assert span.kind is trace.SpanKind.CONSUMER
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert span.attributes["messaging.message.id"] == job_id
    assert span.attributes["messaging.destination.name"] == queue
