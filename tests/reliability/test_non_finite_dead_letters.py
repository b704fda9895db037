"""Never write what other clients cannot read, and never let that stop a loop: a consumed
event that holds NaN or Infinity (written by another client) and fails its handler reaches
the DLQ as valid JSON, those numbers as null and named in ``error_message``; the partition
goes on, and a replay republishes the event."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from tests.bus.conftest import TRANSPORTS
from tests.reliability.conftest import BusBuilder, read_topic


@pytest.fixture(params=TRANSPORTS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def strict_json(value: bytes) -> Any:
    """Parses like a client that knows only standard JSON."""

    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    return json.loads(value, parse_constant=refuse)


async def test_a_dead_letter_of_an_event_holding_nan_is_valid_json(
    reliable_bus: BusBuilder, kind: str
) -> None:
    bus = await reliable_bus(kind)
    ch = f"transport.nan-{uuid.uuid4().hex[:8]}"
    handled: list[int] = []
    fixed = False

    async def handler(event: dict[str, Any]) -> None:
        if event["n"] == 1 and not fixed:
            raise RuntimeError("cannot price it")
        handled.append(event["n"])

    await bus.subscribe_stream(ch, handler, group="nan-workers", consumer="w1")
    topic = bus.adapter.topic_for(ch)
    # What Python's json.dumps (allow_nan=True, its default) writes; we never would.
    foreign = (
        b'{"event_type":"Quote","event_id":"q-1","n":1,"p":NaN,"q":[1,Infinity],"r":-Infinity}'
    )
    await bus.adapter.producer().send_batch(
        topic,
        [
            (b"k", foreign, []),
            (b"k", json.dumps({"event_type": "Quote", "event_id": "q-2", "n": 2}).encode(), []),
        ],
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while handled != [2]:
        assert loop.time() < deadline, f"handled {handled}"
        await asyncio.sleep(0.05)

    [dead] = await read_topic(bus, f"{ch}.dlq", 1)
    body = strict_json(dead.value)
    assert (body["p"], body["q"], body["r"]) == (None, [1, None], None)
    assert body["event_id"] == "q-1"
    message = body["_dlq_metadata"]["error_message"]
    assert message.startswith("cannot price it")
    for named in ("p=NaN", "q[1]=Infinity", "r=-Infinity"):
        assert named in message
    assert dead.header("event_id") == b"q-1"

    fixed = True
    assert (await bus.replay_dlq(ch, idle_timeout=1.0))["republished"] == 1
    while handled != [2, 1]:
        assert loop.time() < deadline, f"handled {handled}"
        await asyncio.sleep(0.05)
