"""The Python half of the fuzz targets (fuzz/fuzz_targets/*.rs): each target builds what the
Rust side of a path makes of the input and calls a check here, which runs the package's own
Python side of that path and raises on anything that breaks its contract. Any exception that
escapes a check is a finding (the target panics; libFuzzer saves the input).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import struct
import sys
import uuid
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Any

from tradecore_eventbus._internal.reliability.dead_letters.record import (
    HEADER_PREFIX,
    METADATA_KEY,
    RAW_VALUE_KEY,
    Failure,
    dlq_record,
    replay_target,
)
from tradecore_eventbus._internal.wire.envelope import _json_default, decode, event_id_of
from tradecore_eventbus.exceptions import DeserializationError

json_default = _json_default


class Refused(Exception):
    """json.loads did not read the value (the reference has no opinion)."""


def same(a: Any, b: Any) -> bool:
    """Equality that also holds for NaN and compares key order and exact types."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def reference(value: bytes, *, unlimited_digits: bool = False) -> Any:
    """What ``json.loads`` reads; with ``unlimited_digits`` also integers longer than
    ``sys.get_int_max_str_digits()``."""
    limit = sys.get_int_max_str_digits()
    if unlimited_digits:
        sys.set_int_max_str_digits(0)
    try:
        return json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise Refused(repr(exc)) from exc
    finally:
        sys.set_int_max_str_digits(limit)


def is_event(event: Any) -> bool:
    return (
        type(event) is dict
        and isinstance(event.get("event_type"), str)
        and bool(event["event_type"])
    )


def consumed_event(value: bytes | None, rust_event: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a subscription handles (``Subscription.handle``): the event decoded in Rust, else
    ``envelope.decode``'s; None where decode raised its typed error (the record goes to the
    DLQ). Any other exception escapes: a finding."""
    if rust_event is not None:
        return rust_event
    try:
        return decode(value)
    except DeserializationError:
        return None


# ----------------------------------------------------------------------- decode_event


def check_decode(value: bytes, rust_event: dict[str, Any] | None) -> None:
    try:
        python_event: dict[str, Any] | None = decode(value)
    except DeserializationError:
        python_event = None
    event = consumed_event(value, rust_event)
    if event is not None:
        assert is_event(event), f"not an event: {event!r}"
    if python_event is not None:
        assert is_event(python_event), f"decode returned a non-event: {python_event!r}"
    if rust_event is not None:
        try:
            expected = reference(value)
        except Refused:
            # Only integers longer than Python reads may make json.loads refuse what jiter
            # reads (decision 56); then both read the same with the limit lifted.
            expected = reference(value, unlimited_digits=True)
        assert same(rust_event, expected), f"Rust {rust_event!r} != json.loads {expected!r}"
    if python_event is not None and rust_event is not None:
        assert same(python_event, rust_event), "decode and the Rust decoder differ"
    event_id = event_id_of([], value)
    if python_event is not None:
        expected_id = python_event.get("event_id")
        assert event_id == (None if expected_id is None else str(expected_id)), event_id
    else:
        assert event_id is None, event_id


# ---------------------------------------------------------------------------- headers


def check_headers(
    headers: list[tuple[str, bytes | None]],
    first_event_id: bytes | None,
    value: bytes | None,
    rust_event: dict[str, Any] | None,
) -> None:
    assert type(headers) is list
    for pair in headers:
        assert type(pair) is tuple, pair
        assert len(pair) == 2, pair
        assert type(pair[0]) is str, pair
        assert pair[1] is None or type(pair[1]) is bytes, pair
    named = [v for n, v in headers if n == "event_id"]
    assert first_event_id == (named[0] if named else None), "Record.header('event_id')"

    # event_id_of: the first event_id header with a value, else the value's event_id.
    event_id = event_id_of(headers, value)
    with_value = [v for v in named if v is not None]
    if with_value:
        assert event_id == with_value[0].decode(errors="replace"), event_id
    assert event_id is None or type(event_id) is str, event_id

    # A record that failed: written to the DLQ, as the bus writes it, then read for replay.
    event = consumed_event(value, rust_event)
    failure = Failure(
        original_channel="orders",
        error_type="ValueError",
        error_message="handler failed",
        retry_count=3,
        original_partition=0,
        original_offset=7,
        consumer_group="g",
    )
    key, dlq_value, dlq_headers = dlq_record(
        failure,
        event=event,
        raw_value=value,
        key=b"k",
        headers=headers,
    )
    assert key == b"k"
    kept = [h for h in headers if not h[0].startswith(HEADER_PREFIX)]
    assert [h for h in dlq_headers if not h[0].startswith(HEADER_PREFIX)][: len(kept)] == kept
    body = json.loads(dlq_value)
    assert type(body[METADATA_KEY]) is dict
    replayed = replay_target(dlq_value, "fallback")
    if RAW_VALUE_KEY in body:
        # No event, or one that JSON cannot write back: the consumed bytes as they came.
        assert base64.b64decode(body[RAW_VALUE_KEY]) == (value or b"")
        assert event is None or encoded(strip_metadata(event)) is None, event
        assert replayed is None, replayed
    else:
        assert event is not None
        assert replayed is not None, "a dead-lettered event cannot be replayed"
        again, channel = replayed
        assert channel == "orders", channel
        written = encoded(strip_metadata(event))
        assert written is not None
        assert same(again, reference(written)), again

    # Any record read as a DLQ record: an event and a channel to replay to, or nothing.
    replayed = replay_target(value, "fallback")
    if replayed is not None:
        again, channel = replayed
        assert is_event(again), again
        assert METADATA_KEY not in again, again
        assert type(channel) is str, channel
        assert channel, channel


def strip_metadata(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != METADATA_KEY}


def encoded(event: dict[str, Any]) -> bytes | None:
    """The event as ``envelope.encode`` writes it; None where JSON cannot."""
    try:
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
    except ValueError:
        return None


# ---------------------------------------------------------------------- encode_events


class Reader:
    """Input bytes as a stream of choices; zeros once they run out."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out.ljust(n, b"\0")

    def byte(self) -> int:
        return self.take(1)[0]

    def more(self) -> bool:
        return self.pos < len(self.data)


