"""Dead letters always get out: a copy too large for the producer is truncated (with a
flag), and a DLQ that refuses a record for good does not hold its partition."""

from __future__ import annotations

import base64
import json
import os
import uuid
from typing import Any

import pytest
from tests.bus.conftest import TRANSPORTS
from tests.reliability.conftest import BusBuilder, read_topic
from tests.reliability.test_consume_guard import consumer_health, eventually, job

from tradecore_eventbus import _core
from tradecore_eventbus._internal.reliability.dead_letters.record import (
    Failure,
    dlq_record,
    record_size,
    record_size_limit,
)
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker
from tradecore_eventbus.eventbus_transport_config import TransportConfig
from tradecore_eventbus.exceptions import KafkaError

#: 800 KB that are not an event: their base64 DLQ copy (~1.07 MB) is over the producer's
#: default message.max.bytes (1,000,000).
BIG = b"\x00not an event\xff" + bytes(range(256)) * 3125


@pytest.fixture(params=TRANSPORTS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def channel() -> str:
    return f"transport.big-{uuid.uuid4().hex[:8]}"


async def test_an_800kb_non_event_gets_a_dlq_copy_that_fits_and_the_partition_goes_on(
    reliable_bus: BusBuilder, kind: str
) -> None:
    bus = await reliable_bus(kind)
    ch = channel()
    group = f"big-{uuid.uuid4().hex[:6]}"
    handled: list[int] = []

    async def handler(event: dict[str, Any]) -> None:
        handled.append(event["n"])

    await bus.subscribe_stream(ch, handler, group=group, consumer="w1")
    topic = bus.adapter.topic_for(ch)
    await bus.adapter.producer().send_batch(
        topic, [(b"k", job(0), []), (b"k", BIG, [("origin", b"test")]), (b"k", job(1), [])]
    )
    await eventually(lambda: handled == [0, 1])

    (dead,) = await read_topic(bus, f"{ch}.dlq", 1)
    limit = record_size_limit(bus.transport_config)
    assert record_size(dead.key, dead.value, dead.headers) <= limit
    body = json.loads(dead.value)
    meta = body["_dlq_metadata"]
    assert meta["original_truncated"] is True
    assert meta["original_size"] == len(BIG)
    assert meta["error_type"] == "DeserializationError"
    assert meta["original_topic"] == topic
    assert meta["original_offset"] == 1, "its coordinates find the whole original"
    kept = base64.b64decode(body["_raw_value"])
    assert 0 < len(kept) < len(BIG)
    assert BIG.startswith(kept), "a prefix of the original"
    assert dead.header("dlq.original_truncated") == b"true"
    assert dead.key == b"k"
    health = await consumer_health(bus, ch, group)
    assert health["consumer"]["dead_lettered"] == 1
    assert health["consumer"]["dlq_refused"] == 0


def test_a_copy_that_fits_is_not_truncated_and_the_limit_follows_message_max_bytes() -> None:
    failure = Failure("transport.x", "RuntimeError", "boom", 2, 0, 7, "g")
    small = dlq_record(
        failure, event={"event_type": "A", "n": 1}, raw_value=None, key=b"k", max_bytes=10_000
    )
    assert "original_truncated" not in json.loads(small[1])["_dlq_metadata"]
    tc = TransportConfig(librdkafka_config={"message.max.bytes": "5000"})
    limit = record_size_limit(tc)
    assert limit < 5000
    big_event = {"event_type": "A", "blob": "x" * 20_000}
    key, value, headers = dlq_record(
        failure,
        event=big_event,
        raw_value=None,
        key=b"k",
        max_bytes=limit,
        original_topic="transport.x",
    )
    assert record_size(key, value, headers) <= limit
    meta = json.loads(value)["_dlq_metadata"]
    assert meta["original_truncated"] is True
    assert meta["original_size"] > 20_000
    assert dict(headers)["event_type"] == b"A", "the event is still named"
    huge_error = Failure("transport.x", "E", "e" * 100_000, 0)
    _k, value, _h = dlq_record(huge_error, event={"event_type": "A"}, raw_value=None, key=None)
    assert len(json.loads(value)["_dlq_metadata"]["error_message"]) <= 2000


async def test_a_dlq_that_refuses_the_copy_for_good_gets_the_reference_only(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus("memory", broker=broker)
    ch = channel()
    handled: list[int] = []

    async def handler(event: dict[str, Any]) -> None:
        if event["n"] == 1:
            raise RuntimeError("poison")
        handled.append(event["n"])

    await bus.subscribe_stream(ch, handler, group="ref", consumer="w1")
    topic = bus.adapter.topic_for(ch)
    broker.injected_failures.append(
        KafkaError("Broker: Message size too large", code=10, code_name="MessageSizeTooLarge")
    )
    for n in range(3):
        broker.append(topic, None, b"k", json.dumps({"event_type": "Job", "n": n}).encode())
    await eventually(lambda: handled == [0, 2])
    (dead,) = await read_topic(bus, f"{ch}.dlq", 1)
    body = json.loads(dead.value)
    assert body["_raw_value"] == "", "no bytes of the original: its coordinates only"
    meta = body["_dlq_metadata"]
    assert meta["original_truncated"] is True
    assert (meta["original_topic"], meta["error_type"]) == (topic, "RuntimeError")
    health = await consumer_health(bus, ch, "ref")
    assert (health["consumer"]["dead_lettered"], health["consumer"]["dlq_refused"]) == (1, 0)


async def test_a_dlq_write_refused_for_good_is_counted_and_the_partition_moves_on(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus("memory", broker=broker)
    ch = channel()
    handled: list[int] = []

    async def handler(event: dict[str, Any]) -> None:
        if event["n"] == 1:
            raise RuntimeError("poison")
        handled.append(event["n"])

    await bus.subscribe_stream(ch, handler, group="refused", consumer="w1")
    topic = bus.adapter.topic_for(ch)
    refusal = KafkaError("Broker: Topic authorization failed", code=29)
    broker.injected_failures += [refusal, refusal]
    for n in range(3):
        broker.append(topic, None, b"k", json.dumps({"event_type": "Job", "n": n}).encode())
    await eventually(lambda: handled == [0, 2])
    health = await consumer_health(bus, ch, "refused")
    assert health["consumer"]["dlq_refused"] == 1
    assert health["details"]["dlq_refused"] == 1
    assert health["consumer"]["dead_lettered"] == 0
    assert "authorization" in health["consumer"]["last_error"]
    assert bus.adapter.get_published_messages(f"{ch}.dlq") == []  # type: ignore[attr-defined]


@pytest.mark.kafka
async def test_a_kafka_dlq_topic_with_a_small_size_limit_still_gets_a_reference(
    reliable_bus: BusBuilder, admin: _core.Admin
) -> None:
    bus = await reliable_bus("kafka")
    ch = channel()
    handled: list[int] = []

    async def handler(event: dict[str, Any]) -> None:
        handled.append(event["n"])

    topic = bus.adapter.topic_for(ch)
    # The DLQ topic takes records of at most 4 KB: below the producer's limit.
    await admin.create_topics([(f"{topic}.dlq", 1, 1, {"max.message.bytes": "4096"})])
    await bus.subscribe_stream(ch, handler, group="small-dlq", consumer="w1")
    # Random bytes: compression must not bring the copy under the topic's limit.
    await bus.adapter.producer().send_batch(
        topic, [(b"k", os.urandom(50_000), []), (b"k", job(1), [])]
    )
    await eventually(lambda: handled == [1])
    (dead,) = await read_topic(bus, f"{ch}.dlq", 1)
    meta = json.loads(dead.value)["_dlq_metadata"]
    assert meta["original_truncated"] is True
    assert meta["original_size"] == 50_000
    assert json.loads(dead.value)["_raw_value"] == ""
