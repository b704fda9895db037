"""Every contender doing every workload the same way: same events (encoded as JSON by each),
same settings (acks=all, lz4, linger as given, idempotence where the client has it,
batch.size 16384 as in the guide), same 6-partition topics."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

#: ``BENCH_BOOTSTRAP`` points the runs at another broker (default: the test broker).
BOOTSTRAP = os.environ.get("BENCH_BOOTSTRAP", "127.0.0.1:19092")
PIPELINE = 16  # batches in flight for the async batch publishers


def librdkafka_settings(linger_ms: int) -> dict[str, Any]:
    return {
        "bootstrap.servers": BOOTSTRAP,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": linger_ms,
        "batch.size": 16384,
        "enable.idempotence": True,
    }


async def pipelined(batches: Iterable[Any], send: Callable[[Any], Awaitable[Any]]) -> None:
    """Sends batches with up to PIPELINE of them awaiting their acknowledgement."""
    in_flight: set[asyncio.Future[Any]] = set()
    for batch in batches:
        in_flight.add(asyncio.ensure_future(send(batch)))
        if len(in_flight) >= PIPELINE:
            done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for d in done:
                d.result()
    for d in asyncio.as_completed(in_flight):
        await d


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """Batches made as they are sent: a list of all of them up front would be a million
    references for the collector to rescan on every full collection, charged to whichever
    contender allocates the most."""
    return (items[i : i + size] for i in range(0, len(items), size))


# ----------------------------------------------------------------------------- EventBus


def eventbus(linger_ms: int, *, validate: bool = False, headers: bool | None = None) -> Any:
    from tradecore_eventbus import (
        EventBus,
        EventBusConfig,
        RedpandaTransportAdapter,
        TransportConfig,
    )

    tc = replace(
        TransportConfig(),
        bootstrap_servers=BOOTSTRAP,
        producer_linger_ms=linger_ms,
        consumer_group_id_prefix="bench",
        topic_partitions=6,
    )
    if headers is not None:
        tc = replace(tc, producer_event_headers=headers)
    config = EventBusConfig(sub_block_ms=500, consumer_poll_timeout_ms=60_000)
    adapter = RedpandaTransportAdapter(event_bus_config=config, transport_config=tc)
    return EventBus(adapter, validate_on_publish=validate, observers=bench_observers())


def bench_observers() -> list[Any]:
    """``BENCH_PROMETHEUS=1``: the EventBus contender also feeds a PrometheusObserver (its
    own registry), to measure what the metrics cost."""
    if os.environ.get("BENCH_PROMETHEUS") != "1":
        return []
    from prometheus_client import CollectorRegistry

    from tradecore_eventbus.prometheus import PrometheusObserver

    return [PrometheusObserver(CollectorRegistry())]


def register_model() -> None:
    from typing import Literal

    from tradecore_eventbus import BaseEvent, register_event

    class OrderPlaced(BaseEvent):
        event_type: Literal["OrderPlaced"] = "OrderPlaced"
        order_id: str
        account_id: str
        symbol: str
        quantity: int
        price: float

    register_event(OrderPlaced)


async def eventbus_batch(
    topic: str,
    events: list[dict[str, Any]],
    batch: int,
    linger_ms: int,
    validate: bool = False,
    headers: bool | None = None,
) -> None:
    if validate:
        register_model()
    bus = eventbus(linger_ms, validate=validate, headers=headers)
    await pipelined(chunks(events, batch), lambda b: bus.publish_batch(topic, b))
    await bus.close()


async def eventbus_awaited(
    topic: str,
    events: list[dict[str, Any]],
    batch: int,
    linger_ms: int,
    headers: bool | None = None,
) -> None:
    """The guide's own loop: each ``publish_batch`` awaited before the next (no pipelining).
    ``headers``: None keeps the package default."""
    bus = eventbus(linger_ms, headers=headers)
    for b in chunks(events, batch):
        await bus.publish_batch(topic, b)
    await bus.close()


async def eventbus_concurrent(
    topic: str, events: list[dict[str, Any]], tasks: int, linger_ms: int, keyed: bool = False
) -> None:
    """``keyed``: each event with its account as the partition key (the guide's way to keep
    one account's events in order)."""
    bus = eventbus(linger_ms)

    async def worker(mine: list[dict[str, Any]]) -> None:
        if keyed:
            for e in mine:
                await bus.publish_stream(topic, e, partition_key=e["account_id"])
        else:
            for e in mine:
                await bus.publish_stream(topic, e)

    await asyncio.gather(*(worker(events[i::tasks]) for i in range(tasks)))
    await bus.close()


async def eventbus_consume(topic: str, count: int, handler_delay: float = 0.0) -> None:
    bus = eventbus(10)
    done = asyncio.Event()
    seen = 0

    async def handler(event: dict[str, Any]) -> None:
        nonlocal seen
        if handler_delay:
            await asyncio.sleep(handler_delay)
        seen += 1
        if seen >= count:
            done.set()

    await bus.subscribe_stream(
        topic, handler, group=f"bench-{uuid.uuid4().hex[:8]}", consumer="c1", batch_size=500
    )
    await done.wait()
    await bus.close()


# ----------------------------------------------------------------------------- raw _core


async def core_batch(topic: str, events: list[dict[str, Any]], batch: int, linger_ms: int) -> None:
    from tradecore_eventbus import _core

    producer = _core.Producer(BOOTSTRAP, linger_ms=linger_ms)
    dumps = json.dumps

    def send(b: list[dict[str, Any]]) -> Awaitable[Any]:
        return producer.send_batch(
            topic, [(e["account_id"].encode(), dumps(e).encode()) for e in b]
        )

    await pipelined(chunks(events, batch), send)
    await producer.close()


async def core_concurrent(
    topic: str, events: list[dict[str, Any]], tasks: int, linger_ms: int
) -> None:
    from tradecore_eventbus import _core

    producer = _core.Producer(BOOTSTRAP, linger_ms=linger_ms)

    async def worker(mine: list[dict[str, Any]]) -> None:
        for e in mine:
            await producer.send(topic, json.dumps(e).encode())

    await asyncio.gather(*(worker(events[i::tasks]) for i in range(tasks)))
    await producer.close()


async def core_consume(topic: str, count: int) -> None:
    from tradecore_eventbus import _core, poll_batch

    consumer = _core.Consumer(BOOTSTRAP, f"bench-{uuid.uuid4().hex[:8]}", max_poll_records=500)
    consumer.subscribe([topic])
    await consumer.wait_assigned(60)
    seen = 0

    async def handler(event: dict[str, Any]) -> None:
        return None

    while seen < count:
        records = await poll_batch(consumer, 500, 5.0)
        for r in records:
            await handler(json.loads(r.value))  # type: ignore[arg-type]
        consumer.mark_processed(records)
        seen += len(records)
    await consumer.close()


# ----------------------------------------------------------------------------- aiokafka


def aiokafka_producer(linger_ms: int) -> Any:
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP,
        acks="all",
        compression_type="lz4",
        linger_ms=linger_ms,
        max_batch_size=16384,
        enable_idempotence=True,
    )


