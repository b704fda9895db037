"""Events on the wire: enrichment, JSON encoding, headers and decoding.

The value is UTF-8 JSON that any Kafka client can read; the headers repeat ``event_type`` and
``event_id`` so that routers and tools can look at them without parsing the value.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel

from ...exceptions import DeserializationError, EventValidationError

CONTENT_TYPE = b"application/json"


def utc_timestamp() -> str:
    """Now as ISO-8601 UTC with a ``Z`` suffix, e.g. ``2025-11-10T12:00:00.123456Z``."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def enrich(event_data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the event with ``event_id``, ``timestamp`` and ``version`` filled in when
    missing. The caller's mapping is never modified. ``event_type`` is required."""
    if not isinstance(event_data, Mapping):
        raise EventValidationError(
            f"an event must be a dict, not {type(event_data).__name__}",
            errors=[{"type": "dict_type", "loc": (), "input": type(event_data).__name__}],
        )
    event_type = event_data.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise EventValidationError(
            "event_type is required (a non-empty string); the event was not sent",
            errors=[{"type": "missing", "loc": ("event_type",), "input": event_type}],
        )
    event = dict(event_data)
    if not event.get("event_id"):
        event["event_id"] = str(uuid.uuid4())
    if not event.get("timestamp"):
        event["timestamp"] = utc_timestamp()
    if event.get("version") is None:
        event["version"] = 1
    return event


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode(event: Mapping[str, Any]) -> bytes:
    """The event as compact UTF-8 JSON. Raises :class:`EventValidationError` for values
    JSON cannot carry."""
    try:
        return json.dumps(
            event, default=_json_default, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (TypeError, ValueError) as exc:
        raise EventValidationError(
            f"event {event.get('event_type')!r} cannot be encoded as JSON: {exc}",
            errors=[{"type": "json_encode", "loc": (), "msg": str(exc)}],
        ) from exc


def headers_for(event: Mapping[str, Any]) -> list[tuple[str, bytes | None]]:
    return [
        ("event_type", str(event["event_type"]).encode()),
        ("event_id", str(event["event_id"]).encode()),
        ("content-type", CONTENT_TYPE),
    ]


def decode(value: bytes | None) -> dict[str, Any]:
    """A consumed value back into an event dict; raises :class:`DeserializationError`."""
    if value is None:
        raise DeserializationError("the record has no value (a tombstone), not an event")
    try:
        event = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeserializationError(f"the record is not valid UTF-8 JSON: {exc}") from exc
    except ValueError as exc:
        # An integer longer than sys.get_int_max_str_digits() (decision 47).
        raise DeserializationError(f"the record's JSON cannot be read: {exc}") from exc
    except RecursionError as exc:
        # json.loads recurses once per nesting level (the Rust decoder stops at 200 levels
        # and leaves such values to this one); a value nested deeper than the interpreter's
        # recursion limit is not an event this process can handle.
        raise DeserializationError(
            f"the record's JSON is nested too deeply to decode ({len(value)} bytes): {exc}"
        ) from exc
    if not isinstance(event, dict):
        raise DeserializationError(f"the record is JSON {type(event).__name__}, not an object")
    if not isinstance(event.get("event_type"), str) or not event["event_type"]:
        raise DeserializationError("the record has no event_type")
    return event


def event_id_of(headers: Iterable[tuple[str, bytes | None]], value: bytes | None) -> str | None:
    """A record's event id: its ``event_id`` header when the records carry headers, else the
    ``event_id`` of its JSON value; None for a record that is not an event."""
    for name, header in headers:
        if name == "event_id" and header is not None:
            return header.decode(errors="replace")
    try:
        event_id = decode(value).get("event_id")
    except DeserializationError:
        return None
    return None if event_id is None else str(event_id)
