"""One measurement in a fresh process, printed as one JSON line:
python benches/run_one.py <workload> <contender> --topic T --records N [--linger-ms L] ...

Workloads: batch, awaited, concurrent, consume, latency, memory_consume, paused_publish."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import resource
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import contenders as c
from bench_events import make_events


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pregenerated(n: int) -> list[dict[str, Any]]:
    """The workload's events, made before the clock starts and moved out of the garbage
    collector's sight: a real service does not hold a million events, and rescanning them
    on every full collection would charge each contender for the harness, in proportion to
    how much it allocates."""
    events = make_events(n)
    gc.collect()
    gc.freeze()
    return events


def run_batch(contender: str, topic: str, n: int, batch: int, linger: int) -> dict[str, float]:
    events = pregenerated(n)
    fn = {
        "eventbus": lambda: c.eventbus_batch(topic, events, batch, linger),
        "eventbus_validated": lambda: c.eventbus_batch(topic, events, batch, linger, validate=True),
        "eventbus_noheaders": lambda: c.eventbus_batch(topic, events, batch, linger, headers=False),
        "core": lambda: c.core_batch(topic, events, batch, linger),
        "aiokafka": lambda: c.aiokafka_batch(topic, events, batch, linger),
        "confluent": lambda: c.confluent_batch(topic, events, batch, linger),
    }[contender]
    return c.timed(fn)


def run_awaited(contender: str, topic: str, n: int, batch: int, linger: int) -> dict[str, float]:
    """Batches one after another, each awaited (or flushed) before the next: the guide's
    ``await publish_batch(...)`` loop. ``confluent`` is the sync Producer with one flush at the
    end (it never waits per batch); ``eventbus_linger0`` is the same loop with linger 0, the
    reference for what lingering costs; ``eventbus_noheaders`` and ``eventbus_headers`` turn
    the event headers off and on."""
    events = pregenerated(n)
    fn = {
        "eventbus": lambda: c.eventbus_awaited(topic, events, batch, linger),
        "eventbus_linger0": lambda: c.eventbus_awaited(topic, events, batch, 0),
        "eventbus_noheaders": lambda: c.eventbus_awaited(
            topic, events, batch, linger, headers=False
        ),
        "eventbus_headers": lambda: c.eventbus_awaited(topic, events, batch, linger, headers=True),
        "confluent": lambda: c.confluent_batch(topic, events, batch, linger),
        "confluent_flush": lambda: c.confluent_flush_each(topic, events, batch, linger),
        "aiokafka": lambda: c.aiokafka_awaited(topic, events, batch, linger),
    }[contender]
    return c.timed(fn)


def run_concurrent(contender: str, topic: str, n: int, tasks: int, linger: int) -> dict[str, float]:
    events = pregenerated(n)
    fn = {
        "eventbus": lambda: c.eventbus_concurrent(topic, events, tasks, linger),
        "eventbus_keyed": lambda: c.eventbus_concurrent(topic, events, tasks, linger, keyed=True),
        "core": lambda: c.core_concurrent(topic, events, tasks, linger),
        "aiokafka": lambda: c.aiokafka_concurrent(topic, events, tasks, linger),
        "aiokafka_keyed": lambda: c.aiokafka_concurrent(topic, events, tasks, linger, keyed=True),
        "confluent_aio": lambda: c.confluent_aio_concurrent(topic, events, tasks, linger),
    }[contender]
    return c.timed(fn)


def run_consume(contender: str, topic: str, n: int) -> dict[str, float]:
    fn = {
        "eventbus": lambda: c.eventbus_consume(topic, n),
        "core": lambda: c.core_consume(topic, n),
        "aiokafka": lambda: c.aiokafka_consume(topic, n),
        "confluent": lambda: c.confluent_consume(topic, n),
        "confluent_tuned": lambda: c.confluent_consume(topic, n, tuned=True),
        "confluent_aio": lambda: c.confluent_aio_consume(topic, n),
    }[contender]
    return c.timed(fn)


#: Events through the whole path before the latency clock starts (every latency run).
WARMUP_EVENTS = 200


async def latency(
    contender: str, topic: str, rate: int, seconds: float, linger: int
) -> list[float]:
    """Publishes `rate` events per second for `seconds`, each carrying its send time; the
    consumer (same process) records publish-to-handler delays in milliseconds."""
    delays: list[float] = []
    total = int(rate * seconds)
    done = asyncio.Event()

    warmed = asyncio.Event()
    warmup_seen = 0

    def record(event: dict[str, Any]) -> None:
        nonlocal warmup_seen
        if event.get("warmup"):
            warmup_seen += 1
            if warmup_seen >= WARMUP_EVENTS:
                warmed.set()
            return
        delays.append((time.time() - event["sent_at"]) * 1000)
        if len(delays) >= total:
            done.set()

    if contender == "eventbus":
        bus = c.eventbus(linger)

        async def handler(event: dict[str, Any]) -> None:
            record(event)

        await bus.subscribe_stream(
            topic,
            handler,
            group=f"lat-{uuid.uuid4().hex[:8]}",
            consumer="c1",
            batch_size=500,
            block_ms=100,
        )

        async def send(e: dict[str, Any]) -> None:
            await bus.publish_stream(topic, e)

        close = bus.close
    else:
        from aiokafka import AIOKafkaConsumer

        producer = c.aiokafka_producer(linger)
        await producer.start()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=c.BOOTSTRAP,
            group_id=f"lat-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="latest",
            enable_auto_commit=False,
        )
        await consumer.start()
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        await consumer.seek_to_end()

        async def consume() -> None:
            while not done.is_set():
                batches = await consumer.getmany(timeout_ms=100, max_records=500)
                for records in batches.values():
                    for r in records:
                        record(json.loads(r.value))
                if batches:
                    await consumer.commit()

        consuming = asyncio.create_task(consume())

        async def send(e: dict[str, Any]) -> None:
            await producer.send_and_wait(topic, json.dumps(e).encode())

        async def close() -> None:
            consuming.cancel()
            await asyncio.gather(consuming, return_exceptions=True)
            await consumer.stop()
            await producer.stop()

    # A few hundred events through the whole path before the clock starts, for every
    # contender: connections, metadata, the idempotent producer id and the first fetches are
    # set up, not measured.
    for _ in range(WARMUP_EVENTS):
        await send({"event_type": "Warmup", "warmup": True, "sent_at": time.time()})
    await asyncio.wait_for(warmed.wait(), 60)
    events = make_events(total)
    # Setup objects are long-lived: keep them out of the collector's way (for every contender).
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    in_flight: set[asyncio.Future[None]] = set()
    for i, e in enumerate(events):
        target = started + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        e["sent_at"] = time.time()
        future = asyncio.ensure_future(send(e))
        in_flight.add(future)
        future.add_done_callback(in_flight.discard)
    await asyncio.gather(*in_flight)
    await asyncio.wait_for(done.wait(), 60)
    await close()
    return delays


def ack_floor(topic: str, rate: int, seconds: float, linger: int) -> list[float]:
    """The floor of this broker and machine for the latency workload, not a contender:
    confluent-kafka's sync Producer at the same rate and settings, timed from `produce` to
    its delivery report (librdkafka and the broker's acks=all round trip only; nobody
    consumes). A thread polls for delivery reports, as an application would."""
    from confluent_kafka import Producer

    producer = Producer(c.librdkafka_settings(linger))
    delays: list[float] = []
    failures: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            producer.poll(0.1)

    def on_delivery(sent: float) -> Callable[[Any, Any], None]:
        def report(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))
                return
            delays.append((time.perf_counter() - sent) * 1000)

        return report

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    events = make_events(int(rate * seconds) + WARMUP_EVENTS)
    for e in events[:WARMUP_EVENTS]:
        producer.produce(topic, json.dumps(e).encode(), e["account_id"].encode())
    producer.flush(60)
    started = time.perf_counter()
    for i, e in enumerate(events[WARMUP_EVENTS:]):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent = time.perf_counter()
        producer.produce(
            topic, json.dumps(e).encode(), e["account_id"].encode(), on_delivery=on_delivery(sent)
        )
    if producer.flush(60):
        raise RuntimeError("flush timed out")
    stop.set()
    poller.join()
    if failures:
        raise RuntimeError(f"{len(failures)} deliveries failed, first: {failures[0]}")
    return delays


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def memory_consume(topic: str, seconds: float) -> dict[str, float]:
    """The EventBus consuming a large backlog with a slow handler: prefetch must stay
    bounded while the handler falls behind."""
    bus = c.eventbus(10)
    handled = 0

    async def slow(event: dict[str, Any]) -> None:
        nonlocal handled
        await asyncio.sleep(0.001)
        handled += 1

    await bus.subscribe_stream(
        topic, slow, group=f"mem-{uuid.uuid4().hex[:8]}", consumer="c1", batch_size=500
    )
    await asyncio.sleep(seconds)
    await bus.close(timeout=10)
    return {"handled": handled}


async def paused_publish(topic: str, seconds: float) -> dict[str, float]:
    """Publishing as fast as possible for `seconds` (the harness pauses the broker during
    it): memory must stay bounded (backpressure or errors, not growth)."""
    from tradecore_eventbus import EventBusError

    bus = c.eventbus(10)
    await bus.publish_stream(topic, make_events(1)[0])
    events = make_events(1000)
    errors = 0
    sent = 0
    deadline = time.monotonic() + seconds

    async def publisher() -> None:
        nonlocal errors, sent
        while time.monotonic() < deadline:
            try:
                await asyncio.wait_for(
                    bus.publish_batch(topic, events), max(0.1, deadline - time.monotonic())
                )
                sent += len(events)
            except (EventBusError, TimeoutError):
                errors += 1

    await asyncio.gather(*(publisher() for _ in range(4)))
    return {"sent_before_pause_and_during": sent, "failed_calls": errors}


LIBRARIES = {
    "aiokafka": "aiokafka",
    "confluent": "confluent_kafka",
    "confluent_tuned": "confluent_kafka",
    "confluent_flush": "confluent_kafka",
    "confluent_aio": "confluent_kafka.aio",
    "ack_floor": "confluent_kafka",
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("workload")
    p.add_argument("contender")
    p.add_argument("--topic", required=True)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--tasks", type=int, default=1000)
    p.add_argument("--linger-ms", type=int, default=10)
    p.add_argument("--rate", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=30.0)
    a = p.parse_args()
    # Libraries are imported before any clock starts: start-up is not throughput.
    importlib.import_module(LIBRARIES.get(a.contender, "tradecore_eventbus"))
    out: dict[str, Any] = {"workload": a.workload, "contender": a.contender, "records": a.records}
    if a.workload == "batch":
        out.update(run_batch(a.contender, a.topic, a.records, a.batch, a.linger_ms))
    elif a.workload == "awaited":
        out.update(run_awaited(a.contender, a.topic, a.records, a.batch, a.linger_ms))
    elif a.workload == "concurrent":
        out.update(run_concurrent(a.contender, a.topic, a.records, a.tasks, a.linger_ms))
    elif a.workload == "consume":
        out.update(run_consume(a.contender, a.topic, a.records))
    elif a.workload == "latency":
        if a.contender == "ack_floor":
            delays = ack_floor(a.topic, a.rate, a.seconds, a.linger_ms)
        else:
            delays = asyncio.run(latency(a.contender, a.topic, a.rate, a.seconds, a.linger_ms))
        out.update(
            p50_ms=percentile(delays, 50),
            p99_ms=percentile(delays, 99),
            p999_ms=percentile(delays, 99.9),
            records=len(delays),
        )
    elif a.workload == "memory_consume":
        out.update(asyncio.run(memory_consume(a.topic, a.seconds)))
    elif a.workload == "paused_publish":
        out.update(asyncio.run(paused_publish(a.topic, a.seconds)))
    else:
        raise SystemExit(f"unknown workload {a.workload}")
    if "seconds" in out:
        out["rate"] = out["records"] / out["seconds"]
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
