"""The counters of one subscription (its part of ``health_check()``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .failures import describe


@dataclass
class SubscriberStats:
    messages_processed: int = 0
    errors: int = 0
    filtered: int = 0
    dead_lettered: int = 0
    #: Failing records written to a retry topic (decision 105).
    retried_to_topic: int = 0
    dlq_failures: int = 0
    skipped: int = 0
    last_message_at: float | None = None
    consecutive_empty_fetches: int = 0
    current_backoff: float = 0.0
    #: DLQ writes refused for good: logged with the record's coordinates and skipped (the
    #: record itself stays in its topic at its offset).
    dlq_refused: int = 0
    #: Partition workers restarted after dying outside the per-record guard.
    worker_restarts: int = 0
    last_error: str | None = None
    last_error_at: float | None = None

    def error(self, error: BaseException) -> None:
        self.last_error = describe(error)
        self.last_error_at = time.time()

    def as_health(self, active: bool) -> dict[str, Any]:
        """The guide's counters of one consumer."""
        age = (
            None
            if self.last_message_at is None
            else round(time.monotonic() - self.last_message_at, 3)
        )
        return {
            "messages_processed": self.messages_processed,
            "errors": self.errors,
            "last_message_age": age,
            "active": active,
            "consecutive_empty_fetches": self.consecutive_empty_fetches,
            "current_backoff": self.current_backoff,
        }

    def faults(self) -> dict[str, Any]:
        """What went wrong, beside the guide's per-consumer structure (health's
        ``adapter.details.consumer_faults``)."""
        return {
            "dead_lettered": self.dead_lettered,
            "retried_to_topic": self.retried_to_topic,
            "dlq_write_failures": self.dlq_failures,
            "dlq_refused": self.dlq_refused,
            "skipped": self.skipped,
            "worker_restarts": self.worker_restarts,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }
