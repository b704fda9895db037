"""``topics init`` creates what the bus would create; ``topics list`` shows it."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from click.testing import Result
from tests.conftest import unique

from tradecore_eventbus import _core

from .conftest import COMMAND_TIMEOUT_S, invoke, invoke_json

pytestmark = pytest.mark.kafka

DAY_MS = 86_400_000


def listed(pattern: str, count: int, *args: str, **env: str) -> Result:
    """``topics list PATTERN`` once the broker's metadata shows ``count`` topics: a topic
    just created reaches every broker's metadata cache a moment later (more so under
    load)."""
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    while True:
        result = invoke(["topics", "list", pattern, "--json"], **env)
        assert result.exit_code == 0, result.output
        if len(json.loads(result.stdout)) >= count or time.monotonic() > deadline:
            return invoke(["topics", "list", pattern, *args], **env)
        time.sleep(0.2)


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

    result = await asyncio.to_thread(listed, f"{orders}*", 2, "--json")
    assert json.loads(result.stdout) == [
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
    result = listed(f"{channel}*", 2, COLUMNS="200")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(channel in line and "30d" in line and "yes" not in line for line in lines)
    assert any(f"{channel}.dlq" in line and "30d" in line and "yes" in line for line in lines)
