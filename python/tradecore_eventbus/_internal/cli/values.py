"""How the commands show values: durations, times, events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

_UNITS = ((86_400_000, "d"), (3_600_000, "h"), (60_000, "min"), (1000, "s"))


def duration_ms(ms: int) -> str:
    """``604800000`` -> ``7d``; ``-1`` (Kafka's "for ever") -> ``forever``."""
    if ms < 0:
        return "forever"
    for size, unit in _UNITS:
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def time_ms(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def json_object(raw: bytes | None) -> dict[str, Any] | None:
    """A record's value as a JSON object, or None (a tombstone, not JSON, not an object)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
