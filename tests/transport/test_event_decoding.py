"""Events decoded in Rust per batch (``take(decode_events=True)``) read exactly as
``envelope.decode`` (``json.loads``) reads them, and anything that is not an event is left
for ``envelope.decode`` to reject with its precise error: never dropped, never altered."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from tests.conftest import TopicFactory, unique
from tests.transport.test_producer_consumer import consume

from tradecore_eventbus import _core
from tradecore_eventbus._internal.wire.envelope import decode
from tradecore_eventbus.exceptions import DeserializationError

pytestmark = pytest.mark.kafka

EVENTS: list[bytes] = [
    b'{"event_type": "OrderPlaced", "price": 101.25, "quantity": 3, "symbol": "AAPL"}',
    # Key order as written, not sorted.
    b'{"z": 1, "event_type": "A", "a": 2, "m": [1, 2, {"x": null}]}',
    # Integers beyond 64 bits, exponents, floats that need correct rounding.
    b'{"event_type": "Big", "n": 123456789012345678901234567890, "neg": -9223372036854775809,'
    b' "e": 1e400, "f": 0.1, "g": 2.2250738585072011e-308, "h": 1.7976931348623157e308}',
    # NaN and Infinity, which json.loads accepts.
    b'{"event_type": "Odd", "a": NaN, "b": Infinity, "c": -Infinity}',
    # Escapes, surrogate pairs, non-ASCII text, a lone surrogate escape.
    '{"event_type": "Text", "s": "caf\\u00e9 \\ud83d\\ude00 \\n\\t\\"", "u": "\u00fc\u4e2d"}'.encode(),
    # A duplicated key: the last one wins.
    b'{"event_type": "Dup", "k": 1, "k": 2}',
    b'  {"event_type": "Spaces"}  \n',
]

# Events the Rust decoder leaves to ``envelope.decode``, which accepts them.
FALLBACK: list[bytes] = [
    b'{"event_type": "Lone", "s": "\\ud800"}',  # a lone surrogate: not valid in UTF-8 text
    b'\xef\xbb\xbf{"event_type": "Bom"}',  # a UTF-8 byte order mark
    '{"event_type": "Utf16"}'.encode("utf-16"),
]

NOT_EVENTS: list[bytes | None] = [
    None,  # a tombstone
    b"",
    b"not json",
    b"[1, 2, 3]",
    b'"a string"',
    b'{"no_type": 1}',
    b'{"event_type": ""}',
    b'{"event_type": 7}',
    b'{"event_type": "Trailing"} x',
    b'\xff\xfe{"event_type": "bad utf-8"}',
]


def same(a: Any, b: Any) -> bool:
    """Equality that also holds for NaN and compares key order and types."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


async def test_decoded_events_match_json_loads_and_non_events_are_left_to_decode(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=1)
    producer = _core.Producer(bootstrap)
    values = [*EVENTS, *FALLBACK, *NOT_EVENTS]
    await producer.send_batch(topic, [(None, v) for v in values])
    await producer.close()

    c = _core.Consumer(bootstrap, unique("g"))
    c.subscribe([topic])
    await c.wait_assigned(30.0)
    records = []
    while len(records) < len(values):
        got = c.take(500, decode_events=True)
        if not got:
            await c.wait(1.0)
        records.extend(got)
    await c.close()

    assert [r.value for r in records] == values
    for r in records[: len(EVENTS)]:
        assert r.event is not None, r.value
        assert same(r.event, json.loads(r.value or b"")), r.value
        assert same(r.event, decode(r.value))
    fallback = records[len(EVENTS) : len(EVENTS) + len(FALLBACK)]
    for r in fallback:
        assert r.event is None, r.value
        assert same(decode(r.value), json.loads(r.value or b""))
    for r in records[len(EVENTS) + len(FALLBACK) :]:
        assert r.event is None, r.value
        with pytest.raises(DeserializationError):
            decode(r.value)


async def test_without_decode_events_records_carry_no_event(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=1)
    producer = _core.Producer(bootstrap)
    await producer.send_batch(topic, [(None, EVENTS[0])])
    await producer.close()
    c = _core.Consumer(bootstrap, unique("g"))
    c.subscribe([topic])
    await c.wait_assigned(30.0)
    (record,) = await consume(c, 1)
    await c.close()
    assert record.event is None
    assert decode(record.value)["event_type"] == "OrderPlaced"
