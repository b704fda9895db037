"""Breaker, spool and DLQ handling of a user's code, with ``memory_faults`` and
``dead_letters``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tradecore_eventbus import (
    EventBus,
    InvalidArgumentError,
    KafkaError,
    MemoryTransportAdapter,
    PublishError,
    RedpandaTransportAdapter,
    TransportTimeoutError,
)
from tradecore_eventbus.testing import MemoryFaults, dead_letters, wait_for_event

PAYMENTS = "transport.payments"


async def test_broker_down_spools_and_broker_up_delivers(
    memory_event_bus: EventBus, memory_faults: MemoryFaults
) -> None:
    bus = memory_event_bus
    await bus.publish_stream(PAYMENTS, {"event_type": "Warmup"})
    memory_faults.broker_down()
    with pytest.raises(PublishError) as info:
        await bus.publish_stream(PAYMENTS, {"event_type": "PaymentTaken", "amount": 5})
    assert info.value.dlq == "spool"
    assert await bus.check_connection(timeout=1) is False
    assert (await bus.health_check())["healthy"] is False
    memory_faults.broker_up()
    assert (await bus.replay_spool())["sent"] == 1
    event = await wait_for_event(bus, PAYMENTS, "PaymentTaken", timeout=5)
    assert event["amount"] == 5
    assert await bus.check_connection(timeout=1) is True


async def test_a_refused_publish_is_found_among_the_dead_letters(
    memory_event_bus: EventBus, memory_faults: MemoryFaults
) -> None:
    bus = memory_event_bus
    memory_faults.fail_next_publish(PAYMENTS)
    with pytest.raises(PublishError) as info:
        await bus.publish_stream(PAYMENTS, {"event_type": "PaymentTaken", "id": "p1"})
    assert info.value.dlq == "dlq"
    [letter] = await dead_letters(bus, PAYMENTS, timeout=5)
    assert letter.event is not None
    assert letter.event["id"] == "p1"
    assert "_dlq_metadata" not in letter.event
    assert letter.metadata["original_channel"] == PAYMENTS
    assert letter.metadata["error_type"] == "KafkaError"
    assert letter.raw_value is None
    # The fault was used up: the next publish goes through.
    await bus.publish_stream(PAYMENTS, {"event_type": "PaymentTaken", "id": "p2"})


async def test_count_refuses_that_many_publishes_and_spares_the_dlq(
    memory_event_bus: EventBus, memory_faults: MemoryFaults
) -> None:
    memory_faults.fail_next_publish(PAYMENTS, count=2)
    for n in range(2):
        with pytest.raises(PublishError) as info:
            await memory_event_bus.publish_stream(PAYMENTS, {"event_type": "E", "n": n})
        assert info.value.dlq == "dlq", "the DLQ write must not take the injected failure"
    letters = await dead_letters(memory_event_bus, PAYMENTS, count=2, timeout=5)
    assert sorted(d.event["n"] for d in letters if d.event) == [0, 1]


async def test_a_given_retriable_error_is_retried_through(
    memory_event_bus: EventBus, memory_faults: MemoryFaults
) -> None:
    transient = TransportTimeoutError(
        "timed out", code=-192, code_name="MessageTimedOut", possibly_persisted=False
    )
    memory_faults.fail_next_publish(PAYMENTS, error=transient)
    result = await memory_event_bus.publish_stream(PAYMENTS, {"event_type": "E"})
    assert result.offset == 0
    status = await memory_event_bus.get_circuit_breaker_status()
    assert status[PAYMENTS]["total_failures"] == 0


async def test_a_failing_handler_is_dead_lettered_with_its_group(
    memory_event_bus: EventBus,
) -> None:
    async def broken(event: dict[str, Any]) -> None:
        raise RuntimeError(f"cannot handle {event['id']}")

    await memory_event_bus.subscribe_stream(PAYMENTS, broken, group="billing")
    await memory_event_bus.publish_stream(PAYMENTS, {"event_type": "PaymentTaken", "id": "x"})
    [letter] = await dead_letters(memory_event_bus, PAYMENTS, timeout=10)
    assert letter.event is not None
    assert letter.event["id"] == "x"
    assert letter.metadata["error_type"] == "RuntimeError"
    assert letter.metadata["error_message"] == "cannot handle x"
    assert letter.metadata["consumer_group"].endswith("billing")


async def test_no_dead_letters_within_the_window(memory_event_bus: EventBus) -> None:
    await memory_event_bus.publish_stream(PAYMENTS, {"event_type": "E"})
    assert await dead_letters(memory_event_bus, PAYMENTS, count=0, timeout=0.3) == []


async def test_too_few_dead_letters_fail_naming_the_channel(memory_event_bus: EventBus) -> None:
    with pytest.raises(AssertionError, match=r"at least 1 dead letter.*'transport\.payments'"):
        await dead_letters(memory_event_bus, PAYMENTS, timeout=0.3)


async def test_a_slow_partition_delivers_late_while_the_others_go_on(
    memory_event_bus: EventBus, memory_faults: MemoryFaults
) -> None:
    bus = memory_event_bus
    loop = asyncio.get_running_loop()
    handled: dict[str, float] = {}
    done = asyncio.Event()

    async def record(event: dict[str, Any]) -> None:
        handled[event["key"]] = loop.time()
        if len(handled) == 2:
            done.set()

    keys = {}
    for key in ("a", "b", "c", "d"):
        keys.setdefault(
            (await bus.publish_stream("transport.slow", {"event_type": "W"}, key)).partition, key
        )
    (slow, slow_key), (_, fast_key) = list(keys.items())[:2]
    await memory_faults.slow_partition("transport.slow", slow, 0.5)
    await bus.subscribe_stream(
        "transport.slow", record, group="recorder", filter_fn=lambda e: e["event_type"] == "E"
    )
    sent = loop.time()
    await bus.publish_stream("transport.slow", {"event_type": "E", "key": slow_key}, slow_key)
    await bus.publish_stream("transport.slow", {"event_type": "E", "key": fast_key}, fast_key)
    await asyncio.wait_for(done.wait(), 5)
    assert handled[fast_key] < handled[slow_key]
    assert handled[slow_key] - sent >= 0.5


async def test_ending_a_slow_partition_releases_what_it_held(
    memory_event_bus: EventBus, memory_faults: MemoryFaults
) -> None:
    bus = memory_event_bus
    first = await bus.publish_stream("transport.slow", {"event_type": "W"}, "k")
    await memory_faults.slow_partition("transport.slow", first.partition, 60)
    await bus.publish_stream("transport.slow", {"event_type": "Held"}, "k")
    with pytest.raises(AssertionError):
        await wait_for_event(bus, "transport.slow", "Held", timeout=0.3)
    memory_faults.clear()
    assert (await wait_for_event(bus, "transport.slow", "Held", timeout=5))["event_type"] == "Held"


async def test_faults_reach_every_adapter_on_the_broker(
    memory_event_bus: EventBus, memory_faults: MemoryFaults, tmp_path: Any
) -> None:
    broker = memory_event_bus.adapter.broker  # type: ignore[attr-defined]
    other = EventBus(MemoryTransportAdapter(broker=broker), spool_dir=str(tmp_path / "other"))
    try:
        memory_faults.fail_next_publish(PAYMENTS)
        with pytest.raises(PublishError):
            await other.publish_stream(PAYMENTS, {"event_type": "E"})
    finally:
        await other.close()


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda f: f.fail_next_publish(7), "channel"),
        (lambda f: f.fail_next_publish(PAYMENTS, count=0), "count"),
        (lambda f: f.fail_next_publish(PAYMENTS, count=True), "count"),
        (lambda f: f.fail_next_publish(PAYMENTS, error="boom"), "error"),
    ],
)
def test_bad_fault_arguments_are_refused_naming_them(
    memory_faults: MemoryFaults, call: Any, argument: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=argument):
        call(memory_faults)


@pytest.mark.parametrize(
    ("partition", "delay", "argument"),
    [(1.5, 1, "partition"), (-1, 1, "partition"), (99, 1, "partition"), (0, -1, "delay_seconds")],
)
async def test_bad_slow_partition_arguments_are_refused_naming_them(
    memory_faults: MemoryFaults, partition: Any, delay: Any, argument: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=argument):
        await memory_faults.slow_partition(PAYMENTS, partition, delay)


def test_faults_need_the_memory_transport(tmp_path: Any) -> None:
    bus = EventBus(RedpandaTransportAdapter("127.0.0.1:19092"), spool_dir=str(tmp_path))
    with pytest.raises(InvalidArgumentError, match=r"bus must be .*RedpandaTransportAdapter"):
        MemoryFaults(bus)
    with pytest.raises(InvalidArgumentError, match="bus must be"):
        MemoryFaults("not a bus")  # type: ignore[arg-type]


def test_refused_by_default_like_kafka(memory_faults: MemoryFaults) -> None:
    memory_faults.fail_next_publish(PAYMENTS)
    [error] = memory_faults.broker.injected_topic_failures[PAYMENTS]
    assert isinstance(error, KafkaError)
    assert error.retriable is False


async def test_clear_ends_every_fault(
    memory_event_bus: EventBus, memory_faults: MemoryFaults
) -> None:
    memory_faults.broker_down()
    memory_faults.fail_next_publish(PAYMENTS, count=3)
    memory_faults.clear()
    result = await memory_event_bus.publish_stream(PAYMENTS, {"event_type": "E"})
    assert result.offset == 0
    assert await memory_event_bus.check_connection(timeout=1) is True
