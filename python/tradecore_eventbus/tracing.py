"""OpenTelemetry tracing for the bus (the ``otel`` extra: ``pip install
"tradecore-eventbus[otel]"``).

``OpenTelemetryTracing`` is an observer: a span per published event and per handled record,
and the W3C trace context carried in the records' headers from producer to consumer (and
kept in dead letters and their replays). See the README's "Tracing (OpenTelemetry)" and
decisions 85-87.
"""

from ._internal.observability.tracing import OpenTelemetryTracing

__all__ = ["OpenTelemetryTracing"]
