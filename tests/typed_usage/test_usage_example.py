"""The typed usage example is code that runs, not only code that type-checks."""

from __future__ import annotations

from pathlib import Path

from tradecore_eventbus import EventBus, MemoryTransportAdapter

from .usage_example import use_the_bus, use_the_outbox


async def test_the_typed_usage_example_runs_on_the_memory_transport(tmp_path: Path) -> None:
    assert await use_the_bus(tmp_path / "spool") == {"published": 4, "dead_letters": 0}


async def test_the_typed_outbox_example_publishes_what_it_queued(tmp_path: Path) -> None:
    async with EventBus(MemoryTransportAdapter(), spool_dir=str(tmp_path / "spool")) as bus:
        assert await use_the_outbox(bus, tmp_path / "app.db") == 1
        published = bus.adapter.get_published_messages("transport.order-events")  # type: ignore[attr-defined]
        assert [e["order_id"] for e in published] == ["9"]
