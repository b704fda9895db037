"""Dead letters for events holding values JSON has no number for.

Events are refused with NaN or infinities when published (decision 52), but a consumed
record written by another client may hold them (``json.loads`` reads the tokens), and its
dead letter must still be written: a DLQ write that raises would hold the partition forever.
Such a dead letter carries the event with those numbers as ``null``, and its
``error_message`` says which fields held what, so nothing is silently changed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from ...exceptions import EventValidationError
from ..transports.structs import HeaderList, OutgoingRecord
from ..wire.envelope import format_path, non_finite_paths, without_non_finite
from .dead_letter import Failure, dlq_record

#: How many fields the note in ``error_message`` names at most.
_NAMED_FIELDS = 20


def writable_dlq_record(
    failure: Failure,
    *,
    event: dict[str, Any] | None,
    raw_value: bytes | None,
    key: bytes | None,
    headers: HeaderList | None = None,
    max_bytes: int | None = None,
    original_topic: str | None = None,
    keep_original: bool = True,
) -> OutgoingRecord:
    """``dlq_record`` (with its size options), which never raises for what the event holds."""

    def build(
        failure: Failure, event: dict[str, Any] | None, raw_value: bytes | None
    ) -> OutgoingRecord:
        return dlq_record(
            failure,
            event=event,
            raw_value=raw_value,
            key=key,
            headers=headers,
            max_bytes=max_bytes,
            original_topic=original_topic,
            keep_original=keep_original,
        )

    try:
        return build(failure, event, raw_value)
    except EventValidationError:
        if event is None:
            raise
    found = non_finite_paths(event)
    if found:
        named = ", ".join(f"{format_path(p) or '(event)'}={v}" for p, v in found[:_NAMED_FIELDS])
        more = f" and {len(found) - _NAMED_FIELDS} more" if len(found) > _NAMED_FIELDS else ""
        noted = replace(
            failure,
            error_message=f"{failure.error_message} [written with null for the numbers JSON "
            f"cannot carry: {named}{more}]",
        )
        try:
            return build(noted, without_non_finite(event), None)
        except (EventValidationError, ValueError, RecursionError):
            pass
    # Anything else UTF-8 JSON cannot carry (a lone surrogate from a "\ud800" escape, say):
    # the event as ASCII JSON, base64 in ``_raw_value``.
    raw = json.dumps(event, default=str).encode()
    return build(
        replace(failure, error_message=f"{failure.error_message} [event kept as raw bytes]"),
        None,
        raw,
    )
