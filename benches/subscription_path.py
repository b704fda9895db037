"""The event-loop thread's CPU per record of a subscription's own per-record path, with no
Kafka: a consumer double hands pre-built records to a real ``Subscription`` (the bus's
observers, no filter), and the handler counts them. What it measures is everything between
``take`` and the handler: dispatch to the partition workers, the worker's loop, the
handler's coroutine, statistics and marking (decision 120).

    python benches/subscription_path.py [--records 300000] [--rounds 5] [--tree DIR]

``--tree``: a source tree's ``python/`` directory to import the package from (A/B runs).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

#: Records per ``take``, as the EventBus asks for them (``batch_size=500`` in the benches).
BATCH = 500
PARTITIONS = 6


class FakeRecord:
    __slots__ = ("event", "headers", "key", "offset", "partition", "timestamp", "topic", "value")

    def __init__(self, partition: int, offset: int, event: dict[str, Any]) -> None:
        self.topic = "bench"
        self.partition = partition
        self.offset = offset
        self.event = event
        self.value = b""
        self.key = None
        self.headers: list[tuple[str, bytes | None]] = []
        self.timestamp = None


class FakeConsumer:
    """What a ``Subscription`` calls on its consumer, handing out the given records."""

    closed = False
    assigned = True

    def __init__(self, records: list[FakeRecord]) -> None:
        self.records = records
        self.next = 0

    def subscribe(self, topics: Sequence[str]) -> None:
        pass

    async def wait_assigned(self, timeout: float) -> None:
        pass

    def take(self, max_records: int, *, decode_events: bool = False) -> list[FakeRecord]:
        batch = self.records[self.next : self.next + max_records]
        self.next += len(batch)
        return batch

    async def wait(self, timeout: float) -> bool:
        await asyncio.sleep(timeout)
        return False

    def mark_processed(self, records: Sequence[FakeRecord]) -> int:
        return len(records)

    def pause(self, partitions: Sequence[tuple[str, int]] | None = None) -> None:
        pass

    def resume(self, partitions: Sequence[tuple[str, int]] | None = None) -> None:
        pass

    def assignment(self) -> list[tuple[str, int]]:
        return [("bench", p) for p in range(PARTITIONS)]

    async def close(self) -> None:
        pass


def records(n: int) -> list[FakeRecord]:
    """``n`` records in batches of one partition each, as librdkafka hands them out."""
    return [
        FakeRecord(
            (start // BATCH) % PARTITIONS,
            offset,
            {"event_type": "OrderPlaced", "event_id": f"e-{offset}", "quantity": offset},
        )
        for start in range(0, n, BATCH)
        for offset in range(start, min(n, start + BATCH))
    ]


async def one_round(n: int) -> float:
    """Loop-thread CPU seconds to handle ``n`` records."""
    from tradecore_eventbus._internal.consuming.subscription import Subscription
    from tradecore_eventbus._internal.observability.counters import Counters
    from tradecore_eventbus._internal.observability.dispatch import Observers
    from tradecore_eventbus._internal.reliability.retry import RetryConfig

    done = asyncio.Event()
    seen = 0

    async def handler(event: dict[str, Any]) -> None:
        nonlocal seen
        seen += 1
        if seen >= n:
            done.set()

    consumer = FakeConsumer(records(n))
    gc.collect()
    sub = Subscription(
        id="bench",
        channel="bench",
        topic="bench",
        mode="stream",
        group_id="bench",
        consumer_name="c1",
        consumer=consumer,  # type: ignore[arg-type]
        handler=handler,
        filter_fn=None,
        batch_size=BATCH,
        block_ms=100,
        max_concurrent_partitions=PARTITIONS,
        retry=RetryConfig(),
        dead_letter=None,
        observers=Observers(Counters()),
    )
    started = time.thread_time()
    await sub.start(5.0)
    await done.wait()
    cpu = time.thread_time() - started
    await sub.stop(5.0)
    return cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tree", default=None)
    a = ap.parse_args()
    if a.tree:
        sys.path.insert(0, a.tree)
    per_record = [asyncio.run(one_round(a.records)) / a.records * 1e6 for _ in range(a.rounds)]
    print(
        " / ".join(f"{us:.2f}" for us in per_record),
        f"median {statistics.median(per_record):.2f} us of loop-thread CPU per record",
    )


if __name__ == "__main__":
    main()
