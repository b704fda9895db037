"""Dead-letter records: the original event plus ``_dlq_metadata``, also carried in headers.

A DLQ record's value is the original event's JSON object with one more key,
``_dlq_metadata`` = {original_channel, original_partition, original_offset, consumer_group,
error_type, error_message, failed_at, retry_count}. When the original value was not an
event at all, the value is ``{"_raw_value": <base64>, "_dlq_metadata": {...}}``. The key is
the original key, so a replay keeps the original partitioning.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tradecore_eventbus import _core

from ..transports.structs import HeaderList, OutgoingRecord
from ..wire.envelope import encode, utc_timestamp

HEADER_PREFIX = "dlq."
METADATA_KEY = "_dlq_metadata"
RAW_VALUE_KEY = "_raw_value"


@dataclass(frozen=True)
class Failure:
    original_channel: str
    error_type: str
    error_message: str
    retry_count: int
    original_partition: int | None = None
    original_offset: int | None = None
    consumer_group: str | None = None

    def metadata(self) -> dict[str, Any]:
        return {
            "original_channel": self.original_channel,
            "original_partition": self.original_partition,
            "original_offset": self.original_offset,
            "consumer_group": self.consumer_group,
            "error_type": self.error_type,
            # A handler's exception may quote a configured secret; the DLQ is read by others
            # (decision 41).
            "error_message": _core.redact(self.error_message),
            "failed_at": utc_timestamp(),
            "retry_count": self.retry_count,
        }


def dlq_record(
    failure: Failure,
    *,
    event: Mapping[str, Any] | None,
    raw_value: bytes | None,
    key: bytes | None,
    headers: HeaderList | None = None,
) -> OutgoingRecord:
    """The record to write to the DLQ topic for a failed event (or raw value)."""
    metadata = failure.metadata()
    body: dict[str, Any]
    if event is not None:
        body = {k: v for k, v in event.items() if k != METADATA_KEY}
    else:
        body = {RAW_VALUE_KEY: base64.b64encode(raw_value or b"").decode()}
    body[METADATA_KEY] = metadata
    out_headers: HeaderList = [
        (k, v) for k, v in (headers or []) if not k.startswith(HEADER_PREFIX)
    ]
    out_headers += [
        (HEADER_PREFIX + name, None if value is None else str(value).encode())
        for name, value in metadata.items()
    ]
    # Dead letters always name their event and its type (they are few, and tools triage them
    # by these), whether or not the original records carried headers.
    names = {k for k, _ in out_headers}
    for name in ("event_type", "event_id"):
        if event is not None and name not in names and event.get(name) is not None:
            out_headers.append((name, str(event[name]).encode()))
    return key, encode(body), out_headers


def original_event(dlq_value: Mapping[str, Any]) -> dict[str, Any] | None:
    """The event inside a DLQ value, without its metadata; None for a raw (undecodable) one."""
    if RAW_VALUE_KEY in dlq_value:
        return None
    return {k: v for k, v in dlq_value.items() if k != METADATA_KEY}
