"""The memory transport's record type and the argument conversions its clients share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ....exceptions import (
    InvalidArgumentError,
)
from ..structs import Header
from .broker import StoredRecord

Bytesish = bytes | str | None
HeadersArg = Sequence[tuple[str, Bytesish]] | Mapping[str, Bytesish]


@dataclass(frozen=True)
class MemoryRecord:
    """One consumed record (the in-memory ``_core.Record``)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None
    # Not hashed: a list is not hashable, and (topic, partition, offset) identifies a record.
    headers: list[Header] = field(default_factory=list, hash=False)
    # The Kafka consumer decodes events in Rust per batch; here the subscription decodes.
    event: dict[str, Any] | None = field(default=None, hash=False, compare=False)

    @classmethod
    def from_stored(cls, topic: str, stored: StoredRecord) -> MemoryRecord:
        # A fresh list per record: a caller editing it cannot change the broker's log.
        return cls(
            topic,
            stored.partition,
            stored.offset,
            stored.key,
            stored.value,
            stored.timestamp,
            list(stored.headers),
        )

    def header(self, name: str) -> bytes | None:
        """The value of the first header called ``name``, or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


def as_bytes(value: Bytesish, what: str) -> bytes | None:
    """bytes, str (sent as UTF-8) or None, as the Rust producer accepts them."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"{what} must be bytes, str or None, not {type(value).__name__}")


def as_headers(headers: HeadersArg | None) -> list[Header]:
    if headers is None:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [(name, as_bytes(value, f"header {name!r}")) for name, value in pairs]


def checked_seconds(value: float, what: str) -> float:
    if not value >= 0 or value == float("inf"):
        raise InvalidArgumentError(f"{what} must be a non-negative number of seconds, not {value}")
    return value
