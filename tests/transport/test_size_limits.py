"""The memory transport refuses what the Kafka transport refuses, the same way: a record over
``message.max.bytes`` (librdkafka's default, or the value in ``librdkafka_config``) fails
with ``KafkaError`` code 10, not retriable, not possibly persisted; one byte less passes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from tests.bus.conftest import make_adapter

from tradecore_eventbus import BatchDeliveryError, KafkaError
from tradecore_eventbus._internal.transports.memory.limits import (
    CLIENT_MESSAGE_MAX_BYTES,
    record_wire_size,
)
from tradecore_eventbus.transport_adapter import TopicSpec

TRANSPORTS = ["memory", pytest.param("kafka", marks=pytest.mark.kafka)]

HEADERS: list[tuple[str, bytes | None]] = [("event_type", b"Sized"), ("trace", None)]


def largest_value(limit: int, key: bytes | None, headers: list[tuple[str, bytes | None]]) -> int:
    """The longest value that still fits under ``limit`` with this key and these headers."""
    return limit - record_wire_size(key, b"", headers)


def assert_refused_for_size(error: Any) -> None:
    assert isinstance(error, KafkaError), error
    assert error.code == 10
    assert error.code_name == "MessageSizeTooLarge"
    assert error.retriable is False
    assert error.possibly_persisted is False
    assert error.fatal is False
    assert "MessageSizeTooLarge" in str(error)


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize(
    ("limit", "config"),
    [(CLIENT_MESSAGE_MAX_BYTES, {}), (5_000, {"message.max.bytes": "5000"})],
    ids=["default", "configured"],
)
async def test_a_record_over_message_max_bytes_is_refused_the_same_way(
    kind: str, limit: int, config: dict[str, str]
) -> None:
    adapter = make_adapter(kind, librdkafka_config=config)
    topic = f"sizes-{uuid.uuid4().hex[:10]}"
    await adapter.ensure_topics([TopicSpec(topic, 1, 1, {})])
    await adapter.start()
    producer = adapter.producer()
    try:
        key = b"account-7"
        fits = largest_value(limit, key, HEADERS)
        with pytest.raises(BatchDeliveryError) as info:
            await producer.send_batch(
                topic,
                [
                    (key, b"x" * fits, HEADERS),
                    (key, b"x" * (fits + 1), HEADERS),
                    (None, b"y" * 10, []),
                ],
            )
        delivered, refused, small = info.value.results
        # Consecutive offsets: nothing of the refused record was written in between.
        assert delivered == (0, 0)
        assert small == (0, 1)
        assert_refused_for_size(refused)
        assert info.value.failed_indices == [1]
        assert info.value.retriable is False
        # A single send raises the record's error itself.
        with pytest.raises(KafkaError) as single:
            await producer.send(topic, b"z" * (limit + 1))
        assert_refused_for_size(single.value)
        assert await producer.send(topic, b"z" * 10) == (0, 2)
    finally:
        await adapter.close()


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_keys_must_be_bytes_str_or_none_on_both_transports(kind: str) -> None:
    adapter = make_adapter(kind)
    topic = f"keys-{uuid.uuid4().hex[:10]}"
    await adapter.ensure_topics([TopicSpec(topic, 1, 1, {})])
    await adapter.start()
    producer = adapter.producer()
    bad_key: Any = 1
    try:
        with pytest.raises(TypeError, match="key must be bytes, str or None, not int"):
            await producer.send_batch(topic, [(bad_key, b"v", [])])
        # A str key or value is sent as UTF-8 by both.
        [(partition, offset)] = await producer.send_batch(topic, [("k", "v", [])])  # type: ignore[list-item]
        assert (partition, offset) == (0, 0)
    finally:
        await adapter.close()
