"""Dead-letter records: the original event plus ``_dlq_metadata``, also carried in headers.

A DLQ record's value is the original event's JSON object with one more key,
``_dlq_metadata`` = {original_channel, original_partition, original_offset, consumer_group,
error_type, error_message, failed_at, retry_count}. When the original value was not an
event at all, the value is ``{"_raw_value": <base64>, "_dlq_metadata": {...}}``. The key is
the original key, so a replay keeps the original partitioning.

A dead letter always fits in one record the producer accepts (decision 44): when the full
copy would be larger than ``message.max.bytes`` (less room for the record's framing), the
value becomes ``{"_raw_value": <base64 of the original's first bytes>, "_dlq_metadata":
{..., "original_truncated": true, "original_size": <bytes>, "original_topic": ...}}``: the
metadata, a prefix of the original, and its coordinates (for a consumed record, topic,
partition and offset find the whole original in its topic).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ....exceptions import DeserializationError
from ...config.security import redact
from ...transports.structs import HeaderList, OutgoingRecord
from ...wire.envelope import decode, encode, utc_timestamp
from ...wire.trace_context import trace_headers

if TYPE_CHECKING:
    from ...config.settings import TransportConfig

HEADER_PREFIX = "dlq."
METADATA_KEY = "_dlq_metadata"
RAW_VALUE_KEY = "_raw_value"
TRUNCATED_KEY = "original_truncated"

#: librdkafka's default ``message.max.bytes``: the largest record its producer accepts.
DEFAULT_MESSAGE_MAX_BYTES = 1_000_000
#: Kept free below ``message.max.bytes`` for what librdkafka and the broker add around a
#: record's key, value and headers (varint lengths, offset and timestamp deltas, the v2
#: batch header: well under this).
FRAMING_BYTES = 1024
#: Per header: the varint lengths of its name and value.
HEADER_FRAMING_BYTES = 10
#: ``error_message`` is cut to this many characters (an exception text can repeat a whole
#: payload; the DLQ needs to say what failed, not to carry it twice).
ERROR_MESSAGE_CHARS = 2000


def record_size_limit(transport_config: TransportConfig) -> int:
    """The largest DLQ record (key + value + headers) the transport's producer takes: its
    ``message.max.bytes`` (librdkafka property, default 1,000,000) less the framing room."""
    raw = transport_config.librdkafka_config.get("message.max.bytes")
    limit = int(raw) if raw else DEFAULT_MESSAGE_MAX_BYTES
    return max(0, limit - FRAMING_BYTES)


def record_size(key: bytes | None, value: bytes, headers: HeaderList) -> int:
    """What a record weighs against ``message.max.bytes`` (framing aside)."""
    return (
        len(key or b"")
        + len(value)
        + sum(len(n.encode()) + len(v or b"") + HEADER_FRAMING_BYTES for n, v in headers)
    )


def _text(value: str) -> str:
    """``value`` with lone surrogates (text UTF-8 cannot carry, e.g. from a decoded
    ``"\\ud800"``) written as ``\\udXXX`` escapes, so that a dead letter can always be
    encoded (decision 47)."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class Failure:
    original_channel: str
    error_type: str
    error_message: str
    retry_count: int
    original_partition: int | None = None
    original_offset: int | None = None
    consumer_group: str | None = None
    #: The retry topics the event went through before the DLQ (decision 107), oldest
    #: first; empty for an event that never left its channel's topic.
    retry_history: tuple[Mapping[str, Any], ...] = ()

    def metadata(self) -> dict[str, Any]:
        # A handler's exception may quote a configured secret, and the DLQ is read by others
        # (decision 50); scrubbed before cutting, so no part of one is left either.
        message = redact(self.error_message)
        if len(message) > ERROR_MESSAGE_CHARS:
            message = message[: ERROR_MESSAGE_CHARS - 3] + "..."
        metadata: dict[str, Any] = {
            "original_channel": self.original_channel,
            "original_partition": self.original_partition,
            "original_offset": self.original_offset,
            "consumer_group": self.consumer_group,
            "error_type": self.error_type,
            "error_message": message,
            "failed_at": utc_timestamp(),
            "retry_count": self.retry_count,
        }
        if self.retry_history:
            metadata["retry_history"] = [dict(step) for step in self.retry_history]
        return metadata


