"""Turning caller events into records: enrichment, validation and encoding, all before
anything is sent, so a batch with one bad event sends nothing."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .envelope import encode, enrich, headers_for
from .event_registry import validate_event
from .exceptions import EventValidationError
from .transport_adapter import OutgoingRecord

logger = logging.getLogger("tradecore_eventbus.publish")


@dataclass(frozen=True)
class PublishResult:
    """What was sent and where the broker stored it."""

    channel: str
    topic: str
    event_id: str
    event_type: str
    partition: int
    offset: int
    key: str | None
    event: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class PreparedEvent:
    event: dict[str, Any]
    record: OutgoingRecord


def prepare_one(
    event_data: Mapping[str, Any], key: str | None, *, validate: bool, strict: bool
) -> PreparedEvent:
    event = enrich(event_data)
    if validate:
        model = validate_event(event, strict=strict)
        if model is not None:
            # Send what the model accepted (coerced values, defaults), extra fields included.
            event = model.model_dump(mode="json")
    value = encode(event)
    return PreparedEvent(
        event, (key.encode() if key is not None else None, value, headers_for(event))
    )


def prepare(
    channel: str,
    events: Sequence[Mapping[str, Any]],
    key: str | None,
    *,
    validate: bool,
    strict: bool,
) -> list[PreparedEvent]:
    """Prepares every event or raises one :class:`EventValidationError`: for a single event
    its own (``errors`` = Pydantic's errors); for several, one naming each invalid position
    (``errors`` holds ``{"index": i, "message": ..., "errors": [...]}``)."""
    if isinstance(events, (Mapping, str | bytes)):
        raise EventValidationError(
            "events_data_list must be a list of event dicts",
            errors=[{"type": "list_type", "loc": (), "input": type(events).__name__}],
        )
    prepared: list[PreparedEvent] = []
    failures: list[tuple[int, EventValidationError]] = []
    for i, data in enumerate(events):
        try:
            prepared.append(prepare_one(data, key, validate=validate, strict=strict))
        except EventValidationError as exc:
            failures.append((i, exc))
    if not failures:
        return prepared
    if len(events) == 1:
        # One event: its own error, with Pydantic's error list.
        logger.warning("not publishing to %s: %s", channel, failures[0][1].message)
        raise failures[0][1]
    where = "; ".join(f"position {i}: {exc.message}" for i, exc in failures)
    message = f"{len(failures)} of {len(events)} events are invalid, none was sent: {where}"
    logger.warning("not publishing to %s: %s", channel, message)
    raise EventValidationError(
        message,
        errors=[{"index": i, "message": exc.message, "errors": exc.errors} for i, exc in failures],
    )
