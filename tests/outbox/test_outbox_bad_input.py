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
