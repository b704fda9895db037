"""Retry topics under faults, on the memory transport (faults injected at its broker): the
original is committed only once its retry copy is acknowledged, a retry topic that refuses
the copy sends the event to the DLQ, and without a DLQ an event stays in the last tier
(decision 107)."""

from __future__ import annotations

import json
from typing import Any

from tests.reliability.conftest import BusBuilder, read_topic
from tests.retry_topics.conftest import IN_PLACE, Recorder, channel, eventually

from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker
from tradecore_eventbus.exceptions import BrokerUnavailableError
from tradecore_eventbus.testing import MemoryFaults


async def test_the_original_is_committed_only_after_its_retry_copy_is_acknowledged(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus("memory", broker=broker, handler_retry=IN_PLACE)
    ch = channel()
    MemoryFaults(bus).fail_next_publish(
        f"{ch}.retry.1", BrokerUnavailableError("injected: broker away"), count=4
    )
    scheduled_when_handled: dict[int, int] = {}
    recorder = Recorder(poison={0})

    async def handler(event: dict[str, Any]) -> None:
        await recorder(event)
        scheduled_when_handled[event["n"]] = bus.counters.retry_scheduled_events

    sub = await bus.subscribe_stream(
        ch, handler, group="g", consumer="w1", retry_topic_delays_ms=(60_000,)
    )
    [first, _] = await bus.publish_batch(
        ch, [{"event_type": "Job", "n": 0}, {"event_type": "Job", "n": 1}], "k"
    )
    await eventually(lambda: 1 in recorder.handled)
    # The partition waited while the retry topic did not take the copy ...
    assert scheduled_when_handled[1] == 1
    health = await bus.health_check()
    faults = health["adapter"]["details"]["consumer_faults"][f"{ch}:suite-g"]
    assert faults["retried_to_topic"] == 1
    assert "injected: broker away" in (faults["last_error"] or "")
    # ... and committed past the poison once it had: the copy is what the group owns now.
    await bus.unsubscribe(sub)
    assert broker.committed("suite-g", (bus.adapter.topic_for(ch), first.partition)) == 2
    [copy] = await read_topic(bus, f"{ch}.retry.1", 1)
    assert json.loads(copy.value)["n"] == 0


async def test_a_retry_topic_refusing_the_copy_sends_the_event_to_the_dlq(
    reliable_bus: BusBuilder,
) -> None:
    bus = await reliable_bus("memory", handler_retry=IN_PLACE)
    ch = channel()
    MemoryFaults(bus).fail_next_publish(f"{ch}.retry.1")  # refused for good
    recorder = Recorder(poison={0})
    await bus.subscribe_stream(ch, recorder, group="g", retry_topic_delays_ms=(100,))
    await bus.publish_batch(ch, [{"event_type": "Job", "n": n} for n in range(3)], "k")
    await eventually(lambda: len(recorder.handled) == 2)
    [dead] = await read_topic(bus, f"{ch}.dlq", 1)
    assert json.loads(dead.value)["n"] == 0
    assert bus.counters.retry_scheduled_events == 0


async def test_without_a_dlq_an_event_stays_in_the_last_tier(reliable_bus: BusBuilder) -> None:
    bus = await reliable_bus("memory", handler_retry=IN_PLACE, enable_dlq=False)
    ch = channel()
    recorder = Recorder(poison={0})
    await bus.subscribe_stream(ch, recorder, group="g", retry_topic_delays_ms=(20, 50))
    await bus.publish_batch(ch, [{"event_type": "Job", "n": n} for n in range(3)], "k")
    await eventually(lambda: len(recorder.attempts(0)) >= IN_PLACE.max_attempts + 5)
    assert sorted(recorder.handled) == [1, 2]
    by_tier = bus.counters.retry_scheduled_by_tier
    assert by_tier[1] == 1
    assert by_tier[2] >= 3, "past the last tier it goes back into the last tier"


async def test_a_crash_while_an_event_waits_in_a_retry_topic_loses_nothing(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    # A process killed mid-retry: its consumers neither commit nor leave their groups; the
    # replacement gets their partitions once their sessions time out.
    session = {"consumer_session_timeout_ms": 500, "consumer_heartbeat_interval_ms": 100}
    first = await reliable_bus("memory", broker=broker, transport=session, handler_retry=IN_PLACE)
    ch = channel()
    await first.subscribe_stream(
        ch, Recorder(poison={7}), group="g", consumer="w1", retry_topic_delays_ms=(300,)
    )
    await first.publish_stream(ch, {"event_type": "Job", "n": 7}, partition_key="k")
    await eventually(lambda: first.counters.retry_scheduled_events == 1)
    first.adapter.simulate_crash()

    second = await reliable_bus("memory", broker=broker, transport=session, handler_retry=IN_PLACE)
    fixed = Recorder()
    await second.subscribe_stream(ch, fixed, group="g", consumer="w2", retry_topic_delays_ms=(300,))
    # Handled from the retry topic, and maybe once more from the channel's topic if the
    # crash came before the original's commit (at-least-once: a duplicate, never a loss).
    await eventually(lambda: 7 in fixed.handled)
    assert 1 <= len(fixed.attempts(7)) <= 2


async def test_prometheus_counts_retries_per_tier(reliable_bus: BusBuilder) -> None:
    from prometheus_client import CollectorRegistry

    from tradecore_eventbus.prometheus import PrometheusObserver

    registry = CollectorRegistry()
    bus = await reliable_bus("memory", handler_retry=IN_PLACE)
    bus.add_observer(PrometheusObserver(registry))
    ch = channel()
    recorder = Recorder(failures={0: 4})
    await bus.subscribe_stream(ch, recorder, group="g", retry_topic_delays_ms=(20, 20))
    await bus.publish_stream(ch, {"event_type": "Job", "n": 0})
    await eventually(lambda: 0 in recorder.handled)
    for tier in ("1", "2"):
        sample = registry.get_sample_value(
            "tradecore_eventbus_retry_scheduled_events_total",
            {"channel": ch, "group": "suite-g", "tier": tier},
        )
        assert sample == 1
