"""Retry policy: exponential backoff with full jitter (the guide's ``RetryConfig``)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from tradecore_eventbus import _core

from ..config.checks import MAX_MS, FloatRange, IntRange, Rules, check_fields

#: The ranges of ``RetryConfig``'s fields (durations fit in int32 milliseconds).
RETRY_RULES: Rules = {
    "max_attempts": (IntRange(1, 2**31 - 1), None),
    "initial_delay_ms": (IntRange(0, MAX_MS), None),
    "max_delay_ms": (IntRange(0, MAX_MS), None),
    "backoff_factor": (FloatRange(1.0, 1e6), None),
}


@dataclass(frozen=True)
class RetryConfig:
    """How often and how patiently an operation is retried.

    ``max_attempts`` counts every attempt, the first included (1 = no retry). The delay
    before retry *n* (n = 1, 2, ...) is drawn uniformly from
    ``[0, min(max_delay_ms, initial_delay_ms * backoff_factor ** (n - 1))]`` ("full jitter").
    """

    max_attempts: int = 5
    initial_delay_ms: int = 200
    max_delay_ms: int = 5000
    backoff_factor: float = 2.0

    def __post_init__(self) -> None:
        check_fields(self, RETRY_RULES)

    def delay_cap_ms(self, retry: int) -> float:
        """Upper bound of the delay before retry number ``retry`` (1-based)."""
        # The schedule is the Rust core's (tested there); only the jitter is drawn here.
        return _core.backoff_cap_ms(
            min(retry, 2**32 - 1), self.initial_delay_ms, self.max_delay_ms, self.backoff_factor
        )

    def delay_s(self, retry: int, rng: random.Random | None = None) -> float:
        """A jittered delay in seconds before retry number ``retry``."""
        cap = self.delay_cap_ms(retry)
        draw = (rng or random).uniform(0.0, cap)
        return draw / 1000.0
