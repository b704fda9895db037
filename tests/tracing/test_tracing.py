"""OpenTelemetry tracing: producer spans, the W3C trace context in record headers, consumer
spans children of (and linked to) the producer's, dead letters and replays that keep the
context, and a bus that traces nothing when nobody asked (decisions 85-88)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from tests.bus.conftest import TRANSPORTS
from tests.reliability.conftest import BusBuilder, read_topic
from tests.reliability.test_observers import until
from tests.reliability.test_publish_faults import refused_error
from tests.tracing.conftest import Spans, traceparent

from tradecore_eventbus import (
    BaseEvent,
    ConfigError,
    EventBus,
    EventBusConfig,
    EventValidationError,
    InvalidArgumentError,
    MemoryTransportAdapter,
    PublishError,
    register_event,
)
from tradecore_eventbus._internal.observability.dispatch import SILENT
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker
from tradecore_eventbus.observers import Observer
from tradecore_eventbus.tracing import OpenTelemetryTracing


def channel() -> str:
    return f"transport.trace-{uuid.uuid4().hex[:8]}"


def header(record: Any, name: str) -> bytes | None:
    return next((v for k, v in record.headers if k == name), None)


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    context = span.get_span_context()
    assert context is not None
    return context.span_id


def trace_id(span: ReadableSpan) -> int:
    context = span.get_span_context()
    assert context is not None
    return context.trace_id


def linked_ids(span: ReadableSpan) -> set[int]:
    return {link.context.span_id for link in span.links}


async def handled_by(
    bus: EventBus, ch: str, spans: Spans, fail: bool = False, group: str | None = None
) -> list[Any]:
    """Subscribes a stream handler that records the span it runs in and opens one of its own
    (as application code would); ``fail``: it always raises."""
    seen: list[Any] = []

    async def handler(event: dict[str, Any]) -> None:
        seen.append(otel_trace.get_current_span().get_span_context())
        with spans.tracer.start_as_current_span("handler work"):
            pass
        if fail:
            raise RuntimeError(f"cannot handle {event['event_id']}")

    await bus.subscribe_stream(ch, handler, group=group or f"g-{uuid.uuid4().hex[:6]}")
    return seen


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_published_event_is_traced_from_the_callers_span_to_the_handlers(
    reliable_bus: BusBuilder, kind: str, spans: Spans
) -> None:
    bus = await reliable_bus(kind)
    bus.add_observer(spans.tracing())
    ch = channel()
    topic = bus.adapter.topic_for(ch)
    group = f"g-{uuid.uuid4().hex[:6]}"
    seen = await handled_by(bus, ch, spans, group=group)
    with spans.tracer.start_as_current_span("request") as request:
        result = await bus.publish_stream(ch, {"event_type": "OrderPlaced"}, partition_key="o-1")
    await until(lambda: len(spans.named(f"process {topic}")) == 1)

    [send] = spans.named(f"send {topic}")
    assert send.kind == SpanKind.PRODUCER
    assert parent_id(send) == request.get_span_context().span_id
    assert send.attributes is not None
    assert dict(send.attributes) == {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "messaging.message.id": result.event_id,
        "messaging.kafka.message.key": "o-1",
        "messaging.destination.partition.id": str(result.partition),
        "messaging.kafka.offset": result.offset,
        "tradecore_eventbus.channel": ch,
        "tradecore_eventbus.event_type": "OrderPlaced",
    }
    assert send.status.status_code == StatusCode.UNSET

    [process] = spans.named(f"process {topic}")
    assert process.kind == SpanKind.CONSUMER
    assert trace_id(process) == trace_id(send) == request.get_span_context().trace_id
    assert parent_id(process) == span_id(send)
    assert span_id(send) in linked_ids(process)
    assert process.attributes is not None
    assert process.attributes["messaging.message.id"] == result.event_id
    assert process.attributes["messaging.kafka.offset"] == result.offset
    assert process.attributes["messaging.destination.partition.id"] == str(result.partition)
    assert process.attributes["messaging.consumer.group.name"] == f"suite-{group}"
    # The handler ran inside the process span: its own spans are children of it.
    assert seen[0].span_id == span_id(process)
    [work] = spans.named("handler work")
    assert parent_id(work) == span_id(process)


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_batch_has_a_create_span_per_event_and_one_send_span_linked_to_them(
    reliable_bus: BusBuilder, kind: str, spans: Spans
) -> None:
    bus = await reliable_bus(kind)
    bus.add_observer(spans.tracing())
    ch = channel()
    topic = bus.adapter.topic_for(ch)
    await handled_by(bus, ch, spans)
    events = [{"event_type": "OrderPlaced", "n": n} for n in range(5)]
    events[2]["event_id"] = "given-id"
    with spans.tracer.start_as_current_span("request") as request:
        results = await bus.publish_batch(ch, events)
    await until(lambda: len(spans.named(f"process {topic}")) == 5)

    creates = spans.named(f"create {topic}", SpanKind.PRODUCER)
    [send] = spans.named(f"send {topic}")
    assert send.kind == SpanKind.CLIENT
    assert send.attributes is not None
    assert send.attributes["messaging.batch.message_count"] == 5
    assert len(creates) == 5
    assert linked_ids(send) == {span_id(c) for c in creates}
    request_id = request.get_span_context().span_id
    assert {parent_id(s) for s in [send, *creates]} == {request_id}
    by_message = {str((c.attributes or {})["messaging.message.id"]): c for c in creates}
    assert set(by_message) == {r.event_id for r in results}
    assert "given-id" in by_message
    for result in results:
        attributes = by_message[result.event_id].attributes or {}
        assert attributes["messaging.kafka.offset"] == result.offset
        assert attributes["messaging.destination.partition.id"] == str(result.partition)
    # Each record carried its own create span: each process span is its child.
    for process in spans.named(f"process {topic}"):
        message_id = str((process.attributes or {})["messaging.message.id"])
        assert parent_id(process) == span_id(by_message[message_id])


@pytest.mark.kafka
async def test_the_traceparent_is_in_the_raw_record_headers_on_both_encoding_paths(
    reliable_bus: BusBuilder, spans: Spans, bootstrap: str
) -> None:
    """Read with a plain confluent-kafka consumer: the Rust encoder's records (dicts, no
    model) and the validated Python path's (a registered model) both carry it, beside the
    event headers when those are on."""

    @register_event(event_type="TracedModelEvent")
    class TracedModelEvent(BaseEvent):
        amount: int

    bus = await reliable_bus("kafka", transport={"producer_event_headers": True})
    bus.add_observer(spans.tracing())
    ch = channel()
    topic = bus.adapter.topic_for(ch)
    plain = await bus.publish(ch, {"event_type": "Plain"})
    modelled = await bus.publish(ch, {"event_type": "TracedModelEvent", "amount": 3})
    batch = await bus.publish_batch(ch, [{"event_type": "Plain"}, {"event_type": "Plain"}])

    records = await asyncio.to_thread(read_raw, bootstrap, topic, 4)
    headers = {dict(r.headers())["event_id"].decode(): dict(r.headers()) for r in records}
    sends = {
        str(attributes["messaging.message.id"]): s
        for s in spans.finished()
        if s.kind == SpanKind.PRODUCER
        and "messaging.message.id" in (attributes := s.attributes or {})
    }
    for result in (plain, modelled, *batch):
        got = headers[result.event_id]
        assert got["traceparent"] == traceparent(sends[result.event_id])
        assert got["event_type"] in (b"Plain", b"TracedModelEvent")
        assert got["content-type"] == b"application/json"


def read_raw(bootstrap: str, topic: str, count: int) -> list[Any]:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out: list[Any] = []
    try:
        for _ in range(60):
            for message in consumer.consume(count, timeout=1.0):
                assert message.error() is None, message.error()
                out.append(message)
            if len(out) >= count:
                return out
    finally:
        consumer.close()
    raise AssertionError(f"only {len(out)} of {count} records in {topic}")


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_dead_letter_and_its_replay_keep_the_events_trace_context(
    reliable_bus: BusBuilder, broker: MemoryBroker, kind: str, spans: Spans
) -> None:
    bus = await reliable_bus(kind, broker=broker)
    bus.add_observer(spans.tracing())
    ch = channel()
    topic = bus.adapter.topic_for(ch)
    await handled_by(bus, ch, spans, fail=True)
    result = await bus.publish_stream(ch, {"event_type": "Doomed"})
    [dead] = await read_topic(bus, f"{ch}.dlq", 1)
    [send] = spans.named(f"send {topic}")
    assert header(dead, "traceparent") == traceparent(send)

    # The handler failed on every attempt: each attempt is an exception event of the process
    # span, whose status is ERROR.
    await until(lambda: len(spans.named(f"process {topic}")) == 1)
    [process] = spans.named(f"process {topic}")
    assert process.status.status_code == StatusCode.ERROR
    assert (process.attributes or {})["error.type"] == "RuntimeError"
    attempts = [e for e in process.events if e.name == "exception"]
    assert [(e.attributes or {})["tradecore_eventbus.attempt"] for e in attempts] == [1, 2, 3]

    # A replay (by a process that does not trace) sends it back with the same context; the
    # failing handler is gone first, or the event would loop between its topic and the DLQ.
    await bus.close()
    replayer = await reliable_bus(kind, broker=broker)
    counts = await replayer.replay_dlq(ch, idle_timeout=1.0, group=f"r-{uuid.uuid4().hex[:6]}")
    assert counts["republished"] == 1
    records = await read_topic(replayer, ch, 2)
    replayed = [r for r in records if (r.partition, r.offset) != (result.partition, result.offset)]
    assert [header(r, "traceparent") for r in replayed] == [traceparent(send)]


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_refused_publish_is_an_error_on_its_span_and_its_dead_letter_keeps_the_context(
    reliable_bus: BusBuilder, broker: MemoryBroker, kind: str, spans: Spans
) -> None:
    if kind == "kafka":
        # A record over the topic's size limit is refused for good by the broker itself.
        bus = await reliable_bus(kind)
        event = {"event_type": "Huge", "blob": "x" * 2_000_000}
    else:
        bus = await reliable_bus(kind, broker=broker)
        event = {"event_type": "Refused"}
    bus.add_observer(spans.tracing())
    ch = channel()
    topic = bus.adapter.topic_for(ch)
    if kind == "memory":
        broker.injected_topic_failures[topic] = [refused_error()]
    with pytest.raises(PublishError) as raised:
        await bus.publish_stream(ch, event)
    assert raised.value.dlq == "dlq"
    [send] = spans.named(f"send {topic}")
    assert send.status.status_code == StatusCode.ERROR
    assert (send.attributes or {})["error.type"] == "PublishError"
    assert "messaging.kafka.offset" not in (send.attributes or {})
    [dead] = await read_topic(bus, f"{ch}.dlq", 1)
    assert header(dead, "traceparent") == traceparent(send)


async def test_an_invalid_event_of_a_batch_fails_every_span_and_sends_nothing(
    reliable_bus: BusBuilder, spans: Spans
) -> None:
    bus = await reliable_bus("memory")
    bus.add_observer(spans.tracing())
    ch = channel()
    topic = bus.adapter.topic_for(ch)
    with pytest.raises(EventValidationError):
        await bus.publish_batch(ch, [{"event_type": "Fine"}, {"no": "type"}])
    creates = spans.named(f"create {topic}")
    assert len(creates) == 2
    assert all(c.status.status_code == StatusCode.ERROR for c in creates)
    [send] = spans.named(f"send {topic}")
    assert (send.attributes or {})["tradecore_eventbus.failed_count"] == 2


async def test_without_create_spans_a_batch_is_one_producer_span_every_record_carries(
    reliable_bus: BusBuilder, spans: Spans
) -> None:
    bus = await reliable_bus("memory")
    bus.add_observer(spans.tracing(batch_create_spans=False))
    ch = channel()
    topic = bus.adapter.topic_for(ch)
    await bus.publish_batch(ch, [{"event_type": "A"}, {"event_type": "B"}])
    assert spans.named(f"create {topic}") == []
    [send] = spans.named(f"send {topic}")
    assert send.kind == SpanKind.PRODUCER
    records = await read_topic(bus, ch, 2)
    assert [header(r, "traceparent") for r in records] == [traceparent(send)] * 2


async def test_a_process_span_only_linked_starts_a_trace_of_its_own(
    reliable_bus: BusBuilder, spans: Spans
) -> None:
    bus = await reliable_bus("memory")
    bus.add_observer(spans.tracing(process_as_child=False))
    ch = channel()
    topic = bus.adapter.topic_for(ch)
    await handled_by(bus, ch, spans)
    await bus.publish_stream(ch, {"event_type": "A"})
    await until(lambda: len(spans.named(f"process {topic}")) == 1)
    [send] = spans.named(f"send {topic}")
    [process] = spans.named(f"process {topic}")
    assert process.parent is None
    assert trace_id(process) != trace_id(send)
    assert linked_ids(process) == {span_id(send)}


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_without_a_tracing_observer_records_carry_no_trace_context_and_nothing_is_traced(
    reliable_bus: BusBuilder, kind: str, spans: Spans
) -> None:
    bus = await reliable_bus(kind)
    bus.add_observer(Observer())
    assert bus.observers.trace_publish is SILENT
    assert bus.observers.trace_handling is SILENT
    ch = channel()
    await handled_by(bus, ch, spans)
    with spans.tracer.start_as_current_span("request"):
        await bus.publish(ch, {"event_type": "A"})
        await bus.publish_batch(ch, [{"event_type": "B"}])
    records = await read_topic(bus, ch, 2)
    assert [header(r, "traceparent") for r in records] == [None, None]
    await until(lambda: len(spans.named("handler work")) == 2)
    # Only the test's own spans: the bus made none.
    assert sorted(s.name for s in spans.finished()) == ["handler work", "handler work", "request"]


async def test_one_tracing_observer_per_bus(reliable_bus: BusBuilder, spans: Spans) -> None:
    bus = await reliable_bus("memory")
    bus.add_observer(spans.tracing())
    with pytest.raises(InvalidArgumentError, match="one tracing observer per bus"):
        bus.add_observer(spans.tracing())


class Broken(Observer):
    """Traces, and fails at each step."""

    def trace_publish(self, *args: Any) -> Any:
        return self

    def headers(self, i: int) -> Any:
        raise RuntimeError("headers broke")

    def delivered(self, *args: Any) -> None:
        raise RuntimeError("delivered broke")

    def end(self) -> None:
        raise RuntimeError("end broke")


async def test_a_tracing_observer_that_raises_never_fails_a_publish(
    reliable_bus: BusBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    bus = await reliable_bus("memory")
    bus.add_observer(Broken())
    ch = channel()
    for _ in range(2):
        await bus.publish(ch, {"event_type": "A"})
    assert len(await read_topic(bus, ch, 2)) == 2
    logged = [r.getMessage() for r in caplog.records if r.name == "tradecore_eventbus.observers"]
    # Once per failing method, not once per call.
    assert len(logged) == 3, logged
    assert any("trace_publish().headers" in m for m in logged)


async def test_event_bus_tracing_adds_a_tracing_observer_unless_one_is_given(
    tmp_path: Any, spans: Spans
) -> None:
    with pytest.raises(ConfigError, match="EVENT_BUS_TRACING='maybe'"):
        EventBusConfig.from_env({"EVENT_BUS_TRACING": "maybe"})
    config = EventBusConfig.from_env(
        {"EVENT_BUS_TRACING": "true", "EVENT_BUS_SPOOL_DIR": str(tmp_path)}
    )
    assert config.tracing is True
    async with EventBus(MemoryTransportAdapter(config)) as bus:
        [added] = bus.observers.extra
        assert isinstance(added, OpenTelemetryTracing)
    given = spans.tracing()
    async with EventBus(MemoryTransportAdapter(config), observers=[given]) as bus:
        assert bus.observers.extra == [given]
    async with EventBus(MemoryTransportAdapter(replace(config, tracing=False))) as bus:
        assert bus.observers.extra == []
        assert bus.observers.trace_publish is SILENT
