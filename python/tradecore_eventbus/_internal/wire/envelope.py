"""Events on the wire: enrichment, JSON encoding, headers and decoding.

The value is UTF-8 JSON that any Kafka client can read; the headers repeat ``event_type`` and
``event_id`` so that routers and tools can look at them without parsing the value.
"""

from __future__ import annotations

import dataclasses
import json
import math
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
    missing. The caller's mapping is never modified. ``event_type`` is required (a non-empty
    str); an ``event_id`` the caller gives must be a non-empty str (decision 51)."""
    if not isinstance(event_data, Mapping):
        raise EventValidationError(
            f"an event must be a dict, got {type(event_data).__name__}",
            errors=[{"type": "dict_type", "loc": (), "input": type(event_data).__name__}],
        )
    event_type = event_data.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise EventValidationError(
            "event_type is required (a non-empty str); the event was not sent"
            if event_type is None
            else f"event_type must be a non-empty str, got {_described(event_type)}",
            errors=[{"type": "string_type", "loc": ("event_type",), "input": event_type}],
        )
    event_id = event_data.get("event_id")
    if event_id is not None and (not isinstance(event_id, str) or not event_id):
        raise EventValidationError(
            f"event_id must be a non-empty str (or left out), got {_described(event_id)}",
            errors=[{"type": "string_type", "loc": ("event_id",), "input": event_id}],
        )
    event = dict(event_data)
    if event_id is None:
        event["event_id"] = str(uuid.uuid4())
    if not event.get("timestamp"):
        event["timestamp"] = utc_timestamp()
    if event.get("version") is None:
        event["version"] = 1
    return event


def _described(value: Any) -> str:
    return "an empty string" if value == "" else type(value).__name__


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
        # Pydantic's JSON mode writes null for NaN in values typed Any: refuse it instead,
        # like every other NaN (decision 52). Only models inside events pay for the walk.
        found = non_finite_paths(value.model_dump(), first_only=True)
        if found:
            path, name = found[0]
            raise ValueError(f"{name} at {format_path(path)} {NOT_A_NUMBER}")
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode(event: Mapping[str, Any]) -> bytes:
    """The event as compact UTF-8 JSON. Raises :class:`EventValidationError` naming the
    field for values JSON cannot carry: NaN and infinities are refused (other clients
    cannot read them; decision 52), as are values with no JSON form and nesting deeper than
    the interpreter's recursion limit."""
    try:
        return json.dumps(
            event,
            default=_json_default,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        ).encode()
    except RecursionError as exc:
        raise EventValidationError(
            f"event {event.get('event_type')!r} cannot be encoded as JSON: nested too deeply",
            errors=[{"type": "json_encode", "loc": (), "msg": "nested too deeply"}],
        ) from exc
    except (TypeError, ValueError) as exc:
        found = non_finite_paths(event, first_only=True)
        if found:
            raise _non_finite_error(event, *found[0]) from exc
        raise EventValidationError(
            f"event {event.get('event_type')!r} cannot be encoded as JSON: {exc}",
            errors=[{"type": "json_encode", "loc": (), "msg": str(exc)}],
        ) from exc


NOT_A_NUMBER = (
    "is not a JSON number (NaN and infinities are refused: other clients cannot read them)"
)


def _non_finite_error(event: Mapping[str, Any], path: Path, name: str) -> EventValidationError:
    msg = f"field {format_path(path)}: {name} {NOT_A_NUMBER}"
    return EventValidationError(
        f"event {event.get('event_type')!r} cannot be encoded as JSON: {msg}",
        errors=[{"type": "finite_number", "loc": path, "msg": msg}],
    )


def _anything(value: Any) -> Any:
    try:
        return _json_default(value)
    except TypeError:
        return None  # no JSON form: not this check's business


def refuse_non_finite(event: Mapping[str, Any]) -> None:
    """Raises :class:`EventValidationError` naming the field if the event holds NaN or an
    infinity. For events about to be dumped by their model, which would write ``null`` for
    NaN in values typed Any: one pass of the C encoder, the walk only once it failed."""
    try:
        json.dumps(event, default=_anything, allow_nan=False)
    except RecursionError as exc:
        raise EventValidationError(
            f"event {event.get('event_type')!r} cannot be encoded as JSON: nested too deeply",
            errors=[{"type": "json_encode", "loc": (), "msg": "nested too deeply"}],
        ) from exc
    except ValueError as exc:
        found = non_finite_paths(event, first_only=True)
        if found:
            raise _non_finite_error(event, *found[0]) from exc
        # Anything else (a circular reference, say) is the encoder's to report.


Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """``a.b[2].c``, as the Rust encoder names fields."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _float_name(x: float) -> str:
    return "NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")


def non_finite_paths(value: Any, *, first_only: bool = False) -> list[tuple[Path, str]]:
    """Where ``value`` holds NaN or an infinity (dict values and keys, list and tuple items),
    as (path, "NaN" | "Infinity" | "-Infinity"). Iterative, so any depth is fine; only called
    after encoding failed or for a dead letter, never on the publish path."""
    found: list[tuple[Path, str]] = []
    stack: list[tuple[Path, Any]] = [((), value)]
    seen: set[int] = set()
    while stack:
        path, v = stack.pop()
        if isinstance(v, float):
            if v != v or v in (math.inf, -math.inf):
                found.append((path, _float_name(v)))
                if first_only:
                    return found
        elif isinstance(v, Mapping | list | tuple) and id(v) not in seen:
            seen.add(id(v))
            items = list(v.items()) if isinstance(v, Mapping) else list(enumerate(v))
            for k, item in reversed(items):
                if isinstance(k, float) and not math.isfinite(k):
                    found.append((path, f"{_float_name(k)} (a dict key)"))
                    if first_only:
                        return found
                stack.append(((*path, k if isinstance(k, int | str) else str(k)), item))
        elif not isinstance(v, str | int | Mapping | list | tuple) and v is not None:
            # What json.dumps hands to ``default`` (models, dataclasses, sets, ...); a model's
            # Python dump, since its JSON dump hides NaN as null.
            try:
                stack.append(
                    (path, v.model_dump() if isinstance(v, BaseModel) else _json_default(v))
                )
            except Exception:  # not convertible: it holds no float to name
                continue
    return found


def without_non_finite(value: Any) -> Any:
    """The JSON form of ``value`` with every NaN / infinity as None (for dead letters, which
    must be written whatever they hold). Not for the publish path."""
    text = json.dumps(value, default=_json_default, ensure_ascii=False)
    return json.loads(text, parse_constant=lambda _token: None)


def headers_for(event: Mapping[str, Any]) -> list[tuple[str, bytes | None]]:
    """The event headers of a record. An event replayed from a DLQ may come without an
    ``event_id`` (another producer wrote it): then there is no such header, rather than a
    made-up one or an error for the whole replay."""
    headers: list[tuple[str, bytes | None]] = [("event_type", str(event["event_type"]).encode())]
    event_id = event.get("event_id")
    if event_id is not None:
        headers.append(("event_id", str(event_id).encode()))
    headers.append(("content-type", CONTENT_TYPE))
    return headers


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
