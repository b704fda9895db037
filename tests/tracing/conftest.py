"""Spans recorded in memory by the OpenTelemetry SDK, for the tracing tests, and the buses
they run on (those of the reliability suite: fast retries, memory or Kafka)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from tests.reliability.conftest import broker, reliable_bus

from tradecore_eventbus.tracing import OpenTelemetryTracing


class Spans:
    """A tracer provider whose finished spans are kept in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")

    def tracing(self, **options: bool) -> OpenTelemetryTracing:
        return OpenTelemetryTracing(self.provider, **options)

    def finished(self) -> Sequence[ReadableSpan]:
        return self.exporter.get_finished_spans()

    def named(self, name: str, kind: SpanKind | None = None) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name == name and (kind is None or s.kind == kind)]


@pytest.fixture
def spans() -> Iterator[Spans]:
    recorded = Spans()
    yield recorded
    recorded.provider.shutdown()


def traceparent(span: ReadableSpan) -> bytes:
    """The W3C ``traceparent`` header value of ``span``."""
    context = span.get_span_context()
    assert context is not None
    flags = int(context.trace_flags)
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}".encode()


__all__ = ["broker", "reliable_bus"]
