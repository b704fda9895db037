"""Dead letters for events holding values JSON has no number for.

Events are refused with NaN or infinities when published (decision 52), but a consumed
record written by another client may hold them (``json.loads`` reads the tokens), and its
dead letter must still be written: a DLQ write that raises would hold the partition forever.
Such a dead letter carries the event with those numbers as ``null``, and its
``error_message`` says which fields held what, so nothing is silently changed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ...transports.structs import HeaderList, OutgoingRecord
from ...wire.envelope import format_path, non_finite_paths, without_non_finite
from .record import Failure, dlq_record

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

    # dlq_record itself never raises: a body it cannot encode becomes the original's bytes.
    # An event holding NaN or infinities is better kept readable (and replayable) with those
    # numbers as null and a note saying which they were.
    found = non_finite_paths(event) if event is not None else []
    if event is None or not found:
        return build(failure, event, raw_value)
    named = ", ".join(f"{format_path(p) or '(event)'}={v}" for p, v in found[:_NAMED_FIELDS])
    more = f" and {len(found) - _NAMED_FIELDS} more" if len(found) > _NAMED_FIELDS else ""
    noted = replace(
        failure,
        error_message=f"{failure.error_message} [written with null for the numbers JSON "
        f"cannot carry: {named}{more}]",
    )
    return build(noted, without_non_finite(event), raw_value)
