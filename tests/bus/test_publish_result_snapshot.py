"""``PublishResult.event`` is the event as it was sent, whatever the caller does with its
dict afterwards."""

from __future__ import annotations

from typing import Any

from tests.bus.conftest import Collector

from tradecore_eventbus import BaseEvent, register_event
from tradecore_eventbus.event_bus import EventBus


async def test_the_result_shows_what_was_sent_not_the_callers_later_changes(
    bus: EventBus, channel: str
) -> None:
    event: dict[str, Any] = {"event_type": "SnapshotPlain", "qty": 1, "legs": [{"px": 10}]}
    result = await bus.publish_stream(channel, event)
    event["qty"] = 999
    event["legs"][0]["px"] = 999
    assert result.event["qty"] == 1
    assert result.event["legs"] == [{"px": 10}]
    [batch_result] = await bus.publish_batch(channel, [event])
    event["qty"] = 5
    assert batch_result.event["qty"] == 999
    got = Collector()
    await bus.subscribe_stream(channel, got, group="snapshot")
    received = await got.wait_for(2)
    assert sorted(e["qty"] for e in received) == [1, 999]


class SnapshotOrder(BaseEvent):
    event_type: str = "SnapshotValidated"
    qty: int
    legs: list[dict[str, int]]


async def test_a_validated_events_result_is_a_snapshot_too(bus: EventBus, channel: str) -> None:
    register_event(SnapshotOrder, event_type="SnapshotValidated")
    event: dict[str, Any] = {"event_type": "SnapshotValidated", "qty": 1, "legs": [{"px": 10}]}
    result = await bus.publish_stream(channel, event)
    event["legs"][0]["px"] = 999
    assert result.event["legs"] == [{"px": 10}]
