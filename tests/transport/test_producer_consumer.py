"""The Rust transport against the real broker: batches, ordering, commits and redelivery."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import pytest
from tests.conftest import TopicFactory, unique

from tradecore_eventbus import _core, poll_batch

pytestmark = pytest.mark.kafka


def consumer(bootstrap: str, group: str, **kw: object) -> _core.Consumer:
    return _core.Consumer(bootstrap, group, **kw)  # type: ignore[arg-type]


async def consume(c: _core.Consumer, count: int, timeout: float = 30.0) -> list[_core.Record]:
    """Takes records until `count` arrived (or fails after `timeout`)."""
    out: list[_core.Record] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(out) < count:
        remaining = deadline - loop.time()
        assert remaining > 0, f"only {len(out)} of {count} records arrived"
        out.extend(await poll_batch(c, 500, min(remaining, 2.0)))
    return out


async def test_ten_thousand_records_in_batches_come_back_complete_and_in_order(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=6)
    producer = _core.Producer(bootstrap)
    keys = [f"account-{k}" for k in range(37)]
    seq: dict[str, int] = defaultdict(int)
    batch: list[tuple[bytes, bytes]] = []
    sent = 0
    deliveries: list[tuple[int, int]] = []
    for i in range(10_000):
        key = keys[i % len(keys)]
        value = json.dumps({"id": i, "key": key, "seq": seq[key]}).encode()
        seq[key] += 1
        batch.append((key.encode(), value))
        if len(batch) == 1000:
            deliveries += await producer.send_batch(topic, batch)
            sent += len(batch)
            batch = []
    assert sent == 10_000
    assert len(deliveries) == 10_000
    assert len(set(deliveries)) == 10_000, "two records reported the same (partition, offset)"
    await producer.close()

    c = consumer(bootstrap, unique("g"))
    c.subscribe([topic])
    await c.wait_assigned(30.0)
    records = await consume(c, 10_000)
    await c.close()

    ids = [json.loads(r.value)["id"] for r in records if r.value is not None]
    assert sorted(ids) == list(range(10_000)), "records lost or duplicated"
    last_offset: dict[int, int] = {}
    last_seq: dict[str, int] = {}
    for r in records:
        assert r.offset > last_offset.get(r.partition, -1), "offsets went back within a partition"
        last_offset[r.partition] = r.offset
        body = json.loads(r.value or b"")
        assert body["seq"] == last_seq.get(body["key"], -1) + 1, "a key's records out of order"
        last_seq[body["key"]] = body["seq"]
        assert r.key == body["key"].encode()
    assert len({r.partition for r in records}) == 6


async def test_a_batch_resolves_once_with_deliveries_in_record_order(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=1)
    producer = _core.Producer(bootstrap)
    awaitable = producer.send_batch(topic, [(None, f"r{i}".encode()) for i in range(500)])
    assert asyncio.isfuture(awaitable)
    deliveries = await awaitable
    assert [offset for _, offset in deliveries] == list(range(500))
    assert {partition for partition, _ in deliveries} == {0}
    assert producer.in_flight() == 0
    await producer.close()


async def test_replacement_consumer_resumes_right_after_the_last_commit(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=3)
    producer = _core.Producer(bootstrap)
    await producer.send_batch(topic, [(f"k{i % 5}".encode(), str(i).encode()) for i in range(300)])
    await producer.close()
    group = unique("g")

    first = consumer(bootstrap, group, commit_batch_size=7)
    first.subscribe([topic])
    await first.wait_assigned(30.0)
    taken = await consume(first, 180)
    first.mark_processed(taken)
    await first.commit()
    await first.close()

    second = consumer(bootstrap, group)
    second.subscribe([topic])
    await second.wait_assigned(30.0)
    rest = await consume(second, 300 - len(taken))
    await asyncio.sleep(1.0)
    rest += second.take(1000)  # anything beyond the remainder would be a replay
    await second.close()

    first_values = [r.value for r in taken]
    second_values = [r.value for r in rest]
    assert len(second_values) == 300 - len(first_values), "committed records were replayed"
    assert not set(first_values) & set(second_values), "a committed record came back"
    assert set(first_values) | set(second_values) == {str(i).encode() for i in range(300)}


async def test_close_commits_what_was_processed_without_an_explicit_commit(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=1)
    producer = _core.Producer(bootstrap)
    await producer.send_batch(topic, [(None, str(i).encode()) for i in range(50)])
    await producer.close()
    group = unique("g")

    # A batch size and interval large enough that only close() can have committed.
    first = consumer(bootstrap, group, commit_batch_size=10_000, commit_interval_ms=600_000)
    first.subscribe([topic])
    await first.wait_assigned(30.0)
    got = await consume(first, 50)
    first.mark_processed(got[:20])
    await first.close()

    second = consumer(bootstrap, group)
    second.subscribe([topic])
    await second.wait_assigned(30.0)
    rest = await consume(second, 30)
    await second.close()
    assert [r.offset for r in rest] == list(range(20, 50))


async def test_a_record_not_marked_processed_is_delivered_to_the_next_consumer(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=1)
    producer = _core.Producer(bootstrap)
    await producer.send_batch(topic, [(None, str(i).encode()) for i in range(10)])
    await producer.close()
    group = unique("g")

    first = consumer(bootstrap, group, commit_batch_size=1)
    first.subscribe([topic])
    await first.wait_assigned(30.0)
    got = await consume(first, 10)
    # Record 5's handler "failed": everything else is marked processed.
    first.mark_processed([r for r in got if r.offset != 5])
    await first.close()

    second = consumer(bootstrap, group)
    second.subscribe([topic])
    await second.wait_assigned(30.0)
    again = await consume(second, 5)
    await second.close()
    assert [r.offset for r in again] == [5, 6, 7, 8, 9]
    assert again[0].value == b"5"


async def test_two_consumers_in_one_group_split_the_partitions(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=6)
    group = unique("g")
    one = consumer(bootstrap, group, client_id="one")
    two = consumer(bootstrap, group, client_id="two")
    stop = asyncio.Event()

    async def keep_polling(c: _core.Consumer) -> None:
        # Rebalances are served by polling, as in any Kafka client.
        while not stop.is_set():
            c.mark_processed(await poll_batch(c, 100, 0.1))

    one.subscribe([topic])
    await one.wait_assigned(30.0)
    assert len(one.assignment()) == 6
    pollers = [asyncio.create_task(keep_polling(one))]
    two.subscribe([topic])
    await two.wait_assigned(30.0)
    pollers.append(asyncio.create_task(keep_polling(two)))

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        a, b = set(one.assignment()), set(two.assignment())
        if a and b and not a & b and len(a | b) == 6:
            break
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*pollers)
    a, b = set(one.assignment()), set(two.assignment())
    assert a, f"the first consumer got nothing: {a} / {b}"
    assert b, f"the second consumer got nothing: {a} / {b}"
    assert not a & b, "a partition was assigned twice"
    assert len(a | b) == 6
    assert one.stats()["rebalances"] >= 2, "cooperative rebalancing revokes incrementally"
    await asyncio.gather(one.close(), two.close())


async def test_pause_stops_delivery_until_resume(bootstrap: str, new_topic: TopicFactory) -> None:
    topic = await new_topic(partitions=2)
    c = consumer(bootstrap, unique("g"))
    c.subscribe([topic])
    await c.wait_assigned(30.0)
    c.pause()
    producer = _core.Producer(bootstrap)
    await producer.send_batch(topic, [(None, b"x")] * 20)
    assert await poll_batch(c, 100, 1.5) == []
    c.resume()
    got = await consume(c, 20)
    assert len(got) == 20
    await asyncio.gather(c.close(), producer.close())


async def test_headers_key_and_timestamp_round_trip(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic()
    producer = _core.Producer(bootstrap)
    partition, offset = await producer.send(
        topic,
        b'{"event_type": "OrderPlaced"}',
        key=b"user-1",
        headers=[("event_type", b"OrderPlaced"), ("event_id", b"e-1"), ("empty", None)],
    )
    assert (partition, offset) == (0, 0)
    c = consumer(bootstrap, unique("g"))
    c.subscribe([topic])
    await c.wait_assigned(30.0)
    [record] = await consume(c, 1)
    assert record.topic == topic
    assert record.key == b"user-1"
    assert record.value == b'{"event_type": "OrderPlaced"}'
    assert record.headers == [("event_type", b"OrderPlaced"), ("event_id", b"e-1"), ("empty", None)]
    assert record.header("event_id") == b"e-1"
    assert record.header("missing") is None
    assert record.timestamp is not None
    assert record.timestamp > 1_600_000_000_000
    await asyncio.gather(c.close(), producer.close())


async def test_latest_offset_subscriber_sees_what_is_produced_after_it_is_live(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=3)
    producer = _core.Producer(bootstrap)
    await producer.send_batch(topic, [(None, b"before")] * 30)
    c = consumer(bootstrap, unique("g"), auto_offset_reset="latest", enable_commit=False)
    c.subscribe([topic])
    await c.wait_assigned(30.0)
    # Produced right after the subscriber reported itself live: must not be skipped.
    await producer.send_batch(topic, [(None, b"after")] * 30)
    got = await consume(c, 30)
    await asyncio.sleep(0.5)
    got += c.take()
    assert [r.value for r in got] == [b"after"] * 30
    await asyncio.gather(c.close(), producer.close())
