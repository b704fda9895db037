"""The spool is never blocked by one entry: an entry the broker refuses for good when drained
(too large, not authorized) moves aside into the spool's ``dead/`` directory, is counted in
health and listed, and the drain goes on with the entries spooled after it, in order."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.bus.conftest import test_configs as suite_configs
from tests.reliability.conftest import FAST_RETRY, BusBuilder, read_topic

from tradecore_eventbus import EventBus, KafkaError, PublishError
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker
from tradecore_eventbus._internal.transports.structs import TopicSpec
from tradecore_eventbus.memory_adapter import MemoryTransportAdapter
from tradecore_eventbus.redpanda_adapter import RedpandaTransportAdapter

TRANSPORTS = ["memory", pytest.param("kafka", marks=pytest.mark.kafka)]
BIG = "x" * 2_000_000  # over message.max.bytes (1,000,000) on both transports


def channel() -> str:
    return f"transport.dead-{uuid.uuid4().hex[:8]}"


def event(n: int, **extra: Any) -> dict[str, Any]:
    return {"event_type": "E", "event_id": f"e{n}-{uuid.uuid4().hex[:6]}", "n": n, **extra}


async def wait_until(condition: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def spool_during_an_outage(bus: EventBus, broker: MemoryBroker, ch: str) -> list[str]:
    """With the broker away: e1, the big event, e2, e3 are spooled (the later ones queue
    behind the first). Returns the event ids of e1, big, e2, e3."""
    broker.available = False
    ids = []
    for e in (event(1), event(9, blob=BIG), event(2), event(3)):
        with pytest.raises(PublishError) as info:
            await bus.publish_stream(ch, e, partition_key="acct")
        assert info.value.spooled, info.value
        ids.append(e["event_id"])
    assert bus.spool.count() == 4
    return ids


async def test_a_refused_entry_moves_aside_and_the_drainer_sends_the_rest(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(broker=broker)
    ch = channel()
    await bus.publish_stream(ch, event(0), partition_key="acct")
    e1, big, e2, e3 = await spool_during_an_outage(bus, broker, ch)
    broker.available = True
    # The background drainer (not a call of ours) empties the spool once the broker answers.
    await wait_until(lambda: bus.spool.count() == 0)
    sent = bus.adapter.get_published_messages(ch)  # type: ignore[attr-defined]
    assert [m["n"] for m in sent] == [0, 1, 2, 3]
    [dead] = bus.dead_spool_entries()
    assert dead["event_id"] == big
    assert dead["topic"] == bus.adapter.topic_for(ch)
    assert dead["destination"] == "topic"
    assert dead["code_name"] == "MessageSizeTooLarge"
    assert dead["error_type"] == "KafkaError"
    assert dead["size"] > 2_000_000
    assert dead["dead_at_ms"] >= dead["spooled_at_ms"]
    spool = (await bus.health_check())["adapter"]["details"]["spool"]
    assert spool["pending"] == 0
    assert spool["dead"] == 1
    # The file keeps the record exactly as it was to be sent.
    [path] = list((Path(spool["directory"]) / "dead").glob("*.json"))
    assert json.loads(path.read_bytes())["event_id"] == big
    # And publishing goes straight through again.
    result = await bus.publish_stream(ch, event(4), partition_key="acct")
    assert result.offset == 4
    assert {e1, e2, e3} <= {m["event_id"] for m in sent}


async def test_a_dead_entry_can_be_replayed_once_the_cause_is_fixed_or_purged(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(broker=broker)
    ch = channel()
    await bus.publish_stream(ch, event(0))
    broker.available = False
    for n in (1, 2, 3):
        with pytest.raises(PublishError):
            await bus.publish_stream(ch, event(n), partition_key="acct")
    broker.available = True
    # The broker refuses the first spooled event for good (say, a missing ACL) and the
    # third one (say, an invalid record): both move aside, the second is sent.
    refused = KafkaError(
        "produce failed: Broker: Topic authorization failed",
        code=29,
        code_name="TopicAuthorizationFailed",
        retriable=False,
    )
    invalid = KafkaError("invalid record", code=87, code_name="InvalidRecord", retriable=False)
    original = broker.check_append
    script: list[Exception | None] = [refused, None, invalid]
    broker.check_append = lambda: script.pop(0) if script else original()  # type: ignore[method-assign]
    report = await bus.replay_spool()
    assert report == {"sent": 1, "already_delivered": 0, "remaining": 0, "dead": 2}
    dead = bus.dead_spool_entries()
    assert [d["code_name"] for d in dead] == ["TopicAuthorizationFailed", "InvalidRecord"]
    assert [m.get("n") for m in bus.adapter.get_published_messages(ch)] == [0, 2]  # type: ignore[attr-defined]

    # The ACL is fixed: the first one is sent again; the invalid one is dropped for good.
    assert await bus.replay_dead_spool([dead[0]["name"]]) == {
        "revived": 1,
        "sent": 1,
        "already_delivered": 0,
        "remaining": 0,
        "dead": 0,
    }
    assert [m.get("n") for m in bus.adapter.get_published_messages(ch)] == [0, 2, 1]  # type: ignore[attr-defined]
    assert bus.spool.purge_dead([dead[1]["name"], "../not-an-entry"]) == 1
    assert bus.dead_spool_entries() == []
    assert (await bus.health_check())["adapter"]["details"]["spool"]["dead"] == 0


async def test_a_dead_entry_refused_again_stays_dead(
    reliable_bus: BusBuilder, broker: MemoryBroker
) -> None:
    bus = await reliable_bus(broker=broker)
    ch = channel()
    await bus.publish_stream(ch, event(0))
    await spool_during_an_outage(bus, broker, ch)
    broker.available = True
    assert (await bus.replay_spool())["dead"] == 1
    assert await bus.replay_dead_spool() == {
        "revived": 1,
        "sent": 0,
        "already_delivered": 0,
        "remaining": 0,
        "dead": 1,
    }
    assert len(bus.dead_spool_entries()) == 1


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_refused_event_whose_dlq_copy_is_refused_too_is_kept_as_dead(
    reliable_bus: BusBuilder, kind: str
) -> None:
    """The 2 MB event: refused by the broker, and its DLQ copy too (capped to the producer's
    limit, decision 44, but this DLQ topic takes at most 200 bytes). The caller is told so
    (``dlq == "dead"``, not "the DLQ via the spool"), the copy is kept aside, nothing stays
    pending, and the valid events published in the same loop turn are delivered."""
    bus = await reliable_bus(kind)
    ch = channel()
    dlq_topic = bus.adapter.topic_for(f"{ch}.dlq")
    await bus.adapter.ensure_topics([TopicSpec(dlq_topic, 1, 1, {"max.message.bytes": "200"})])
    good = [event(n) for n in range(5)]
    outcomes = await asyncio.gather(
        *(bus.publish_stream(ch, e) for e in good[:3]),
        bus.publish_stream(ch, event(9, blob=BIG)),
        *(bus.publish_stream(ch, e) for e in good[3:]),
        return_exceptions=True,
    )
    refused = outcomes[3]
    assert isinstance(refused, PublishError), refused
    assert refused.dlq == "dead"
    assert not refused.spooled
    assert isinstance(refused.cause, KafkaError)
    assert refused.cause.code_name == "MessageSizeTooLarge"
    assert "kept in" in str(refused)
    assert all(not isinstance(o, BaseException) for i, o in enumerate(outcomes) if i != 3)
    records = await read_topic(bus, ch, len(good))
    assert sorted(json.loads(r.value)["n"] for r in records) == [0, 1, 2, 3, 4]
    [dead] = bus.dead_spool_entries()
    assert dead["destination"] == "dlq"
    assert dead["topic"] == dlq_topic
    spool = (await bus.health_check())["adapter"]["details"]["spool"]
    assert (spool["pending"], spool["dead"]) == (0, 1)
    # Nothing waits behind it.
    assert (await bus.publish_stream(ch, event(10))).event_id


@pytest.mark.kafka
async def test_on_kafka_the_spool_of_an_outage_drains_past_a_refused_entry(
    tmp_path: Path,
) -> None:
    """An outage (simulated: a process whose broker is away spools e1, the big event, e2,
    e3), then a restart on the real broker sharing the spool: its drainer sends e1, e2, e3
    in order and moves the big event aside."""
    bus_config, tc = suite_configs()
    spool = str(tmp_path / "spool")
    broker = MemoryBroker()
    config = replace(bus_config, publish_retry=FAST_RETRY)
    away = EventBus(MemoryTransportAdapter(config, tc, broker=broker), spool_dir=spool)
    ch = channel()
    try:
        ids = await spool_during_an_outage(away, broker, ch)
    finally:
        await away.close()
    bus = EventBus(
        RedpandaTransportAdapter(event_bus_config=config, transport_config=tc), spool_dir=spool
    )
    try:
        await bus.start()  # finds the spool left over and drains it in the background
        await wait_until(lambda: bus.spool.count() == 0, timeout=60.0)
        records = await read_topic(bus, ch, 3)
        sent = [json.loads(r.value) for r in records]
        assert [e["event_id"] for e in sent] == [ids[0], ids[2], ids[3]]
        assert len({r.partition for r in records}) == 1  # one key, one partition, in order
        [dead] = bus.dead_spool_entries()
        assert dead["event_id"] == ids[1]
        assert dead["code_name"] == "MessageSizeTooLarge"
        health = await bus.health_check()
        assert health["adapter"]["details"]["spool"]["dead"] == 1
        assert health["adapter"]["details"]["spool"]["pending"] == 0
    finally:
        await bus.close()
