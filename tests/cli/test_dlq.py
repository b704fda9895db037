"""``dlq list`` and ``dlq replay`` on the broker: events whose handler failed are
dead-lettered, listed by error type, and replayed back to their channel, where the handler
(fixed by then) handles them; a dry run moves nothing; the error-type filter picks."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from tests.conftest import unique

from tradecore_eventbus import EventBus
from tradecore_eventbus._internal.reliability.replay import ReplayProgress
from tradecore_eventbus.exceptions import InvalidArgumentError
from tradecore_eventbus.testing import dead_letters

from .conftest import invoke, invoke_json

pytestmark = pytest.mark.kafka


class Orders:
    """A handler that fails (by the order's kind) until it is fixed, and records what it
    handled."""

    def __init__(self) -> None:
        self.fixed = False
        self.handled: Counter[str] = Counter()
        self.arrived = asyncio.Event()

    async def __call__(self, event: dict[str, Any]) -> None:
        if not self.fixed:
            if event["kind"] == "value":
                raise ValueError(f"bad quantity in {event['order_id']}")
            if event["kind"] == "key":
                raise KeyError("symbol")
        self.handled[event["order_id"]] += 1
        self.arrived.set()

    async def wait_for(self, order_ids: set[str], timeout: float = 60.0) -> None:
        async with asyncio.timeout(timeout):
            while not order_ids <= set(self.handled):
                self.arrived.clear()
                await self.arrived.wait()


async def dead_lettered_channel(bus: EventBus) -> tuple[str, Orders]:
    """A channel with 3 dead letters of ValueError and 2 of KeyError (and 1 handled event)."""
    channel = unique("transport.cli-dlq")
    handler = Orders()
    await bus.subscribe_stream(channel, handler, group=unique("cli-dlq-workers"))
    kinds = ["value", "key", "ok", "value", "key", "value"]
    await bus.publish_batch(
        channel,
        [
            {"event_type": "OrderPlaced", "order_id": f"o-{i}", "kind": k}
            for i, k in enumerate(kinds)
        ],
    )
    await dead_letters(bus, channel, count=5, timeout=60)
    await handler.wait_for({"o-2"})
    return channel, handler


async def cli(*args: str, **env: str) -> Any:
    return await asyncio.to_thread(invoke_json, list(args), **env)


async def test_list_counts_by_error_type_and_shows_the_newest(kafka_bus: EventBus) -> None:
    channel, _ = await dead_lettered_channel(kafka_bus)
    summary = await cli("dlq", "list", channel, "--newest", "2")
    assert summary["topic"] == f"{channel}.dlq"
    assert summary["total"] == 5
    assert summary["by_error_type"] == {"ValueError": 3, "KeyError": 2}
    assert len(summary["newest"]) == 2
    for letter in summary["newest"]:
        assert letter["event_type"] == "OrderPlaced"
        assert letter["error_type"] in {"ValueError", "KeyError"}
        assert letter["retry_count"] == 0  # max_attempts=1: no retry

    table = await asyncio.to_thread(invoke, ["dlq", "list", channel], COLUMNS="200")
    assert table.exit_code == 0, table.output
    assert f"{channel}.dlq: 5 dead letter(s)" in table.stdout
    assert any("ValueError" in line and "3" in line for line in table.stdout.splitlines())


async def test_replay_moves_dead_letters_back_and_they_are_handled(kafka_bus: EventBus) -> None:
    channel, handler = await dead_lettered_channel(kafka_bus)
    handler.fixed = True

    dry = await cli("dlq", "replay", channel, "--dry-run", "--idle", "2")
    assert dry == {
        "dry_run": True,
        "read": 5,
        "republished": 5,
        "skipped": 0,
        "filtered": 0,
        "failed": 0,
    }
    # Nothing moved: no event came back to the handler, and a dry run commits nothing.
    await asyncio.sleep(1.0)
    assert set(handler.handled) == {"o-2"}

    only_key = await cli("dlq", "replay", channel, "--error-type", "KeyError", "--idle", "2")
    assert only_key == {
        "dry_run": False,
        "read": 5,
        "republished": 2,
        "skipped": 0,
        "filtered": 3,
        "failed": 0,
    }
    await handler.wait_for({"o-1", "o-4"})
    assert set(handler.handled) == {"o-1", "o-2", "o-4"}

    # The letters the filter passed over are still replayable (the filtered replay kept its
    # progress in a group of its own).
    everything = await cli("dlq", "replay", channel, "--idle", "2")
    assert everything["read"] == 5
    assert everything["republished"] == 5
    await handler.wait_for({"o-0", "o-3", "o-5"})
    # A replay never republishes an event twice in its group.
    again = await cli("dlq", "replay", channel, "--idle", "1")
    assert again["read"] == 0
    assert again["republished"] == 0


async def test_replay_shows_a_progress_bar_and_a_summary(kafka_bus: EventBus) -> None:
    channel, handler = await dead_lettered_channel(kafka_bus)
    handler.fixed = True
    result = await asyncio.to_thread(
        invoke,
        ["dlq", "replay", channel, "--error-type", "ValueError", "--idle", "2"],
        COLUMNS="200",
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"replaying {channel}" in out
    assert "5/5" in out  # the bar's count, at the end
    assert "republished" in out
    assert "filtered" in out
    summary = [line for line in out.splitlines() if line.strip().startswith("│ 5")]
    assert summary, out
    assert [c.strip() for c in summary[-1].split("│")[1:6]] == ["5", "3", "0", "2", "0"]
    await handler.wait_for({"o-0", "o-3", "o-5"})


async def test_the_library_replay_checks_its_new_arguments(kafka_bus: EventBus) -> None:
    with pytest.raises(InvalidArgumentError, match="error_types must be a list"):
        await kafka_bus.replay_dlq("transport.x", error_types="ValueError")
    with pytest.raises(InvalidArgumentError, match="progress must be callable"):
        await kafka_bus.replay_dlq("transport.x", progress=42)  # type: ignore[arg-type]


async def test_the_library_replay_reports_progress_per_batch(kafka_bus: EventBus) -> None:
    channel, _ = await dead_lettered_channel(kafka_bus)
    steps: list[ReplayProgress] = []
    counts = await kafka_bus.replay_dlq(
        channel, dry_run=True, progress=steps.append, idle_timeout=2.0, stop_at_end=True
    )
    assert counts["read"] == 5
    assert steps
    assert steps[-1].counts == counts
    assert steps[-1].remaining == 0
