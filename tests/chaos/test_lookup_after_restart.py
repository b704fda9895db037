"""The spool's read-back of "possibly persisted" events right after the broker restarts
(decision 126). The drain looks an uncertain event up before resending it, as soon as the
broker answers again. Right then the broker has been seen to answer a by-time offset lookup
with "no record at or after that time" for partitions full of such records, and the
lookup's "not found" made the drain send a second copy (two duplicates in the broker-kill
scenario, decision 124).

Here the lookup's plan (where to read each partition from) is asked for again and again from
the moment the broker is killed until well after it is back. Each answer may be an error
(the broker is away; the drain then tries again later), never "nothing to read" for a
partition that holds the events. Then the whole lookup finds every event."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from tests.chaos.infra import SCRIPT_TIMEOUT_S, SingleBroker
from tests.chaos.workload import make_bus
from tests.chaos.workload import transport_config as chaos_transport
from tests.conftest import BOOTSTRAP

from tradecore_eventbus import _core
from tradecore_eventbus._internal.transports.poll import close_within
from tradecore_eventbus.exceptions import EventBusError

EVENTS = 300
#: Each lookup's own bound; while the broker is away one lookup fails after this long.
LOOKUP_TIMEOUT_S = 3.0
#: Plans answered after the restart returned (the broker's first moments are the point).
PLANS_AFTER_RESTART = 20
#: Between a failed lookup and the next: close to the broker's first answers without
#: spinning on a refused connection.
RETRY_S = 0.05

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.kafka,
    pytest.mark.timeout(int(2 * SCRIPT_TIMEOUT_S + 10 * LOOKUP_TIMEOUT_S + 120)),
]


async def test_a_lookup_right_after_a_restart_finds_every_stored_event(
    single_broker: SingleBroker, tmp_path: Path
) -> None:
    bus, _ = make_bus(chaos_transport(BOOTSTRAP), tmp_path / "spool")
    channel = f"transport.chaos-lookup-{uuid.uuid4().hex[:8]}"
    since_ms = int(time.time() * 1000) - 60_000
    events = [
        {"event_type": "ChaosEvent", "event_id": str(uuid.uuid4()), "seq": i} for i in range(EVENTS)
    ]
    await bus.start()
    restart: asyncio.Task[None] | None = None
    try:
        results = await bus.publish_batch(channel, events)
        assert len(results) == EVENTS
        assert len({r.partition for r in results}) > 1, "the events should span partitions"
        ids = {e["event_id"] for e in events}
        topic = bus.adapter.topic_for(channel)
        assert await bus.adapter.find_event_ids(topic, ids, since_ms, LOOKUP_TIMEOUT_S) == ids

        await single_broker.kill()
        restart = asyncio.create_task(single_broker.restart())
        plans: list[list[tuple[int, int, int]]] = []
        failures = 0
        deadline = time.monotonic() + SCRIPT_TIMEOUT_S + 10 * LOOKUP_TIMEOUT_S
        after_restart = 0
        while after_restart < PLANS_AFTER_RESTART:
            back = restart.done()
            if back:
                restart.result()  # a failed restart is the failure to report
            try:
                plans.append(await plan_of(topic, since_ms))
            except EventBusError:
                # The broker is away, or back without its partitions' leadership yet.
                failures += 1
                assert time.monotonic() < deadline, "the broker did not answer a lookup again"
                await asyncio.sleep(RETRY_S)
                continue
            if back:
                after_restart += 1

        # The topic holds these events only, all newer than since_ms: each partition is read
        # from its first offset to its end, which is how many events it holds.
        held = Counter(r.partition for r in results)
        wrong = [
            plan for plan in plans if any((start, end) != (0, held[p]) for p, start, end in plan)
        ]
        assert not wrong, (
            f"{len(wrong)} of {len(plans)} plans skip stored events (partition, start, end): "
            f"{wrong[:3]} ({failures} lookups failed while the broker was away)"
        )
        # The whole lookup, with the drain's kind of bound (a delivery timeout).
        assert await bus.adapter.find_event_ids(topic, ids, since_ms, 30.0) == ids
    finally:
        if restart is not None and not restart.done():
            # One restart at a time on the broker's storage: this one ends (or times out
            # in broker.sh) before the broker is checked.
            with contextlib.suppress(Exception):
                await restart
        await single_broker.ensure_running()
        await bus.close()


async def plan_of(topic: str, since_ms: int) -> list[tuple[int, int, int]]:
    """The plan of one lookup, from a reader of its own as the drain's lookup has."""
    reader = _core.Consumer(BOOTSTRAP, f"chaos-lookup-{uuid.uuid4().hex[:8]}", enable_commit=False)
    try:
        return await reader.assign_from_time(topic, since_ms, LOOKUP_TIMEOUT_S)
    finally:
        await close_within(reader, LOOKUP_TIMEOUT_S, "the lookup test's reader")
