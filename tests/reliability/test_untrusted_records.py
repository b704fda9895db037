"""Records and events the fuzz targets (fuzz/, decision 47) found breaking a path: each one
now gets a typed error or goes to the DLQ instead of raising something else."""

from __future__ import annotations

import base64
import json
import math
import uuid
from typing import Any

import pytest
from tests.bus.conftest import TRANSPORTS
from tests.reliability.conftest import BusBuilder, read_topic
from tests.reliability.test_consume_faults import eventually

from tradecore_eventbus._internal.reliability.dead_letters.record import (
    Failure,
    dlq_record,
    replay_target,
)
from tradecore_eventbus._internal.wire.envelope import decode, event_id_of
from tradecore_eventbus.exceptions import DeserializationError, EventValidationError

# Nested deeper than Python's recursion limit (1,000): json.loads raises RecursionError.
TOO_DEEP = b"[" * 1200 + b"]" * 1200
DEEP_EVENT = b'{"event_type": "Deep", "d": ' + TOO_DEEP + b"}"
# An integer longer than sys.get_int_max_str_digits() (4,300): json.loads raises ValueError.
LONG_INTEGER_EVENT = b'{"event_type": "Digits", "n": ' + b"7" * 4400 + b"}"
# JSON reads a lone surrogate escape into a str that UTF-8 cannot write back.
LONE_SURROGATE_EVENT = b'{"event_type": "Lone", "s": "\\ud800", "n": 1}'


