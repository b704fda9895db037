"""Buses with fast retry settings, on the in-memory broker (faults injected) or on Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.bus.conftest import test_configs

from tradecore_eventbus import EventBus, RetryConfig
from tradecore_eventbus._core import ManualClock
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker
from tradecore_eventbus.memory_adapter import MemoryTransportAdapter
from tradecore_eventbus.redpanda_adapter import RedpandaTransportAdapter

FAST_RETRY = RetryConfig(max_attempts=3, initial_delay_ms=10, max_delay_ms=50, backoff_factor=2.0)

BusBuilder = Callable[..., Awaitable[EventBus]]


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
async def reliable_bus(tmp_path: Path) -> AsyncIterator[BusBuilder]:
    """build(kind, broker=None, clock=None, **bus_config_overrides) -> EventBus."""
    buses: list[EventBus] = []

    async def build(
        kind: str = "memory",
        broker: MemoryBroker | None = None,
        clock: ManualClock | None = None,
        transport: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> EventBus:
        bus_config, tc = test_configs(**(transport or {}))
        settings: dict[str, Any] = {"publish_retry": FAST_RETRY, "handler_retry": FAST_RETRY}
        bus_config = replace(bus_config, **{**settings, **overrides})
        adapter = (
            MemoryTransportAdapter(bus_config, tc, broker=broker)
            if kind == "memory"
            else RedpandaTransportAdapter(event_bus_config=bus_config, transport_config=tc)
        )
        bus = EventBus(adapter, clock=clock, spool_dir=str(tmp_path / f"spool-{len(buses)}"))
        buses.append(bus)
        return bus

    yield build
    await asyncio.gather(*(b.close() for b in buses))


async def read_topic(bus: EventBus, channel: str, count: int, timeout: float = 30.0) -> list[Any]:
    """Reads ``count`` records of a channel's topic from the start with a fresh group (raw
    records, as any Kafka client would see them)."""
    import uuid

    from tradecore_eventbus import poll_batch
    from tradecore_eventbus.transport_adapter import ConsumerSpec

    topic = bus.adapter.topic_for(channel)
    consumer = bus.adapter.new_consumer(
        ConsumerSpec(topic, f"reader-{uuid.uuid4().hex[:8]}", "stream", "earliest", False, 500)
    )
    consumer.subscribe([topic])
    out: list[Any] = []
    try:
        await consumer.wait_assigned(30)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (len(out) < count or count == 0) and loop.time() < deadline:
            out.extend(await poll_batch(consumer, 500, 1.0))  # type: ignore[arg-type]
    finally:
        await consumer.close()
    assert len(out) >= count, f"only {len(out)} of {count} records in {topic}"
    return out