class Color(Enum):
    RED = "red"
    BLUE = 2


class Level(IntEnum):
    LOW = 1


class Text(str):
    """A str subclass: json.dumps writes it as a string, the Rust encoder asks `default`."""


class Number(int):
    pass


CODE_POINTS = [0x0, 0x1F, 0x22, 0x5C, 0x7F, 0xE9, 0x2028, 0xD800, 0xDBFF, 0xDC00, 0xFFFF, 0x1F600]


def text(r: Reader) -> str:
    n = r.byte() % 12
    kind = r.byte() % 3
    if kind == 0:
        # UTF-8 as sent, bad bytes kept as lone surrogates (U+DC80..U+DCFF).
        return r.take(n).decode("utf-8", "surrogateescape")
    if kind == 1:
        return "".join(chr(CODE_POINTS[b % len(CODE_POINTS)]) for b in r.take(n))
    return "".join(chr(0x20 + b % 0x5F) for b in r.take(n))


def key(r: Reader) -> Any:
    kind = r.byte() % 8
    if kind == 0:
        return int.from_bytes(r.take(2), "little", signed=True)
    if kind == 1:
        return struct.unpack("<d", r.take(8))[0]
    if kind == 2:
        return bool(r.byte() & 1)
    if kind == 3:
        return None
    if kind == 4:
        return Text(text(r))
    if kind == 5:
        return (1, 2)  # not a JSON key: a problem for the event
    return text(r)


