"""``topics init`` creates what the bus would create; ``topics list`` shows it."""

from __future__ import annotations

import asyncio

import pytest
from tests.conftest import unique

from tradecore_eventbus import _core

from .conftest import invoke, invoke_json

pytestmark = pytest.mark.kafka

DAY_MS = 86_400_000


async def test_init_creates_the_channel_and_dlq_topics_and_list_shows_them(
    admin: _core.Admin,
) -> None:
    orders, prices = unique("transport.cli-topics"), unique("realtime.cli-topics")
    rows = await asyncio.to_thread(
        invoke_json, ["topics", "init", orders, prices], KAFKA_TOPIC_PARTITIONS="3"
    )
    assert rows == [
        {
            "topic": orders,
            "partitions": 3,
            "retention_ms": 7 * DAY_MS,
            "dlq": False,
            "status": "created",
        },
        {
            "topic": f"{orders}.dlq",
            "partitions": 3,
            "retention_ms": 30 * DAY_MS,
            "dlq": True,
            "status": "created",
        },
        {
            "topic": prices,
            "partitions": 3,
            "retention_ms": 6 * 3_600_000,
            "dlq": False,
            "status": "created",
        },
        {
            "topic": f"{prices}.dlq",
            "partitions": 3,
            "retention_ms": 30 * DAY_MS,
            "dlq": True,
            "status": "created",
        },
    ]
    # On the broker, as the bus would have made them.
    assert (await admin.list_topics())[orders] == 3
    assert (await admin.describe_topic(f"{orders}.dlq"))["retention.ms"] == str(30 * DAY_MS)

    again = await asyncio.to_thread(invoke_json, ["topics", "init", orders])
    assert [r["status"] for r in again] == ["exists", "exists"]

    listed = await asyncio.to_thread(invoke_json, ["topics", "list", f"{orders}*"])
    assert listed == [
        {"topic": orders, "partitions": 3, "retention_ms": 7 * DAY_MS, "dlq": False},
        {"topic": f"{orders}.dlq", "partitions": 3, "retention_ms": 30 * DAY_MS, "dlq": True},
    ]


def test_init_applies_the_topic_prefix_flag() -> None:
    channel = unique("transport.cli-prefixed")
    rows = invoke_json(["topics", "init", channel, "--topic-prefix", "staging"])
    assert [r["topic"] for r in rows] == [f"staging.{channel}", f"staging.{channel}.dlq"]


def test_list_prints_a_table_by_default() -> None:
    channel = unique("system.cli-table")
    invoke_json(["topics", "init", channel])
    result = invoke(["topics", "list", f"{channel}*"], COLUMNS="200")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(channel in line and "30d" in line and "yes" not in line for line in lines)
    assert any(f"{channel}.dlq" in line and "30d" in line and "yes" in line for line in lines)
