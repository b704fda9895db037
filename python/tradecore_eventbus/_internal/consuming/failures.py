"""What counts as a record's failure, and how one is described in logs and health."""

from __future__ import annotations

import asyncio
from typing import Any

from ...exceptions import AuthenticationError, EventBusError
from ..config.security import redact
from ..transports.protocol import RecordLike
from ..wire.envelope import decode

#: Exceptions that are not a record's failure: cancellation, and the process being asked to
#: stop (Ctrl-C, ``sys.exit``) or a coroutine being closed. They pass through every guard.
PASS_THROUGH: tuple[type[BaseException], ...] = (
    asyncio.CancelledError,
    KeyboardInterrupt,
    SystemExit,
    GeneratorExit,
)
#: Longest error text kept in health (``last_error``).
LAST_ERROR_CHARS = 500


def describe(error: BaseException) -> str:
    # Health and log lines quote it, and a handler's exception may quote a configured
    # secret (decision 50): scrubbed before cutting.
    text = redact(f"{type(error).__name__}: {error}")
    return text if len(text) <= LAST_ERROR_CHARS else text[: LAST_ERROR_CHARS - 3] + "..."


def event_of(record: RecordLike) -> dict[str, Any] | None:
    """The record's event if it decodes (for its DLQ copy), else None (its bytes are kept)."""
    try:
        return record.event if record.event is not None else decode(record.value)
    except Exception:
        return None


def retriable(error: BaseException) -> bool:
    """Whether writing to the DLQ may succeed if tried again (the broker is away, ...).
    Anything else (a refusal, a record that cannot be built) fails the same way again.
    Refused credentials are not the record's fault: the write succeeds once they are fixed,
    so the partition waits for that (decision 47)."""
    return isinstance(error, EventBusError) and (
        error.retriable or isinstance(error, AuthenticationError)
    )
