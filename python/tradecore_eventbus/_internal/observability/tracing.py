"""OpenTelemetry tracing: an observer that follows each publish and each handled record as
spans, and carries the W3C trace context (``traceparent``, ``tracestate``) in the records'
headers from producer to consumer (decisions 85-87).

``opentelemetry-api`` is an optional dependency (the ``otel`` extra): it is imported when an
:class:`OpenTelemetryTracing` is made, never when this module is, so the error names the
extra. Spans follow the OpenTelemetry messaging semantic conventions (Kafka):

- ``publish`` / ``publish_stream``: one ``send {topic}`` span (kind PRODUCER) per event, in
  the caller's context; its context is the event's creation context, carried in the record.
- ``publish_batch``: one ``create {topic}`` span (PRODUCER) per event, whose context each
  record carries, and one ``send {topic}`` span (CLIENT) for the batch, linked to them
  (``batch_create_spans=False``: only the send span, PRODUCER, carried by every record).
- each handled record: one ``process {topic}`` span (CONSUMER) around the filter and the
  handler (its retries and the DLQ write included), linked to the record's creation context
  and, by default, its child (``process_as_child=False``: only linked).

Every producer span ends when its event's outcome is known, carrying the partition and
offset, or the error (recorded as an exception event, status ERROR, ``error.type``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from tradecore_eventbus import _core

from ..extras import require
from .observer import HandlingTrace, Observer, PublishTrace

if TYPE_CHECKING:
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import Span, TracerProvider

    from ..transports.protocol import RecordLike

#: The tracer's (instrumentation scope's) name.
SCOPE = "tradecore_eventbus"
FEATURE = "OpenTelemetry tracing"


def _module(name: str) -> ModuleType:
    return require(name, "otel", feature=FEATURE)


class _RecordHeaders:
    """Reads a consumed record's headers for a propagator (OpenTelemetry's ``Getter``)."""

    def get(self, carrier: RecordLike, key: str) -> list[str] | None:
        values = [
            v.decode("utf-8", "replace") for k, v in carrier.headers if k == key and v is not None
        ]
        return values or None

    def keys(self, carrier: RecordLike) -> list[str]:
        return [k for k, _ in carrier.headers]


_HEADERS = _RecordHeaders()


def _error_type(error: BaseException) -> str:
    return type(error).__qualname__


class OpenTelemetryTracing(Observer):
    """Traces publishes and handled records with OpenTelemetry and propagates the trace
    context in record headers. Register it with ``EventBus(..., observers=[...])`` or
    ``bus.add_observer(...)`` (one per bus: a record carries one trace context).

    ``tracer_provider``: default, the global one (``opentelemetry.trace.set_tracer_provider``);
    ``propagator``: default, the global text-map propagator (W3C trace context and baggage
    unless ``OTEL_PROPAGATORS`` says otherwise). ``batch_create_spans``: a ``create`` span per
    event of ``publish_batch`` (the semantic conventions' recommendation for batch APIs);
    ``process_as_child``: the ``process`` span is a child of the producer's span (else it
    starts in the handler task's own context and is only linked to it).

    Raises :class:`~tradecore_eventbus.exceptions.MissingExtraError` (a ``ConfigError``) if
    opentelemetry-api is not installed."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        propagator: TextMapPropagator | None = None,
        *,
        batch_create_spans: bool = True,
        process_as_child: bool = True,
    ) -> None:
        trace = _module("opentelemetry.trace")
        self._trace = trace
        self._propagate = _module("opentelemetry.propagate")
        self._context = _module("opentelemetry.context")
        self._tracer = trace.get_tracer(SCOPE, _core.__version__, tracer_provider)
        self._propagator = propagator
        self.batch_create_spans = batch_create_spans
        self.process_as_child = process_as_child

    # ------------------------------------------------------------ producing

    def trace_publish(
        self,
        channel: str,
        topic: str,
        events: Sequence[Mapping[str, Any]],
        keys: Sequence[str | None],
        batch: bool,
    ) -> PublishTrace:
        kind = self._trace.SpanKind
        common: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "tradecore_eventbus.channel": channel,
        }
        send_attributes: dict[str, Any] = {
            **common,
            "messaging.operation.name": "send",
            "messaging.operation.type": "send",
        }
        if not batch or not self.batch_create_spans:
            if batch:
                send_attributes["messaging.batch.message_count"] = len(events)
            else:
                send_attributes.update(_message_attributes(events[0], keys[0]))
            send = self._tracer.start_span(
                f"send {topic}", kind=kind.PRODUCER, attributes=send_attributes
            )
            return _SendSpan(self, send, len(events), single=not batch)
        creates = [
            self._tracer.start_span(
                f"create {topic}",
                kind=kind.PRODUCER,
                attributes={
                    **common,
                    "messaging.operation.name": "create",
                    "messaging.operation.type": "create",
                    **_message_attributes(event, key),
                },
            )
            for event, key in zip(events, keys, strict=True)
        ]
        send_attributes["messaging.batch.message_count"] = len(events)
        send = self._tracer.start_span(
            f"send {topic}",
            kind=kind.CLIENT,
            attributes=send_attributes,
            links=[self._trace.Link(s.get_span_context()) for s in creates],
        )
        return _CreateSpans(self, send, creates)

    def _inject(self, span: Span) -> dict[str, str]:
        carrier: dict[str, str] = {}
        context = self._trace.set_span_in_context(span)
        if self._propagator is None:
            self._propagate.inject(carrier, context=context)
        else:
            self._propagator.inject(carrier, context=context)
        return carrier

    def _failed(self, span: Span, error: BaseException, *, record: bool = True) -> None:
        if record:
            span.record_exception(error)
        span.set_attribute("error.type", _error_type(error))
        span.set_status(
            self._trace.Status(self._trace.StatusCode.ERROR, f"{_error_type(error)}: {error}")
        )

    # ------------------------------------------------------------ consuming

    def trace_handling(
        self, channel: str, group: str, record: RecordLike, event: dict[str, Any]
    ) -> HandlingTrace:
        trace = self._trace
        if self._propagator is None:
            creation = self._propagate.extract(record, getter=_HEADERS)
        else:
            # A duck-typed Getter: its ABC can be imported only once the extra is.
            creation = self._propagator.extract(record, getter=_HEADERS)  # type: ignore[arg-type]
        created = trace.get_current_span(creation).get_span_context()
        links = []
        parent = None  # the task's own context
        if created.is_valid:
            links.append(trace.Link(created))
            if self.process_as_child:
                parent = creation
                # The context the handler would otherwise run in stays reachable (semconv).
                ambient = trace.get_current_span().get_span_context()
                if ambient.is_valid:
                    links.append(trace.Link(ambient))
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": record.topic,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
            "messaging.consumer.group.name": group,
            "tradecore_eventbus.channel": channel,
        }
        attributes.update(_message_attributes(event, None))
        if record.key is not None:
            attributes["messaging.kafka.message.key"] = record.key.decode("utf-8", "replace")
        span = self._tracer.start_span(
            f"process {record.topic}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
        )
        return _ProcessSpan(self, span)