async def aiokafka_batch(
    topic: str, events: list[dict[str, Any]], batch: int, linger_ms: int
) -> None:
    producer = aiokafka_producer(linger_ms)
    await producer.start()

    async def send(b: list[dict[str, Any]]) -> None:
        futures = [
            await producer.send(topic, json.dumps(e).encode(), key=e["account_id"].encode())
            for e in b
        ]
        await asyncio.gather(*futures)

    await pipelined(chunks(events, batch), send)
    await producer.stop()


async def aiokafka_awaited(
    topic: str, events: list[dict[str, Any]], batch: int, linger_ms: int
) -> None:
    """Each batch sent and its acknowledgements awaited before the next."""
    producer = aiokafka_producer(linger_ms)
    await producer.start()
    for b in chunks(events, batch):
        futures = [
            await producer.send(topic, json.dumps(e).encode(), key=e["account_id"].encode())
            for e in b
        ]
        await asyncio.gather(*futures)
    await producer.stop()


async def aiokafka_concurrent(
    topic: str, events: list[dict[str, Any]], tasks: int, linger_ms: int, keyed: bool = False
) -> None:
    producer = aiokafka_producer(linger_ms)
    await producer.start()

    async def worker(mine: list[dict[str, Any]]) -> None:
        if keyed:
            for e in mine:
                key = e["account_id"].encode()
                await producer.send_and_wait(topic, json.dumps(e).encode(), key=key)
        else:
            for e in mine:
                await producer.send_and_wait(topic, json.dumps(e).encode())

    await asyncio.gather(*(worker(events[i::tasks]) for i in range(tasks)))
    await producer.stop()


async def aiokafka_consume(topic: str, count: int) -> None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=BOOTSTRAP,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen = 0

    async def handler(event: dict[str, Any]) -> None:
        return None

    while seen < count:
        batches = await consumer.getmany(timeout_ms=1000, max_records=500)
        for records in batches.values():
            for r in records:
                await handler(json.loads(r.value))
            seen += len(records)
        if batches:
            await consumer.commit()
    await consumer.stop()


# ----------------------------------------------------------------------------- confluent


