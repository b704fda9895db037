"""The outbox's ``queue_event`` takes the same arguments as ``publish_stream`` and checks them
the same way, inside the caller's transaction, before anything is stored."""

from __future__ import annotations

import math
from typing import Any

import aiosqlite
import pytest

from tradecore_eventbus import EventBus, EventValidationError, InvalidArgumentError
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker
from tradecore_eventbus.outbox_service import OutboxService


async def test_queue_event_refuses_bad_arguments_and_events(
    sqlite_conn: aiosqlite.Connection, memory_bus: tuple[EventBus, MemoryBroker]
) -> None:
    bus, _ = memory_bus
    outbox = OutboxService(bus, sqlite_conn)
    await outbox.migrate()
    anything: Any = outbox
    for kwargs, error, message in [
        ({"partition_key": 7}, InvalidArgumentError, "partition_key must be a str or None"),
        ({"stream_name": 3}, InvalidArgumentError, "stream_name must be a str, got int"),
        ({"event_data": ["event_type"]}, EventValidationError, "event_data must be a dict"),
        (
            {"event_data": {"event_type": "Q", "p": math.nan}},
            EventValidationError,
            "field p: NaN is not a JSON number",
        ),
        (
            {"event_data": {"event_type": "Q", "event_id": 5}},
            EventValidationError,
            "event_id must be a non-empty str",
        ),
        ({"event_data": {"event_type": ["Q"]}}, EventValidationError, "event_type must be"),
    ]:
        call = {
            "stream_name": "transport.orders",
            "event_data": {"event_type": "Q"},
            "transaction_conn": sqlite_conn,
            **kwargs,
        }
        with pytest.raises(error, match=message):
            await anything.queue_event(**call)
    await sqlite_conn.commit()
    assert await outbox.run_once() == 0, "nothing was queued"
    await outbox.stop()


async def test_a_row_too_large_for_the_broker_goes_dead_with_a_capped_dlq_copy_and_does_not_block(
    sqlite_conn: aiosqlite.Connection, memory_bus: tuple[EventBus, MemoryBroker]
) -> None:
    """A 2 MB event: its send is refused for good. The row is marked dead (it keeps the
    payload) instead of being retried for ever, its DLQ copy is capped to what the broker
    takes (decision 44), and the later event of the same key is published."""
    bus, _ = memory_bus
    outbox = OutboxService(bus, sqlite_conn, max_attempts=1)
    await outbox.migrate()
    for data in (
        {"event_type": "Doc", "n": 1, "body": "x" * 2_000_000},
        {"event_type": "Doc", "n": 2},
    ):
        await outbox.queue_event(
            stream_name="transport.docs",
            event_data=data,
            transaction_conn=sqlite_conn,
            partition_key="doc-7",
        )
    await sqlite_conn.commit()
    assert await outbox.run_once() == 1
    assert [m["n"] for m in bus.adapter.get_published_messages("transport.docs")] == [2]  # type: ignore[attr-defined]
    [copy] = bus.adapter.get_published_messages("transport.docs.dlq")  # type: ignore[attr-defined]
    assert copy["_dlq_metadata"]["original_truncated"] is True
    health = await outbox.health()
    assert (health["dead"], health["backlog"]) == (1, 0)
    async with sqlite_conn.execute(
        "SELECT length(payload), last_error FROM eventbus_outbox WHERE status = 'dead'"
    ) as cursor:
        [(size, last_error)] = list(await cursor.fetchall())
    assert size > 2_000_000
    assert "MessageSizeTooLarge" in last_error
    assert await outbox.run_once() == 0
    await outbox.stop()
