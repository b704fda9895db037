"""The behaviour suite runs every test twice: on the in-memory transport and on the real
Kafka broker. A test that only passes on one of them is a bug in the other."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from tests.conftest import BOOTSTRAP

from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker
from tradecore_eventbus.event_bus import EventBus
from tradecore_eventbus.eventbus_transport_config import EventBusConfig, TransportConfig
from tradecore_eventbus.memory_adapter import MemoryTransportAdapter
from tradecore_eventbus.redpanda_adapter import RedpandaTransportAdapter
from tradecore_eventbus.transport_adapter import TransportAdapter

TRANSPORTS = ["memory", pytest.param("kafka", marks=pytest.mark.kafka)]


def test_configs(**transport: Any) -> tuple[EventBusConfig, TransportConfig]:
    bus = EventBusConfig(
        sub_block_ms=200, consumer_poll_timeout_ms=30_000, close_timeout_seconds=20
    )
    tc = replace(
        TransportConfig(
            bootstrap_servers=BOOTSTRAP,
            client_id="behaviour-suite",
            consumer_group_id_prefix="suite",
            commit_interval_ms=1000,
            topic_partitions=6,
        ),
        **transport,
    )
    return bus, tc


def make_adapter(
    kind: str, broker: MemoryBroker | None = None, **transport: Any
) -> TransportAdapter:
    """An adapter on the given transport; memory adapters built with the same ``broker``
    see the same topics, groups and commits (as two processes on one cluster would)."""
    bus_config, tc = test_configs(**transport)
    if kind == "memory":
        return MemoryTransportAdapter(bus_config, tc, broker=broker)
    return RedpandaTransportAdapter(event_bus_config=bus_config, transport_config=tc)


BusFactory = Callable[..., Awaitable[EventBus]]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_bus(transport: str) -> AsyncIterator[BusFactory]:
    """Builds buses on the parametrized transport; all are closed after the test."""
    buses: list[EventBus] = []
    broker = MemoryBroker()

    async def build(**transport_overrides: Any) -> EventBus:
        adapter = make_adapter(transport, broker, **transport_overrides)
        bus = EventBus(adapter, validate_on_publish=True)
        buses.append(bus)
        return bus

    yield build
    await asyncio.gather(*(b.close() for b in buses))


@pytest.fixture
async def bus(make_bus: BusFactory) -> EventBus:
    return await make_bus()


@pytest.fixture
def channel() -> str:
    return f"transport.suite-{uuid.uuid4().hex[:10]}"


class Collector:
    """A handler that records events and lets a test wait for a count."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    async def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        async def until() -> None:
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise AssertionError(f"only {len(self.events)} of {count} events arrived") from None
        return self.events

    async def settle(self, quiet: float = 1.0) -> list[dict[str, Any]]:
        """Waits until nothing new arrived for `quiet` seconds (to catch extra deliveries)."""
        while True:
            n = len(self.events)
            await asyncio.sleep(quiet)
            if len(self.events) == n:
                return self.events
