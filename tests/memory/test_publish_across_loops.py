"""A bus used by one event loop after another (sequential ``asyncio.run`` calls, a test
runner's loop per test) keeps publishing: single publishes are coalesced per loop."""

from __future__ import annotations

import asyncio

from tradecore_eventbus import PublishResult
from tradecore_eventbus.event_bus import EventBus
from tradecore_eventbus.eventbus_transport_config import EventBusConfig, TransportConfig
from tradecore_eventbus.memory_adapter import MemoryTransportAdapter

CHANNEL = "transport.loops"


def memory_bus() -> EventBus:
    adapter = MemoryTransportAdapter(EventBusConfig(), TransportConfig(topic_partitions=1))
    return EventBus(adapter, validate_on_publish=False)


def test_sequential_loops_each_publish() -> None:
    bus = memory_bus()

    async def publish(n: int) -> PublishResult:
        return await bus.publish_stream(CHANNEL, {"event_type": "Tick", "n": n})

    first = asyncio.run(publish(1))
    second = asyncio.run(publish(2))
    assert (first.event["n"], second.event["n"]) == (1, 2)
    assert second.offset == first.offset + 1


def test_events_left_by_a_stopped_loop_go_out_with_the_next_loops_batch() -> None:
    # A loop stopped right after a publish was submitted, before the batch's flush (a
    # call_soon) ran: the next loop's publish must not wait for that flush, and the
    # stopped loop's event is sent with it instead of being left behind.
    bus = memory_bus()
    stopped = asyncio.new_event_loop()
    try:
        first = stopped.create_task(bus.publish_stream(CHANNEL, {"event_type": "Tick", "n": 1}))
        stopped.call_soon(stopped.stop)  # runs in the same iteration as the task's first step
        stopped.run_forever()
        assert not first.done()

        async def second_publish() -> PublishResult:
            return await asyncio.wait_for(
                bus.publish_stream(CHANNEL, {"event_type": "Tick", "n": 2}), timeout=5
            )

        second = asyncio.run(second_publish())
        result = stopped.run_until_complete(first)
        assert [result.event["n"], second.event["n"]] == [1, 2]
        assert [result.offset, second.offset] == [0, 1]
    finally:
        stopped.close()
