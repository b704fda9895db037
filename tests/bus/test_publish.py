"""Publishing: enrichment, wire format, validation, batches, topics."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any, Literal

import pytest
from tests.bus.conftest import BusFactory, Collector

from tradecore_eventbus import (
    EVENT_TYPE_TO_PYDANTIC_MODEL,
    BaseEvent,
    EventBus,
    EventValidationError,
    InvalidTopicError,
    register_event,
)


class OrderPlacedEvent(BaseEvent):
    event_type: Literal["OrderPlaced"] = "OrderPlaced"
    order_id: str
    symbol: str
    quantity: int


@pytest.fixture(autouse=True)
def registry() -> None:
    register_event(OrderPlacedEvent)
    yield
    EVENT_TYPE_TO_PYDANTIC_MODEL.pop("OrderPlaced", None)


ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def test_publish_enriches_a_copy_and_reports_what_was_sent(
    bus: EventBus, channel: str
) -> None:
    event = {"event_type": "PriceUpdated", "symbol": "AAPL", "price": 150.25}
    original = dict(event)
    result = await bus.publish_stream(channel, event)
    assert event == original, "the caller's dict was mutated"
    assert result.channel == channel
    assert result.event_type == "PriceUpdated"
    assert str(uuid.UUID(result.event_id)) == result.event_id
    assert result.offset >= 0
    assert 0 <= result.partition < 6
    assert ISO_UTC.match(result.event["timestamp"]), result.event["timestamp"]
    assert result.event["version"] == 1
    assert result.event["symbol"] == "AAPL"


async def test_fields_given_by_the_caller_are_kept(bus: EventBus, channel: str) -> None:
    result = await bus.publish_stream(
        channel,
        {"event_type": "X", "event_id": "my-id", "timestamp": "2025-11-10T12:00:00Z", "version": 3},
    )
    assert result.event_id == "my-id"
    assert result.event["timestamp"] == "2025-11-10T12:00:00Z"
    assert result.event["version"] == 3


@pytest.mark.parametrize(
    "event_headers", [None, False, True], ids=["default", "no-headers", "headers"]
)
async def test_wire_format_is_plain_json_with_headers_unless_turned_off(
    make_bus: BusFactory, channel: str, event_headers: bool | None
) -> None:
    """Every publish path (single, batch of Rust-encoded events, a validated model) writes
    the same records: the JSON event, plus event_type / event_id / content-type headers
    unless ``producer_event_headers`` is off (on by default)."""
    from tradecore_eventbus import poll_batch
    from tradecore_eventbus.transport_adapter import ConsumerSpec

    bus = await (
        make_bus() if event_headers is None else make_bus(producer_event_headers=event_headers)
    )
    single = await bus.publish_stream(channel, {"event_type": "Wire", "n": 1, "text": "héllo"})
    batch = await bus.publish_batch(channel, [{"event_type": "Wire", "n": 2}])
    model = await bus.publish_stream(
        channel, {"event_type": "OrderPlaced", "order_id": "o-1", "symbol": "AAPL", "quantity": 1}
    )
    sent = [single, *batch, model]
    # Read back with the raw transport consumer, as any Kafka client would.
    consumer = bus.adapter.new_consumer(
        ConsumerSpec(single.topic, f"raw-{uuid.uuid4().hex[:6]}", "stream", "earliest", False, 10)
    )
    consumer.subscribe([single.topic])
    await consumer.wait_assigned(30)
    records: list[Any] = []
    while len(records) < len(sent):
        got = await poll_batch(consumer, 10, 10)
        assert got, f"only {len(records)} of {len(sent)} records came back"
        records.extend(got)
    await consumer.close()
    by_id = {json.loads(r.value.decode("utf-8"))["event_id"]: r for r in records}
    assert set(by_id) == {r.event_id for r in sent}
    assert json.loads(by_id[single.event_id].value.decode("utf-8"))["text"] == "héllo"
    for result in sent:
        record = by_id[result.event_id]
        if event_headers is not False:
            assert record.header("event_type") == result.event_type.encode()
            assert record.header("event_id") == result.event_id.encode()
            assert record.header("content-type") == b"application/json"
        else:
            assert record.headers == []


async def test_missing_event_type_is_a_clear_error_and_nothing_is_sent(
    bus: EventBus, channel: str
) -> None:
    collector = Collector()
    await bus.subscribe_stream(channel, collector, group="g-missing", consumer="c1")
    with pytest.raises(EventValidationError, match="event_type is required"):
        await bus.publish_stream(channel, {"symbol": "AAPL"})
    with pytest.raises(ValueError, match="event_type"):
        await bus.publish(channel, {"event_type": ""})
    await bus.publish_stream(channel, {"event_type": "Marker"})
    events = await collector.wait_for(1)
    await collector.settle(0.5)
    assert [e["event_type"] for e in events] == ["Marker"]


async def test_invalid_registered_event_is_rejected_with_pydantic_errors(
    bus: EventBus, channel: str
) -> None:
    with pytest.raises(EventValidationError) as info:
        await bus.publish_stream(
            channel, {"event_type": "OrderPlaced", "order_id": "123", "symbol": "AAPL"}
        )
    assert isinstance(info.value, ValueError)
    assert any(e["loc"] == ("quantity",) for e in info.value.errors)
    ok = await bus.publish_stream(
        channel, {"event_type": "OrderPlaced", "order_id": "1", "symbol": "AAPL", "quantity": "100"}
    )
    assert ok.event["quantity"] == 100, "the validated (coerced) event is what is sent"


async def test_unregistered_types_pass_unless_strict(make_bus: BusFactory, channel: str) -> None:
    bus = await make_bus()
    await bus.publish_stream(channel, {"event_type": "NobodyRegisteredMe"})
    bus.config.strict_validation = True
    with pytest.raises(EventValidationError, match="no registered model"):
        await bus.publish_stream(channel, {"event_type": "NobodyRegisteredMe"})


async def test_validation_can_be_turned_off(make_bus: BusFactory, channel: str) -> None:
    bus = await make_bus()
    bus.validate_on_publish = False
    result = await bus.publish_stream(channel, {"event_type": "OrderPlaced", "order_id": "1"})
    assert result.offset >= 0


async def test_a_batch_with_invalid_events_sends_nothing_and_names_each_position(
    bus: EventBus, channel: str
) -> None:
    collector = Collector()
    await bus.subscribe_stream(channel, collector, group="g-batch", consumer="c1")
    good = {"event_type": "OrderPlaced", "order_id": "1", "symbol": "AAPL", "quantity": 1}
    events = [good, {"event_type": "OrderPlaced", "order_id": "2"}, good, {"symbol": "x"}]
    with pytest.raises(EventValidationError) as info:
        await bus.publish_batch(channel, events)
    assert [e["index"] for e in info.value.errors] == [1, 3]
    assert "position 1" in str(info.value)
    assert "position 3" in str(info.value)
    await bus.publish_stream(channel, {"event_type": "Marker"})
    await collector.wait_for(1)
    await collector.settle(0.5)
    assert [e["event_type"] for e in collector.events] == ["Marker"]


async def test_publish_batch_sends_everything_in_order_on_one_key(
    bus: EventBus, channel: str
) -> None:
    events = [
        {"event_type": "OrderPlaced", "order_id": str(i), "symbol": "A", "quantity": i}
        for i in range(50)
    ]
    results = await bus.publish_batch(channel, events, partition_key="user-123")
    assert len(results) == 50
    assert len({r.partition for r in results}) == 1
    offsets = [r.offset for r in results]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == 50
    assert await bus.publish_batch(channel, []) == []


async def test_single_publishes_of_one_turn_keep_call_order_across_batches(
    bus: EventBus, channel: str
) -> None:
    # 450 publishes started in one event-loop turn: coalesced into batches of at most
    # Coalescer.MAX_BATCH (200, 200, 50), which must leave in call order.
    results = await asyncio.gather(
        *(
            bus.publish_stream(channel, {"event_type": "Tick", "n": i}, partition_key="k")
            for i in range(450)
        )
    )
    assert [r.event["n"] for r in results] == list(range(450))
    assert len({r.partition for r in results}) == 1
    offsets = [r.offset for r in results]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == 450


async def test_a_channel_kafka_would_reject_is_a_clear_error(bus: EventBus) -> None:
    with pytest.raises(InvalidTopicError) as info:
        await bus.publish_stream("transport.bad name!", {"event_type": "X"})
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidTopicError):
        await bus.subscribe("", lambda e: None)


async def test_unknown_category_is_a_warning_not_an_error(
    bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    channel = f"mystery{uuid.uuid4().hex[:6]}.events"
    with caplog.at_level("WARNING", logger="tradecore_eventbus._internal.wire.topics"):
        await bus.publish_stream(channel, {"event_type": "X"})
    assert any("convention" in r.getMessage() for r in caplog.records)


async def test_topic_prefix_is_applied(make_bus: BusFactory, channel: str) -> None:
    bus = await make_bus(topic_prefix="pfx")
    result = await bus.publish_stream(channel, {"event_type": "X"})
    assert result.topic == f"pfx.{channel}"
    topics = await bus.adapter.list_topics()
    assert f"pfx.{channel}" in topics
    assert f"pfx.{channel}.dlq" in topics