def _message_attributes(event: Mapping[str, Any], key: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    event_id = event.get("event_id")
    if isinstance(event_id, str):
        out["messaging.message.id"] = event_id
    event_type = event.get("event_type")
    if isinstance(event_type, str):
        out["tradecore_eventbus.event_type"] = event_type
    if key is not None:
        out["messaging.kafka.message.key"] = key
    return out


class _SendSpan(PublishTrace):
    """One send span: a single event's (its context is the creation context), or a batch's
    without create spans (every record carries it)."""

    def __init__(
        self, tracing: OpenTelemetryTracing, span: Span, count: int, *, single: bool
    ) -> None:
        self._tracing = tracing
        self._span = span
        self._single = single
        self._headers = tracing._inject(span)
        self._failures = 0
        self._count = count

    def headers(self, i: int) -> Mapping[str, str]:
        return self._headers

    def delivered(self, i: int, partition: int, offset: int) -> None:
        if self._single:
            self._span.set_attribute("messaging.destination.partition.id", str(partition))
            self._span.set_attribute("messaging.kafka.offset", offset)

    def failed(self, i: int, error: BaseException) -> None:
        self._failures += 1
        if self._failures == 1:  # one exception event, not one per event of a batch
            self._tracing._failed(self._span, error)

    def end(self) -> None:
        if self._failures and not self._single:
            self._span.set_attribute("tradecore_eventbus.failed_count", self._failures)
        self._span.end()


class _CreateSpans(PublishTrace):
    """A batch: one create span per event (carried by its record, ending with its outcome)
    and the send span linked to them."""

    def __init__(self, tracing: OpenTelemetryTracing, send: Span, creates: list[Span]) -> None:
        self._tracing = tracing
        self._send = send
        self._creates = creates
        self._failures = 0

    def headers(self, i: int) -> Mapping[str, str]:
        return self._tracing._inject(self._creates[i])

    def delivered(self, i: int, partition: int, offset: int) -> None:
        span = self._creates[i]
        span.set_attribute("messaging.destination.partition.id", str(partition))
        span.set_attribute("messaging.kafka.offset", offset)

    def failed(self, i: int, error: BaseException) -> None:
        self._tracing._failed(self._creates[i], error)
        self._failures += 1
        if self._failures == 1:
            self._tracing._failed(self._send, error)

    def end(self) -> None:
        for span in self._creates:
            span.end()
        if self._failures:
            self._send.set_attribute("tradecore_eventbus.failed_count", self._failures)
        self._send.end()


class _ProcessSpan(HandlingTrace):
    """The process span of one record, current while the record is handled."""

    def __init__(self, tracing: OpenTelemetryTracing, span: Span) -> None:
        self._tracing = tracing
        self._span = span
        self._token: object = None
        self._attempts_failed = False

    def __enter__(self) -> HandlingTrace:
        tracing = self._tracing
        self._token = tracing._context.attach(tracing._trace.set_span_in_context(self._span))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is not None:  # cancelled or stopped while handling
                self._span.record_exception(exc)
            self._span.end()
        finally:
            if self._token is not None:
                self._tracing._context.detach(self._token)

    def attempt_failed(self, error: BaseException, attempt: int) -> None:
        self._attempts_failed = True
        self._span.record_exception(error, attributes={"tradecore_eventbus.attempt": attempt})

    def gave_up(self, error: BaseException) -> None:
        # A handler's failures are already recorded, one event per attempt.
        self._tracing._failed(self._span, error, record=not self._attempts_failed)
