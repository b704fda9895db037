"""Lifecycle: lazy start, close with work in flight, the process-wide bus, health."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.bus.conftest import BusFactory, Collector, make_adapter

from tradecore_eventbus import (
    ClosedError,
    EventBus,
    WorkerType,
    get_event_bus,
    reset_event_bus,
    set_event_bus,
)
from tradecore_eventbus.event_bus import set_event_bus as set_from_module


async def test_close_waits_for_publishes_in_flight(bus: EventBus, channel: str) -> None:
    publishes = [
        asyncio.ensure_future(bus.publish_stream(channel, {"event_type": "Burst", "n": i}))
        for i in range(200)
    ]
    await asyncio.sleep(0)  # every publish has started
    await bus.close()
    results = await asyncio.gather(*publishes, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert not failed, f"publishes started before close failed: {failed[:3]}"
    with pytest.raises(ClosedError):
        await bus.publish_stream(channel, {"event_type": "Late"})


async def test_close_lets_a_running_handler_finish_and_commits_it(
    make_bus: BusFactory, channel: str
) -> None:
    bus = await make_bus()
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(event: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.set()

    await bus.subscribe_stream(channel, slow, group="slow-group", consumer="w1")
    await bus.publish_stream(channel, {"event_type": "Slow"})
    await asyncio.wait_for(started.wait(), 30)
    await bus.close()
    assert finished.is_set(), "close() cut the running handler short"

    # It was committed: the group's next consumer does not get it again.
    again = Collector()
    bus2 = await make_bus()
    await bus2.subscribe_stream(channel, again, group="slow-group", consumer="w2")
    await bus2.publish_stream(channel, {"event_type": "Next"})
    events = await again.wait_for(1)
    await again.settle(0.5)
    assert [e["event_type"] for e in events] == ["Next"]


async def test_close_is_idempotent_and_bounded(bus: EventBus, channel: str) -> None:
    await bus.subscribe(channel, lambda e: None)
    await asyncio.gather(bus.close(), bus.close())
    await bus.close()
    assert bus.closed
    with pytest.raises(ClosedError):
        await bus.subscribe(channel, lambda e: None)


async def test_async_with_starts_and_closes(transport: str, channel: str) -> None:
    async with EventBus(make_adapter(transport)) as bus:
        result = await bus.publish_stream(channel, {"event_type": "Ctx"})
        assert result.offset >= 0
    assert bus.closed


async def test_no_explicit_start_is_needed(transport: str, channel: str) -> None:
    bus = EventBus(make_adapter(transport))
    try:
        assert (await bus.publish(channel, {"event_type": "Lazy"})).offset >= 0
    finally:
        await bus.close()


async def test_get_event_bus_returns_the_installed_bus(transport: str) -> None:
    bus = EventBus(make_adapter(transport))
    set_event_bus(bus)
    try:
        assert get_event_bus() is bus
        assert get_event_bus() is get_event_bus()
    finally:
        reset_event_bus()
        await bus.close()
    set_from_module(None)


def test_get_event_bus_builds_one_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from tradecore_eventbus import MemoryTransportAdapter

    reset_event_bus()
    monkeypatch.setenv("ENABLE_EVENT_BUS", "false")
    try:
        bus = get_event_bus()
        assert isinstance(bus.adapter, MemoryTransportAdapter)
        assert get_event_bus() is bus
    finally:
        reset_event_bus()


async def test_worker_type_sets_the_default_group(transport: str, channel: str) -> None:
    from tradecore_eventbus import RedpandaTransportAdapter

    assert WorkerType.EVENT_PROCESSOR.consumer_group == "event-processor-workers"
    assert WorkerType.DATA_INTEGRITY.consumer_group == "integrity-checker-workers"
    assert WorkerType.CONNECTION_RECOVERY.consumer_group == "recovery-workers"
    adapter = RedpandaTransportAdapter(
        bootstrap_servers="127.0.0.1:19092",
        client_id="event-processor",
        worker_type=WorkerType.EVENT_PROCESSOR,
    )
    assert adapter.default_consumer_group == "event-processor-workers"
    assert adapter.transport_config.client_id == "event-processor"


async def test_stream_groups_get_the_configured_prefix(bus: EventBus, channel: str) -> None:
    await bus.subscribe_stream(
        channel, lambda e: None, group="event-processor-workers", consumer="w1"
    )
    [info] = bus.subscriptions()
    assert info["group"] == "suite-event-processor-workers"


async def test_health_check_has_the_guides_structure(bus: EventBus, channel: str) -> None:
    bus.mark_channel_as_critical(channel)
    collector = Collector()
    await bus.subscribe_stream(channel, collector, group="health", consumer="w1")
    await bus.publish_stream(channel, {"event_type": "H"})
    await collector.wait_for(1)
    health = await bus.health_check()
    assert set(health) == {
        "circuit_breakers",
        "open_circuits",
        "open_circuits_count",
        "adapter",
        "healthy",
        "config",
    }
    details = health["adapter"]["details"]
    for key in (
        "ping_successful",
        "producer_started",
        "messages_sent",
        "messages_received",
        "active_consumers",
        "consumer_error_rate",
        "consumers",
    ):
        assert key in details
    assert details["ping_successful"] is True
    assert details["messages_sent"] == 1
    assert details["active_consumers"] == 1
    consumer = details["consumers"][f"{channel}:suite-health"]
    assert consumer["messages_processed"] == 1
    assert consumer["active"] is True
    assert set(consumer) == {
        "messages_processed",
        "errors",
        "last_message_age",
        "active",
        "consecutive_empty_fetches",
        "current_backoff",
        "state",
        "waiting_since",
        "partitions",
        "group_instance_id",
        "error",
    }
    assert consumer["state"] == "active"
    assert consumer["waiting_since"] is None
    assert consumer["partitions"] == [0, 1, 2, 3, 4, 5], "one member holds all six"
    assert consumer["group_instance_id"] is None, "dynamic membership by default"
    assert consumer["error"] is None
    assert details["failed_consumers"] == []
    assert health["healthy"] is True
    assert health["config"]["critical_channels"] == [channel]
    assert await bus.check_connection() is True


async def test_initialize_topics_creates_topics_and_dlqs(bus: EventBus, channel: str) -> None:
    bus.config.add_topic_config(channel, "stream")
    other = "realtime." + channel.split(".", 1)[1]
    created = await bus.adapter.initialize_topics(enable_auto_create=False, channels=[other])
    assert created == {
        channel: "missing",
        f"{channel}.dlq": "missing",
        other: "missing",
        f"{other}.dlq": "missing",
    }
    created = await bus.adapter.initialize_topics(enable_auto_create=True, channels=[other])
    assert set(created) == {channel, f"{channel}.dlq", other, f"{other}.dlq"}
    topics = await bus.adapter.list_topics()
    assert topics[channel] == 6
    again = await bus.adapter.initialize_topics(enable_auto_create=False, channels=[other])
    assert set(again.values()) == {"exists"}
    # Retention by category: transport.* 7 days, realtime.* 6 hours, DLQ topics 30 days.
    day = 24 * 3600 * 1000
    assert (await bus.adapter.describe_topic(channel))["retention.ms"] == str(7 * day)
    assert (await bus.adapter.describe_topic(other))["retention.ms"] == str(6 * 3600 * 1000)
    assert (await bus.adapter.describe_topic(f"{channel}.dlq"))["retention.ms"] == str(30 * day)
