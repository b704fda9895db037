"""Publishing under injected faults (in-memory broker): retry, DLQ, spool, breaker."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from tests.reliability.conftest import BusBuilder

from tradecore_eventbus import (
    BrokerUnavailableError,
    CircuitBreakerOpenError,
    EventBusConfig,
    KafkaError,
    PublishError,
    RetryConfig,
    TransportTimeoutError,
)
from tradecore_eventbus._internal.reliability import backoff as backoff_module
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker


def timeout_error() -> TransportTimeoutError:
    return TransportTimeoutError(
        "timed out", code=-192, code_name="MessageTimedOut", possibly_persisted=False
    )


def refused_error() -> KafkaError:
    return KafkaError("refused", code=29, code_name="TopicAuthorizationFailed", retriable=False)


def channel() -> str:
    return f"transport.faults-{uuid.uuid4().hex[:8]}"


def messages(bus: Any, ch: str) -> list[dict[str, Any]]:
    return bus.adapter.get_published_messages(ch)  # type: ignore[no-any-return]


async def test_a_retriable_failure_is_retried_and_sent_once(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(broker=broker)
    ch = channel()
    await bus.publish_stream(ch, {"event_type": "Warmup"}, partition_key="k")
    broker.injected_failures += [timeout_error(), timeout_error()]
    result = await bus.publish_stream(ch, {"event_type": "OrderPlaced", "n": 1}, partition_key="k")
    assert result.offset == 1
    assert [m["event_type"] for m in messages(bus, ch)] == ["Warmup", "OrderPlaced"]
    status = await bus.get_circuit_breaker_status()
    assert status[ch]["total_success"] == 2
    assert status[ch]["total_failures"] == 0


async def test_a_non_retriable_failure_is_not_retried_and_goes_to_the_dlq(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(broker=broker)
    ch = channel()
    await bus.publish_stream(ch, {"event_type": "Warmup"})
    broker.injected_failures.append(refused_error())
    with pytest.raises(PublishError) as info:
        await bus.publish_stream(
            ch, {"event_type": "OrderPlaced", "order_id": "7"}, partition_key="u1"
        )
    err = info.value
    assert err.dlq == "dlq"
    assert isinstance(err.cause, KafkaError)
    assert not err.retriable
    assert broker.injected_failures == []
    [dead] = messages(bus, f"{ch}.dlq")
    assert dead["order_id"] == "7"
    meta = dead["_dlq_metadata"]
    assert meta["original_channel"] == ch
    assert meta["error_type"] == "KafkaError"
    assert meta["retry_count"] == 0, "a non-retriable error is not retried"
    assert meta["failed_at"].endswith("Z")
    assert [m["event_type"] for m in messages(bus, ch)] == ["Warmup"]


async def test_the_dlq_suffix_is_configurable(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(broker=broker, dlq_topic_suffix=".dead")
    ch = channel()
    await bus.publish_stream(ch, {"event_type": "Warmup"})
    broker.injected_failures.append(refused_error())
    with pytest.raises(PublishError):
        await bus.publish_stream(ch, {"event_type": "X"})
    assert len(messages(bus, f"{ch}.dead")) == 1
    assert messages(bus, f"{ch}.dlq") == []


async def test_with_the_dlq_disabled_the_caller_is_told_nothing_kept_it(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(broker=broker, enable_dlq=False)
    ch = channel()
    await bus.publish_stream(ch, {"event_type": "Warmup"})
    broker.injected_failures.append(refused_error())
    with pytest.raises(PublishError) as info:
        await bus.publish_stream(ch, {"event_type": "X"})
    assert info.value.dlq is None
    assert "ENABLE_DLQ=false" in str(info.value)
    assert messages(bus, f"{ch}.dlq") == []
    assert f"{bus.adapter.topic_for(ch)}.dlq" not in await bus.adapter.list_topics()


async def test_an_unreachable_broker_spools_and_the_spool_drains_in_order(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(broker=broker)
    ch = channel()
    await bus.publish_stream(ch, {"event_type": "E", "n": 0}, partition_key="k")
    broker.available = False
    for n in (1, 2):
        with pytest.raises(PublishError) as info:
            await bus.publish_stream(ch, {"event_type": "E", "n": n}, partition_key="k")
        assert info.value.spooled
        # The first waits out its delivery; the next one sees the broker is still away.
        assert isinstance(info.value.cause, TransportTimeoutError | BrokerUnavailableError)
    health = await bus.health_check()
    assert health["healthy"] is False
    assert health["adapter"]["details"]["spool"]["pending"] == 2
    broker.available = True
    # The next publish first drains the spool, so the key's order holds.
    await bus.publish_stream(ch, {"event_type": "E", "n": 3}, partition_key="k")
    assert [m["n"] for m in messages(bus, ch)] == [0, 1, 2, 3]
    assert bus.spool.count() == 0


async def test_replay_spool_publishes_what_is_left(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(broker=broker)
    ch = channel()
    await bus.publish_stream(ch, {"event_type": "Warmup"})
    broker.available = False
    with pytest.raises(PublishError):
        await bus.publish_batch(ch, [{"event_type": "E", "n": n} for n in range(3)])
    broker.available = True
    assert await bus.replay_spool() == {
        "sent": 3,
        "already_delivered": 0,
        "remaining": 0,
        "dead": 0,
    }
    assert [m.get("n") for m in messages(bus, ch)] == [None, 0, 1, 2]


async def test_a_lost_acknowledgement_is_not_resent(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(broker=broker, publish_retry=RetryConfig(max_attempts=1))
    ch = channel()
    await bus.publish_stream(ch, {"event_type": "Warmup"})
    broker.lost_acks = 1  # written, but reported as timed out (possibly persisted)
    with pytest.raises(PublishError) as info:
        await bus.publish_stream(ch, {"event_type": "E", "n": 1})
    assert info.value.spooled
    report = await bus.replay_spool()
    assert report == {"sent": 0, "already_delivered": 1, "remaining": 0, "dead": 0}
    assert [m.get("n") for m in messages(bus, ch)] == [None, 1], "the event was written twice"


def fail_nth_append(broker: MemoryBroker, n: int, error: Exception) -> None:
    """The n-th append from now fails with ``error`` (once)."""
    original = broker.check_append
    count = 0

    def check() -> Exception | None:
        nonlocal count
        count += 1
        if count == n:
            return error
        return original()

    broker.check_append = check  # type: ignore[method-assign]


async def test_a_partly_failed_batch_never_resends_what_was_acknowledged(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(broker=broker)
    ch = channel()
    await bus.publish_stream(ch, {"event_type": "Warmup"})
    # The third record fails once (retriable): only it is sent again.
    fail_nth_append(broker, 3, timeout_error())
    results = await bus.publish_batch(ch, [{"event_type": "E", "n": n} for n in range(5)])
    assert len(results) == 5
    assert sorted(m["n"] for m in messages(bus, ch) if "n" in m) == [0, 1, 2, 3, 4]

    # One record refused for good: the others are delivered once, it goes to the DLQ.
    fail_nth_append(broker, 2, refused_error())
    with pytest.raises(PublishError) as info:
        await bus.publish_batch(ch, [{"event_type": "F", "n": n} for n in range(4)])
    assert [isinstance(r, tuple) for r in info.value.results] == [True, False, True, True]
    assert sorted(m["n"] for m in messages(bus, ch) if m["event_type"] == "F") == [0, 2, 3]
    assert [m["n"] for m in messages(bus, f"{ch}.dlq")] == [1]


async def test_the_breaker_opens_after_failures_and_refuses_at_once(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    # No DLQ here, so that each failed publish uses exactly one injected failure.
    bus = await reliable_bus(
        broker=broker, publish_retry=RetryConfig(max_attempts=1), enable_dlq=False
    )
    ordinary, critical = channel(), channel()
    bus.mark_channel_as_critical(critical)
    for ch in (ordinary, critical):
        await bus.publish_stream(ch, {"event_type": "Warmup"})
    broker.injected_failures += [refused_error() for _ in range(8)]
    for _ in range(3):
        with pytest.raises(PublishError):
            await bus.publish_stream(critical, {"event_type": "X"})
    with pytest.raises(CircuitBreakerOpenError) as info:
        await bus.publish_stream(critical, {"event_type": "X"})
    assert info.value.channel == critical
    for _ in range(4):
        with pytest.raises(PublishError):
            await bus.publish_stream(ordinary, {"event_type": "X"})
    status = await bus.get_circuit_breaker_status()
    assert status[ordinary]["state"] == "CLOSED"
    assert status[ordinary]["failure_count"] == 4
    with pytest.raises(PublishError):
        await bus.publish_stream(ordinary, {"event_type": "X"})
    assert (await bus.get_circuit_breaker_status())[ordinary]["state"] == "OPEN"
    health = await bus.health_check()
    assert sorted(health["open_circuits"]) == sorted([ordinary, critical])
    assert health["open_circuits_count"] == 2
    assert health["healthy"] is False
    assert health["config"]["critical_channels"] == [critical]
    assert health["config"]["total_channels_monitored"] == 2


async def test_critical_channels_get_more_attempts(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(
        broker=broker,
        publish_retry=RetryConfig(max_attempts=2, initial_delay_ms=1, max_delay_ms=1),
        critical_publish_max_attempts=4,
    )
    ordinary, critical = channel(), channel()
    bus.mark_channel_as_critical(critical)
    for ch in (ordinary, critical):
        await bus.publish_stream(ch, {"event_type": "Warmup"})
    broker.injected_failures += [timeout_error() for _ in range(3)]
    await bus.publish_stream(critical, {"event_type": "X"})  # 3 failures, 4th attempt succeeds
    broker.injected_failures += [timeout_error() for _ in range(3)]
    with pytest.raises(PublishError):
        await bus.publish_stream(ordinary, {"event_type": "X"})  # 2 attempts only
    assert len(broker.injected_failures) == 1


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EVENT_BUS_PUBLISH_RETRY_MAX_ATTEMPTS", "1"),
        ("EVENT_BUS_PUBLISH_RETRY_MAX_ATTEMPTS", "4"),
        ("EVENT_BUS_PUBLISH_RETRY_INITIAL_DELAY_MS", "30"),
        ("EVENT_BUS_PUBLISH_RETRY_MAX_DELAY_MS", "35"),
        ("EVENT_BUS_PUBLISH_RETRY_BACKOFF_FACTOR", "3.0"),
    ],
)
async def test_each_retry_variable_changes_the_schedule(
    reliable_bus: BusBuilder,
    broker: MemoryBroker,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
) -> None:
    base = {
        "EVENT_BUS_PUBLISH_RETRY_MAX_ATTEMPTS": "3",
        "EVENT_BUS_PUBLISH_RETRY_INITIAL_DELAY_MS": "10",
        "EVENT_BUS_PUBLISH_RETRY_MAX_DELAY_MS": "1000",
        "EVENT_BUS_PUBLISH_RETRY_BACKOFF_FACTOR": "2.0",
    }
    env = {**base, variable: value}
    retry = EventBusConfig.from_env(env).publish_retry
    bus = await reliable_bus(broker=broker, publish_retry=retry)
    ch = channel()
    await bus.publish_stream(ch, {"event_type": "Warmup"})
    slept: list[float] = []

    async def record_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(backoff_module, "sleep", record_sleep)
    broker.injected_failures += [timeout_error() for _ in range(10)]
    with pytest.raises(PublishError):
        await bus.publish_stream(ch, {"event_type": "X"})
    attempts = retry.max_attempts
    assert len(slept) == attempts - 1, "one backoff between consecutive attempts"
    assert 10 - len(broker.injected_failures) == attempts
    for n, delay in enumerate(slept, start=1):
        assert 0 <= delay * 1000 <= retry.delay_cap_ms(n) + 1e-6
    caps = [retry.delay_cap_ms(n) for n in range(1, 4)]
    expected = {
        ("EVENT_BUS_PUBLISH_RETRY_INITIAL_DELAY_MS", "30"): [30, 60, 120],
        ("EVENT_BUS_PUBLISH_RETRY_MAX_DELAY_MS", "35"): [10, 20, 35],
        ("EVENT_BUS_PUBLISH_RETRY_BACKOFF_FACTOR", "3.0"): [10, 30, 90],
    }.get((variable, value))
    if expected is not None:
        assert caps == expected
