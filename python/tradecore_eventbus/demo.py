"""The demo behind ``make demo``: a produce/consume round trip through the Rust transport.

Run with ``python -m tradecore_eventbus.demo --broker kafka`` against the local broker
(``make broker-start``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

from . import _core, poll_batch


async def kafka_round_trip(bootstrap: str, count: int) -> None:
    topic = f"demo.orders-{uuid.uuid4().hex[:8]}"
    admin = _core.Admin(bootstrap)
    print(f"connected to {bootstrap}: {await admin.ping(5.0)} broker(s)")
    await admin.create_topics([(topic, 3, 1, {"retention.ms": str(3600_000)})])
    producer = _core.Producer(bootstrap)
    events = [
        (f"user-{i % 10}".encode(), json.dumps({"event_type": "OrderPlaced", "n": i}).encode())
        for i in range(count)
    ]
    started = time.perf_counter()
    deliveries = await producer.send_batch(topic, events)
    print(f"published {len(deliveries)} events to {topic} in {time.perf_counter() - started:.3f}s")
    consumer = _core.Consumer(bootstrap, f"demo-{uuid.uuid4().hex[:6]}")
    consumer.subscribe([topic])
    await consumer.wait_assigned(30.0)
    received = 0
    while received < count:
        records = await poll_batch(consumer, 500, 10.0)
        if not records:
            break
        consumer.mark_processed(records)
        received += len(records)
    print(f"consumed {received} events; consumer stats: {consumer.stats()}")
    await consumer.close()
    await producer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker", choices=["kafka"], default="kafka")
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(kafka_round_trip(args.bootstrap, args.count))


if __name__ == "__main__":
    main()