def dlq_record(
    failure: Failure,
    *,
    event: Mapping[str, Any] | None,
    raw_value: bytes | None,
    key: bytes | None,
    headers: HeaderList | None = None,
    max_bytes: int | None = None,
    original_topic: str | None = None,
    keep_original: bool = True,
) -> OutgoingRecord:
    """The record to write to the DLQ topic for a failed event (or raw value).

    ``raw_value`` is the original's bytes as they were (or would have been) on the wire;
    without ``event`` they are the DLQ copy (base64). An event that cannot be encoded again
    (nested deeper than ``json.dumps`` goes, ...) falls back to its bytes too. With
    ``max_bytes`` (see :func:`record_size_limit`) a copy that would not fit is truncated as
    the module says; ``keep_original=False`` keeps no bytes of the original at all (for a DLQ
    whose broker refused even the truncated copy)."""
    metadata = failure.metadata()
    value: bytes | None = None
    if event is not None and keep_original:
        body = {k: v for k, v in event.items() if k != METADATA_KEY}
        body[METADATA_KEY] = metadata
        try:
            value = encode(body)
        except Exception:  # any encoding failure: keep the original bytes instead
            value = None
    if value is None and keep_original and (event is None or raw_value is not None):
        value = encode({RAW_VALUE_KEY: _b64(raw_value or b""), METADATA_KEY: metadata})
    own_headers = [(k, v) for k, v in (headers or []) if not k.startswith(HEADER_PREFIX)]
    if value is not None:
        out_headers = own_headers + _metadata_headers(metadata, event, own_headers)
        if max_bytes is None or record_size(key, value, out_headers) <= max_bytes:
            return key, value, out_headers
    return _truncated(
        metadata,
        event=event,
        raw_value=raw_value,
        key=key,
        max_bytes=max_bytes,
        original_topic=original_topic,
        keep_original=keep_original,
        trace=trace_headers(own_headers),
    )


def _truncated(
    metadata: dict[str, Any],
    *,
    event: Mapping[str, Any] | None,
    raw_value: bytes | None,
    key: bytes | None,
    max_bytes: int | None,
    original_topic: str | None,
    keep_original: bool,
    trace: HeaderList,
) -> OutgoingRecord:
    original = raw_value
    if original is None and event is not None:
        try:
            original = encode(event)
        except Exception:
            original = b""
    original = original or b""
    metadata = {
        **metadata,
        TRUNCATED_KEY: True,
        "original_size": len(original),
        "original_topic": original_topic,
    }
    # Only the headers that identify the event (and its trace) are kept: the original's own
    # headers are with the original (or with the caller, for a refused publish).
    headers = trace + _metadata_headers(metadata, event, [])
    empty = encode({RAW_VALUE_KEY: "", METADATA_KEY: metadata})
    if max_bytes is not None and record_size(key, empty, headers) > max_bytes:
        key = None  # a key this large is in the original record too
    room = len(original) * 2 if max_bytes is None else max_bytes - record_size(key, empty, headers)
    kept = min(len(original), max(0, room) // 4 * 3) if keep_original else 0
    value = encode({RAW_VALUE_KEY: _b64(original[:kept]), METADATA_KEY: metadata})
    return key, value, headers


def _metadata_headers(
    metadata: Mapping[str, Any], event: Mapping[str, Any] | None, existing: HeaderList
) -> HeaderList:
    out: HeaderList = [
        (HEADER_PREFIX + name, None if value is None else _header_text(value))
        for name, value in metadata.items()
    ]
    # Dead letters always name their event and its type (they are few, and tools triage them
    # by these), whether or not the original records carried headers.
    names = {k for k, _ in existing}
    for name in ("event_type", "event_id"):
        if event is not None and name not in names and event.get(name) is not None:
            out.append((name, _text(str(event[name])).encode()))
    return out


def _header_text(value: Any) -> bytes:
    if value is True or value is False:
        return b"true" if value else b"false"
    if isinstance(value, list | dict):
        return _text(json.dumps(value, separators=(",", ":"), ensure_ascii=False)).encode()
    return _text(str(value)).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def original_event(dlq_value: Mapping[str, Any]) -> dict[str, Any] | None:
    """The event inside a DLQ value, without its metadata; None for a raw (undecodable or
    truncated) one."""
    if RAW_VALUE_KEY in dlq_value:
        return None
    return {k: v for k, v in dlq_value.items() if k != METADATA_KEY}


def replay_target(value: bytes | None, channel: str) -> tuple[dict[str, Any], str] | None:
    """What replaying a DLQ record republishes: the original event and the channel it failed
    on (its metadata's ``original_channel`` when that is a non-empty string, else
    ``channel``); None for a record that holds no event to replay (a raw or truncated copy,
    or anything that is not an event)."""
    try:
        body = decode(value)
    except DeserializationError:
        return None
    event = original_event(body)
    if event is None:
        return None
    meta = body.get(METADATA_KEY)
    target = meta.get("original_channel") if isinstance(meta, dict) else None
    return event, target if isinstance(target, str) and target else channel
