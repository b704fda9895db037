"""The in-memory transport: Kafka's partitioner, partition logs, consumer groups, offsets.

No broker needed: these pin down that ``MemoryTransportAdapter`` gives the semantics the
Kafka transport gives, so an application's tests behave the same on both.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

from tradecore_eventbus._internal.transports.memory.broker import (
    MemoryBroker,
    murmur2,
    partition_for_key,
)
from tradecore_eventbus.event_bus import EventBus
from tradecore_eventbus.eventbus_transport_config import TransportConfig
from tradecore_eventbus.exceptions import (
    ClosedError,
    InvalidArgumentError,
    TransportTimeoutError,
    UnknownTopicError,
)
from tradecore_eventbus.memory_adapter import (
    MemoryConsumer,
    MemoryProducer,
    MemoryRecord,
    MemoryTransportAdapter,
)
from tradecore_eventbus.transport_adapter import ConsumerSpec, OutgoingRecord, TopicSpec

TOPIC = "transport.orders"


def spec(
    group: str = "g",
    *,
    reset: str = "earliest",
    commit: bool = True,
    max_poll: int = 500,
) -> ConsumerSpec:
    return ConsumerSpec(TOPIC, group, "stream" if commit else "pubsub", reset, commit, max_poll)


def consumer(
    broker: MemoryBroker,
    group: str = "g",
    *,
    batch: int = 1000,
    interval_ms: int = 3_600_000,
    reset: str = "earliest",
    commit: bool = True,
    max_poll: int = 500,
) -> MemoryConsumer:
    """A consumer that, unless told otherwise, only commits on commit/revoke/close."""
    return MemoryConsumer(
        broker,
        spec(group, reset=reset, commit=commit, max_poll=max_poll),
        commit_batch_size=batch,
        commit_interval_ms=interval_ms,
    )


async def live(c: MemoryConsumer, topic: str = TOPIC) -> MemoryConsumer:
    c.subscribe([topic])
    await c.wait_assigned(1.0)
    return c


async def fill(broker: MemoryBroker, n: int, key: bytes | None = b"k", start: int = 0) -> None:
    producer = MemoryProducer(broker)
    for i in range(start, start + n):
        await producer.send(TOPIC, json.dumps({"n": i}), key=key)


def numbers(records: Sequence[MemoryRecord]) -> list[int]:
    return [json.loads(r.value or b"")["n"] for r in records]


@pytest.fixture
def broker() -> MemoryBroker:
    b = MemoryBroker(default_partitions=6)
    b.create_topic(TOPIC)
    return b


# --- partitioner ------------------------------------------------------------------------------


# Kafka's UtilsTest.testMurmur2 vectors.
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_kafkas_java_client(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_keyed_partition_is_kafkas_positive_hash_modulo() -> None:
    # toPositive(-973932308) = -973932308 & 0x7fffffff = 1173551340
    # = 6 * 195591890 = 7 * 167650191 + 3
    assert partition_for_key(b"21", 6) == 0
    assert partition_for_key(b"21", 7) == 3
    assert all(0 <= partition_for_key(f"k{i}".encode(), 6) < 6 for i in range(100))


async def test_same_key_same_partition_in_order(broker: MemoryBroker) -> None:
    producer = MemoryProducer(broker)
    sent = [await producer.send(TOPIC, f"v{i}", key=b"account-7") for i in range(10)]
    partitions = {p for p, _ in sent}
    assert partitions == {partition_for_key(b"account-7", 6)}
    assert [o for _, o in sent] == list(range(10))
    c = await live(consumer(broker))
    assert [r.value for r in c.take()] == [f"v{i}".encode() for i in range(10)]


async def test_records_without_key_go_round_robin(broker: MemoryBroker) -> None:
    results = await MemoryProducer(broker).send_batch(TOPIC, [(None, b"x", [])] * 12)
    assert [p for p, _ in results] == list(range(6)) * 2
    assert [o for _, o in results] == [0] * 6 + [1] * 6


# --- producer ---------------------------------------------------------------------------------


async def test_send_batch_reports_positions_in_record_order(broker: MemoryBroker) -> None:
    records: list[OutgoingRecord] = [
        (f"k{i}".encode(), f"v{i}".encode(), [("i", str(i).encode())]) for i in range(20)
    ]
    results = await MemoryProducer(broker).send_batch(TOPIC, records)
    assert len(results) == 20
    for (partition, offset), (_, value, _) in zip(results, records, strict=True):
        assert broker.read(TOPIC, partition, offset, 1)[0].value == value


async def test_sending_to_a_new_topic_creates_it_like_kafka_auto_create() -> None:
    broker = MemoryBroker(default_partitions=2)
    await MemoryProducer(broker, default_partitions=4).send("transport.new", b"x")
    assert broker.topics() == {"transport.new": 4}


async def test_explicit_partition_and_bad_partition(broker: MemoryBroker) -> None:
    producer = MemoryProducer(broker)
    assert await producer.send(TOPIC, b"x", partition=5) == (5, 0)
    with pytest.raises(UnknownTopicError):
        await producer.send(TOPIC, b"x", partition=6)


async def test_records_carry_key_headers_and_timestamp(broker: MemoryBroker) -> None:
    producer = MemoryProducer(broker)
    headers = [("event_type", b"A"), ("event_type", b"B"), ("empty", None)]
    await producer.send(TOPIC, "body", key="key", headers=headers)
    await producer.send(TOPIC, None, key="key", headers={"event_id": "e-1"})
    first, second = (await live(consumer(broker))).take()
    assert (first.key, first.value) == (b"key", b"body")
    assert first.header("event_type") == b"A", "the first value of a repeated header"
    assert first.header("empty") is None
    assert first.header("missing") is None
    assert first.headers == headers
    assert first.timestamp is not None
    assert first.timestamp > 1_600_000_000_000
    assert second.value is None
    assert second.header("event_id") == b"e-1"


async def test_closed_producer_refuses_to_send(broker: MemoryBroker) -> None:
    producer = MemoryProducer(broker)
    await producer.close()
    await producer.close()
    with pytest.raises(ClosedError):
        await producer.send_batch(TOPIC, [(None, b"x", [])])


# --- consumer groups --------------------------------------------------------------------------


async def test_two_members_split_the_partitions(broker: MemoryBroker) -> None:
    a = await live(consumer(broker, "shared"))
    assert sorted(a.assignment()) == [(TOPIC, p) for p in range(6)]
    b = await live(consumer(broker, "shared"))
    # Range assignment over the sorted partitions, members in join order.
    assert sorted(a.assignment()) == [(TOPIC, p) for p in range(3)]
    assert sorted(b.assignment()) == [(TOPIC, p) for p in range(3, 6)]
    producer = MemoryProducer(broker)
    for i in range(60):
        await producer.send(TOPIC, json.dumps({"n": i}), key=f"k{i}")
    got_a, got_b = numbers(a.take()), numbers(b.take())
    assert got_a
    assert got_b
    assert sorted(got_a + got_b) == list(range(60)), "lost or delivered twice"
    await b.close()
    assert sorted(a.assignment()) == [(TOPIC, p) for p in range(6)], "the leaver's share moved"
    assert a.stats()["rebalances"] >= 3


async def test_more_members_than_partitions_leaves_some_idle() -> None:
    broker = MemoryBroker(default_partitions=2)
    members = [await live(consumer(broker, "wide")) for _ in range(3)]
    assert [len(m.assignment()) for m in members] == [1, 1, 0]


async def test_a_new_group_replays_from_the_beginning(broker: MemoryBroker) -> None:
    await fill(broker, 20)
    first = await live(consumer(broker, "a"))
    records = first.take()
    first.mark_processed(records)
    await first.close()
    second = await live(consumer(broker, "b"))
    replay = second.take()
    assert numbers(replay) == list(range(20))
    assert replay[0].offset == 0


async def test_latest_starts_at_the_end_when_the_member_becomes_live(
    broker: MemoryBroker,
) -> None:
    await fill(broker, 5, key=None)
    c = await live(consumer(broker, "tail", reset="latest"))
    assert c.take() == []
    await fill(broker, 3, key=None, start=100)
    assert sorted(numbers(c.take())) == [100, 101, 102]


async def test_committed_offsets_win_over_the_reset_policy(broker: MemoryBroker) -> None:
    await fill(broker, 4)
    c = await live(consumer(broker, "g", reset="latest"))
    assert c.take() == []
    await fill(broker, 2, start=4)
    c.mark_processed(c.take())
    await c.close()
    await fill(broker, 2, start=6)
    again = await live(consumer(broker, "g", reset="latest"))
    assert numbers(again.take()) == [6, 7]


async def test_a_replacement_resumes_after_the_last_commit(broker: MemoryBroker) -> None:
    await fill(broker, 10)
    c = await live(consumer(broker))
    c.mark_processed(c.take(6))
    await c.commit()
    await c.close()
    replacement = await live(consumer(broker))
    assert numbers(replacement.take()) == [6, 7, 8, 9], "no replay of committed records"


async def test_an_unmarked_record_is_delivered_again(broker: MemoryBroker) -> None:
    await fill(broker, 6)
    c = await live(consumer(broker))
    records = c.take()
    # Record 3 failed: everything else is marked, the commit stops at it.
    assert c.mark_processed([r for r in records if numbers([r]) != [3]]) == 5
    await c.close()
    nxt = await live(consumer(broker))
    assert numbers(nxt.take()) == [3, 4, 5]


async def test_a_rebalance_commits_the_revoked_partitions_first(broker: MemoryBroker) -> None:
    key = next(f"k{i}".encode() for i in range(100) if partition_for_key(f"k{i}".encode(), 6) == 5)
    await fill(broker, 4, key=key)
    a = await live(consumer(broker))
    records = a.take()
    a.mark_processed(records[:2])  # 0 and 1 done, 2 and 3 still in hand
    b = await live(consumer(broker))
    assert (TOPIC, 5) in b.assignment()
    assert broker.committed("g", (TOPIC, 5)) == 2
    assert numbers(b.take()) == [2, 3], "what the old owner did not finish moves with it"
    assert a.mark_processed(records[2:]) == 0, "marks on a revoked partition do not count"


async def test_commits_every_batch_of_marks(broker: MemoryBroker) -> None:
    await fill(broker, 10)
    c = await live(consumer(broker, batch=4))
    records = c.take()
    c.mark_processed(records[:3])
    assert broker.committed("g", (TOPIC, records[0].partition)) is None
    c.mark_processed(records[3:4])
    assert broker.committed("g", (TOPIC, records[0].partition)) == 4
    assert c.stats()["commits"] == 1


async def test_commits_on_the_interval(broker: MemoryBroker) -> None:
    await fill(broker, 2)
    c = await live(consumer(broker, interval_ms=50))
    c.mark_processed(c.take())
    await asyncio.sleep(0.06)
    c.take()  # the consumer's poll is where the interval commit happens
    assert broker.committed("g", (TOPIC, partition_for_key(b"k", 6))) == 2


async def test_pubsub_consumers_never_commit(broker: MemoryBroker) -> None:
    await fill(broker, 3)
    c = await live(consumer(broker, "sub", commit=False))
    assert c.mark_processed(c.take()) == 0
    await c.commit()
    await c.close()
    assert broker.committed("sub", (TOPIC, partition_for_key(b"k", 6))) is None


async def test_take_is_capped_by_max_poll_records(broker: MemoryBroker) -> None:
    await fill(broker, 10)
    c = await live(consumer(broker, max_poll=4))
    assert len(c.take()) == 4
    assert len(c.take(2)) == 2
    assert len(c.take(100)) == 4
    assert numbers(c.take()) == [], "all 10 handed out, none twice"


async def test_pause_and_resume(broker: MemoryBroker) -> None:
    producer = MemoryProducer(broker)
    for p in (1, 2):
        await producer.send(TOPIC, json.dumps({"n": p}), partition=p)
    c = await live(consumer(broker))
    c.pause([(TOPIC, 1)])
    assert [r.partition for r in c.take()] == [2]
    c.pause()
    await producer.send(TOPIC, json.dumps({"n": 3}), partition=3)
    assert c.take() == []
    assert await c.wait(0.05) is False, "nothing fetchable while everything is paused"
    c.resume([(TOPIC, 1)])
    assert [r.partition for r in c.take()] == [1]
    c.resume()
    assert [r.partition for r in c.take()] == [3]
    assert c.stats()["paused"] == 0


# --- waiting ----------------------------------------------------------------------------------


async def test_wait_wakes_on_append_and_times_out_otherwise(broker: MemoryBroker) -> None:
    c = await live(consumer(broker))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await c.wait(0.05) is False
    assert loop.time() - started >= 0.04
    waiter = asyncio.create_task(c.wait(10.0))
    await asyncio.sleep(0)
    await fill(broker, 1)
    assert await asyncio.wait_for(waiter, 1.0) is True
    assert numbers(c.take()) == [0]


async def test_wait_returns_at_once_when_records_are_here(broker: MemoryBroker) -> None:
    await fill(broker, 1)
    c = await live(consumer(broker))
    assert await asyncio.wait_for(c.wait(10.0), 0.5) is True


async def test_a_cancelled_wait_loses_nothing(broker: MemoryBroker) -> None:
    c = await live(consumer(broker))
    waiter = asyncio.create_task(c.wait(10.0))
    await asyncio.sleep(0)
    await fill(broker, 1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert numbers(c.take()) == [0]


async def test_wait_assigned_needs_a_subscription(broker: MemoryBroker) -> None:
    c = consumer(broker)
    with pytest.raises(TransportTimeoutError):
        await c.wait_assigned(0.05)
    with pytest.raises(InvalidArgumentError):
        await c.wait_assigned(-1)
    with pytest.raises(InvalidArgumentError):
        c.subscribe([])


async def test_subscribing_creates_a_missing_topic() -> None:
    broker = MemoryBroker(default_partitions=3)
    c = await live(consumer(broker), topic="transport.fresh")
    assert broker.topics() == {"transport.fresh": 3}
    assert len(c.assignment()) == 3


# --- closing ----------------------------------------------------------------------------------


async def test_close_is_idempotent_wakes_waiters_and_refuses_use(broker: MemoryBroker) -> None:
    c = await live(consumer(broker))
    waiter = asyncio.create_task(c.wait(10.0))
    await asyncio.sleep(0)
    await asyncio.gather(c.close(), c.close())
    await c.close()
    assert await asyncio.wait_for(waiter, 1.0) is False
    assert c.closed
    assert c.stats()["closed"] is True
    assert broker.group_members("g") == 0
    assert await c.wait(1.0) is False
    with pytest.raises(ClosedError):
        c.take()
    with pytest.raises(ClosedError):
        c.mark_processed([])
    with pytest.raises(ClosedError):
        c.subscribe([TOPIC])
    with pytest.raises(ClosedError):
        await c.wait_assigned(1.0)


async def test_stats_count_what_happened(broker: MemoryBroker) -> None:
    await fill(broker, 5)
    c = await live(consumer(broker))
    c.mark_processed(c.take()[:3])
    await c.commit()
    stats = c.stats()
    assert {k: stats[k] for k in ("received", "processed", "commits", "closed")} == {
        "received": 5,
        "processed": 3,
        "commits": 1,
        "closed": False,
    }
    assert stats["rebalances"] == 1


# --- adapter ----------------------------------------------------------------------------------


async def test_adapter_lifecycle_and_topics() -> None:
    adapter = MemoryTransportAdapter(transport_config=TransportConfig(topic_partitions=3))
    assert adapter.name == "memory"
    with pytest.raises(ClosedError):
        adapter.producer()
    await adapter.start()
    await adapter.start()
    producer = adapter.producer()
    assert adapter.stats()["producer_started"] is True
    specs = [TopicSpec("transport.a", 2, 1), TopicSpec("transport.b", 4, 1)]
    assert await adapter.ensure_topics(specs) == {
        "transport.a": "created",
        "transport.b": "created",
    }
    assert await adapter.ensure_topics(specs[:1]) == {"transport.a": "exists"}
    await producer.send_batch("transport.c", [(None, b"{}", [])])
    assert await adapter.list_topics() == {"transport.a": 2, "transport.b": 4, "transport.c": 3}
    assert await adapter.ping(1.0) is True
    await asyncio.gather(adapter.close(), adapter.close())
    assert await adapter.ping(1.0) is False
    with pytest.raises(ClosedError):
        adapter.producer()
    with pytest.raises(ClosedError):
        await adapter.start()


async def test_adapter_consumers_use_the_transport_commit_settings() -> None:
    adapter = MemoryTransportAdapter(transport_config=TransportConfig(commit_batch_size=2))
    await adapter.start()
    await adapter.producer().send_batch(TOPIC, [(b"k", b"1", []), (b"k", b"2", [])])
    c = adapter.new_consumer(spec())
    c.subscribe([TOPIC])
    await c.wait_assigned(1.0)
    c.mark_processed(c.take())
    assert adapter.broker.committed("g", (TOPIC, partition_for_key(b"k", 6))) == 2
    await c.close()
    await adapter.close()


async def test_adapters_sharing_a_broker_are_one_cluster() -> None:
    broker = MemoryBroker()
    first, second = MemoryTransportAdapter(broker=broker), MemoryTransportAdapter(broker=broker)
    await first.start()
    await first.producer().send_batch(TOPIC, [(None, b'{"n": 1}', [])])
    c = second.new_consumer(spec())
    c.subscribe([TOPIC])
    await c.wait_assigned(1.0)
    assert [r.value for r in c.take()] == [b'{"n": 1}']
    assert second.get_published_messages(TOPIC) == [{"n": 1}]
    await c.close()


async def test_get_published_messages_in_publish_order_across_partitions() -> None:
    adapter = MemoryTransportAdapter(transport_config=TransportConfig(topic_prefix="dev"))
    async with EventBus(adapter, validate_on_publish=False) as bus:
        for i in range(12):
            await bus.publish_stream("transport.trades", {"event_type": "T", "n": i}, key=f"k{i}")
        assert [m["n"] for m in adapter.get_published_messages("transport.trades")] == list(
            range(12)
        )
        assert adapter.broker.has_topic("dev.transport.trades"), "the prefix is applied"
        partitions = {r.partition for r in adapter.broker.published("dev.transport.trades")}
        assert len(partitions) > 1, "the order holds across partitions"
    assert adapter.get_published_messages("transport.never-used") == []
