"""``kafka_event_bus`` on the real broker. The broker is given (``KAFKA_BOOTSTRAP_SERVERS``),
so a broker that does not answer fails these tests: they never pass by skipping."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from tests.conftest import BOOTSTRAP

from tradecore_eventbus import EventBus, RedpandaTransportAdapter
from tradecore_eventbus.testing import dead_letters, wait_for_event

pytestmark = pytest.mark.kafka


@pytest.fixture(autouse=True)
def given_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    # Autouse fixtures are set up first, so kafka_event_bus sees the variable.
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", BOOTSTRAP)


def channel() -> str:
    # A channel of the test's own: the broker is shared with earlier runs.
    return f"transport.plugin-{uuid.uuid4().hex[:10]}"


async def test_a_round_trip_on_the_given_broker(kafka_event_bus: EventBus) -> None:
    bus = kafka_event_bus
    assert isinstance(bus.adapter, RedpandaTransportAdapter)
    assert bus.transport_config.bootstrap_servers == BOOTSTRAP
    ch = channel()
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await bus.subscribe_stream(ch, received.put, group=f"g-{uuid.uuid4().hex[:8]}")
    sent = await bus.publish_stream(ch, {"event_type": "OrderPlaced", "order_id": "k1"}, "k1")
    assert (await asyncio.wait_for(received.get(), 30))["event_id"] == sent.event_id
    found = await wait_for_event(bus, ch, "OrderPlaced", timeout=30)
    assert found["event_id"] == sent.event_id


async def test_dead_letters_are_read_from_kafka(kafka_event_bus: EventBus) -> None:
    ch = channel()

    async def broken(event: dict[str, Any]) -> None:
        raise ValueError("bad order")

    await kafka_event_bus.subscribe_stream(ch, broken, group=f"g-{uuid.uuid4().hex[:8]}")
    await kafka_event_bus.publish_stream(ch, {"event_type": "OrderPlaced", "order_id": "d1"})
    [letter] = await dead_letters(kafka_event_bus, ch, timeout=30)
    assert letter.event is not None
    assert letter.event["order_id"] == "d1"
    assert letter.metadata["error_type"] == "ValueError"
    assert letter.metadata["original_channel"] == ch
