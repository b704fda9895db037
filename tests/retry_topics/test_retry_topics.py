"""Retry topics (decisions 105-107) on both transports: a failing event waits in
``{channel}.retry.{n}`` while its partition moves on, is retried when due, and ends in the
DLQ with its history after the last tier; nothing is lost, not even across a restart."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tests.reliability.conftest import BusBuilder, read_topic
from tests.retry_topics.conftest import IN_PLACE, Recorder, channel, eventually

from tradecore_eventbus import EventBus
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker
from tradecore_eventbus.observers import Observer


def retry_header(record: Any, name: str) -> int:
    raw = record.header(f"retry.{name}")
    assert raw is not None, f"retry.{name} missing"
    return int(raw)


async def subscribe(bus: EventBus, ch: str, handler: Any, delays: tuple[int, ...]) -> str:
    return await bus.subscribe_stream(
        ch, handler, group="retry-workers", consumer="w1", retry_topic_delays_ms=delays
    )


async def test_a_poison_event_no_longer_delays_the_events_behind_it(
    reliable_bus: BusBuilder, kind: str
) -> None:
    delays = (1500, 1500)
    bus = await reliable_bus(kind, handler_retry=IN_PLACE)
    ch = channel()
    recorder = Recorder(poison={0})
    await subscribe(bus, ch, recorder, delays)
    # One key: the poison event and the 20 behind it share a partition.
    await bus.publish_batch(ch, [{"event_type": "Job", "n": n} for n in range(21)], "one")

    await eventually(lambda: len(recorder.handled) == 20)
    in_place = recorder.attempts(0)
    assert len(in_place) == IN_PLACE.max_attempts, "the in-place attempts ran first"
    last_in_place = in_place[-1]
    last_behind = max(recorder.handled.values())
    behind_delay = last_behind - last_in_place
    print(
        f"[{kind}] the 20 events behind the poison were handled {behind_delay * 1000:.1f} ms "
        f"after its last in-place attempt (first retry tier: {delays[0]} ms)"
    )
    # Inline, the partition would wait out the whole schedule; now it waits for nothing.
    assert behind_delay < delays[0] / 1000.0
    assert sorted(recorder.handled) == list(range(1, 21)), "in order, none skipped"

    await eventually(lambda: len(recorder.attempts(0)) == IN_PLACE.max_attempts + len(delays))
    tier_attempts = recorder.attempts(0)[IN_PLACE.max_attempts :]
    assert min(tier_attempts) > last_behind, "the events behind it went first"
    # (the due time is in whole ms: at most 1 ms below the exact one)
    assert tier_attempts[0] - last_in_place >= delays[0] / 1000.0 - 0.001

    [dead] = await read_topic(bus, f"{ch}.dlq", 1)
    body = json.loads(dead.value)
    meta = body["_dlq_metadata"]
    assert body["n"] == 0
    assert meta["retry_count"] == IN_PLACE.max_attempts + len(delays) - 1
    assert meta["consumer_group"] == "suite-retry-workers"
    assert meta["original_offset"] == 0, "the original's coordinates, not the retry copy's"
    assert [step["tier"] for step in meta["retry_history"]] == [0, 1, 2]
    assert [step["topic"] for step in meta["retry_history"]] == [
        bus.adapter.topic_for(t) for t in (ch, f"{ch}.retry.1", f"{ch}.retry.2")
    ]
    assert dead.header("retry.attempts") is None, "retry headers stay out of the DLQ copy"


async def test_every_event_is_handled_or_dead_lettered(reliable_bus: BusBuilder, kind: str) -> None:
    delays = (200, 400)
    bus = await reliable_bus(kind, handler_retry=IN_PLACE)
    ch = channel()
    # 3 in-place attempts, then one per tier: 1 failure is handled in place, 3 on tier 1,
    # 4 on tier 2; 5 failures (as many as attempts) and poison events are dead-lettered.
    recorder = Recorder(poison={5, 17}, failures={3: 3, 8: 4, 11: 4, 21: 5, 25: 1})
    await subscribe(bus, ch, recorder, delays)
    events = [{"event_type": "Job", "n": n} for n in range(30)]
    for n, event in enumerate(events):
        await bus.publish_stream(ch, event, partition_key=f"key-{n % 4}")

    dead_expected = {5, 17, 21}
    await eventually(lambda: len(recorder.handled) == 30 - len(dead_expected))
    dead = await read_topic(bus, f"{ch}.dlq", len(dead_expected))
    dead_n = {json.loads(r.value)["n"] for r in dead}
    assert dead_n == dead_expected
    assert set(recorder.handled) | dead_n == set(range(30)), "none lost"
    assert not set(recorder.handled) & dead_n
    # Every event that failed its in-place attempts went through tier 1 (counted from it).
    tier1 = await read_topic(bus, f"{ch}.retry.1", 6)
    assert sorted(json.loads(r.value)["n"] for r in tier1) == [3, 5, 8, 11, 17, 21]
    tier2 = await read_topic(bus, f"{ch}.retry.2", 5)
    assert sorted(json.loads(r.value)["n"] for r in tier2) == [5, 8, 11, 17, 21]
    health = await bus.health_check()
    details = health["adapter"]["details"]
    assert details["retry_scheduled"] == 11
    assert details["retry_scheduled_by_tier"] == {"1": 6, "2": 5}
    assert details["dead_lettered"] == 3


async def test_the_schedule_follows_the_config(reliable_bus: BusBuilder, kind: str) -> None:
    delays = (300, 700)
    bus = await reliable_bus(kind, handler_retry=IN_PLACE)
    ch = channel()
    recorder = Recorder(poison={0})
    await subscribe(bus, ch, recorder, delays)
    await bus.publish_stream(ch, {"event_type": "Job", "n": 0}, partition_key="k")
    total = IN_PLACE.max_attempts + len(delays)
    await eventually(lambda: len(recorder.attempts(0)) == total)
    await read_topic(bus, f"{ch}.dlq", 1)
    attempts = recorder.attempts(0)

    for tier, delay in enumerate(delays, start=1):
        [copy] = await read_topic(bus, f"{ch}.retry.{tier}", 1)
        made = IN_PLACE.max_attempts + tier - 1
        assert retry_header(copy, "attempts") == made
        assert retry_header(copy, "tier") == tier
        assert copy.header("retry.original_topic") == bus.adapter.topic_for(ch).encode()
        assert retry_header(copy, "original_offset") == 0
        assert copy.header("retry.error_type") == b"RuntimeError"
        assert copy.header("retry.error_message") == b"poison 0"
        due_ms = retry_header(copy, "due_at_ms")
        failed_at = attempts[made - 1]
        # Due no earlier than the configured delay after the attempt that failed ...
        assert due_ms >= int(failed_at * 1000) + delay
        # ... and the next attempt not before it was due.
        assert attempts[made] * 1000 >= due_ms - 1
        history = json.loads(copy.header("retry.history"))
        assert [step["tier"] for step in history] == list(range(tier))
        assert json.loads(copy.value)["n"] == 0, "the original's value, unchanged"


async def test_an_event_waiting_in_a_retry_topic_survives_a_restart(
    reliable_bus: BusBuilder, kind: str, broker: MemoryBroker
) -> None:
    delays = (1500,)
    first = await reliable_bus(kind, broker=broker, handler_retry=IN_PLACE)
    ch = channel()
    failing = Recorder(poison={7})
    await subscribe(first, ch, failing, delays)
    await first.publish_stream(ch, {"event_type": "Job", "n": 7}, partition_key="k")
    await eventually(lambda: first.counters.retry_scheduled_events == 1)
    scheduled_at = time.time()
    await first.close()  # while the event waits in .retry.1
    assert len(failing.attempts(7)) == IN_PLACE.max_attempts

    second = await reliable_bus(kind, broker=broker, handler_retry=IN_PLACE)
    fixed = Recorder()
    await subscribe(second, ch, fixed, delays)
    await eventually(lambda: 7 in fixed.handled)
    [copy] = await read_topic(second, f"{ch}.retry.1", 1)
    assert fixed.handled[7] * 1000 >= retry_header(copy, "due_at_ms"), "retried when due"
    assert fixed.handled[7] >= scheduled_at
    assert len(fixed.attempts(7)) == 1, "once, from the retry topic"
    assert second.counters.retry_scheduled_events == 0


class Seen(Observer):
    def __init__(self) -> None:
        self.scheduled: list[tuple[str, str, int, int]] = []

    def retry_scheduled(self, channel: str, group: str, tier: int, count: int) -> None:
        self.scheduled.append((channel, group, tier, count))


async def test_observers_see_each_retry_scheduled(reliable_bus: BusBuilder, kind: str) -> None:
    bus = await reliable_bus(kind, handler_retry=IN_PLACE)
    seen = Seen()
    bus.add_observer(seen)
    ch = channel()
    recorder = Recorder(failures={1: 3})
    await subscribe(bus, ch, recorder, (100,))
    await bus.publish_stream(ch, {"event_type": "Job", "n": 1})
    await eventually(lambda: 1 in recorder.handled)
    assert seen.scheduled == [(ch, "suite-retry-workers", 1, 1)]
    health = await bus.health_check()
    faults = health["adapter"]["details"]["consumer_faults"]
    assert faults[f"{ch}:suite-retry-workers"]["retried_to_topic"] == 1
    assert f"{ch}:suite-retry-workers.retry" in faults
    await asyncio.sleep(0)
