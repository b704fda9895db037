"""The observer seam: what the bus reports, on both transports, and what it costs."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from typing import Any

import pytest
from tests.bus.conftest import TRANSPORTS
from tests.bus.conftest import test_configs as suite_configs
from tests.reliability.conftest import BusBuilder
from tests.reliability.test_publish_faults import refused_error, timeout_error

from tradecore_eventbus import CircuitBreakerOpenError, EventBus, Observer, PublishError
from tradecore_eventbus._internal.observability.counters import Counters
from tradecore_eventbus._internal.observability.dispatch import Observers
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker
from tradecore_eventbus.memory_adapter import MemoryTransportAdapter


class Recorder(Observer):
    """Records every callback as (name, args)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]


def _recording(name: str) -> Any:
    def record(self: Recorder, *args: Any) -> None:
        self.calls.append((name, args))

    return record


for _name in ("published", "publish_retried", "publish_failed", "spooled", "spool_drained",
              "dead_lettered", "dead_letter_failed", "consumed", "handler_failed",
              "worker_restarted", "offsets_committed", "consumer_lag", "breaker_transition"):  # fmt: skip
    setattr(Recorder, _name, _recording(_name))


def channel() -> str:
    return f"transport.observed-{uuid.uuid4().hex[:8]}"


async def until(predicate: Any, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_publishing_and_consuming_are_reported_with_counts(
    reliable_bus: BusBuilder, kind: str
) -> None:
    bus = await reliable_bus(kind, observer_sample_interval_seconds=0.05)
    seen = Recorder()
    bus.add_observer(seen)
    ch = channel()
    await asyncio.gather(*(bus.publish_stream(ch, {"event_type": "T", "n": n}) for n in range(3)))
    await bus.publish_batch(ch, [{"event_type": "T", "n": n} for n in range(3, 7)])
    published = seen.named("published")
    assert sum(count for c, count, _ in published if c == ch) == 7
    assert all(latency >= 0 for _, _, latency in published)
    assert bus.counters.published_events == 7

    failing = {2, 5}

    async def handler(event: dict[str, Any]) -> None:
        if event["n"] in failing:
            raise ValueError(f"bad {event['n']}")

    await bus.subscribe_stream(ch, handler, group=f"g-{uuid.uuid4().hex[:6]}")
    await until(lambda: sum(c[2] for c in seen.named("consumed")) >= 7)
    await until(lambda: len(seen.named("dead_lettered")) >= 2)
    assert {args[1] for args in seen.named("dead_lettered")} == {1}
    assert {args[2] for args in seen.named("dead_lettered")} == {"consume"}
    attempts = bus.config.handler_retry.max_attempts
    assert len(seen.named("handler_failed")) == 2 * attempts
    assert {type(args[2]) for args in seen.named("handler_failed")} == {ValueError}
    health = (await bus.health_check())["adapter"]["details"]
    assert health["dead_lettered"] == bus.counters.dead_lettered_events == 2
    assert health["messages_sent"] == 7
    # The sampler reports lag (all fetched: 0 left) and, once the commit interval passed,
    # completed commits.
    await until(lambda: seen.named("consumer_lag"))
    await until(lambda: seen.named("offsets_committed"))
    assert all(lag >= 0 for *_, lag in seen.named("consumer_lag"))


async def test_failures_retries_spool_and_breaker_transitions_are_reported(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(broker=broker)
    seen = Recorder()
    bus.add_observer(seen)
    ch = channel()
    await bus.publish_stream(ch, {"event_type": "Warmup"})
    attempts = bus.config.publish_retry.max_attempts
    broker.injected_failures += [timeout_error() for _ in range(attempts)]
    with pytest.raises(PublishError) as unreachable:
        await bus.publish_stream(ch, {"event_type": "X"})
    assert unreachable.value.dlq == "spool"
    assert len(seen.named("publish_retried")) == attempts - 1
    assert seen.named("spooled") == [(ch, 1, "topic")]
    assert [(a[0], a[1], a[3]) for a in seen.named("publish_failed")] == [(ch, 1, "spool")]
    await bus.replay_spool()
    assert any(a[1] == 1 for a in seen.named("spool_drained"))

    broker.injected_failures.append(refused_error())
    with pytest.raises(PublishError) as refused:
        await bus.publish_stream(ch, {"event_type": "Y"})
    assert refused.value.dlq == "dlq"
    assert seen.named("dead_lettered") == [(ch, 1, "publish")]

    # Refusals until the breaker opens (the failures above count towards it too).
    for _ in range(bus.config.circuit_breaker.failure_threshold + 1):
        broker.injected_failures += [refused_error()]
        try:
            await bus.publish_stream(ch, {"event_type": "Z"})
        except CircuitBreakerOpenError:
            break
        except PublishError:
            continue
    else:
        raise AssertionError("the breaker never opened")
    assert ("CLOSED", "OPEN") in [(a[1], a[2]) for a in seen.named("breaker_transition")]


async def test_a_raising_observer_is_logged_once_and_never_breaks_a_publish(
    reliable_bus: BusBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Observer):
        def published(self, channel: str, count: int, latency_s: float) -> None:
            raise RuntimeError("observer bug")

    seen = Recorder()
    bus = await reliable_bus()
    bus.add_observer(Broken())
    bus.add_observer(seen)
    ch = channel()
    with caplog.at_level(logging.ERROR, logger="tradecore_eventbus.observers"):
        for n in range(3):
            result = await bus.publish_stream(ch, {"event_type": "T", "n": n}, partition_key="k")
            assert result.offset == n
    assert len([r for r in caplog.records if "observer bug" in (r.exc_text or "")]) == 1
    assert len(seen.named("published")) == 3, "the next observer is still called"


def test_only_the_callbacks_an_observer_overrides_are_called() -> None:
    class PublishCounter(Observer):
        def published(self, channel: str, count: int, latency_s: float) -> None:
            pass

    counters = Counters()
    observers = Observers(counters, [PublishCounter()])
    # consumed: only the counters listen, so the call is theirs, with nothing in between.
    assert observers.consumed == counters.consumed
    assert observers.published != counters.published
    assert not observers.listens("consumer_lag", "offsets_committed")
    observers.add(Recorder())
    assert observers.listens("consumer_lag")


def test_an_observer_that_is_not_one_is_refused_by_name() -> None:
    from tradecore_eventbus import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="observers"):
        EventBus(MemoryTransportAdapter(), observers=[object()])  # type: ignore[list-item]


async def test_no_sampling_task_runs_when_nobody_listens_for_commits_or_lag(
    reliable_bus: BusBuilder,
) -> None:
    bus = await reliable_bus()
    await bus.publish_stream(channel(), {"event_type": "T"})
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "eventbus-observer-sampler"]
    bus.add_observer(Recorder())
    assert [t for t in asyncio.all_tasks() if t.get_name() == "eventbus-observer-sampler"]


async def test_observers_given_to_the_constructor_are_called() -> None:
    seen = Recorder()
    bus_config, tc = suite_configs()
    bus = EventBus(MemoryTransportAdapter(replace(bus_config), tc), observers=[seen])
    try:
        await bus.publish(channel(), {"event_type": "T"})
        assert len(seen.named("published")) == 1
    finally:
        await bus.close()
