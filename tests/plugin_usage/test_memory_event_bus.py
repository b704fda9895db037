"""A user's handler tested with ``memory_event_bus`` and ``wait_for_event``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tradecore_eventbus import EventBus, InvalidArgumentError
from tradecore_eventbus.testing import wait_for_event

ORDERS = "transport.orders"
CONFIRMATIONS = "transport.confirmations"


def confirming_handler(bus: EventBus) -> Any:
    """The application code under test: confirms every order it is given."""

    async def on_order(event: dict[str, Any]) -> None:
        await bus.publish_stream(
            CONFIRMATIONS,
            {"event_type": "OrderConfirmed", "order_id": event["order_id"]},
            partition_key=event["order_id"],
        )

    return on_order


async def test_a_handler_is_tested_end_to_end(memory_event_bus: EventBus) -> None:
    bus = memory_event_bus
    await bus.subscribe_stream(ORDERS, confirming_handler(bus), group="confirmers")
    await bus.publish_stream(ORDERS, {"event_type": "OrderPlaced", "order_id": "o-1"})
    confirmed = await wait_for_event(bus, CONFIRMATIONS, "OrderConfirmed", timeout=5)
    assert confirmed["order_id"] == "o-1"
    assert confirmed["event_id"], "the published (enriched) event is returned"


async def test_an_event_published_before_the_wait_is_found(memory_event_bus: EventBus) -> None:
    # The race the helper must not lose: the event is already there when it starts reading.
    await memory_event_bus.publish(ORDERS, {"event_type": "OrderPlaced", "order_id": "early"})
    found = await wait_for_event(memory_event_bus, ORDERS, "OrderPlaced", timeout=5)
    assert found["order_id"] == "early"


async def test_an_event_published_after_the_wait_began_is_found(
    memory_event_bus: EventBus,
) -> None:
    import asyncio

    waiter = asyncio.create_task(wait_for_event(memory_event_bus, ORDERS, "Late", timeout=5))
    await asyncio.sleep(0)  # the waiter is reading (or about to) before the publish
    await memory_event_bus.publish(ORDERS, {"event_type": "Late", "n": 1})
    assert (await waiter)["n"] == 1


async def test_where_picks_the_event_the_test_caused(memory_event_bus: EventBus) -> None:
    for n in range(3):
        await memory_event_bus.publish(ORDERS, {"event_type": "OrderPlaced", "n": n})
    found = await wait_for_event(
        memory_event_bus, ORDERS, "OrderPlaced", timeout=5, where=lambda e: e["n"] == 2
    )
    assert found["n"] == 2


async def test_a_missing_event_fails_naming_channel_type_and_timeout(
    memory_event_bus: EventBus,
) -> None:
    await memory_event_bus.publish(ORDERS, {"event_type": "OrderPlaced"})
    with pytest.raises(AssertionError) as info:
        await wait_for_event(memory_event_bus, ORDERS, "OrderShipped", timeout=0.3)
    message = str(info.value)
    assert "'OrderShipped'" in message
    assert f"'{ORDERS}'" in message
    assert "timeout=0.3s" in message
    assert "OrderPlaced x1" in message, "what did arrive helps to debug the test"


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"channel": 5}, "channel"),
        ({"event_type": None}, "event_type"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"where": "n == 1"}, "where"),
    ],
)
async def test_bad_arguments_are_refused_naming_them(
    memory_event_bus: EventBus, kwargs: dict[str, Any], argument: str
) -> None:
    call: dict[str, Any] = {"channel": ORDERS, "event_type": "X", "timeout": 1.0, **kwargs}
    with pytest.raises(InvalidArgumentError, match=argument):
        await wait_for_event(
            memory_event_bus,
            call.pop("channel"),
            call.pop("event_type"),
            **call,
        )


async def test_each_test_gets_a_fresh_broker_and_its_own_spool(
    memory_event_bus: EventBus, eventbus_spool_dir: Path, tmp_path: Path
) -> None:
    assert memory_event_bus.adapter.broker.topics() == {}  # type: ignore[attr-defined]
    assert memory_event_bus.spool.directory == eventbus_spool_dir
    assert eventbus_spool_dir.parent == tmp_path
