"""First figure: 1,000,000 records of 200 bytes through this package's batch API and through
confluent-kafka's ``Producer``, in the same run, against the local broker.

Same settings for both: acks=all, lz4, linger.ms=10, batch.size=16384 (the guide's
defaults), idempotence on. Each contender gets a fresh 6-partition topic.

    python benches/produce_compare.py [--records 1000000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

from confluent_kafka import Producer as ConfluentProducer

from tradecore_eventbus import _core

MAX_IN_FLIGHT = int(os.environ.get("MAX_IN_FLIGHT", "64"))
BOOTSTRAP = os.environ.get("TRADECORE_TEST_BOOTSTRAP", "127.0.0.1:19092")
SETTINGS = {
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 10,
    "batch.size": 16384,
    "enable.idempotence": True,
}


async def new_topic(admin: _core.Admin, name: str) -> str:
    topic = f"bench-{name}-{uuid.uuid4().hex[:8]}"
    await admin.create_topics([(topic, 6, 1, None)])
    return topic


async def run_ours(topic: str, payload: bytes, records: int, batch: int) -> float:
    producer = _core.Producer(BOOTSTRAP)
    batch_records = [(None, payload)] * batch
    in_flight: set[asyncio.Future[list[tuple[int, int]]]] = set()
    started = time.perf_counter()
    for _ in range(records // batch):
        fut = asyncio.ensure_future(producer.send_batch(topic, batch_records))
        in_flight.add(fut)
        if len(in_flight) >= MAX_IN_FLIGHT:
            done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for d in done:
                d.result()
    for d in asyncio.as_completed(in_flight):
        await d
    await producer.flush(60.0)
    elapsed = time.perf_counter() - started
    await producer.close()
    return records / elapsed


def run_confluent(topic: str, payload: bytes, records: int) -> float:
    producer = ConfluentProducer({"bootstrap.servers": BOOTSTRAP, **SETTINGS})
    failures = 0

    def on_delivery(err: object, _msg: object) -> None:
        nonlocal failures
        if err is not None:
            failures += 1

    started = time.perf_counter()
    for _ in range(records):
        while True:
            try:
                producer.produce(topic, payload, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - started
    assert failures == 0, f"{failures} confluent deliveries failed"
    return records / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    payload = b"x" * 200
    admin = _core.Admin(BOOTSTRAP)
    await admin.ping(10.0)
    ours = await run_ours(await new_topic(admin, "ours"), payload, args.records, args.batch)
    theirs = run_confluent(await new_topic(admin, "confluent"), payload, args.records)
    print(f"records: {args.records:,} x 200 bytes, acks=all, lz4, linger 10 ms, idempotent")
    print(f"tradecore_eventbus._core send_batch ({args.batch}/batch): {ours:12,.0f} rec/s")
    print(f"confluent-kafka Producer.produce + poll + flush:  {theirs:12,.0f} rec/s")
    print(f"ratio (ours / confluent): {ours / theirs:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
