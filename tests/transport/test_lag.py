"""`Consumer.lag()` against the real broker: records behind what the consumer handed out,
per partition, from librdkafka's cached watermarks."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from tests.conftest import TopicFactory, unique

from tradecore_eventbus import ClosedError, _core

pytestmark = pytest.mark.kafka

# The high watermarks arrive with fetch responses: an idle fetch returns within
# fetch.wait.max.ms (librdkafka's default, 500 ms), so this is many of them.
SETTLE_SECONDS = 10.0


async def take_exactly(c: _core.Consumer, count: int) -> list[_core.Record]:
    out: list[_core.Record] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30.0
    while len(out) < count:
        assert loop.time() < deadline, f"only {len(out)} of {count} records arrived"
        batch = c.take(count - len(out))
        if not batch:
            await c.wait(1.0)
        out += batch
    return out


async def lag_settles_at(c: _core.Consumer, expected: dict[tuple[str, int], int]) -> None:
    """Waits until `lag()` reports `expected` (the watermarks come with fetch responses)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_SECONDS
    while True:
        lag = {(topic, partition): n for topic, partition, n in c.lag()}
        if lag == expected:
            return
        assert loop.time() < deadline, f"lag {lag}, expected {expected}"
        await asyncio.sleep(0.05)


async def test_lag_counts_per_partition_the_records_not_taken_yet(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=3)
    producer = _core.Producer(bootstrap)
    deliveries = await producer.send_batch(
        topic, [(f"k{i % 7}".encode(), str(i).encode()) for i in range(120)]
    )
    await producer.close()
    produced = Counter(partition for partition, _ in deliveries)

    c = _core.Consumer(bootstrap, unique("g"))
    assert c.lag() == [], "no assignment yet"
    c.subscribe([topic])
    await c.wait_assigned(30.0)
    taken = await take_exactly(c, 50)
    handed_out = Counter(r.partition for r in taken)
    await lag_settles_at(c, {(topic, p): produced[p] - handed_out[p] for p in range(3)})

    await take_exactly(c, 70)
    await lag_settles_at(c, {(topic, p): 0 for p in range(3)})
    await c.close()
    with pytest.raises(ClosedError):
        c.lag()


async def test_a_new_member_lags_by_what_was_produced_after_the_last_commit(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=1)
    producer = _core.Producer(bootstrap)
    await producer.send_batch(topic, [(None, str(i).encode()) for i in range(30)])
    group = unique("g")
    first = _core.Consumer(bootstrap, group)
    first.subscribe([topic])
    await first.wait_assigned(30.0)
    first.mark_processed(await take_exactly(first, 30))
    await first.commit()
    await first.close()
    await producer.send_batch(topic, [(None, str(i).encode()) for i in range(30, 42)])
    await producer.close()

    second = _core.Consumer(bootstrap, group)
    second.subscribe([topic])
    await second.wait_assigned(30.0)
    await lag_settles_at(second, {(topic, 0): 12})
    await second.close()
