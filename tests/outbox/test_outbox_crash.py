"""A relay killed after the broker acknowledged but before it marked the rows: the event is
sent again after restart, and an idempotent consumer applies it once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tradecore_eventbus import EventBus
from tradecore_eventbus._internal.outbox.inbox import idempotent
from tradecore_eventbus.outbox_service import OutboxService

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]
ROOT = Path(__file__).resolve().parents[2]


async def test_a_killed_relay_resends_and_the_inbox_applies_once(
    pg_schema: str, pg_pool: Any, kafka_bus: EventBus
) -> None:
    outbox = OutboxService(kafka_bus, pg_pool)
    await outbox.migrate()
    s = f"transport.crash-{uuid.uuid4().hex[:8]}"
    async with pg_pool.acquire() as conn:
        await conn.execute("CREATE TABLE balances (id text PRIMARY KEY, amount int NOT NULL)")
        await conn.execute("INSERT INTO balances VALUES ('acct', 0)")
        async with conn.transaction():
            await outbox.queue_event(
                stream_name=s,
                event_data={"event_type": "Credited", "amount": 5},
                transaction_conn=conn,
            )

    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.outbox.relay_process",
        pg_schema,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), 60)
    assert line.startswith(b"SENT 1"), line
    child.send_signal(signal.SIGKILL)  # acknowledged by the broker, not marked published
    await child.wait()
    async with pg_pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM eventbus_outbox") == "pending"

    assert await outbox.run_once() == 1  # the restarted relay sends it again

    applied = asyncio.Event()

    async def credit(event: dict[str, Any], conn: Any) -> None:
        await conn.execute(
            "UPDATE balances SET amount = amount + $1 WHERE id = 'acct'", event["amount"]
        )

    handler = idempotent(credit, pg_pool, consumer="balances")
    outcomes: list[bool] = []

    async def handle(event: dict[str, Any]) -> None:
        outcomes.append(await handler(event))
        if len(outcomes) == 2:
            applied.set()

    await kafka_bus.subscribe_stream(s, handle, group="balances", consumer="w1")
    await asyncio.wait_for(applied.wait(), 30)
    assert sorted(outcomes) == [False, True], "two deliveries, one effect"
    async with pg_pool.acquire() as conn:
        assert await conn.fetchval("SELECT amount FROM balances WHERE id = 'acct'") == 5
        assert await conn.fetchval("SELECT count(*) FROM eventbus_inbox") == 1
