"""Nothing a record does kills its partition worker: undecodable values, filters and handlers
that raise anything at all go to the DLQ; a worker that dies anyway is restarted."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.bus.conftest import TRANSPORTS
from tests.reliability.conftest import BusBuilder, read_topic

from tradecore_eventbus import EventBus
from tradecore_eventbus._internal.consuming.subscription import Subscription
from tradecore_eventbus.transport_adapter import RecordLike

#: A JSON value nested 10,000 levels deep inside an otherwise fine event.
DEEP = b'{"event_type":"Deep","payload":' + b"[" * 10_000 + b"]" * 10_000 + b"}"


@pytest.fixture(params=TRANSPORTS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def channel() -> str:
    return f"transport.guard-{uuid.uuid4().hex[:8]}"


def job(n: int) -> bytes:
    return json.dumps({"event_type": "Job", "event_id": f"job-{n}", "n": n}).encode()


async def eventually(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def subscription(bus: EventBus, sub_id: str) -> Subscription:
    return bus._subscriptions[sub_id]


async def consumer_health(bus: EventBus, ch: str, group: str) -> dict[str, Any]:
    health = await bus.health_check()
    details: dict[str, Any] = health["adapter"]["details"]
    key = f"{ch}:suite-{group}"
    # The guide's per-consumer structure, and what went wrong beside it.
    consumer: dict[str, Any] = {**details["consumers"][key], **details["consumer_faults"][key]}
    return {"details": details, "consumer": consumer}


async def test_a_deeply_nested_value_goes_to_the_dlq_and_the_partition_moves_on(
    reliable_bus: BusBuilder, kind: str
) -> None:
    bus = await reliable_bus(kind)
    ch = channel()
    group = f"deep-{uuid.uuid4().hex[:6]}"
    handled: list[int] = []

    async def handler(event: dict[str, Any]) -> None:
        handled.append(event["n"])

    await bus.subscribe_stream(ch, handler, group=group, consumer="w1")
    topic = bus.adapter.topic_for(ch)
    # One key: one partition, in this order.
    await bus.adapter.producer().send_batch(
        topic, [(b"k", job(0), []), (b"k", DEEP, []), (b"k", job(1), []), (b"k", job(2), [])]
    )
    await eventually(lambda: handled == [0, 1, 2])

    (dead,) = await read_topic(bus, f"{ch}.dlq", 1)
    body = json.loads(dead.value)
    meta = body["_dlq_metadata"]
    assert meta["error_type"] == "DeserializationError"
    assert "nested too deeply" in meta["error_message"]
    assert base64.b64decode(body["_raw_value"]) == DEEP, "the original bytes, whole"
    health = await consumer_health(bus, ch, group)
    assert health["consumer"]["dead_lettered"] == 1
    assert health["consumer"]["errors"] == 1
    assert health["consumer"]["active"] is True
    assert health["details"]["dead_lettered"] == 1
    assert health["consumer"]["worker_restarts"] == 0
    await bus.close()

    # Committed past all four: the next member of the group starts after them.
    again: list[int] = []

    async def second(event: dict[str, Any]) -> None:
        again.append(event["n"])

    bus2 = await reliable_bus(kind, broker=getattr(bus.adapter, "broker", None))
    await bus2.subscribe_stream(ch, second, group=group, consumer="w2")
    await bus2.adapter.producer().send_batch(topic, [(b"k", job(3), [])])
    await eventually(lambda: 3 in again)
    assert again == [3]


class Odd(BaseException):
    """Not an Exception: something only a BaseException guard catches."""


async def test_filters_and_handlers_raising_anything_send_the_record_to_the_dlq(
    reliable_bus: BusBuilder, kind: str
) -> None:
    bus = await reliable_bus(kind)
    ch = channel()
    handled: list[int] = []
    attempts: dict[int, int] = {}

    def keep(event: dict[str, Any]) -> bool:
        if event["n"] == 1:
            raise Odd("the filter cannot decide")
        return True

    async def handler(event: dict[str, Any]) -> None:
        n = event["n"]
        attempts[n] = attempts.get(n, 0) + 1
        if n == 2:
            raise RecursionError("maximum recursion depth exceeded")
        if n == 3:
            raise MemoryError("cannot allocate")
        handled.append(n)

    await bus.subscribe_stream(ch, handler, group="odd", consumer="w1", filter_fn=keep)
    for n in range(5):
        await bus.publish_stream(ch, {"event_type": "Job", "n": n}, partition_key="k")
    await eventually(lambda: handled == [0, 4])

    dead = await read_topic(bus, f"{ch}.dlq", 3)
    kinds = {json.loads(r.value)["n"]: json.loads(r.value)["_dlq_metadata"] for r in dead}
    assert {n: m["error_type"] for n, m in kinds.items()} == {
        1: "Odd",
        2: "RecursionError",
        3: "MemoryError",
    }
    assert kinds[2]["retry_count"] == 2, "a handler's failure is retried first"
    assert attempts[2] == 3
    assert 1 not in attempts, "a record the filter failed on never reaches the handler"
    health = await consumer_health(bus, ch, "odd")
    assert health["consumer"]["dead_lettered"] == 3
    assert health["consumer"]["last_error"].startswith("MemoryError")


async def test_a_worker_that_dies_is_restarted_from_the_record_it_held(
    reliable_bus: BusBuilder, kind: str
) -> None:
    bus = await reliable_bus(kind)
    ch = channel()
    handled: list[int] = []

    async def handler(event: dict[str, Any]) -> None:
        handled.append(event["n"])

    sub_id = await bus.subscribe_stream(ch, handler, group="dies", consumer="w1")
    sub = subscription(bus, sub_id)
    # A fault outside the per-record guard (the worker's own step), once, at record n=1.
    real = sub._handle_hook
    deaths: list[int] = []

    async def faulty(record: RecordLike) -> bool:
        n = json.loads(record.value or b"{}").get("n")
        if n == 1 and not deaths:
            deaths.append(record.offset)
            raise RuntimeError("the worker's step failed")
        return await real(record)

    sub._handle_hook = faulty
    for n in range(4):
        await bus.publish_stream(ch, {"event_type": "Job", "n": n}, partition_key="k")
    await eventually(lambda: len(handled) == 4)
    assert handled == [0, 1, 2, 3], "in order, n=1 handled after the restart, nothing skipped"
    health = await consumer_health(bus, ch, "dies")
    assert health["consumer"]["worker_restarts"] == 1
    assert health["details"]["worker_restarts"] == 1
    assert "RuntimeError: the worker's step failed" in health["consumer"]["last_error"]
    assert health["consumer"]["active"] is True
    assert health["consumer"]["dead_lettered"] == 0


async def test_a_record_that_kills_its_worker_every_time_ends_in_the_dlq(
    reliable_bus: BusBuilder, kind: str
) -> None:
    bus = await reliable_bus(kind)
    ch = channel()
    handled: list[int] = []

    async def handler(event: dict[str, Any]) -> None:
        handled.append(event["n"])

    sub_id = await bus.subscribe_stream(ch, handler, group="kills", consumer="w1")
    sub = subscription(bus, sub_id)
    real: Callable[[RecordLike], Awaitable[bool]] = sub._handle_hook

    async def always_dies_on_one(record: RecordLike) -> bool:
        if json.loads(record.value or b"{}").get("n") == 1:
            raise RuntimeError("dies on n=1")
        return await real(record)

    sub._handle_hook = always_dies_on_one
    for n in range(3):
        await bus.publish_stream(ch, {"event_type": "Job", "n": n}, partition_key="k")
    await eventually(lambda: handled == [0, 2])
    (dead,) = await read_topic(bus, f"{ch}.dlq", 1)
    meta = json.loads(dead.value)["_dlq_metadata"]
    assert meta["error_type"] == "RuntimeError"
    assert meta["retry_count"] == sub.retry.max_attempts - 1
    health = await consumer_health(bus, ch, "kills")
    assert health["consumer"]["worker_restarts"] == sub.retry.max_attempts
    assert health["consumer"]["dead_lettered"] == 1
