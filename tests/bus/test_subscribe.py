"""Subscribing: pub/sub and stream semantics, ordering, groups, filters, unsubscribe."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any, Literal

import pytest
from tests.bus.conftest import BusFactory, Collector
from tests.reliability.conftest import read_topic

from tradecore_eventbus import EVENT_TYPE_TO_PYDANTIC_MODEL, BaseEvent, EventBus, register_event


async def test_pubsub_subscriber_gets_what_is_published_after_it_is_live(
    bus: EventBus, channel: str
) -> None:
    await bus.publish(channel, {"event_type": "Before"})
    collector = Collector()
    sub_id = await bus.subscribe(channel, collector)
    assert isinstance(sub_id, str)
    await bus.publish(channel, {"event_type": "After", "n": 1})
    events = await collector.wait_for(1)
    await collector.settle(0.5)
    assert [e["event_type"] for e in events] == ["After"]


async def test_each_pubsub_subscriber_gets_every_event(bus: EventBus, channel: str) -> None:
    a, b = Collector(), Collector()
    await bus.subscribe(channel, a)
    await bus.subscribe(channel, b)
    for i in range(10):
        await bus.publish(channel, {"event_type": "Tick", "n": i})
    assert sorted(e["n"] for e in await a.wait_for(10)) == list(range(10))
    assert sorted(e["n"] for e in await b.wait_for(10)) == list(range(10))


async def test_filter_fn_selects_events(bus: EventBus, channel: str) -> None:
    collector = Collector()
    await bus.subscribe(channel, collector, filter_fn=lambda e: e.get("symbol") == "AAPL")
    for symbol in ["MSFT", "AAPL", "GOOG", "AAPL"]:
        await bus.publish(channel, {"event_type": "PriceUpdated", "symbol": symbol})
    await collector.wait_for(2)
    await collector.settle(0.5)
    assert [e["symbol"] for e in collector.events] == ["AAPL", "AAPL"]


async def test_unsubscribe_stops_exactly_that_subscriber(bus: EventBus, channel: str) -> None:
    keep, drop = Collector(), Collector()
    await bus.subscribe(channel, keep)
    drop_id = await bus.subscribe(channel, drop)
    assert await bus.unsubscribe(drop_id) is True
    assert await bus.unsubscribe(drop_id) is False
    assert await bus.unsubscribe("no-such-id") is False
    await bus.publish(channel, {"event_type": "After"})
    await keep.wait_for(1)
    await asyncio.sleep(0.5)
    assert drop.events == []


async def test_a_new_stream_group_replays_from_the_beginning(bus: EventBus, channel: str) -> None:
    for i in range(20):
        await bus.publish_stream(channel, {"event_type": "Step", "n": i}, partition_key="k")
    first, second = Collector(), Collector()
    await bus.subscribe_stream(channel, first, group="group-a", consumer="w1")
    assert [e["n"] for e in await first.wait_for(20)] == list(range(20))
    await bus.subscribe_stream(channel, second, group="group-b", consumer="w1")
    assert [e["n"] for e in await second.wait_for(20)] == list(range(20))


async def test_events_of_one_key_are_handled_in_order(bus: EventBus, channel: str) -> None:
    collector = Collector()
    await bus.subscribe_stream(channel, collector, group="ordered", consumer="w1", batch_size=50)
    keys = [f"account-{k}" for k in range(10)]
    await asyncio.gather(
        *(
            bus.publish_batch(
                channel,
                [{"event_type": "Step", "key": key, "seq": s} for s in range(20)],
                partition_key=key,
            )
            for key in keys
        )
    )
    events = await collector.wait_for(200)
    last: dict[str, int] = defaultdict(lambda: -1)
    for e in events:
        assert e["seq"] == last[e["key"]] + 1, f"{e['key']} out of order"
        last[e["key"]] = e["seq"]


async def test_consumers_of_one_group_share_the_work(bus: EventBus, channel: str) -> None:
    seen: dict[str, list[int]] = {"w1": [], "w2": []}

    def handler_for(name: str) -> Any:
        async def handle(event: dict[str, Any]) -> None:
            seen[name].append(event["n"])

        return handle

    await bus.subscribe_stream(channel, handler_for("w1"), group="shared", consumer="w1")
    await bus.subscribe_stream(channel, handler_for("w2"), group="shared", consumer="w2")
    await asyncio.sleep(1.0)  # let the group settle after the second member joined
    for i in range(120):
        await bus.publish_stream(channel, {"event_type": "Job", "n": i}, partition_key=f"k{i}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while len(seen["w1"]) + len(seen["w2"]) < 120 and loop.time() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    assert sorted(seen["w1"] + seen["w2"]) == list(range(120)), "lost or handled twice"
    assert seen["w1"], "the first member got nothing"
    assert seen["w2"], "the second member got nothing"


async def test_subscribing_before_anyone_published_works(bus: EventBus, channel: str) -> None:
    collector = Collector()
    await bus.subscribe_stream(channel, collector, group="early", consumer="w1")
    await bus.publish_stream(channel, {"event_type": "First"})
    assert (await collector.wait_for(1))[0]["event_type"] == "First"


async def test_a_failing_handler_does_not_stop_the_loop_and_its_event_is_dead_lettered(
    make_bus: BusFactory, channel: str
) -> None:
    bus = await make_bus()
    handled: list[int] = []

    async def handler(event: dict[str, Any]) -> None:
        if event["n"] == 3:
            raise RuntimeError("poison")
        handled.append(event["n"])

    for i in range(6):
        await bus.publish_stream(channel, {"event_type": "Job", "n": i}, partition_key="one")
    await bus.subscribe_stream(channel, handler, group="fragile", consumer="w1")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while len(handled) < 5 and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert handled == [0, 1, 2, 4, 5], "the loop died or skipped events"
    [dead] = await read_topic(bus, f"{channel}.dlq", 1)
    assert json.loads(dead.value)["n"] == 3
    await bus.close()

    # Committed past it once it was in the DLQ: the group's next consumer gets nothing old.
    again = Collector()
    bus2 = await make_bus()
    await bus2.subscribe_stream(channel, again, group="fragile", consumer="w2")
    await bus2.publish_stream(channel, {"event_type": "Job", "n": 6}, partition_key="one")
    events = await again.wait_for(1)
    await again.settle(0.5)
    assert [e["n"] for e in events] == [6]


class TradeEvent(BaseEvent):
    event_type: Literal["Trade"] = "Trade"
    symbol: str
    quantity: int


async def test_a_handler_can_ask_for_the_registered_model(bus: EventBus, channel: str) -> None:
    register_event(TradeEvent)
    got: list[Any] = []

    async def typed(event: TradeEvent) -> None:
        got.append(event)

    async def generic(event: BaseEvent) -> None:
        got.append(event)

    try:
        await bus.subscribe(channel, typed)
        await bus.subscribe(channel, generic)
        await bus.publish(channel, {"event_type": "Trade", "symbol": "AAPL", "quantity": 5})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len(got) < 2 and loop.time() < deadline:
            await asyncio.sleep(0.05)
        assert len(got) == 2
        assert all(isinstance(e, TradeEvent) for e in got)
        assert got[0].quantity == 5
    finally:
        EVENT_TYPE_TO_PYDANTIC_MODEL.pop("Trade", None)


async def test_sync_handlers_work_too(bus: EventBus, channel: str) -> None:
    got: list[dict[str, Any]] = []
    await bus.subscribe(channel, got.append)
    await bus.publish(channel, {"event_type": "Sync"})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not got and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert got[0]["event_type"] == "Sync"


@pytest.mark.parametrize("bad", [None, "not callable"])
async def test_a_handler_that_is_not_callable_is_refused(
    bus: EventBus, channel: str, bad: Any
) -> None:
    with pytest.raises(ValueError, match="handler"):
        await bus.subscribe(channel, bad)
