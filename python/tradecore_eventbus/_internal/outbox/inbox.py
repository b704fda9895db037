"""Exactly-once effects for consumers: an idempotent handler.

``idempotent(apply, db, consumer="billing")`` wraps ``apply(event, conn)`` so that it runs in
a database transaction that also records the event's ``event_id`` in ``eventbus_inbox``. An
event the consumer has applied before (a redelivery after a crash, a republish by the
outbox relay, a DLQ replay) is skipped: its effect happens once.

    async def apply(event: dict, conn) -> None:
        await conn.execute("UPDATE accounts SET balance = balance - $1 WHERE id = $2", ...)

    await bus.subscribe_stream(
        "transport.order-events", idempotent(apply, pool, consumer="billing"),
        group="billing-workers", consumer="worker-1",
    )

``db`` is an asyncpg ``Pool`` (or ``PgClient``) or an ``aiosqlite`` connection; create the
inbox table with ``OutboxService.migrate()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ...exceptions import DeserializationError, InvalidArgumentError

Apply = Callable[[dict[str, Any], Any], Awaitable[None]]


def idempotent(
    apply: Apply, db: Any, *, consumer: str
) -> Callable[[dict[str, Any]], Awaitable[bool]]:
    """A handler that applies each event at most once for ``consumer``. It returns True when
    the event was applied now, False when it had been applied before."""
    if not consumer:
        raise InvalidArgumentError("idempotent() needs a consumer name")
    pool = getattr(db, "pool", db)
    module = type(pool).__module__
    if module.startswith("asyncpg"):
        return _postgres(apply, pool, consumer)
    if module.startswith("aiosqlite"):
        return _sqlite(apply, pool, consumer)
    raise InvalidArgumentError(
        f"idempotent() needs an asyncpg Pool or an aiosqlite connection, not {type(db).__name__}"
    )


def _event_id(event: dict[str, Any]) -> str:
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise DeserializationError("an idempotent handler needs events with an event_id")
    return event_id


def _postgres(
    apply: Apply, pool: Any, consumer: str
) -> Callable[[dict[str, Any]], Awaitable[bool]]:
    async def handle(event: dict[str, Any]) -> bool:
        event_id = _event_id(event)
        async with pool.acquire() as conn, conn.transaction():
            first = await conn.fetchval(
                "INSERT INTO eventbus_inbox (consumer, event_id) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING RETURNING 1",
                consumer,
                event_id,
            )
            if first is None:
                return False
            await apply(event, conn)
            return True

    return handle


def _sqlite(apply: Apply, conn: Any, consumer: str) -> Callable[[dict[str, Any]], Awaitable[bool]]:
    # One SQLite connection runs one transaction at a time: handlers take turns.
    lock = asyncio.Lock()

    async def handle(event: dict[str, Any]) -> bool:
        event_id = _event_id(event)
        async with lock:
            try:
                cursor = await conn.execute(
                    "INSERT OR IGNORE INTO eventbus_inbox (consumer, event_id, processed_at) "
                    "VALUES (?, ?, ?)",
                    (consumer, event_id, time.time()),
                )
                if cursor.rowcount == 0:
                    await conn.rollback()
                    return False
                await apply(event, conn)
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()
            return True

    return handle