@pytest.fixture(params=TRANSPORTS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def channel() -> str:
    return f"transport.untrusted-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("value", [TOO_DEEP, DEEP_EVENT, LONG_INTEGER_EVENT])
def test_decode_refuses_json_python_cannot_read_with_its_typed_error(value: bytes) -> None:
    with pytest.raises(DeserializationError):
        decode(value)
    assert event_id_of([], value) is None
    assert replay_target(value, "orders") is None


async def test_records_nested_too_deep_for_python_go_to_the_dlq(
    reliable_bus: BusBuilder, kind: str
) -> None:
    bus = await reliable_bus(kind)
    ch = channel()
    handled: list[Any] = []
    await bus.subscribe_stream(ch, handled.append, group="deep-workers", consumer="w1")
    fine = json.dumps({"event_type": "Fine", "n": 1}).encode()
    await bus.adapter.producer().send_batch(
        bus.adapter.topic_for(ch),
        [(b"k", TOO_DEEP, []), (b"k", DEEP_EVENT, []), (b"k", fine, [])],
    )
    await eventually(lambda: len(handled) == 1)
    assert handled[0]["event_type"] == "Fine", "the partition kept moving"
    dead = await read_topic(bus, f"{ch}.dlq", 2)
    bodies = [json.loads(r.value) for r in dead]
    assert [b["_dlq_metadata"]["error_type"] for b in bodies] == ["DeserializationError"] * 2
    assert [base64.b64decode(b["_raw_value"]) for b in bodies] == [TOO_DEEP, DEEP_EVENT]


async def test_an_event_json_cannot_write_back_is_dead_lettered_as_its_raw_bytes(
    reliable_bus: BusBuilder, kind: str
) -> None:
    bus = await reliable_bus(kind)
    ch = channel()
    handled: list[Any] = []

    async def handler(event: dict[str, Any]) -> None:
        if event["event_type"] == "Lone":
            # The message carries the lone surrogate too.
            raise ValueError(f"cannot handle {event['s']}")
        handled.append(event)

    await bus.subscribe_stream(ch, handler, group="lone-workers", consumer="w1")
    after = json.dumps({"event_type": "After"}).encode()
    await bus.adapter.producer().send_batch(
        bus.adapter.topic_for(ch), [(b"k", LONE_SURROGATE_EVENT, []), (b"k", after, [])]
    )
    await eventually(lambda: len(handled) == 1)
    assert handled[0]["event_type"] == "After", "the DLQ write did not hold the partition"
    (dead,) = await read_topic(bus, f"{ch}.dlq", 1)
    body = json.loads(dead.value)
    assert base64.b64decode(body["_raw_value"]) == LONE_SURROGATE_EVENT
    assert body["_dlq_metadata"]["error_message"] == "cannot handle \\ud800"
    assert dead.header("dlq.error_message") == b"cannot handle \\ud800"
    report = await bus.replay_dlq(ch, idle_timeout=1.0)
    assert report["skipped"] == 1


def test_dead_letters_with_events_utf8_cannot_carry_keep_their_headers_writable() -> None:
    event = decode(b'{"event_type": "\\udfff", "event_id": "\\ud800"}')
    failure = Failure(original_channel="orders", error_type="E", error_message="m", retry_count=0)
    _, value, headers = dlq_record(failure, event=event, raw_value=b"raw", key=None)
    assert base64.b64decode(json.loads(value)["_raw_value"]) == b"raw"
    assert ("event_type", b"\\udfff") in headers
    assert ("event_id", b"\\ud800") in headers


@pytest.mark.parametrize(
    ("value", "target"),
    [
        # Metadata that is not an object, or a channel that is not a string: the default.
        (b'{"event_type": "T", "n": 1, "_dlq_metadata": ["not", "an", "object"]}', "orders"),
        (b'{"event_type": "T", "n": 1, "_dlq_metadata": {"original_channel": {"a": 1}}}', "orders"),
        (b'{"event_type": "T", "n": 1, "_dlq_metadata": {"original_channel": ""}}', "orders"),
        (b'{"event_type": "T", "n": 1, "_dlq_metadata": {"original_channel": "x.y"}}', "x.y"),
    ],
)
def test_replay_reads_any_dlq_metadata_without_raising(value: bytes, target: str) -> None:
    assert replay_target(value, "orders") == ({"event_type": "T", "n": 1}, target)


@pytest.mark.parametrize(
    "value", [b'{"event_type": 5}', b'{"_raw_value": "AA==", "event_type": "T"}', b"[]", None]
)
def test_replay_skips_records_that_hold_no_event(value: bytes | None) -> None:
    assert replay_target(value, "orders") is None


async def test_replaying_a_dlq_with_malformed_records_skips_or_republishes_them(
    reliable_bus: BusBuilder, kind: str
) -> None:
    bus = await reliable_bus(kind)
    ch = channel()
    handled: list[Any] = []
    await bus.subscribe_stream(ch, handled.append, group="replayed", consumer="w1")
    await bus.publisher.ensure_channel(f"{ch}.dlq")
    await bus.adapter.producer().send_batch(
        bus.adapter.topic_for(f"{ch}.dlq"),
        [
            (b"k", b'{"event_type": "T", "n": 1, "_dlq_metadata": [1]}', []),
            (b"k", TOO_DEEP, []),
            (b"k", DEEP_EVENT, []),
        ],
    )
    report = await bus.replay_dlq(ch, idle_timeout=1.0)
    assert report == {"read": 3, "republished": 1, "skipped": 2, "filtered": 0, "failed": 0}
    await eventually(lambda: len(handled) == 1)
    assert handled[0]["n"] == 1


@pytest.mark.parametrize(
    ("event", "names"),
    [
        ({"event_type": "\ud800"}, "event_type"),
        ({"event_type": "T", "event_id": "\udc80"}, "event_id"),
        ({"event_type": "T", "event_id": 10**5000}, "event_id"),
        ({"event_type": "T", math.nan: 1}, "NaN"),
        ({"event_type": "T", "x": {math.inf: 1}}, "inf"),
    ],
)
async def test_events_json_cannot_carry_are_refused_with_the_typed_error(
    reliable_bus: BusBuilder, kind: str, event: dict[Any, Any], names: str
) -> None:
    bus = await reliable_bus(kind)
    with pytest.raises(EventValidationError, match=names):
        await bus.publish(channel(), event)
    with pytest.raises(EventValidationError):
        await bus.publish_batch(channel(), [{"event_type": "Fine"}, event])
