"""Scenario 3, after ducktape's replication_test with three brokers: the leader of one
partition is SIGKILLed (and restarted once its partitions have a new leader) again and
again, on a topic with replication factor 3 and min.insync.replicas 2, while events are
published and consumed. With acks=all an acknowledged event is on at least two brokers, so
none may be lost; the partition must get a new leader, and publishing and consuming must
resume on it."""

from __future__ import annotations

import asyncio
import time
import uuid
from itertools import pairwise
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
from tests.chaos import modes
from tests.chaos.checker import check_consumption, partition_leaders, read_and_check
from tests.chaos.infra import SCRIPT_TIMEOUT_S, Cluster, poll_until, poll_until_async
from tests.chaos.report import ScenarioResult, median_line, recording
from tests.chaos.workload import ACKED, Handled, History, KeyedPublishers, drain_spool, make_bus
from tests.chaos.workload import transport_config as chaos_transport

MODE = modes.LEADER_KILL
#: The partition whose leader is killed each round (its leader changes from round to round).
PARTITION = 0
REPLICAS = 3
MIN_INSYNC = 2
#: A killed broker is fenced after its KRaft session (broker.session.timeout.ms, 9 s by
#: default) and its partitions get new leaders; the controller itself may have to be
#: re-elected first. Bounded with room to spare.
ELECTION_S = 45.0
#: Publishing waits out the failover inside librdkafka (delivery timeout 30 s by default),
#: the consumer finds the partition's new leader (and maybe a new group coordinator).
RESUME_S = ELECTION_S + 30.0 + 30.0
#: A restarted broker catches up and rejoins the ISR (replica.lag.time.max.ms is 30 s).
REJOIN_S = 120.0
RESTART_S = SCRIPT_TIMEOUT_S
PROGRESS_S = 3 * MODE.progress_between_kills / MODE.rate + 30.0

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.kafka,
    pytest.mark.timeout(
        int(MODE.kills * (PROGRESS_S + ELECTION_S + RESUME_S + RESTART_S + REJOIN_S) + 400)
    ),
]


async def test_killing_a_partition_leader_loses_no_acknowledged_event(
    cluster: Cluster, tmp_path: Path
) -> None:
    result = ScenarioResult("3-leader-kill", "3. partition leader SIGKILL (3 brokers, RF 3)")
    with recording(result):
        await run(cluster, tmp_path, result)


