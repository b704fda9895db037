"""Checks of the public API's arguments: each raises a typed error naming the argument
before anything is sent (decision 51).

They are O(1) type checks, cheap enough for every call on the hot path. The content of the
events (``event_type``, ``event_id``, values JSON cannot carry) is checked where the events
are walked anyway: in the Rust encoder, or in ``envelope`` on the Python path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ...exceptions import EventValidationError, InvalidArgumentError


def _kind(value: object) -> str:
    return type(value).__name__


def check_name(value: object, name: str) -> str:
    """A channel or stream name: a str (its content is checked when it becomes a topic)."""
    if type(value) is not str and not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a str, got {_kind(value)}")
    return value


def check_key(value: object, name: str = "partition_key") -> str | None:
    """A partition key: None or a str that can be sent as UTF-8."""
    if value is None:
        return None
    if type(value) is not str and not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a str or None, got {_kind(value)}")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise InvalidArgumentError(
                f"{name} must be valid UTF-8 text (it holds a lone surrogate)"
            ) from None
    return value


def one_key(partition_key: object, key: object) -> str | None:
    """``partition_key`` and its alias ``key``: at most one of them, a str."""
    if key is None:
        return check_key(partition_key)
    if partition_key is not None and partition_key != key:
        raise InvalidArgumentError(
            "partition_key and key are the same argument; give one of them, not both"
        )
    return check_key(key, "key")


def check_event(value: object, name: str) -> Mapping[str, Any]:
    """One event: a dict (any Mapping). Its fields are checked when it is encoded."""
    if type(value) is not dict and not isinstance(value, Mapping):
        raise EventValidationError(
            f"{name} must be a dict, got {_kind(value)}",
            errors=[{"type": "dict_type", "loc": (), "input": _kind(value)}],
        )
    return value


def check_events(value: object, name: str) -> Sequence[Mapping[str, Any]]:
    """A list (or tuple) of events; each one is checked when the batch is encoded."""
    if type(value) is list or (isinstance(value, Sequence) and not isinstance(value, str | bytes)):
        return value
    raise EventValidationError(
        f"{name} must be a list of event dicts, got {_kind(value)}",
        errors=[{"type": "list_type", "loc": (), "input": _kind(value)}],
    )


def check_positive_int(value: object, name: str) -> int:
    """An int >= 1 (not a bool, not a float)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an int, got {_kind(value)}")
    if value < 1:
        raise InvalidArgumentError(f"{name} must be at least 1, got {value}")
    return value


def check_milliseconds(value: object, name: str, minimum: float = 1) -> int:
    """A finite number of milliseconds >= ``minimum`` (int or float; NaN, infinities and
    bools are refused), as an int."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"{name} must be a number of milliseconds, got {_kind(value)}")
    if not math.isfinite(value):
        raise InvalidArgumentError(f"{name} must be a finite number of milliseconds, got {value}")
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be at least {minimum:g} ms, got {value}")
    return max(int(minimum), int(value))


def check_seconds(value: object, name: str) -> float:
    """A finite, non-negative number of seconds (NaN, infinities and bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"{name} must be a number of seconds, got {_kind(value)}")
    if not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(
            f"{name} must be a finite, non-negative number of seconds, got {value}"
        )
    return float(value)


def check_callable(value: object, name: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not callable(value):
        raise InvalidArgumentError(f"{name} must be callable, got {_kind(value)}")
