"""``spool list`` / ``spool replay`` / ``spool dead`` on a real spool directory, replayed to the
broker."""

from __future__ import annotations

import asyncio
import json

import pytest
from tests.conftest import unique

from tradecore_eventbus import EventBus
from tradecore_eventbus._internal.reliability.spool.files import Spool, SpoolEntry
from tradecore_eventbus.exceptions import KafkaError

from .conftest import invoke, invoke_json

pytestmark = pytest.mark.kafka


def spooled(channel: str, n: int, start: int = 0) -> list[SpoolEntry]:
    return [
        SpoolEntry.create(
            channel,
            channel,
            f"ev-{i}",
            (
                b"k",
                json.dumps({"event_type": "Spooled", "event_id": f"ev-{i}", "n": i}).encode(),
                [],
            ),
            reason="BrokerUnavailableError: broker down",
            possibly_persisted=False,
        )
        for i in range(start, start + n)
    ]


async def read_channel(channel: str, n: int) -> list[int]:
    result = await asyncio.to_thread(
        invoke,
        ["tail", channel, "--from-beginning", "--max", str(n), "--idle", "10"],
        COLUMNS="200",
    )
    assert result.exit_code == 0, result.output
    return [
        int(line.split(":")[1].strip(" ,")) for line in result.stdout.splitlines() if '"n":' in line
    ]


async def test_list_then_replay_sends_the_pending_entries_in_order(spool_dir: str) -> None:
    channel = unique("transport.cli-spool")
    Spool(spool_dir).put(spooled(channel, 3))

    listed = invoke_json(["spool", "list", "--spool-dir", spool_dir])
    assert listed["directory"] == spool_dir
    assert [(e["channel"], e["event_id"], e["destination"]) for e in listed["entries"]] == [
        (channel, "ev-0", "topic"),
        (channel, "ev-1", "topic"),
        (channel, "ev-2", "topic"),
    ]
    # The directory comes from EVENT_BUS_SPOOL_DIR too.
    assert invoke_json(["spool", "list"], EVENT_BUS_SPOOL_DIR=spool_dir) == listed

    counts = await asyncio.to_thread(invoke_json, ["spool", "replay", "--spool-dir", spool_dir])
    assert counts == {"sent": 3, "already_delivered": 0, "remaining": 0, "dead": 0}
    assert invoke_json(["spool", "list", "--spool-dir", spool_dir])["entries"] == []
    assert await read_channel(channel, 3) == [0, 1, 2]


async def test_dead_entries_are_listed_and_sent_again_with_dead(spool_dir: str) -> None:
    channel = unique("transport.cli-spool-dead")
    spool = Spool(spool_dir)
    [entry] = spooled(channel, 1)
    spool.put([entry])
    [entry] = spool.entries()
    spool.bury(entry, KafkaError("Broker: Message size too large", code=10))

    assert invoke_json(["spool", "list", "--spool-dir", spool_dir])["entries"] == []
    dead = invoke_json(["spool", "dead", "--spool-dir", spool_dir])["entries"]
    assert [(d["channel"], d["event_id"], d["error_type"]) for d in dead] == [
        (channel, "ev-0", "KafkaError")
    ]
    table = invoke(["spool", "dead", "--spool-dir", spool_dir], COLUMNS="250")
    assert "1 dead entr(ies)" in table.stdout
    assert "Message size too large" in table.stdout

    # Without --dead they stay where they are.
    plain = await asyncio.to_thread(invoke_json, ["spool", "replay", "--spool-dir", spool_dir])
    assert plain["sent"] == 0
    counts = await asyncio.to_thread(
        invoke_json,
        ["spool", "replay", "--dead", "--name", dead[0]["name"], "--spool-dir", spool_dir],
    )
    assert counts == {"revived": 1, "sent": 1, "already_delivered": 0, "remaining": 0, "dead": 0}
    assert invoke_json(["spool", "dead", "--spool-dir", spool_dir])["entries"] == []
    assert await read_channel(channel, 1) == [0]


def test_name_needs_dead(spool_dir: str) -> None:
    result = invoke(["spool", "replay", "--name", "x", "--spool-dir", spool_dir])
    assert result.exit_code == 2
    assert "--name needs --dead" in result.stderr


async def test_a_bus_and_the_cli_see_the_same_default_spool(kafka_bus: EventBus) -> None:
    """Without flags or EVENT_BUS_SPOOL_DIR, the per-user state directory (decision 73)."""
    default = EventBus(kafka_bus.adapter).spool.directory
    listed = invoke_json(["spool", "list"])
    assert listed["directory"] == str(default)
