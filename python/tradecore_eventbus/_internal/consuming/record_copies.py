"""Where a failed record is copied once its handler has given up: the next retry topic
(decision 105) or the DLQ (decision 44). A copy the broker does not take now is retried with
the DLQ backoff, holding back the record's partition; one refused for good is logged with
the record's coordinates and counted."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ...exceptions import ClosedError
from ..reliability.backoff import Backoff
from ..reliability.retry import RetryConfig
from ..transports.protocol import RecordLike
from .failures import PASS_THROUGH, describe, retriable
from .retry_tier import RetryTier
from .stats import SubscriberStats

logger = logging.getLogger("tradecore_eventbus.subscription")

#: Writes one failed record to the DLQ: (record, decoded event or None, error, retries).
DeadLetterSink = Callable[[RecordLike, dict[str, Any] | None, BaseException, int], Awaitable[None]]


class CopyOwner(Protocol):
    """What the copies need of their subscription (``Subscription``)."""

    retry: RetryConfig
    dlq_retry: RetryConfig | None
    stats: SubscriberStats
    retry_tier: RetryTier | None
    dead_letter: DeadLetterSink | None

    @property
    def health_key(self) -> str: ...
    async def _sleep(self, seconds: float) -> bool: ...


class RecordCopies:
    """The retry-topic and DLQ paths of one subscription's failed records."""

    def __init__(self, sub: CopyOwner) -> None:
        self.sub = sub

    async def retry_later(
        self, record: RecordLike, event: dict[str, Any], error: BaseException, attempt: int
    ) -> bool:
        """After a delivery's last attempt on a channel with retry topics: the record goes to
        the next tier (the partition moves on once the broker has the copy), or after the
        last tier to the DLQ; with the DLQ disabled, back into the last tier (never
        dropped). Returns False only when stopping first. A tier that the broker does not
        take now is retried with the DLQ backoff, holding back the partition; one that
        refuses the copy for good sends the record down the DLQ path."""
        tier = self.sub.retry_tier
        assert tier is not None
        attempts = tier.attempts_before(record) + attempt
        target = tier.next_tier(record)
        if target is None:
            if self.sub.dead_letter is not None:
                return await self.dead_letter(record, event, error, attempts - 1)
            target = len(tier.topics)
        written = await self._hold_until_written(
            record, lambda: tier.forward(record, target, error, attempts), f"retry topic {target}"
        )
        if isinstance(written, BaseException):
            self.sub.stats.error(written)
            logger.error(
                "subscriber %s: retry topic %d refused %s[%d]@%d for good (%s); "
                "sending it to the DLQ path",
                self.sub.health_key,
                target,
                record.topic,
                record.partition,
                record.offset,
                describe(written),
            )
            return await self.dead_letter(record, event, error, attempts - 1)
        if not written:
            return False
        self.sub.stats.retried_to_topic += 1
        logger.info(
            "subscriber %s: %s[%d]@%d failed %d time(s) (%s); retry %d is due in %d ms",
            self.sub.health_key,
            record.topic,
            record.partition,
            record.offset,
            attempts,
            describe(error),
            target,
            tier.delays_ms[target - 1],
        )
        return True

    async def dead_letter(
        self, record: RecordLike, event: dict[str, Any] | None, error: BaseException, retries: int
    ) -> bool:
        """Writes the record to the DLQ; returns False only when stopping first. Retriable
        failures (the broker does not take it now) are retried with the publish backoff for
        as long as they last, holding back the partition; a refusal for good is logged with
        the record's coordinates and counted, and the partition moves on (decision 44)."""
        if self.sub.dead_letter is None:
            self.sub.stats.skipped += 1
            logger.error(
                "subscriber %s: %s at %s[%d]@%d and the DLQ is disabled: skipped",
                self.sub.health_key,
                describe(error),
                record.topic,
                record.partition,
                record.offset,
            )
            return True
        dead_letter = self.sub.dead_letter
        written = await self._hold_until_written(
            record, lambda: dead_letter(record, event, error, retries), "the DLQ", dlq=True
        )
        if isinstance(written, BaseException):
            self.sub.stats.current_backoff = 0.0
            self.sub.stats.dlq_refused += 1
            self.sub.stats.error(written)
            logger.error(
                "subscriber %s: the DLQ refused %s[%d]@%d for good (%s; the record "
                "failed with %s); moving on: the record stays in %s at offset %d",
                self.sub.health_key,
                record.topic,
                record.partition,
                record.offset,
                describe(written),
                describe(error),
                record.topic,
                record.offset,
            )
            return True
        if not written:
            return False
        self.sub.stats.dead_lettered += 1
        logger.warning(
            "subscriber %s: %s[%d]@%d sent to the DLQ after %d retries: %s",
            self.sub.health_key,
            record.topic,
            record.partition,
            record.offset,
            retries,
            describe(error),
        )
        return True

    async def _hold_until_written(
        self,
        record: RecordLike,
        write: Callable[[], Awaitable[None]],
        where: str,
        *,
        dlq: bool = False,
    ) -> bool | BaseException:
        """Runs ``write`` (a copy of ``record`` to ``where``) until the broker takes it.
        What it does not take now is retried with the DLQ backoff for as long as that lasts,
        holding back the partition (logged; health shows ``current_backoff``, and
        ``dlq_write_failures`` when ``dlq``). Returns True once written, False when stopping
        first (or the bus is closing: not resolved, the group gets the record again), or the
        exception of a refusal for good, for the caller's path."""
        backoff = Backoff(self.sub.dlq_retry or self.sub.retry)
        while True:
            try:
                await write()
            except PASS_THROUGH:
                raise
            except ClosedError:
                return False
            except BaseException as exc:
                if not retriable(exc):
                    return exc
                delay = backoff.next_delay_s()
                if dlq:
                    self.sub.stats.dlq_failures += 1
                self.sub.stats.current_backoff = delay
                self.sub.stats.error(exc)
                logger.error(
                    "subscriber %s: writing %s[%d]@%d to %s failed (%s); retrying in %.3fs, "
                    "not committing past it",
                    self.sub.health_key,
                    record.topic,
                    record.partition,
                    record.offset,
                    where,
                    describe(exc),
                    delay,
                )
                if not await self.sub._sleep(delay):
                    return False
                continue
            self.sub.stats.current_backoff = 0.0
            return True
