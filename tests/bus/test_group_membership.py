"""Group membership through restarts (decision 42), on both transports where they can show
it: static members take their partitions back, a duplicated static member is fenced with a
typed error, and a replacement whose group is still rebalancing subscribes without failing.
The memory broker models session timeouts and fencing as Kafka's coordinator does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from tests.bus.conftest import TRANSPORTS, Collector, test_configs

from tradecore_eventbus import (
    EventBus,
    FencedInstanceError,
    InvalidArgumentError,
    TransportTimeoutError,
)
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker
from tradecore_eventbus.memory_adapter import MemoryTransportAdapter
from tradecore_eventbus.redpanda_adapter import RedpandaTransportAdapter

Builder = Callable[..., Awaitable[EventBus]]


@pytest.fixture(params=TRANSPORTS)
async def build(request: pytest.FixtureRequest) -> AsyncIterator[Builder]:
    """build(poll_timeout_ms=..., **transport) -> an EventBus on the parametrized transport;
    buses built by one test share one memory broker (like processes sharing a cluster)."""
    kind = str(request.param)
    broker = MemoryBroker()
    buses: list[EventBus] = []

    async def make(poll_timeout_ms: int = 30_000, **transport: Any) -> EventBus:
        bus_config, tc = test_configs(**transport)
        bus_config = replace(bus_config, consumer_poll_timeout_ms=poll_timeout_ms)
        adapter = (
            MemoryTransportAdapter(bus_config, tc, broker=broker)
            if kind == "memory"
            else RedpandaTransportAdapter(event_bus_config=bus_config, transport_config=tc)
        )
        bus = EventBus(adapter, validate_on_publish=True)
        buses.append(bus)
        return bus

    yield make
    await asyncio.gather(*(b.close() for b in buses))


async def consumer_entry(bus: EventBus, channel: str, group: str) -> dict[str, Any]:
    health = await bus.health_check()
    entry: dict[str, Any] = health["adapter"]["details"]["consumers"][f"{channel}:suite-{group}"]
    return entry


async def wait_for_state(
    bus: EventBus, channel: str, group: str, state: str, timeout: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        entry = await consumer_entry(bus, channel, group)
        if entry["state"] == state:
            return entry
        if loop.time() > deadline:
            raise AssertionError(f"still {entry['state']} after {timeout}s: {entry}")
        await asyncio.sleep(0.05)


STATIC = {
    "consumer_static_membership": True,
    "consumer_session_timeout_ms": 30_000,
    "consumer_heartbeat_interval_ms": 500,
}


async def test_a_static_member_that_restarts_takes_its_partitions_back_at_once(
    build: Builder, channel: str
) -> None:
    # A static member that closes does not leave: had its partitions not been handed back
    # to its instance id at once, they would come after the 30 s session, long after the
    # 10 s the subscribe call waits.
    session_ms = STATIC["consumer_session_timeout_ms"]
    first = await build(poll_timeout_ms=session_ms // 3, **STATIC)
    before = Collector()
    await first.subscribe_stream(channel, before, group="static", consumer="w1")
    for i in range(10):
        await first.publish_stream(channel, {"event_type": "Step", "n": i}, partition_key=f"k{i}")
    await before.wait_for(10)
    await first.close()  # commits what it handled

    second = await build(poll_timeout_ms=session_ms // 3, **STATIC)
    after = Collector()
    await second.subscribe_stream(channel, after, group="static", consumer="w1")
    entry = await consumer_entry(second, channel, "static")
    assert entry["state"] == "active", entry
    assert entry["partitions"] == [0, 1, 2, 3, 4, 5]
    assert entry["group_instance_id"] == f"suite-static.{channel}.w1"
    await second.publish_stream(channel, {"event_type": "Step", "n": 10})
    events = await after.wait_for(1)
    await after.settle(0.5)
    assert [e["n"] for e in events] == [10], "resumed after what the first one committed"


async def test_a_second_live_member_with_the_same_name_fences_the_first(
    build: Builder, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {**STATIC, "consumer_session_timeout_ms": 6000}
    first = await build(**settings)
    second = await build(**settings)
    a, b = Collector(), Collector()
    await first.subscribe_stream(channel, a, group="twins", consumer="w1")
    await first.publish_stream(channel, {"event_type": "Step", "n": 0})
    await a.wait_for(1)

    with caplog.at_level(logging.ERROR):
        await second.subscribe_stream(channel, b, group="twins", consumer="w1")
        # The first one hears of it at its next heartbeat, well inside its session.
        session_s = settings["consumer_session_timeout_ms"] / 1000
        entry = await wait_for_state(first, channel, "twins", "fenced", session_s)
        await asyncio.sleep(settings["consumer_heartbeat_interval_ms"] * 3 / 1000)

    assert entry["error"].startswith(f"{FencedInstanceError.__name__}: "), entry
    assert entry["active"] is False
    health = await first.health_check()
    assert health["healthy"] is False, "a fenced subscription no longer consumes"
    assert health["adapter"]["details"]["failed_consumers"] == [f"{channel}:suite-twins"]
    fenced_logs = [r for r in caplog.records if "fenced" in r.getMessage().lower()]
    assert len(fenced_logs) == 1, [r.getMessage() for r in fenced_logs]
    assert fenced_logs[0].levelno == logging.ERROR

    # The newcomer owns the partitions; the fenced one gets nothing more.
    assert (await consumer_entry(second, channel, "twins"))["state"] == "active"
    await second.publish_stream(channel, {"event_type": "Step", "n": 1})
    # It may get event 0 again first (the fenced member's work since its last commit).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + session_s
    while 1 not in [e["n"] for e in b.events] and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert 1 in [e["n"] for e in b.events]
    assert [e["n"] for e in a.events] == [0]
    # Stopping it later is clean.
    [sub] = first.subscriptions()
    assert sub["state"] == "fenced"
    assert await first.unsubscribe(sub["id"]) is True


async def test_static_membership_needs_one_valid_stable_name_per_member(
    build: Builder, channel: str
) -> None:
    bus = await build(**STATIC)
    with pytest.raises(InvalidArgumentError, match="consumer"):
        await bus.subscribe_stream(channel, Collector(), group="named")
    with pytest.raises(InvalidArgumentError, match="consumer 'worker 1'"):
        await bus.subscribe_stream(channel, Collector(), group="named", consumer="worker 1")
    with pytest.raises(InvalidArgumentError, match="group"):
        await bus.subscribe_stream(channel, Collector(), group="my group", consumer="w1")
    with pytest.raises(InvalidArgumentError, match="249"):
        await bus.subscribe_stream(channel, Collector(), group="named", consumer="w" * 240)
    await bus.subscribe_stream(channel, Collector(), group="named", consumer="w1")
    with pytest.raises(InvalidArgumentError, match="already subscribed"):
        await bus.subscribe_stream(channel, Collector(), group="named", consumer="w1")
    # Another channel in the same group is another member with its own instance id.
    await bus.subscribe_stream(f"{channel}-other", Collector(), group="named", consumer="w1")
    # Pub/sub subscribers have groups of their own and never use static membership.
    pubsub = Collector()
    await bus.subscribe(channel, pubsub)
    await bus.publish(channel, {"event_type": "Tick"})
    await pubsub.wait_for(1)


# --- the in-memory model of a member that died ------------------------------------------------


def memory_bus(broker: MemoryBroker, session_ms: int, poll_timeout_ms: int) -> EventBus:
    bus_config, tc = test_configs(
        consumer_session_timeout_ms=session_ms, consumer_heartbeat_interval_ms=session_ms // 10
    )
    bus_config = replace(bus_config, consumer_poll_timeout_ms=poll_timeout_ms)
    return EventBus(MemoryTransportAdapter(bus_config, tc, broker=broker))


@pytest.fixture
async def crash_setup(channel: str) -> AsyncIterator[tuple[MemoryBroker, list[EventBus]]]:
    buses: list[EventBus] = []
    yield MemoryBroker(), buses
    await asyncio.gather(*(b.close() for b in buses))


async def test_a_replacement_of_a_crashed_member_subscribes_and_takes_over_after_its_session(
    crash_setup: tuple[MemoryBroker, list[EventBus]], channel: str
) -> None:
    broker, buses = crash_setup
    session_ms, poll_ms = 600, 150
    first = memory_bus(broker, session_ms, poll_ms)
    buses.append(first)
    a = Collector()
    await first.subscribe_stream(channel, a, group="crashy", consumer="w1")
    for i in range(20):
        await first.publish_stream(channel, {"event_type": "Step", "n": i}, partition_key=f"k{i}")
    await a.wait_for(20)
    assert isinstance(first.adapter, MemoryTransportAdapter)
    first.adapter.simulate_crash()  # nothing committed (interval 1 s, batch 100), no leave

    second = memory_bus(broker, session_ms, poll_ms)
    buses.append(second)
    b = Collector()
    await second.subscribe_stream(channel, b, group="crashy", consumer="w1")
    entry = await consumer_entry(second, channel, "crashy")
    assert entry["state"] == "waiting_for_partitions", entry
    assert entry["waiting_since"] is not None
    assert entry["active"] is False
    assert entry["partitions"] == []
    # Published while the dead member still holds the partitions: not lost either.
    for i in range(20, 25):
        await second.publish_stream(channel, {"event_type": "Step", "n": i})
    entry = await wait_for_state(second, channel, "crashy", "active", 2 * session_ms / 1000)
    assert entry["partitions"] == [0, 1, 2, 3, 4, 5]
    events = await b.wait_for(25)
    assert sorted(e["n"] for e in events) == list(range(25)), "lost or handled twice"


async def test_a_rebalance_that_outlasts_the_timeout_on_an_unreachable_cluster_still_raises(
    crash_setup: tuple[MemoryBroker, list[EventBus]], channel: str
) -> None:
    broker, buses = crash_setup
    first = memory_bus(broker, 60_000, 100)
    buses.append(first)
    await first.subscribe_stream(channel, Collector(), group="down", consumer="w1")
    assert isinstance(first.adapter, MemoryTransportAdapter)
    first.adapter.simulate_crash()
    second = memory_bus(broker, 60_000, 100)
    buses.append(second)
    await second.start()
    await second.publisher.ensure_channel(channel)
    broker.available = False  # pings fail from now on
    with pytest.raises(TransportTimeoutError):
        await second.subscribe_stream(channel, Collector(), group="down", consumer="w2")
    assert second.subscriptions() == []
