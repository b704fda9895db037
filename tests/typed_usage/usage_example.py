"""The guide's main calls as a user's typed code writes them, checked by ``mypy --strict`` in
``make lint`` (issue 14) and run by ``test_usage_example.py`` on the memory transport.

``assert_type`` pins the public return types; the lines marked ``type: ignore[...]`` pin
what the types reject (mypy's ``warn_unused_ignores``, on in strict mode, fails if the
error they silence ever goes away). Those are in functions that are never called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, assert_type

import aiosqlite

from tradecore_eventbus import (
    BaseEvent,
    EventBus,
    EventBusConfig,
    MemoryTransportAdapter,
    OutboxService,
    PublishResult,
    TransportConfig,
    register_event,
)
from tradecore_eventbus.event_bus import BreakerStatus, HealthReport
from tradecore_eventbus.testing import DeadLetter, MemoryFaults, dead_letters, wait_for_event

ORDERS = "transport.order-events"
PRICES = "realtime.prices"


class OrderPlaced(BaseEvent):
    event_type: Literal["OrderPlaced"] = "OrderPlaced"
    order_id: str
    quantity: int


async def on_order(order: OrderPlaced) -> None:
    """A handler that asks for the registered model gets it validated."""
    assert order.quantity > 0


def on_price(event: dict[str, Any]) -> None:
    """A plain (not async) handler of the event's JSON object."""
    assert "price" in event


def expensive(event: dict[str, Any]) -> bool:
    return bool(event.get("price", 0) > 100)


async def use_the_bus(spool_dir: Path) -> dict[str, int]:
    register_event(OrderPlaced)
    adapter = MemoryTransportAdapter(EventBusConfig(sub_block_ms=50), TransportConfig())
    async with EventBus(adapter, spool_dir=str(spool_dir)) as bus:
        bus.mark_channel_as_critical(ORDERS)
        sub = await bus.subscribe(PRICES, on_price, filter_fn=expensive)
        assert_type(sub, str)
        await bus.subscribe_stream(ORDERS, on_order, group="typed-workers")

        one = await bus.publish(PRICES, {"event_type": "PriceUpdated", "price": 150.0})
        assert_type(one, PublishResult)
        durable = await bus.publish_stream(
            ORDERS, {"event_type": "OrderPlaced", "order_id": "1", "quantity": 3}, "user-1"
        )
        assert_type(durable.partition, int)
        assert_type(durable.offset, int)
        assert_type(durable.event_id, str)
        assert_type(durable.key, str | None)
        assert_type(durable.event, dict[str, object])
        batch = await bus.publish_batch(
            ORDERS,
            [{"event_type": "OrderPlaced", "order_id": str(i), "quantity": i} for i in (2, 3)],
            partition_key="user-1",
        )
        assert_type(batch, list[PublishResult])

        arrived = await wait_for_event(bus, ORDERS, "OrderPlaced", timeout=5)
        assert_type(arrived, dict[str, Any])
        letters = await dead_letters(bus, ORDERS, count=0, timeout=0.1)
        assert_type(letters, list[DeadLetter])

        health = await bus.health_check()
        assert_type(health, HealthReport)
        assert_type(health["healthy"], bool)
        assert_type(health["open_circuits"], list[str])
        assert_type(health["adapter"]["healthy"], bool)
        assert_type(health["config"]["critical_channels"], list[str])
        breakers = await bus.get_circuit_breaker_status()
        assert_type(breakers, dict[str, BreakerStatus])
        assert_type(breakers[ORDERS]["state"], str)
        assert_type(await bus.check_connection(), bool)

        faults = MemoryFaults(bus)
        faults.fail_next_publish(PRICES)
        faults.clear()
        assert_type(await bus.unsubscribe(sub), bool)
        return {"published": 1 + 1 + len(batch), "dead_letters": len(letters)}


async def use_the_outbox(bus: EventBus, database: Path) -> int:
    async with aiosqlite.connect(database) as conn:
        outbox = OutboxService(bus, conn)
        await outbox.migrate()
        event_id = await outbox.queue_event(
            stream_name=ORDERS,
            event_data={"event_type": "OrderPlaced", "order_id": "9", "quantity": 1},
            transaction_conn=conn,
            partition_key="user-9",
        )
        assert_type(event_id, str)
        await conn.commit()
        sent = await outbox.run_once()
        assert_type(sent, int)
        await outbox.stop()
        return sent


async def rejected_by_the_types(bus: EventBus) -> None:  # never called: mypy checks it
    async def wants_an_int(n: int) -> None: ...

    await bus.subscribe(PRICES, wants_an_int)  # type: ignore[type-var]
    await bus.publish(PRICES, ["not", "a", "mapping"])  # type: ignore[arg-type]
