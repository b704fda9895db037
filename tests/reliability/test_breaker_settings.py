"""Every EVENT_BUS_CIRCUIT_BREAKER_* variable, and KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS, take
effect on a bus built from the environment."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from tests.reliability.conftest import BusBuilder
from tests.reliability.test_broker_pause import paused_broker

from tradecore_eventbus import (
    CircuitBreakerOpenError,
    EventBusConfig,
    KafkaError,
    PublishError,
    RetryConfig,
    TransportConfig,
)
from tradecore_eventbus._core import ManualClock
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker


def refused() -> KafkaError:
    return KafkaError("refused", code=29, code_name="TopicAuthorizationFailed", retriable=False)


async def test_circuit_breaker_variables_take_effect(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    env = {
        "EVENT_BUS_CIRCUIT_BREAKER_FAILURE_THRESHOLD": "2",
        "EVENT_BUS_CIRCUIT_BREAKER_SUCCESS_THRESHOLD": "1",
        "EVENT_BUS_CIRCUIT_BREAKER_TIMEOUT_SECONDS": "7",
        "EVENT_BUS_CIRCUIT_BREAKER_HALF_OPEN_CALLS": "1",
        "EVENT_BUS_CRITICAL_CIRCUIT_BREAKER_FAILURE_THRESHOLD": "1",
        "EVENT_BUS_CRITICAL_CIRCUIT_BREAKER_TIMEOUT_SECONDS": "3",
    }
    config = EventBusConfig.from_env(env)
    clock = ManualClock()
    bus = await reliable_bus(
        broker=broker,
        clock=clock,
        circuit_breaker=config.circuit_breaker,
        critical_circuit_breaker=config.critical_circuit_breaker,
        publish_retry=RetryConfig(max_attempts=1),
        enable_dlq=False,
    )
    ordinary = f"transport.cb-{uuid.uuid4().hex[:6]}"
    critical = f"transport.cbc-{uuid.uuid4().hex[:6]}"
    bus.mark_channel_as_critical(critical)
    for ch in (ordinary, critical):
        await bus.publish_stream(ch, {"event_type": "Warmup"})

    # FAILURE_THRESHOLD=2: two failures open it.
    broker.injected_failures += [refused(), refused()]
    for _ in range(2):
        with pytest.raises(PublishError):
            await bus.publish_stream(ordinary, {"event_type": "X"})
    with pytest.raises(CircuitBreakerOpenError) as info:
        await bus.publish_stream(ordinary, {"event_type": "X"})
    assert info.value.retry_after == pytest.approx(7.0)  # TIMEOUT_SECONDS=7
    clock.advance(7)
    # HALF_OPEN_CALLS=1: one trial at a time; SUCCESS_THRESHOLD=1: one success closes it.
    assert (await bus.get_circuit_breaker_status())[ordinary]["state"] == "HALF_OPEN"
    await bus.publish_stream(ordinary, {"event_type": "Trial"})
    assert (await bus.get_circuit_breaker_status())[ordinary]["state"] == "CLOSED"
    breaker = bus.breakers.get(ordinary)
    for _ in range(2):
        breaker.acquire().failure()
    clock.advance(7)
    trial = breaker.acquire()
    with pytest.raises(CircuitBreakerOpenError):
        breaker.acquire()
    trial.release()

    # The critical settings: one failure opens it, for 3 seconds.
    broker.injected_failures.append(refused())
    with pytest.raises(PublishError):
        await bus.publish_stream(critical, {"event_type": "X"})
    with pytest.raises(CircuitBreakerOpenError) as info:
        await bus.publish_stream(critical, {"event_type": "X"})
    assert info.value.retry_after == pytest.approx(3.0)


@pytest.mark.kafka
async def test_the_delivery_timeout_bounds_one_publish_attempt(reliable_bus: BusBuilder) -> None:
    tc = TransportConfig.from_env({"KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS": "700"})
    assert tc.producer_delivery_timeout_ms == 700
    bus = await reliable_bus(
        "kafka",
        transport={"producer_delivery_timeout_ms": tc.producer_delivery_timeout_ms},
        publish_retry=RetryConfig(max_attempts=1),
    )
    ch = f"transport.dt-{uuid.uuid4().hex[:6]}"
    await bus.publish_stream(ch, {"event_type": "Warmup"})
    with paused_broker():
        started = time.monotonic()
        with pytest.raises(PublishError) as info:
            await bus.publish_stream(ch, {"event_type": "X"})
        elapsed = time.monotonic() - started
        health_started = time.monotonic()
        health = await bus.health_check(timeout=1.0)
        health_elapsed = time.monotonic() - health_started
    assert info.value.spooled
    assert 0.5 < elapsed < 3.0, f"one attempt took {elapsed:.2f}s with a 0.7s delivery timeout"
    assert health["healthy"] is False
    assert health_elapsed < 2.5, "health_check outlived its timeout"
    # The broker needs a moment after SIGCONT; the spool drains once it answers.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while (await bus.replay_spool())["remaining"] and loop.time() < deadline:
        await asyncio.sleep(0.5)
    assert bus.spool.count() == 0