def value(r: Reader, depth: int) -> Any:
    kind = r.byte() % 26 if depth < 12 and r.more() else r.byte() % 8
    if kind == 0:
        return None
    if kind == 1:
        return bool(r.byte() & 1)
    if kind == 2:
        return int.from_bytes(r.take(1), "little", signed=True)
    if kind == 3:
        return int.from_bytes(r.take(1 + r.byte() % 24), "little", signed=True)
    if kind == 4:
        return struct.unpack("<d", r.take(8))[0]
    if kind in (5, 6, 7):
        return text(r)
    if kind in (8, 9):
        return [value(r, depth + 1) for _ in range(r.byte() % 5)]
    if kind == 10:
        return tuple(value(r, depth + 1) for _ in range(r.byte() % 4))
    if kind in (11, 12):
        return {key(r): value(r, depth + 1) for _ in range(r.byte() % 5)}
    if kind == 13:
        stamp = dt.datetime(2000, 1, 1) + dt.timedelta(seconds=int.from_bytes(r.take(4), "little"))
        return stamp if r.byte() & 1 else stamp.replace(tzinfo=dt.UTC)
    if kind == 14:
        return dt.date(2000, 1, 1) + dt.timedelta(days=r.byte())
    if kind == 15:
        return Decimal(
            ["1.10", "-0", "NaN", "Infinity", "1E+400", "12345678901234567890.5"][r.byte() % 6]
        )
    if kind == 16:
        return uuid.UUID(bytes=r.take(16))
    if kind == 17:
        return [Color.RED, Color.BLUE, Level.LOW][r.byte() % 3]
    if kind == 18:
        return r.take(r.byte() % 4)  # bytes: JSON has no type for them
    if kind == 19:
        return {r.byte() % 4, r.byte() % 4}
    if kind == 20:
        return Text(text(r))
    if kind == 21:
        return Number(r.byte())
    if kind == 22:
        return 10 ** (4290 + r.byte() % 20)  # around sys.get_int_max_str_digits()
    if kind == 23:
        nested: Any = None
        for _ in range(60 + r.byte() % 10):  # around the encoder's depth limit (64)
            nested = [nested]
        return nested
    if kind == 24:
        return [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1e300][r.byte() % 6]
    return object()  # no JSON form, and `default` has none either


EVENT_FIELDS = ["event_id", "timestamp", "version", "event_type"]


def build_event(r: Reader) -> Any:
    shape = r.byte() % 16
    if shape == 0:
        return value(r, 0)  # not necessarily a dict: a problem for that event
    event: dict[Any, Any] = {}
    if shape != 1:
        event["event_type"] = text(r) if shape == 2 else "OrderPlaced"
    for _ in range(r.byte() % 6):
        name = EVENT_FIELDS[r.byte() % 4] if r.byte() & 1 else key(r)
        event[name] = value(r, 1)
    return event


def build_events(data: bytes) -> tuple[list[Any], Any, bool]:
    r = Reader(data)
    flags = r.byte()
    events = [build_event(r) for _ in range(1 + flags % 3)]
    keys: Any
    if flags & 0x10:
        keys = [
            None if r.byte() & 1 else text(r).encode("utf-8", "replace").decode() for _ in events
        ]
    else:
        keys = None if flags & 0x20 else "k"
    return events, keys, bool(flags & 0x40)


def check_encoded(
    events: list[Any],
    keys: Any,
    batch: Any,
    problems: list[tuple[int, str, tuple[Any, ...]]],
    with_headers: bool,
) -> None:
    # (index, message, location): the location is where in the event the encoder stopped.
    failed = {i: message for i, message, _ in problems}
    assert len(failed) == len(problems), "one problem per event at most"
    assert all(type(m) is str and m for m in failed.values()), problems
    assert all(type(loc) is tuple for _, _, loc in problems), problems
    assert len(batch) == len(events) - len(failed), (len(batch), len(events), problems)
    j = 0
    for i, original in enumerate(events):
        if i in failed:
            continue
        assert type(original) is dict, f"event {i} is not a dict yet was encoded"
        record_key, record_value, record_headers = batch.record(j)
        decoded = json.loads(record_value)  # valid JSON, or this raises: a finding
        enriched = batch.event(j)
        expected = json.loads(
            json.dumps(
                enriched,
                default=_json_default,
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
            )
        )
        assert same(decoded, expected), f"Rust {decoded!r} != json.dumps {expected!r}"
        # Ids and types as the Python path has them (str() of the value, for the headers).
        assert batch.event_id(j) == str(enriched["event_id"]), batch.event_id(j)
        assert decoded["event_type"] == batch.event_type(j) == original["event_type"]
        want_key = keys if keys is None or isinstance(keys, str) else keys[i]
        assert record_key == (None if want_key is None else want_key.encode()), record_key
        if with_headers:
            assert record_headers == [
                ("event_type", batch.event_type(j).encode()),
                ("event_id", batch.event_id(j).encode()),
                ("content-type", b"application/json"),
            ], record_headers
        else:
            assert record_headers == [], record_headers
        j += 1
