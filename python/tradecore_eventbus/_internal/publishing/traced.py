"""What a traced publish does besides an untraced one (only while an observer traces
publishes: decision 86): every event gets its ``event_id`` before it is encoded, so that its
span names it from the start, and the trace learns each event's outcome."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ...exceptions import AuthenticationError, PublishError
from ..observability.observer import PublishTrace


def with_event_ids(events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``events``, each one without an ``event_id`` (or with None) copied with a fresh one,
    as enrichment would add it. Anything else is left for preparing to accept or refuse."""
    out: list[Mapping[str, Any]] = []
    for event in events:
        if isinstance(event, Mapping) and event.get("event_id") is None:
            event = {**event, "event_id": str(uuid.uuid4())}
        out.append(event)
    return out


def report_delivered(trace: PublishTrace, deliveries: Sequence[tuple[int, int]]) -> None:
    for i, (partition, offset) in enumerate(deliveries):
        trace.delivered(i, partition, offset)


def report_failure(trace: PublishTrace, error: BaseException, count: int) -> None:
    """Each of ``count`` events' outcome when the call raised ``error``: a partly failed
    batch's ``results`` say which were delivered anyway; otherwise none was."""
    results = error.results if isinstance(error, PublishError | AuthenticationError) else []
    for i in range(count):
        result = results[i] if i < len(results) else None
        if isinstance(result, tuple):
            trace.delivered(i, int(result[0]), int(result[1]))
        else:
            trace.failed(i, result if isinstance(result, BaseException) else error)
