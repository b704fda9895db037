"""The counters ``health_check()`` reports, kept as an observer like any other, so health
and metrics count the same things in the same places."""

from __future__ import annotations

from collections import Counter

from .observer import Observer


class Counters(Observer):
    """Totals since the bus was built."""

    def __init__(self) -> None:
        self.published_events = 0
        self.publish_failures = 0
        self.publish_retries = 0
        self.spooled_events = 0
        self.dead_lettered_events = 0
        self.dead_lettered_by_source: Counter[str] = Counter()
        self.dead_letter_failures = 0
        self.dead_letter_refusals = 0
        self.consumed_events = 0
        self.handler_failures = 0
        self.worker_restarts = 0
        self.breaker_transitions = 0
        self.retry_scheduled_events = 0
        self.retry_scheduled_by_tier: Counter[int] = Counter()

    def published(self, channel: str, count: int, latency_s: float) -> None:
        self.published_events += count

    def publish_retried(
        self, channel: str, count: int, attempt: int, error: BaseException, delay_s: float
    ) -> None:
        self.publish_retries += 1

    def publish_failed(
        self, channel: str, count: int, error: BaseException, destination: str | None
    ) -> None:
        self.publish_failures += count

    def spooled(self, channel: str, count: int, destination: str) -> None:
        self.spooled_events += count

    def dead_lettered(self, channel: str, count: int, source: str) -> None:
        self.dead_lettered_events += count
        self.dead_lettered_by_source[source] += count

    def dead_letter_failed(
        self, channel: str, count: int, source: str, error: BaseException, refused: bool
    ) -> None:
        if refused:
            self.dead_letter_refusals += count
        else:
            self.dead_letter_failures += count

    def consumed(self, channel: str, group: str, count: int) -> None:
        self.consumed_events += count

    def handler_failed(self, channel: str, group: str, error: BaseException, attempt: int) -> None:
        self.handler_failures += 1

    def worker_restarted(self, channel: str, group: str, partition: int) -> None:
        self.worker_restarts += 1

    def retry_scheduled(self, channel: str, group: str, tier: int, count: int) -> None:
        self.retry_scheduled_events += count
        self.retry_scheduled_by_tier[tier] += count

    def breaker_transition(self, channel: str, old_state: str, new_state: str) -> None:
        self.breaker_transitions += 1
