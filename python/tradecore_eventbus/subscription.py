"""One subscriber: its consumer and the loop that hands records to its handler.

Records of one partition are handled in order, one at a time; partitions of one batch are
handled concurrently up to a bound. After each batch, the records whose handler returned are
marked processed in one call, so the transport commits them (streams; pub/sub never
commits). A record whose handler failed is not marked: its partition is not committed past
it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .envelope import decode
from .exceptions import DeserializationError
from .handlers import Handler, make_invoker
from .transport_adapter import ConsumerLike, Mode, RecordLike

logger = logging.getLogger("tradecore_eventbus.subscription")

FilterFn = Callable[[dict[str, Any]], bool]


@dataclass
class SubscriberStats:
    messages_processed: int = 0
    errors: int = 0
    filtered: int = 0
    last_message_at: float | None = None
    consecutive_empty_fetches: int = 0
    current_backoff: float = 0.0

    def as_health(self, active: bool) -> dict[str, Any]:
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


@dataclass
class Subscription:
    id: str
    channel: str
    topic: str
    mode: Mode
    group_id: str
    consumer_name: str
    consumer: ConsumerLike
    handler: Handler
    filter_fn: FilterFn | None
    batch_size: int
    block_ms: int
    max_concurrent_partitions: int
    stats: SubscriberStats = field(default_factory=SubscriberStats)
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False
    _waiting: bool = False

    def __post_init__(self) -> None:
        self._invoke = make_invoker(self.handler)
        self._limit = asyncio.Semaphore(self.max_concurrent_partitions)

    @property
    def health_key(self) -> str:
        return f"{self.channel}:{self.group_id}"

    @property
    def active(self) -> bool:
        return self._task is not None and not self._task.done() and not self._stopping

    async def start(self, live_timeout: float) -> None:
        """Subscribes and returns once the consumer is live (partitions assigned, start
        offsets fixed); the loop then runs in the background."""
        self.consumer.subscribe([self.topic])
        try:
            await self.consumer.wait_assigned(live_timeout)
        except BaseException:
            await self.consumer.close()
            raise
        self._task = asyncio.create_task(self._run(), name=f"eventbus-subscriber-{self.health_key}")

    async def stop(self, timeout: float) -> None:
        """Lets the batch in hand finish (handlers run to completion, processed records are
        marked), then closes the consumer, which commits and leaves the group."""
        self._stopping = True
        task = self._task
        if task is not None and not task.done():
            if self._waiting:
                task.cancel()  # waiting for records: nothing in hand, and wait() is cancel-safe
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                logger.error(
                    "subscriber %s did not finish its batch within %.1fs; cancelling",
                    self.health_key,
                    timeout,
                )
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
        await self.consumer.close()

    async def _run(self) -> None:
        block_s = self.block_ms / 1000.0
        while not self._stopping:
            try:
                records = self.consumer.take(self.batch_size)
            except Exception:
                # The transport recovers by itself from non-fatal errors; back off a little.
                logger.exception("subscriber %s: fetching records failed", self.health_key)
                self.stats.errors += 1
                self.stats.current_backoff = min(max(self.stats.current_backoff * 2, 0.1), 5.0)
                await asyncio.sleep(self.stats.current_backoff)
                continue
            self.stats.current_backoff = 0.0
            if not records:
                self.stats.consecutive_empty_fetches += 1
                self._waiting = True
                try:
                    await self.consumer.wait(block_s)
                finally:
                    self._waiting = False
                continue
            self.stats.consecutive_empty_fetches = 0
            self.stats.last_message_at = time.monotonic()
            await self._handle_batch(records)

    async def _handle_batch(self, records: Sequence[RecordLike]) -> None:
        partitions: dict[tuple[str, int], list[RecordLike]] = {}
        for record in records:
            partitions.setdefault((record.topic, record.partition), []).append(record)
        if len(partitions) == 1:
            done = await self._handle_partition(records)
        else:
            results = await asyncio.gather(
                *(self._handle_partition(rs) for rs in partitions.values())
            )
            done = [r for part in results for r in part]
        if done:
            self.consumer.mark_processed(done)

    async def _handle_partition(self, records: Sequence[RecordLike]) -> list[RecordLike]:
        done: list[RecordLike] = []
        async with self._limit:
            for record in records:
                if await self._handle_one(record):
                    done.append(record)
        return done

    async def _handle_one(self, record: RecordLike) -> bool:
        """Returns whether the record may be committed past."""
        try:
            event = decode(record.value)
        except DeserializationError as exc:
            self.stats.errors += 1
            logger.error(
                "subscriber %s: %s at %s[%d]@%d; not committed past",
                self.health_key,
                exc,
                record.topic,
                record.partition,
                record.offset,
            )
            return False
        if self.filter_fn is not None:
            try:
                keep = self.filter_fn(event)
            except Exception:
                self.stats.errors += 1
                logger.exception(
                    "subscriber %s: filter_fn raised for event %s",
                    self.health_key,
                    event.get("event_id"),
                )
                return False
            if not keep:
                self.stats.filtered += 1
                return True
        try:
            await self._invoke(event)
        except Exception:
            self.stats.errors += 1
            logger.exception(
                "subscriber %s: handler failed for %s event %s at %s[%d]@%d; not committed past",
                self.health_key,
                event.get("event_type"),
                event.get("event_id"),
                record.topic,
                record.partition,
                record.offset,
            )
            return False
        self.stats.messages_processed += 1
        return True
