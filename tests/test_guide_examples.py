"""The code examples of the Event Bus Integration Guide, run as written.

Only the import lines differ (``app.infra...`` -> ``tradecore_eventbus...``). Where the guide
shows a call that this package rejects by design (an invalid event raises), the call is
wrapped in ``pytest.raises``. Channels get a unique suffix so runs do not see each other.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, Literal

import pytest

RUN = uuid.uuid4().hex[:8]


@pytest.fixture(autouse=True)
def _guide_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The guide reads configuration from the environment; point it at the test broker and
    # keep waits short.
    monkeypatch.setenv("REDPANDA_BOOTSTRAP_SERVERS", "localhost:19092")
    monkeypatch.setenv("EVENT_BUS_SUB_BLOCK_MS", "200")
    monkeypatch.setenv("KAFKA_CONSUMER_GROUP_ID_PREFIX", f"guide-{RUN}")
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", f"guide-{RUN}")


async def initialize() -> Any:
    # --- Basic Usage 1. Initialize EventBus -------------------------------------------
    from tradecore_eventbus.event_bus import EventBus
    from tradecore_eventbus.redpanda_adapter import RedpandaTransportAdapter
    from tradecore_eventbus.eventbus_transport_config import EventBusConfig, TransportConfig

    # Create transport adapter
    adapter = RedpandaTransportAdapter(
        bootstrap_servers="localhost:19092",
        client_id="my-service",
        event_bus_config=EventBusConfig.from_env(),
        transport_config=TransportConfig.from_env()
    )

    # Initialize topics (optional but recommended)
    await adapter.initialize_topics(enable_auto_create=True)

    # Create EventBus
    event_bus = EventBus(
        adapter=adapter,
        validate_on_publish=True,  # Enable Pydantic validation
        event_bus_config=EventBusConfig.from_env(),
        transport_config=TransportConfig.from_env()
    )
    return event_bus


@pytest.mark.kafka
async def test_basic_usage_publish_subscribe_and_batches() -> None:
    event_bus = await initialize()
    received: list[Dict[str, Any]] = []

    # --- 4. Subscribe to Pub/Sub --------------------------------------------------------
    async def handle_price_update(event: Dict[str, Any]):
        print(f"Price update for {event['symbol']}: ${event['price']}")
        received.append(event)

    # Subscribe (returns subscription_id for unsubscribe)
    subscription_id = await event_bus.subscribe(
        channel="realtime.price-updates",
        handler=handle_price_update,
        filter_fn=lambda e: e.get("symbol") == "AAPL"  # Optional filter
    )

    # --- 2. Publish to Pub/Sub (Ephemeral) ----------------------------------------------
    # Real-time notification (fire-and-forget)
    await event_bus.publish(
        channel="realtime.price-updates",
        event_data_dict={
            "event_type": "PriceUpdated",
            "symbol": "AAPL",
            "price": 150.25,
            "timestamp": datetime.now(timezone.utc).isoformat()
        }
    )

    # --- 5. Subscribe to Stream (Consumer Group) -----------------------------------------
    processed: list[str] = []

    async def handle_domain_event(event: Dict[str, Any]):
        print(f"Processing event: {event['event_type']}")
        processed.append(event["event_type"])

    # Subscribe to durable stream with consumer group
    await event_bus.subscribe_stream(
        channel="transport.broker-connection-events",
        handler=handle_domain_event,
        group="event-processor-workers",
        consumer="worker-1",
        batch_size=500,      # Max events per poll
        block_ms=10000       # Poll timeout
    )

    # --- 3. Publish to Stream (Durable) --------------------------------------------------
    # Domain event (persistent, replayable)
    await event_bus.publish_stream(
        stream_name="transport.broker-connection-events",
        event_data_dict={
            "event_type": "ConnectionEstablished",
            "connection_id": "conn-123",
            "broker_id": "alpaca",
            "user_id": "user-456"
        }
    )

    # --- 6. Batch Publishing ---------------------------------------------------------------
    # Publish multiple events efficiently
    events = [
        {"event_type": "OrderPlaced", "order_id": "1"},
        {"event_type": "OrderPlaced", "order_id": "2"},
        {"event_type": "OrderPlaced", "order_id": "3"}
    ]

    await event_bus.publish_batch(
        channel="transport.order-events",
        events_data_list=events,
        partition_key="user-123"  # Optional: ensure same partition
    )

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while (not received or not processed) and loop.time() < deadline:
        await asyncio.sleep(0.1)
    assert received[0]["price"] == 150.25
    assert processed == ["ConnectionEstablished"]

    # Later: Unsubscribe
    await event_bus.unsubscribe(subscription_id)
    await event_bus.close()


@pytest.mark.kafka
async def test_advanced_patterns_critical_channels_and_retry_config() -> None:
    event_bus = await initialize()
    event_data = {"event_type": "OrderPlaced", "order_id": "42"}

    # --- 1. Mark Channel as Critical ---------------------------------------------------------
    # Mark channel as critical (before first publish)
    event_bus.mark_channel_as_critical("transport.order-events")

    # Now publishes to this channel use enhanced reliability
    await event_bus.publish_stream("transport.order-events", event_data)

    # --- 2. Custom Retry Configuration ---------------------------------------------------------
    from tradecore_eventbus.retry import RetryConfig
    from tradecore_eventbus.eventbus_transport_config import EventBusConfig

    # Configure per-topic retry in EventBusConfig
    config = EventBusConfig.from_env()
    config.add_topic_config(
        topic_name="critical-events",
        topic_type="stream",
        retry_config=RetryConfig(
            max_attempts=10,
            initial_delay_ms=50,
            max_delay_ms=30000,
            backoff_factor=1.5
        )
    )
    assert config.retry_for("critical-events", critical=False).max_attempts == 10
    assert event_bus.critical_channels == ["transport.order-events"]
    await event_bus.close()


@pytest.mark.kafka
async def test_event_validation() -> None:
    event_bus = await initialize()

    # --- 4. Event Validation ------------------------------------------------------------------
    from tradecore_eventbus.base_model import BaseEvent
    from tradecore_eventbus import event_registry

    class OrderPlacedEvent(BaseEvent):
        event_type: Literal["OrderPlaced"] = "OrderPlaced"
        order_id: str
        symbol: str
        quantity: int

    # Register in EVENT_TYPE_TO_PYDANTIC_MODEL
    saved = dict(event_registry.EVENT_TYPE_TO_PYDANTIC_MODEL)
    event_registry.EVENT_TYPE_TO_PYDANTIC_MODEL.update({
        "OrderPlaced": OrderPlacedEvent,
        # ... other events
    })
    try:
        # Valid event - passes
        await event_bus.publish_stream("orders", {
            "event_type": "OrderPlaced",
            "order_id": "123",
            "symbol": "AAPL",
            "quantity": 100
        })

        # Invalid event - rejected (missing quantity)
        with pytest.raises(ValueError, match="quantity"):
            await event_bus.publish_stream("orders", {
                "event_type": "OrderPlaced",
                "order_id": "123",
                "symbol": "AAPL"
                # ValidationError logged, event NOT sent
            })
    finally:
        event_registry.EVENT_TYPE_TO_PYDANTIC_MODEL.clear()
        event_registry.EVENT_TYPE_TO_PYDANTIC_MODEL.update(saved)
        await event_bus.close()


@pytest.mark.kafka
async def test_health_monitoring_and_graceful_shutdown() -> None:
    event_bus = await initialize()

    # --- Health Monitoring 1. Health Check ------------------------------------------------------
    health = await event_bus.health_check()
    assert health["adapter"]["healthy"] is True

    # --- 3. Connection Check ----------------------------------------------------------------------
    # Quick ping test
    is_connected = await event_bus.check_connection()
    if not is_connected:
        print("EventBus adapter connection failed")
    assert is_connected

    # --- Best Practices 3. Error Handling ---------------------------------------------------------
    from tradecore_eventbus import CircuitBreakerOpenError
    import logging

    logger = logging.getLogger("guide")
    event = {"event_type": "OrderPlaced", "order_id": "7"}
    try:
        await event_bus.publish_stream("transport.orders", event)
    except CircuitBreakerOpenError:
        # Circuit breaker tripped - system unhealthy
        logger.error("EventBus circuit breaker open")
        # Fallback: queue locally, retry later
    except Exception as e:
        logger.error(f"Failed to publish: {e}")
        # Don't crash the application

    # --- Best Practices 4. Graceful Shutdown ----------------------------------------------------
    async def shutdown():
        logger.info("Shutting down EventBus...")
        await event_bus.close()  # Waits for in-flight messages
        logger.info("EventBus closed")

    await shutdown()
    assert event_bus.closed


@pytest.mark.kafka
@pytest.mark.postgres
async def test_exactly_once_with_the_outbox(pg_pool: Any) -> None:
    event_bus = await initialize()
    # The guide's pg_client: an asyncpg pool behind its `transaction()` helper.
    from tradecore_eventbus.outbox_service import PgClient

    pg_client = PgClient(pg_pool)
    async with pg_client.transaction() as conn:
        await conn.execute("CREATE TABLE orders (id text)")

    # --- Advanced Patterns 5. Exactly-Once Delivery (Outbox Pattern) --------------------------
    from tradecore_eventbus.outbox_service import OutboxService

    outbox = OutboxService(event_bus, pg_client)
    await outbox.migrate()  # the tables, created explicitly once

    # Publish with transaction guarantee
    async with pg_client.transaction() as conn:
        # Save to database
        await conn.execute("INSERT INTO orders (id) VALUES ('1')")

        # Queue event in outbox (same transaction)
        await outbox.queue_event(
            stream_name="transport.order-events",
            event_data={"event_type": "OrderPlaced", "order_id": "1"},
            transaction_conn=conn
        )
        # Commit transaction

    # Background worker processes outbox → publishes to EventBus
    # Guarantees: event published IFF database committed
    assert await outbox.run_once() == 1
    await event_bus.close()


async def test_testing_with_the_in_memory_adapter() -> None:
    # --- Best Practices 5. Testing ------------------------------------------------------------------
    from tradecore_eventbus.memory_adapter import MemoryTransportAdapter
    from tradecore_eventbus.event_bus import EventBus

    adapter = MemoryTransportAdapter()
    event_bus = EventBus(adapter, validate_on_publish=True)

    # Test message flow
    await event_bus.publish("test.channel", {"event_type": "Test"})
    messages = adapter.get_published_messages("test.channel")
    assert len(messages) == 1
    await event_bus.close()


@pytest.mark.kafka
async def test_migration_after_eventbus() -> None:
    from tradecore_eventbus.event_bus import reset_event_bus

    reset_event_bus()
    event = {"event_type": "Migrated", "n": 1}
    try:
        # --- Migration: After (EventBus) ----------------------------------------------------
        from tradecore_eventbus.event_bus import get_event_bus

        event_bus = get_event_bus()  # Singleton, already started
        await event_bus.publish_stream("transport.my-events", event)
        # Circuit breaker, retry, DLQ, validation - all automatic
    finally:
        await get_event_bus().close()
        reset_event_bus()