async def run(cluster: Cluster, tmp_path: Path, result: ScenarioResult) -> None:
    bootstrap = await cluster.bootstrap()
    tc = chaos_transport(bootstrap, topic_replication_factor=REPLICAS)
    producer_bus, _ = make_bus(tc, tmp_path / "spool-producer")
    consumer_bus, _ = make_bus(tc, tmp_path / "spool-consumer")
    channel = f"transport.chaos-leader-{uuid.uuid4().hex[:8]}"
    topic = producer_bus.adapter.topic_for(channel)
    published = History()
    handled = Handled()
    keys = [f"account-{i:03d}" for i in range(MODE.keys)]
    publishers = KeyedPublishers(producer_bus, channel, keys, MODE.rate, published)
    elections: list[float] = []
    produce_gaps: list[float] = []
    consume_gaps: list[float] = []

    def ack_times() -> list[float]:
        return [
            c.returned_at
            for c in published.calls
            if c.outcome == ACKED and c.partition == PARTITION
        ]

    def handle_times() -> list[float]:
        return [at for _, e, at in handled.entries if published.partition_of.get(e) == PARTITION]

    try:
        await producer_bus.start()
        publishers.start()
        await poll_until(lambda: published.acked > 0, RESUME_S, "a first acknowledgement")
        await asyncio.to_thread(check_topic_replication, bootstrap, topic)
        await consumer_bus.subscribe_stream(
            channel, handled.handler("c1"), group="chaos-leader", consumer="c1"
        )
        for n in range(1, MODE.kills + 1):
            target_acked = published.acked + MODE.progress_between_kills
            target_handled = len(handled.entries) + MODE.progress_between_kills
            await poll_until(
                lambda a=target_acked, h=target_handled: (
                    published.acked >= a and len(handled.entries) >= h
                ),
                PROGRESS_S,
                f"round {n}: publishing and consuming before the kill",
            )
            leaders = await asyncio.to_thread(partition_leaders, bootstrap, topic)
            leader_port = leaders[PARTITION][0]
            victim = Cluster.number_of(leader_port)
            kill_at = time.monotonic()
            await cluster.kill(victim)
            dead_at = time.monotonic()  # from here on nothing can come from the victim

            async def new_leader(dead: int = leader_port) -> bool:
                try:
                    leaders = await asyncio.to_thread(partition_leaders, bootstrap, topic)
                except Exception:  # the metadata request may hit the dead broker first
                    return False
                return leaders[PARTITION][0] not in (dead, -1)

            election = await poll_until_async(
                new_leader, ELECTION_S, f"round {n}: partition {PARTITION} gets a new leader"
            )
            await poll_until(
                lambda d=dead_at: any(t > d for t in ack_times()),
                RESUME_S,
                f"round {n}: an acknowledgement on partition {PARTITION} after the kill",
            )
            await poll_until(
                lambda d=dead_at: any(t > d for t in handle_times()),
                RESUME_S,
                f"round {n}: the consumer handles partition {PARTITION} again",
            )
            # How long the partition was unavailable, as its clients saw it: the longest
            # pause between two acknowledgements (handled events) around the kill.
            publish_gap = longest_gap(ack_times(), kill_at - 1.0)
            consume_gap = longest_gap(handle_times(), kill_at - 1.0)
            restart_at = time.monotonic()
            await cluster.restart(victim)
            restarted = time.monotonic() - restart_at

            async def fully_replicated() -> bool:
                try:
                    leaders = await asyncio.to_thread(partition_leaders, bootstrap, topic)
                except Exception:
                    return False
                return all(len(isr) == REPLICAS for _, isr in leaders.values())

            rejoined = await poll_until_async(
                fully_replicated, REJOIN_S, f"round {n}: broker {victim} back in every ISR"
            )
            elections.append(dead_at - kill_at + election)
            produce_gaps.append(publish_gap)
            consume_gaps.append(consume_gap)
            result.rounds.append(
                f"kill {n}: broker {victim} (leader of partition {PARTITION}); new leader "
                f"{elections[-1]:.1f} s after the kill; partition {PARTITION}'s longest pause "
                f"in acknowledgements {publish_gap:.1f} s, in handled events "
                f"{consume_gap:.1f} s; restart {restarted:.1f} s, back in every ISR "
                f"{rejoined:.1f} s later"
            )
        await publishers.stop(60.0)
        drained = await drain_spool(producer_bus, 60.0)
        wanted = {c.event_id for c in published.calls if c.outcome == ACKED}
        await poll_until(
            lambda: wanted <= handled.ids().keys(),
            RESUME_S,
            "the consumer handles every acknowledged event",
        )
    finally:
        if not publishers.stopping.is_set():
            await publishers.stop(60.0)
        await asyncio.gather(producer_bus.close(), consumer_bus.close())
        result.published(published)

    stored, verdict = await read_and_check(bootstrap, topic, published)
    consumption = check_consumption(stored, handled.ids())
    result.events, result.acked = verdict.events, verdict.acked
    result.spooled, result.duplicates = verdict.spooled, verdict.duplicates
    result.lost = verdict.lost + len(consumption.unhandled)
    result.redelivered = consumption.redelivered
    result.order_violations = len(verdict.order_violations)
    result.rounds.append(median_line("leader election", elections, " s"))
    result.rounds.append(median_line(f"partition {PARTITION} publish pause", produce_gaps, " s"))
    result.rounds.append(median_line(f"partition {PARTITION} consume pause", consume_gaps, " s"))
    result.notes.append(
        f"{MODE.keys} keys at {MODE.rate:.0f} publishes/s, package defaults (acks=all, "
        f"idempotence, delivery timeout 30 s), RF {REPLICAS}, min.insync.replicas "
        f"{MIN_INSYNC}; spool drain: {drained}; lost acked {len(verdict.lost_acked)}, "
        f"stored but never handled {len(consumption.unhandled)}"
    )
    assert not verdict.problems(), "; ".join(verdict.problems())
    assert not consumption.unhandled, f"{len(consumption.unhandled)} stored events never handled"


def check_topic_replication(bootstrap: str, topic: str) -> None:
    """The topic the bus created is what the scenario claims: RF 3, min.insync.replicas 2."""
    leaders = partition_leaders(bootstrap, topic)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics(topic, timeout=10).topics[topic]
    replicas = {p.id: len(p.replicas) for p in md.partitions.values()}
    assert set(replicas.values()) == {REPLICAS}, f"replicas per partition: {replicas}"
    assert PARTITION in leaders
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    min_isr = int(configs["min.insync.replicas"].value)
    assert min_isr == MIN_INSYNC, (
        f"min.insync.replicas of {topic} is {min_isr}: the cluster should default to {MIN_INSYNC}"
    )


def longest_gap(times: list[float], since: float) -> float:
    """The longest interval between consecutive times after ``since`` (up to the last)."""
    after = sorted(t for t in times if t >= since)
    return max((b - a for a, b in pairwise(after)), default=0.0)
