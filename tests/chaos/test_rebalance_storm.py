"""Scenario 4, a rebalance storm: consumers of one group (cooperative-sticky, the default)
join and leave every few seconds while events are published. Every stored event must be
handled (lost 0). Redeliveries are allowed (at-least-once) but bounded: partitions move
only at rebalances, their revoked offsets are committed in the rebalance callback, and a
member that leaves commits what it handled, so each move can hand its new owner at most
what the old one had fetched but not finished."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from pathlib import Path

import pytest
from tests.chaos import modes
from tests.chaos.checker import check_consumption, read_and_check
from tests.chaos.infra import SingleBroker, pause, poll_until
from tests.chaos.report import ScenarioResult, median_line, recording
from tests.chaos.workload import ACKED, Handled, History, KeyedPublishers, make_bus
from tests.chaos.workload import transport_config as chaos_transport
from tests.conftest import BOOTSTRAP

from tradecore_eventbus import EventBusConfig

MODE = modes.REBALANCE_STORM
#: The storm's sequence of joins and leaves is random but repeatable: CHAOS_SEED replays one.
SEED = int(os.environ.get("CHAOS_SEED", "20261202"))
#: A join returns once the member is live; subscribe_stream waits at most this long.
LIVE_TIMEOUT_S = EventBusConfig().consumer_poll_timeout_ms / 1000
LEAVE_S = EventBusConfig().close_timeout_seconds
CATCH_UP_S = 60.0

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.kafka,
    pytest.mark.timeout(int(MODE.changes * (MODE.period_s + LIVE_TIMEOUT_S + LEAVE_S) + 300)),
]


async def test_a_rebalance_storm_loses_nothing_and_bounds_redeliveries(
    single_broker: SingleBroker, tmp_path: Path
) -> None:
    result = ScenarioResult("4-rebalance-storm", "4. rebalance storm")
    with recording(result):
        await run(tmp_path, result)


async def run(tmp_path: Path, result: ScenarioResult) -> None:
    tc = chaos_transport(BOOTSTRAP)
    producer_bus, _ = make_bus(tc, tmp_path / "spool-producer")
    consumer_bus, consumer_config = make_bus(tc, tmp_path / "spool-consumer")
    channel = f"transport.chaos-storm-{uuid.uuid4().hex[:8]}"
    group = f"chaos-storm-{uuid.uuid4().hex[:8]}"
    rng = random.Random(SEED)
    published = History()
    handled = Handled()
    keys = [f"account-{i:03d}" for i in range(MODE.keys)]
    publishers = KeyedPublishers(producer_bus, channel, keys, MODE.rate, published)
    members: dict[str, str] = {}  # consumer name -> subscription id
    joins: list[float] = []
    leaves: list[float] = []
    names = (f"member-{i}" for i in range(1_000))
    storm = asyncio.Event()  # never set: the storm's rhythm is a fixed period

    #: Joins and leaves that raised: the storm goes on (so that the checks still say what
    #: it did to the events), and the test fails at the end.
    call_errors: list[str] = []

    async def join() -> str:
        name = next(names)
        started = time.monotonic()
        try:
            members[name] = await consumer_bus.subscribe_stream(
                channel, handled.handler(name), group=group, consumer=name
            )
        except Exception as exc:
            call_errors.append(f"subscribe_stream({name}) raised {type(exc).__name__}: {exc}")
            return f"join of {name} FAILED ({type(exc).__name__})"
        joins.append(time.monotonic() - started)
        return f"join in {joins[-1]:.2f} s"

    async def leave() -> str:
        name = rng.choice(sorted(members))
        started = time.monotonic()
        try:
            left = await consumer_bus.unsubscribe(members.pop(name))
        except Exception as exc:
            call_errors.append(f"unsubscribe({name}) raised {type(exc).__name__}: {exc}")
            return f"leave of {name} FAILED ({type(exc).__name__})"
        if not left:
            call_errors.append(f"unsubscribe({name}) returned False for a live subscription")
        leaves.append(time.monotonic() - started)
        return f"leave in {leaves[-1]:.2f} s"

    try:
        await producer_bus.start()
        publishers.start()
        await poll_until(lambda: published.acked > 0, 30.0, "a first acknowledgement")
        await join()
        assert members, f"the first member could not join: {call_errors}"
        for n in range(1, MODE.changes + 1):
            handled_before = len(handled.entries)
            await pause(storm, MODE.period_s)
            joining = len(members) <= 1 or (len(members) < MODE.max_members and rng.random() < 0.5)
            what = await (join() if joining else leave())
            result.rounds.append(
                f"change {n}: {what}, {len(members)} member(s) after; "
                f"{len(handled.entries) - handled_before} events handled since the last change"
            )
        await publishers.stop(60.0)
        if not members:  # every join failed since the last leave: someone must catch up
            await join()
        wanted = {c.event_id for c in published.calls if c.outcome == ACKED}
        await poll_until(
            lambda: wanted <= handled.ids().keys(),
            CATCH_UP_S,
            "the remaining members handle every acknowledged event",
        )
    finally:
        if not publishers.stopping.is_set():
            await publishers.stop(60.0)
        await asyncio.gather(producer_bus.close(), consumer_bus.close())
        result.published(published)

    topic = producer_bus.adapter.topic_for(channel)
    stored, verdict = await read_and_check(BOOTSTRAP, topic, published)
    consumption = check_consumption(stored, handled.ids())
    result.events, result.acked = verdict.events, verdict.acked
    result.spooled, result.duplicates = verdict.spooled, verdict.duplicates
    result.lost = verdict.lost + len(consumption.unhandled)
    result.redelivered = consumption.redelivered
    result.order_violations = len(verdict.order_violations)
    # Each membership change moves at most every partition once; a moved partition can
    # come with at most one poll's worth of fetched-but-unfinished records per partition.
    bound = MODE.changes * tc.topic_partitions * consumer_config.sub_batch_size
    result.rounds.append(median_line("join (subscribe until live)", joins, " s", digits=2))
    result.rounds.append(median_line("leave (unsubscribe)", leaves, " s", digits=2))
    result.notes.append(
        f"seed {SEED}, {MODE.changes} changes every {MODE.period_s:g} s, 1-{MODE.max_members} "
        f"members on {tc.topic_partitions} partitions, {MODE.keys} keys at {MODE.rate:.0f} "
        f"publishes/s; redelivered {consumption.redelivered} of {consumption.handled} "
        f"deliveries (bound {bound})"
    )
    result.notes += [f"contract violation: {e}" for e in call_errors]
    assert not call_errors, "; ".join(call_errors)
    assert not verdict.problems(), "; ".join(verdict.problems())
    assert not consumption.unhandled, f"{len(consumption.unhandled)} stored events never handled"
    assert consumption.redelivered <= bound, (
        f"{consumption.redelivered} redeliveries in {MODE.changes} membership changes "
        f"(bound {bound})"
    )
