"""`make demo` runs the main job; it must work on the embedded default and on Kafka."""

from __future__ import annotations

import pytest

from tradecore_eventbus.demo import run


async def test_demo_runs_in_memory(capsys: pytest.CaptureFixture[str]) -> None:
    await run("memory", "unused", orders=20)
    out = capsys.readouterr().out
    assert "transport: memory" in out
    assert "handled 20 orders, in publish order: True" in out
    assert "rejected an invalid order, nothing sent" in out
    assert "2 AAPL quotes seen" in out


@pytest.mark.kafka
async def test_demo_runs_on_kafka(bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    await run("kafka", bootstrap, orders=20)
    out = capsys.readouterr().out
    assert "transport: redpanda" in out
    assert "handled 20 orders, in publish order: True" in out
