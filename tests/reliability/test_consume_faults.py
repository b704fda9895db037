"""Consuming under faults: poison events, undecodable records, an unwritable DLQ, replay."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from tests.bus.conftest import TRANSPORTS
from tests.reliability.conftest import BusBuilder, read_topic

from tradecore_eventbus import EventBus
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker


@pytest.fixture(params=TRANSPORTS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def channel() -> str:
    return f"transport.poison-{uuid.uuid4().hex[:8]}"


async def eventually(predicate: Any, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_poison_events_go_to_the_dlq_and_replay_brings_them_back(
    reliable_bus: BusBuilder, kind: str
) -> None:
    bus = await reliable_bus(kind)
    ch = channel()
    poison = {3, 7}
    fixed = False
    handled: list[int] = []
    attempts: dict[int, int] = {}

    async def handler(event: dict[str, Any]) -> None:
        n = event["n"]
        attempts[n] = attempts.get(n, 0) + 1
        if n in poison and not fixed:
            raise RuntimeError(f"cannot handle {n}")
        handled.append(n)

    await bus.subscribe_stream(ch, handler, group="poison-workers", consumer="w1")
    for n in range(10):
        await bus.publish_stream(ch, {"event_type": "Job", "n": n}, partition_key="one")
    await eventually(lambda: len(handled) == 8)
    assert handled == [0, 1, 2, 4, 5, 6, 8, 9], "the stream kept moving, in order"
    assert attempts[3] == 3, "retried per the handler retry config before the DLQ"

    dead = await read_topic(bus, f"{ch}.dlq", 2)
    bodies = [json.loads(r.value) for r in dead]
    assert [b["n"] for b in bodies] == [3, 7]
    meta = bodies[0]["_dlq_metadata"]
    assert meta["original_channel"] == ch
    assert meta["consumer_group"] == "suite-poison-workers"
    assert meta["error_type"] == "RuntimeError"
    assert meta["error_message"] == "cannot handle 3"
    assert meta["retry_count"] == 2
    assert isinstance(meta["original_partition"], int)
    assert isinstance(meta["original_offset"], int)
    assert dead[0].header("dlq.original_offset") == str(meta["original_offset"]).encode()
    assert meta["failed_at"].endswith("Z")
    assert dead[0].header("dlq.error_type") == b"RuntimeError"
    assert dead[0].header("dlq.original_channel") == ch.encode()
    assert dead[0].header("event_id") == bodies[0]["event_id"].encode()

    fixed = True
    report = await bus.replay_dlq(ch, idle_timeout=1.0)
    assert report == {"read": 2, "republished": 2, "skipped": 0, "filtered": 0, "failed": 0}
    await eventually(lambda: len(handled) == 10)
    assert handled[-2:] == [3, 7]
    again = await bus.replay_dlq(ch, idle_timeout=0.5)
    assert again["republished"] == 0, "a replay never republishes twice"


async def test_records_that_are_not_events_go_to_the_dlq(
    reliable_bus: BusBuilder, kind: str
) -> None:
    bus = await reliable_bus(kind)
    ch = channel()
    handled: list[Any] = []
    await bus.subscribe_stream(ch, handled.append, group="decode-workers", consumer="w1")
    topic = bus.adapter.topic_for(ch)
    await bus.adapter.producer().send_batch(
        topic,
        [
            (None, b"not json at all", []),
            (None, json.dumps({"no_type": 1}).encode(), []),
            (None, json.dumps({"event_type": "Fine", "n": 1}).encode(), []),
        ],
    )
    await eventually(lambda: len(handled) == 1)
    dead = await read_topic(bus, f"{ch}.dlq", 2)
    bodies = [json.loads(r.value) for r in dead]
    assert all(b["_dlq_metadata"]["error_type"] == "DeserializationError" for b in bodies)
    import base64

    # The original bytes are kept as they were, whatever they were (records without a key
    # land on different partitions, so their order in the DLQ is not fixed).
    raw = sorted(base64.b64decode(b["_raw_value"]) for b in bodies)
    assert raw == sorted([json.dumps({"no_type": 1}).encode(), b"not json at all"])
    report = await bus.replay_dlq(ch, idle_timeout=1.0)
    assert report["skipped"] == 2
    assert report["republished"] == 0


async def test_an_unwritable_dlq_holds_the_partition_and_shows_in_health(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus("memory", broker=broker)
    ch = channel()
    handled: list[int] = []

    async def handler(event: dict[str, Any]) -> None:
        if event["n"] == 1:
            raise RuntimeError("poison")
        handled.append(event["n"])

    await bus.subscribe_stream(ch, handler, group="dlq-down", consumer="w1")
    await bus.publish_stream(ch, {"event_type": "Job", "n": 0}, partition_key="k")
    await eventually(lambda: handled == [0])
    # The broker goes away right after the poison event is stored.
    await bus.publish_stream(ch, {"event_type": "Job", "n": 1}, partition_key="k")
    broker.available = False
    await eventually(lambda: broker_failures(bus) > 0)
    health = await bus.health_check()
    consumer = health["adapter"]["details"]["consumers"][f"{ch}:suite-dlq-down"]
    assert health["adapter"]["details"]["dlq_write_failures"] > 0
    assert consumer["current_backoff"] > 0
    broker.available = True
    await eventually(lambda: len(bus.adapter.get_published_messages(f"{ch}.dlq")) == 1)  # type: ignore[attr-defined]
    await bus.publish_stream(ch, {"event_type": "Job", "n": 2}, partition_key="k")
    await eventually(lambda: handled == [0, 2])
    await bus.close()
    # Committed past the dead-lettered event: a new member of the group gets nothing old.
    again: list[Any] = []
    bus2 = await reliable_bus("memory", broker=broker)
    await bus2.subscribe_stream(ch, again.append, group="dlq-down", consumer="w2")
    await asyncio.sleep(0.5)
    assert again == []


def broker_failures(bus: EventBus) -> int:
    return sum(s.stats.dlq_failures for s in bus._subscriptions.values())


async def test_with_the_dlq_disabled_a_failing_event_is_retried_until_it_succeeds(
    reliable_bus: BusBuilder, kind: str
) -> None:
    bus = await reliable_bus(kind, enable_dlq=False)
    ch = channel()
    failures = {"left": 5}
    handled: list[int] = []

    async def handler(event: dict[str, Any]) -> None:
        if event["n"] == 0 and failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("not yet")
        handled.append(event["n"])

    await bus.subscribe_stream(ch, handler, group="no-dlq", consumer="w1")
    await bus.publish_stream(ch, {"event_type": "Job", "n": 0}, partition_key="k")
    await bus.publish_stream(ch, {"event_type": "Job", "n": 1}, partition_key="k")
    await eventually(lambda: handled == [0, 1])
    assert failures["left"] == 0
    assert f"{bus.adapter.topic_for(ch)}.dlq" not in await bus.adapter.list_topics()
