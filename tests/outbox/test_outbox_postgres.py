"""The transactional outbox on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from tests.outbox.conftest import make_pool
from tests.reliability.conftest import read_topic

from tradecore_eventbus import EventBus, EventValidationError, InvalidArgumentError, KafkaError
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker
from tradecore_eventbus.outbox_service import OutboxService, PgClient

pytestmark = pytest.mark.postgres


def stream() -> str:
    return f"transport.outbox-{uuid.uuid4().hex[:8]}"


async def count(pool: Any, sql: str, *args: Any) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval(sql, *args))


async def test_rollback_publishes_nothing_and_commit_publishes_once(
    pg_pool: Any, memory_bus: tuple[EventBus, MemoryBroker]
) -> None:
    bus, _ = memory_bus
    outbox = OutboxService(bus, pg_pool)
    await outbox.migrate()
    await outbox.migrate()  # idempotent
    s = stream()

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        async with pg_pool.acquire() as conn, conn.transaction():
            await outbox.queue_event(
                stream_name=s, event_data={"event_type": "Gone"}, transaction_conn=conn
            )
            raise Rollback
    pg_client = PgClient(pg_pool)
    async with pg_client.transaction() as conn:  # the guide's spelling
        event_id = await outbox.queue_event(
            stream_name=s,
            event_data={"event_type": "OrderPlaced", "order_id": "1"},
            transaction_conn=conn,
        )
    assert await outbox.run_once() == 1
    assert await outbox.run_once() == 0
    published = bus.adapter.get_published_messages(s)  # type: ignore[attr-defined]
    assert [(m["event_type"], m["event_id"]) for m in published] == [("OrderPlaced", event_id)]
    assert (
        await count(pg_pool, "SELECT count(*) FROM eventbus_outbox WHERE status = 'published'") == 1
    )


async def test_invalid_events_are_rejected_inside_queue_event(
    pg_pool: Any, memory_bus: tuple[EventBus, MemoryBroker]
) -> None:
    bus, _ = memory_bus
    outbox = OutboxService(bus, pg_pool)
    await outbox.migrate()
    with pytest.raises(EventValidationError):
        async with pg_pool.acquire() as conn, conn.transaction():
            await conn.execute("CREATE TABLE orders (id int)")
            await conn.execute("INSERT INTO orders VALUES (1)")
            await outbox.queue_event(
                stream_name=stream(), event_data={"no_type": 1}, transaction_conn=conn
            )
    # The caller's transaction rolled back with it: nothing of it remains.
    assert await count(pg_pool, "SELECT count(*) FROM eventbus_outbox") == 0
    assert await count(pg_pool, "SELECT count(*) FROM pg_tables WHERE tablename = 'orders'") == 0
    async with pg_pool.acquire() as conn:
        with pytest.raises(InvalidArgumentError, match="transaction"):
            await outbox.queue_event(
                stream_name=stream(), event_data={"event_type": "X"}, transaction_conn=conn
            )
        with pytest.raises(ValueError, match="topic name"):
            async with conn.transaction():
                await outbox.queue_event(
                    stream_name="bad name!", event_data={"event_type": "X"}, transaction_conn=conn
                )


async def test_a_late_commit_is_not_skipped(
    pg_pool: Any, memory_bus: tuple[EventBus, MemoryBroker]
) -> None:
    bus, _ = memory_bus
    outbox = OutboxService(bus, pg_pool)
    await outbox.migrate()
    s = stream()
    late = await pg_pool.acquire()
    tx = late.transaction()
    await tx.start()
    await outbox.queue_event(
        stream_name=s, event_data={"event_type": "Late"}, transaction_conn=late, partition_key="a"
    )
    async with pg_pool.acquire() as conn, conn.transaction():
        await outbox.queue_event(
            stream_name=s,
            event_data={"event_type": "Early"},
            transaction_conn=conn,
            partition_key="b",
        )
    assert await outbox.run_once() == 1  # only "Early" is committed
    await tx.commit()
    await pg_pool.release(late)
    assert await outbox.run_once() == 1  # the lower id committed later: still published
    assert [m["event_type"] for m in bus.adapter.get_published_messages(s)] == ["Early", "Late"]  # type: ignore[attr-defined]


async def test_broker_down_keeps_rows_pending_and_back_delivers_all(
    pg_pool: Any, memory_bus: tuple[EventBus, MemoryBroker]
) -> None:
    bus, broker = memory_bus
    outbox = OutboxService(bus, pg_pool, poll_interval=0.05)
    await outbox.migrate()
    s = stream()
    await bus.publish_stream(s, {"event_type": "Warmup"})
    broker.available = False
    async with pg_pool.acquire() as conn, conn.transaction():
        for n in range(20):
            await outbox.queue_event(
                stream_name=s,
                event_data={"event_type": "E", "n": n},
                transaction_conn=conn,
                partition_key="k",
            )
    assert await outbox.run_once() == 0
    assert (
        await count(
            pg_pool,
            "SELECT count(*) FROM eventbus_outbox WHERE status = 'pending' AND attempts = 1",
        )
        == 20
    )
    health = (await bus.health_check())["adapter"]["details"]
    assert "outbox" not in health  # only registered by start()
    await outbox.start()
    health = (await bus.health_check())["adapter"]["details"]["outbox"]
    assert health["backlog"] == 20
    assert health["oldest_pending_age"] >= 0
    broker.available = True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline and await count(
        pg_pool, "SELECT count(*) FROM eventbus_outbox WHERE status = 'pending'"
    ):
        await asyncio.sleep(0.1)
    await outbox.stop()
    got = [m["n"] for m in bus.adapter.get_published_messages(s) if "n" in m]  # type: ignore[attr-defined]
    assert got == list(range(20)), "lost, duplicated or reordered"
    assert (await outbox.health())["backlog"] == 0


async def test_a_row_the_broker_keeps_refusing_goes_dead_and_to_the_dlq(
    pg_pool: Any, memory_bus: tuple[EventBus, MemoryBroker]
) -> None:
    bus, broker = memory_bus
    outbox = OutboxService(bus, pg_pool, max_attempts=2)
    outbox.retry = outbox.retry.__class__(max_attempts=2, initial_delay_ms=0, max_delay_ms=0)
    await outbox.migrate()
    s = stream()
    await bus.publish_stream(s, {"event_type": "Warmup"})
    async with pg_pool.acquire() as conn, conn.transaction():
        await outbox.queue_event(
            stream_name=s, event_data={"event_type": "Refused", "n": 1}, transaction_conn=conn
        )
    refused = KafkaError("refused", code=29, code_name="TopicAuthorizationFailed", retriable=False)
    broker.injected_failures += [refused, refused]
    assert await outbox.run_once() == 0
    assert await outbox.run_once() == 0
    assert await count(pg_pool, "SELECT count(*) FROM eventbus_outbox WHERE status = 'dead'") == 1
    [dead] = bus.adapter.get_published_messages(f"{s}.dlq")  # type: ignore[attr-defined]
    assert dead["n"] == 1
    assert dead["_dlq_metadata"]["error_type"] == "OutboxPublishError"
    assert (await outbox.health())["dead"] == 1


async def test_published_rows_are_cleaned_up_after_the_retention(
    pg_pool: Any, memory_bus: tuple[EventBus, MemoryBroker]
) -> None:
    bus, _ = memory_bus
    outbox = OutboxService(bus, pg_pool, retention_seconds=3600)
    await outbox.migrate()
    async with pg_pool.acquire() as conn, conn.transaction():
        for _ in range(3):
            await outbox.queue_event(
                stream_name=stream(), event_data={"event_type": "E"}, transaction_conn=conn
            )
    assert await outbox.run_once() == 3
    assert await outbox.store.cleanup(3600) == 0
    async with pg_pool.acquire() as conn:
        await conn.execute("UPDATE eventbus_outbox SET published_at = now() - interval '2 hours'")
    assert await outbox.store.cleanup(3600) == 3
    assert await count(pg_pool, "SELECT count(*) FROM eventbus_outbox") == 0


@pytest.mark.kafka
async def test_two_relays_over_ten_thousand_events_keep_every_event_and_each_keys_order(
    pg_schema: str, kafka_bus: EventBus, tmp_path: Any
) -> None:
    app_pool = await make_pool(pg_schema, 40)
    relay_pools = [await make_pool(pg_schema, 3), await make_pool(pg_schema, 3)]
    outbox = OutboxService(kafka_bus, app_pool)
    await outbox.migrate()
    s = stream()
    keys = [f"account-{k}" for k in range(100)]
    async with app_pool.acquire() as conn:
        await conn.execute("CREATE TABLE accounts (id text PRIMARY KEY, version int NOT NULL)")
        await conn.executemany("INSERT INTO accounts VALUES ($1, 0)", [(k,) for k in keys])

    async def writer(w: int) -> None:
        for i in range(200):
            key = keys[(w * 7 + i * 13) % len(keys)]
            async with app_pool.acquire() as conn, conn.transaction():
                # The aggregate's version: its row lock makes versions follow commit order.
                version = await conn.fetchval(
                    "UPDATE accounts SET version = version + 1 WHERE id = $1 RETURNING version", key
                )
                await outbox.queue_event(
                    stream_name=s,
                    event_data={"event_type": "Moved", "account": key, "version": version},
                    transaction_conn=conn,
                    partition_key=key,
                )

    relays = [OutboxService(kafka_bus, p, poll_interval=0.2) for p in relay_pools]
    for r in relays:
        await r.start()
    await asyncio.gather(*(writer(w) for w in range(50)))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 180
    while loop.time() < deadline and await count(
        app_pool, "SELECT count(*) FROM eventbus_outbox WHERE status <> 'published'"
    ):
        await asyncio.sleep(0.2)
    for r in relays:
        await r.stop()
    assert all(r.published > 0 for r in relays), [r.published for r in relays]
    assert sum(r.published for r in relays) == 10_000

    try:
        records = await read_topic(kafka_bus, s, 10_000, timeout=60)
    except AssertionError:
        # Say which rows are missing from the topic and what the database knows of them.
        records = await read_topic(kafka_bus, s, 0, timeout=10)
        in_topic = {json.loads(r.value)["event_id"] for r in records}
        async with app_pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM eventbus_outbox")
        missing = [dict(r) for r in rows if r["event_id"] not in in_topic]
        raise AssertionError(f"{len(missing)} event(s) not in the topic: {missing[:5]}") from None
    events = [json.loads(r.value) for r in records]
    assert len({e["event_id"] for e in events}) == 10_000, "lost or duplicated"
    last: dict[str, int] = {}
    for e in events:
        assert e["version"] == last.get(e["account"], 0) + 1, f"{e['account']} out of commit order"
        last[e["account"]] = e["version"]
    await app_pool.close()
    for p in relay_pools:
        await p.close()
