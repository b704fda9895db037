"""What the bus does with refused credentials (decision 47), on the in-memory broker with the
refusal injected: the caller gets ``AuthenticationError``; nothing is retried, spooled or
dead-lettered; the breaker does not count it; an outbox row stays pending."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiosqlite
import pytest
from tests.reliability.conftest import BusBuilder

from tradecore_eventbus import (
    AuthenticationError,
    AuthorizationError,
    EventBus,
    PublishError,
    TransportError,
    exceptions,
)
from tradecore_eventbus import __all__ as exported
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker
from tradecore_eventbus.outbox_service import OutboxService


def refused() -> AuthenticationError:
    """What the Rust core raises for a record purged because the credentials were refused."""
    return AuthenticationError(
        "produce failed: Local: Authentication failure (Authentication): SASL authentication "
        "error: Authentication failed due to invalid credentials with SASL mechanism "
        "SCRAM-SHA-512",
        code=-169,
        code_name="Authentication",
        retriable=False,
    )


def channel() -> str:
    return f"transport.refused-{uuid.uuid4().hex[:8]}"


def test_the_classes_are_typed_final_and_exported() -> None:
    for cls in (AuthenticationError, AuthorizationError):
        assert issubclass(cls, TransportError)
        assert cls.retriable is False
        assert cls.__name__ in exported
        assert cls.__name__ in exceptions.__all__
    assert not issubclass(AuthenticationError, ConnectionError | TimeoutError | PublishError)


async def test_a_refused_publish_raises_and_keeps_nothing(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(broker=broker)
    ch = channel()
    await bus.publish_stream(ch, {"event_type": "Warmup"}, partition_key="k")
    threshold = bus.config.circuit_breaker.failure_threshold
    for n in range(threshold + 2):
        broker.injected_failures.append(refused())
        with pytest.raises(AuthenticationError) as info:
            await bus.publish_stream(ch, {"event_type": "OrderPlaced", "n": n})
        err = info.value
        assert err.channel == ch
        assert err.results == [], "nothing of it was acknowledged"
        assert isinstance(err.__cause__, AuthenticationError)
        assert "nothing was kept" in str(err)
        assert "SASL authentication" in str(err)
        assert broker.injected_failures == [], "not retried"
    assert bus.spool.count() == 0
    assert bus.adapter.get_published_messages(f"{ch}.dlq") == []  # type: ignore[attr-defined]
    status = (await bus.get_circuit_breaker_status())[ch]
    assert status["state"] == "CLOSED"
    assert status["total_failures"] == 0
    assert status["failure_count"] == 0
    # The channel is fine once the credentials are.
    again = await bus.publish_stream(ch, {"event_type": "OrderPlaced", "n": 99}, partition_key="k")
    assert again.offset == 1


async def test_what_was_acknowledged_before_a_refusal_is_reported_not_lost(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(broker=broker)
    ch = channel()
    await bus.publish_stream(ch, {"event_type": "Warmup"}, partition_key="k")
    broker.injected_failures.append(refused())  # the first record of the batch only
    with pytest.raises(AuthenticationError) as info:
        await bus.publish_batch(
            ch, [{"event_type": "OrderPlaced", "n": n} for n in (1, 2)], partition_key="k"
        )
    first, second = info.value.results
    assert isinstance(first, AuthenticationError)
    assert isinstance(second, tuple), "the acknowledged event is reported as delivered"
    published = bus.adapter.get_published_messages(ch)  # type: ignore[attr-defined]
    assert [m.get("n") for m in published] == [None, 2]
    assert bus.spool.count() == 0


async def test_coalesced_publishes_each_learn_their_own_outcome(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(broker=broker)
    ch = channel()
    await bus.publish_stream(ch, {"event_type": "Warmup"}, partition_key="k")
    broker.injected_failures.append(refused())
    # Started in one turn: one batch, whose first record is refused.
    outcomes = await asyncio.gather(
        bus.publish_stream(ch, {"event_type": "OrderPlaced", "n": 1}, partition_key="k"),
        bus.publish_stream(ch, {"event_type": "OrderPlaced", "n": 2}, partition_key="k"),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], AuthenticationError)
    assert not isinstance(outcomes[1], BaseException)
    assert outcomes[1].event["n"] == 2


async def test_an_outbox_row_waits_out_refused_credentials(
    tmp_path: Path, memory_bus: tuple[EventBus, MemoryBroker]
) -> None:
    bus, broker = memory_bus
    async with aiosqlite.connect(tmp_path / "app.db") as conn:
        outbox = OutboxService(bus, conn, max_attempts=2)
        outbox.retry = outbox.retry.__class__(max_attempts=2, initial_delay_ms=0, max_delay_ms=0)
        await outbox.migrate()
        s = channel()
        await bus.publish_stream(s, {"event_type": "Warmup"})
        await outbox.queue_event(
            stream_name=s, event_data={"event_type": "OrderPlaced", "n": 1}, transaction_conn=conn
        )
        await conn.commit()
        for _ in range(4):  # twice max_attempts: a refusal would have made it dead by now
            broker.injected_failures.append(refused())
            assert await outbox.run_once() == 0
        health = await outbox.health()
        assert health["dead"] == 0, health
        assert health["backlog"] == 1, health
        assert bus.adapter.get_published_messages(f"{s}.dlq") == []  # type: ignore[attr-defined]
        assert await outbox.run_once() == 1, "published once the credentials work"
        await outbox.stop()
