"""The outbox on SQLite, the embedded default (no server)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiosqlite
import pytest

from tradecore_eventbus import EventBus, EventValidationError
from tradecore_eventbus._internal.outbox.inbox import idempotent
from tradecore_eventbus._internal.outbox.store import OutboxRow
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker
from tradecore_eventbus.outbox_service import OutboxService


class Crash(BaseException):
    """Stands for the relay process dying (nothing after it runs)."""


async def test_commit_publishes_rollback_does_not(
    sqlite_conn: aiosqlite.Connection, memory_bus: tuple[EventBus, MemoryBroker]
) -> None:
    bus, _ = memory_bus
    outbox = OutboxService(bus, sqlite_conn)
    await outbox.migrate()
    await outbox.migrate()
    await sqlite_conn.execute("CREATE TABLE orders (id INTEGER)")
    await sqlite_conn.commit()

    await sqlite_conn.execute("INSERT INTO orders VALUES (1)")
    await outbox.queue_event(
        stream_name="transport.orders",
        event_data={"event_type": "Gone"},
        transaction_conn=sqlite_conn,
    )
    await sqlite_conn.rollback()
    await sqlite_conn.execute("INSERT INTO orders VALUES (2)")
    for n in range(3):
        await outbox.queue_event(
            stream_name="transport.orders",
            event_data={"event_type": "OrderPlaced", "n": n},
            transaction_conn=sqlite_conn,
            partition_key="user-1",
        )
    await sqlite_conn.commit()
    with pytest.raises(EventValidationError):
        await outbox.queue_event(
            stream_name="transport.orders", event_data={}, transaction_conn=sqlite_conn
        )
    await sqlite_conn.rollback()

    assert await outbox.run_once() == 3
    assert await outbox.run_once() == 0
    published = bus.adapter.get_published_messages("transport.orders")  # type: ignore[attr-defined]
    assert [m["n"] for m in published] == [0, 1, 2]
    await outbox.stop()


async def test_a_relay_that_dies_before_marking_is_taken_over_after_its_lease(
    sqlite_conn: aiosqlite.Connection, memory_bus: tuple[EventBus, MemoryBroker]
) -> None:
    bus, _ = memory_bus

    async def die(rows: list[OutboxRow]) -> None:
        raise Crash

    dying = OutboxService(bus, sqlite_conn, after_send=die)
    await dying.migrate()
    await outbox_event(dying, sqlite_conn, amount=5)
    with pytest.raises(Crash):
        await dying.run_once()
    survivor = OutboxService(bus, sqlite_conn)
    assert await survivor.run_once() == 0, "the dead relay's lease still holds the row"
    survivor.store.lease_s = 0  # type: ignore[attr-defined]
    await sqlite_conn.execute("UPDATE eventbus_outbox SET claimed_until = 0")
    await sqlite_conn.commit()
    assert await survivor.run_once() == 1

    # Two deliveries of the same event; the idempotent handler applies it once.
    await sqlite_conn.execute("CREATE TABLE balance (amount INTEGER)")
    await sqlite_conn.execute("INSERT INTO balance VALUES (0)")
    await sqlite_conn.commit()

    async def credit(event: dict[str, Any], conn: Any) -> None:
        await conn.execute("UPDATE balance SET amount = amount + ?", (event["amount"],))

    handler = idempotent(credit, sqlite_conn, consumer="ledger")
    published = bus.adapter.get_published_messages("transport.ledger")  # type: ignore[attr-defined]
    assert len(published) == 2
    assert published[0]["event_id"] == published[1]["event_id"]
    assert [await handler(e) for e in published] == [True, False]
    rows = await sqlite_conn.execute_fetchall("SELECT amount FROM balance")
    assert list(rows) == [(5,)]
    await dying.stop()
    await survivor.stop()


async def outbox_event(outbox: OutboxService, conn: aiosqlite.Connection, amount: int) -> None:
    await outbox.queue_event(
        stream_name="transport.ledger",
        event_data={"event_type": "Credited", "amount": amount},
        transaction_conn=conn,
    )
    await conn.commit()


async def test_the_relay_runs_in_the_background(
    sqlite_conn: aiosqlite.Connection, memory_bus: tuple[EventBus, MemoryBroker]
) -> None:
    bus, _ = memory_bus
    async with OutboxService(bus, sqlite_conn, poll_interval=0.05) as outbox:
        await outbox.migrate()
        for n in range(10):
            await outbox.queue_event(
                stream_name="transport.bg",
                event_data={"event_type": "E", "n": n},
                transaction_conn=sqlite_conn,
            )
        await sqlite_conn.commit()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while (
            len(bus.adapter.get_published_messages("transport.bg")) < 10 and loop.time() < deadline
        ):  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
        health = (await bus.health_check())["adapter"]["details"]["outbox"]
    assert [m["n"] for m in bus.adapter.get_published_messages("transport.bg")] == list(range(10))  # type: ignore[attr-defined]
    assert health["backlog"] == 0
    assert health["relay_running"] is True