def confluent_batch(topic: str, events: list[dict[str, Any]], batch: int, linger_ms: int) -> None:
    from confluent_kafka import Producer

    producer = Producer(librdkafka_settings(linger_ms))
    failures = 0

    def on_delivery(err: Any, _msg: Any) -> None:
        nonlocal failures
        if err is not None:
            failures += 1

    dumps, produce, poll = json.dumps, producer.produce, producer.poll
    for e in events:
        while True:
            try:
                produce(topic, dumps(e).encode(), e["account_id"].encode(), on_delivery=on_delivery)
                break
            except BufferError:
                poll(0.01)
        poll(0)
    producer.flush(120)
    if failures:
        raise RuntimeError(f"{failures} deliveries failed")


def confluent_flush_each(
    topic: str, events: list[dict[str, Any]], batch: int, linger_ms: int
) -> None:
    """The sync Producer waiting for every batch's acknowledgements: produce the batch, then
    ``flush()`` (which also makes librdkafka send what lingers at once)."""
    from confluent_kafka import Producer

    producer = Producer(librdkafka_settings(linger_ms))
    failures = 0

    def on_delivery(err: Any, _msg: Any) -> None:
        nonlocal failures
        if err is not None:
            failures += 1

    dumps, produce, poll = json.dumps, producer.produce, producer.poll
    for b in chunks(events, batch):
        for e in b:
            while True:
                try:
                    produce(
                        topic, dumps(e).encode(), e["account_id"].encode(), on_delivery=on_delivery
                    )
                    break
                except BufferError:
                    poll(0.01)
        if producer.flush(120):
            raise RuntimeError("flush timed out")
    if failures:
        raise RuntimeError(f"{failures} deliveries failed")


async def confluent_aio_concurrent(
    topic: str, events: list[dict[str, Any]], tasks: int, linger_ms: int
) -> None:
    from confluent_kafka.aio import AIOProducer

    # A fair buffer for this load: all tasks' next events fit one buffer, flushed at the
    # linger time rather than the 1 s default (which would make every task wait on it).
    producer = AIOProducer(
        librdkafka_settings(linger_ms), batch_size=tasks, buffer_timeout=max(linger_ms, 1) / 1000
    )

    async def worker(mine: list[dict[str, Any]]) -> None:
        for e in mine:
            delivered = await producer.produce(topic, json.dumps(e).encode())
            await delivered

    await asyncio.gather(*(worker(events[i::tasks]) for i in range(tasks)))
    await producer.close()


def confluent_consume(topic: str, count: int, tuned: bool = False) -> None:
    """The sync Consumer as its docs show it: consume a batch, handle, commit asynchronously.
    ``tuned`` gives it what the EventBus does by default: fetch.queue.backoff.ms=10 (not 1 s)
    and commits spaced so that they do not queue up behind the coordinator (at most one per
    20 ms), to show how much of the difference those two settings make."""
    from confluent_kafka import Consumer

    config: dict[str, Any] = {
        "bootstrap.servers": BOOTSTRAP,
        "group.id": f"bench-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "partition.assignment.strategy": "cooperative-sticky",
    }
    if tuned:
        config["fetch.queue.backoff.ms"] = 10
    consumer = Consumer(config)
    consumer.subscribe([topic])
    seen = 0
    min_commit_gap = 0.02 if tuned else 0.0
    last_commit = 0.0
    monotonic = time.monotonic

    def handler(event: dict[str, Any]) -> None:
        return None

    while seen < count:
        messages = consumer.consume(500, 1.0)
        for m in messages:
            if m.error() is None:
                handler(json.loads(m.value()))
                seen += 1
        if messages and monotonic() - last_commit >= min_commit_gap:
            consumer.commit(asynchronous=True)
            last_commit = monotonic()
    consumer.commit(asynchronous=False)
    consumer.close()


async def confluent_aio_consume(topic: str, count: int) -> None:
    from confluent_kafka.aio import AIOConsumer

    consumer = AIOConsumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "partition.assignment.strategy": "cooperative-sticky",
        }
    )
    await consumer.subscribe([topic])
    seen = 0

    async def handler(event: dict[str, Any]) -> None:
        return None

    while seen < count:
        messages = await consumer.consume(500, 1.0)
        for m in messages:
            if m.error() is None:
                await handler(json.loads(m.value()))
                seen += 1
        if messages:
            await consumer.commit(asynchronous=True)
    await consumer.close()


def timed(fn: Callable[[], Any]) -> dict[str, float]:
    """Runs ``fn`` (a coroutine is run on a new event loop) and returns its wall time and
    the CPU it took: the whole process's (every thread: the client library's own threads
    included) and the calling thread's (the event loop's, for the asyncio contenders)."""
    started = time.perf_counter()
    cpu = time.process_time()
    main_cpu = time.thread_time()
    result = fn()
    if asyncio.iscoroutine(result):
        asyncio.run(result)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
        "main_thread_cpu_s": time.thread_time() - main_cpu,
    }
