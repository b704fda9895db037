"""Timeouts mean what they say: against a port nothing listens on, publishing and
subscribing fail with the typed, retriable errors within the time their settings give."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from tests.bus.conftest import test_configs as suite_configs

from tradecore_eventbus import EventBus, RetryConfig
from tradecore_eventbus.exceptions import (
    BrokerUnavailableError,
    PublishError,
    TransportTimeoutError,
)
from tradecore_eventbus.redpanda_adapter import RedpandaTransportAdapter

pytestmark = pytest.mark.kafka

#: Nothing listens on port 1: connections are refused at once.
CLOSED = "127.0.0.1:1"


def margin(bound: float) -> float:
    """What may come on top of a configured bound (starting clients, the error's way back
    from librdkafka): half of it. Not a speed target: a fixed 10 s wait would break it."""
    return bound / 2


def bus_on_a_closed_port(tmp_path: Path, **bus: object) -> EventBus:
    bus_config, tc = suite_configs(bootstrap_servers=CLOSED)
    from dataclasses import replace

    bus_config = replace(bus_config, **bus)  # type: ignore[arg-type]
    tc = replace(tc, producer_delivery_timeout_ms=2000)
    adapter = RedpandaTransportAdapter(event_bus_config=bus_config, transport_config=tc)
    return EventBus(adapter, spool_dir=str(tmp_path / "spool"))


async def test_a_publish_fails_typed_within_attempts_times_the_delivery_timeout(
    tmp_path: Path,
) -> None:
    bus = bus_on_a_closed_port(tmp_path, publish_retry=RetryConfig(max_attempts=1))
    bound = 1 * bus.transport_config.producer_delivery_timeout_ms / 1000.0
    started = time.monotonic()
    try:
        with pytest.raises(PublishError) as info:
            await bus.publish_stream(
                f"transport.unreachable-{uuid.uuid4().hex[:8]}", {"event_type": "Ping"}
            )
        elapsed = time.monotonic() - started
    finally:
        await bus.close(timeout=2)
    assert elapsed < bound + margin(bound), f"{elapsed:.1f}s for a bound of {bound}s"
    error = info.value
    assert isinstance(error.cause, TransportTimeoutError | BrokerUnavailableError)
    assert error.cause.retriable
    assert error.dlq == "spool", "unreachable: the event is kept for later"


async def test_subscribe_stream_fails_typed_within_the_poll_timeout(tmp_path: Path) -> None:
    bus = bus_on_a_closed_port(tmp_path, consumer_poll_timeout_ms=3000)
    bound = bus.config.consumer_poll_timeout_ms / 1000.0
    started = time.monotonic()
    try:
        with pytest.raises((TransportTimeoutError, BrokerUnavailableError)) as info:
            await bus.subscribe_stream(
                f"transport.unreachable-{uuid.uuid4().hex[:8]}",
                lambda event: None,
                group="nobody",
                consumer="w1",
            )
        elapsed = time.monotonic() - started
    finally:
        await bus.close(timeout=2)
    assert elapsed < bound + margin(bound), f"{elapsed:.1f}s for a bound of {bound}s"
    assert info.value.retriable
    assert CLOSED in str(info.value), "the error says which brokers did not answer"
