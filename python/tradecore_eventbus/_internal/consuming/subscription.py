"""One subscriber: its consumer, and one worker per partition that hands records to the
handler.

The fetch loop takes records and queues them per partition; each partition's worker
handles its records in order, one at a time, while partitions run concurrently (at most
``max_concurrent_partitions`` handlers at once). A partition whose queue grows past a bound
is paused at the consumer until its worker catches up, so a slow handler never makes memory
grow. Workers mark what they handled in batches; the transport commits (streams only).

A record is marked processed only once it is resolved: its handler returned, the filter
skipped it, or it was written to the DLQ. A failing handler is retried with backoff; then
the event goes to the DLQ (``{channel}{DLQ_TOPIC_SUFFIX}``). If the DLQ cannot be written,
the worker backs off and tries again, holding back its partition, and never commits past it.
With the DLQ disabled, a failing event is retried until it succeeds (holding back only its
partition); a record that is not an event at all is logged, counted and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...exceptions import AuthenticationError, DeserializationError, EventValidationError
from ..config.security import RedactingFilter
from ..reliability.retry import RetryConfig
from ..transports.protocol import ConsumerLike, RecordLike
from ..transports.structs import Mode
from ..wire.envelope import decode
from .handlers import Handler, make_invoker

logger = logging.getLogger("tradecore_eventbus.subscription")
# Handler and filter exceptions are logged here, and they may quote a configured secret.
logger.addFilter(RedactingFilter())

FilterFn = Callable[[dict[str, Any]], bool]
#: Writes one failed record to the DLQ: (record, decoded event or None, error, retries).
DeadLetterSink = Callable[[RecordLike, dict[str, Any] | None, BaseException, int], Awaitable[None]]

#: Records queued per partition before it is paused.
QUEUE_HIGH = 1000
QUEUE_LOW = 250
#: Marks are sent to the transport in batches of at most this many records.
MARK_CHUNK = 500
MAX_BACKOFF_S = 30.0


@dataclass
class SubscriberStats:
    messages_processed: int = 0
    errors: int = 0
    filtered: int = 0
    dead_lettered: int = 0
    dlq_failures: int = 0
    skipped: int = 0
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


class PartitionWorker:
    def __init__(self, sub: Subscription, topic: str, partition: int) -> None:
        self.sub = sub
        self.tp = (topic, partition)
        self.queue: deque[RecordLike] = deque()
        self.paused = False
        self._more = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name=f"eventbus-partition-{topic}-{partition}")

    def push(self, records: Sequence[RecordLike]) -> None:
        self.queue.extend(records)
        self._more.set()
        if not self.paused and len(self.queue) >= QUEUE_HIGH:
            self.sub.consumer.pause([self.tp])
            self.paused = True

    def wake(self) -> None:
        self._more.set()

    async def _run(self) -> None:
        sub = self.sub
        done: list[RecordLike] = []
        try:
            while not sub.stopping:
                if not self.queue:
                    if done:
                        sub.mark(done)
                        done = []
                    self._more.clear()
                    await self._more.wait()
                    continue
                # One concurrency slot for a run of records, not one per record.
                async with sub.limit:
                    while self.queue and len(done) < MARK_CHUNK and not sub.stopping:
                        record = self.queue.popleft()
                        if not await sub.handle(record):
                            return  # stopping before it was resolved: not marked
                        done.append(record)
                if len(done) >= MARK_CHUNK:
                    sub.mark(done)
                    done = []
                if self.paused and len(self.queue) <= QUEUE_LOW:
                    self.sub.consumer.resume([self.tp])
                    self.paused = False
        finally:
            if done:
                sub.mark(done)


@dataclass(eq=False)
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
    retry: RetryConfig
    dead_letter: DeadLetterSink | None
    stats: SubscriberStats = field(default_factory=SubscriberStats)

    def __post_init__(self) -> None:
        self._invoke = make_invoker(self.handler)
        self.limit = asyncio.Semaphore(self.max_concurrent_partitions)
        self.stopping = False
        self._stop_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._waiting = False
        self._workers: dict[tuple[str, int], PartitionWorker] = {}

    @property
    def health_key(self) -> str:
        return f"{self.channel}:{self.group_id}"

    @property
    def active(self) -> bool:
        return self._task is not None and not self._task.done() and not self.stopping

    async def start(self, live_timeout: float) -> None:
        """Subscribes and returns once the consumer is live (partitions assigned, start
        offsets fixed); fetching then runs in the background."""
        self.consumer.subscribe([self.topic])
        try:
            await self.consumer.wait_assigned(live_timeout)
        except BaseException:
            await self.consumer.close()
            raise
        self._task = asyncio.create_task(
            self._fetch_loop(), name=f"eventbus-subscriber-{self.health_key}"
        )

    async def stop(self, timeout: float) -> None:
        """Running handlers finish, what was handled is marked, then the consumer closes
        (committing it and leaving the group). Queued records that no handler started are
        not marked: the group's next consumer gets them."""
        self.stopping = True
        self._stop_event.set()
        task = self._task
        if task is not None and not task.done() and self._waiting:
            task.cancel()  # waiting for records: nothing in hand, and wait() is cancel-safe
        workers = [w.task for w in self._workers.values()]
        for w in self._workers.values():
            w.wake()
        pending = [t for t in [task, *workers] if t is not None]
        if pending:
            done, still = await asyncio.wait(pending, timeout=timeout)
            if still:
                logger.error(
                    "subscriber %s: handlers still running after %.1fs; cancelling",
                    self.health_key,
                    timeout,
                )
                for t in still:
                    t.cancel()
                await asyncio.gather(*still, return_exceptions=True)
            for t in done:
                if not t.cancelled() and t.exception() is not None:
                    logger.error(
                        "subscriber %s task failed", self.health_key, exc_info=t.exception()
                    )
        await self.consumer.close()

    def mark(self, records: Sequence[RecordLike]) -> None:
        try:
            self.consumer.mark_processed(records)
        except Exception:
            logger.exception("subscriber %s: marking records processed failed", self.health_key)

    async def _sleep(self, seconds: float) -> bool:
        """Sleeps unless stopping; returns False if it was interrupted by stop()."""
        try:
            await asyncio.wait_for(self._stop_event.wait(), seconds)
        except TimeoutError:
            return True
        return False

    async def _fetch_loop(self) -> None:
        block_s = self.block_ms / 1000.0
        backoff = 0.0
        while not self.stopping:
            try:
                records = self.consumer.take(self.batch_size, decode_events=True)
            except Exception as exc:
                # The transport recovers from non-fatal errors by itself; back off a little.
                if isinstance(exc, AuthenticationError):
                    # Refused credentials: nothing to debug in a traceback (decision 39).
                    logger.error("subscriber %s: %s", self.health_key, exc)
                else:
                    logger.exception("subscriber %s: fetching records failed", self.health_key)
                self.stats.errors += 1
                backoff = min(max(backoff * 2, 0.1), 5.0)
                if not await self._sleep(backoff):
                    return
                continue
            backoff = 0.0
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
            self._dispatch(records)
            # Let the workers run before fetching more.
            await asyncio.sleep(0)

    def _dispatch(self, records: Sequence[RecordLike]) -> None:
        start = 0
        while start < len(records):
            tp = (records[start].topic, records[start].partition)
            end = start + 1
            while end < len(records) and (records[end].topic, records[end].partition) == tp:
                end += 1
            worker = self._workers.get(tp)
            if worker is None or worker.task.done():
                worker = self._workers[tp] = PartitionWorker(self, *tp)
            worker.push(records[start:end])
            start = end

    # ---------------------------------------------------------------- one record

    async def handle(self, record: RecordLike) -> bool:
        """Resolves one record; returns False only when stopping first."""
        event = record.event
        if event is None:
            try:
                event = decode(record.value)
            except DeserializationError as exc:
                return await self._dead_letter(record, None, exc, 0)
        if self.filter_fn is not None:
            try:
                if not self.filter_fn(event):
                    self.stats.filtered += 1
                    return True
            except Exception as exc:
                self.stats.errors += 1
                logger.exception(
                    "subscriber %s: filter_fn raised for %s", self.health_key, event.get("event_id")
                )
                return await self._dead_letter(record, event, exc, 0)
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._invoke(event)
            except asyncio.CancelledError:
                raise
            except EventValidationError as exc:
                # The event does not fit the handler's model: retrying cannot help.
                self.stats.errors += 1
                logger.error("subscriber %s: %s", self.health_key, exc)
                return await self._dead_letter(record, event, exc, attempt - 1)
            except Exception as exc:
                self.stats.errors += 1
                logger.warning(
                    "subscriber %s: handler failed for %s event %s at %s[%d]@%d (attempt %d): %r",
                    self.health_key,
                    event.get("event_type"),
                    event.get("event_id"),
                    record.topic,
                    record.partition,
                    record.offset,
                    attempt,
                    exc,
                )
                if attempt < self.retry.max_attempts:
                    delay = self.retry.delay_s(attempt)
                elif self.dead_letter is not None:
                    return await self._dead_letter(record, event, exc, attempt - 1)
                else:
                    # No DLQ: keep trying, holding back this partition only.
                    delay = max(self.retry.delay_s(attempt), self.retry.max_delay_ms / 1000.0)
                self.stats.current_backoff = delay
                if not await self._sleep(delay):
                    return False
                continue
            self.stats.current_backoff = 0.0
            self.stats.messages_processed += 1
            return True

    async def _dead_letter(
        self, record: RecordLike, event: dict[str, Any] | None, error: BaseException, retries: int
    ) -> bool:
        if self.dead_letter is None:
            self.stats.skipped += 1
            logger.error(
                "subscriber %s: %s at %s[%d]@%d and the DLQ is disabled: skipped",
                self.health_key,
                error,
                record.topic,
                record.partition,
                record.offset,
            )
            return True
        delay = 0.5
        while True:
            try:
                await self.dead_letter(record, event, error, retries)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.dlq_failures += 1
                self.stats.current_backoff = delay
                logger.error(
                    "subscriber %s: writing %s[%d]@%d to the DLQ failed (%s); retrying in %.1fs, "
                    "not committing past it",
                    self.health_key,
                    record.topic,
                    record.partition,
                    record.offset,
                    exc,
                    delay,
                )
                if not await self._sleep(delay):
                    return False
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            self.stats.current_backoff = 0.0
            self.stats.dead_lettered += 1
            logger.warning(
                "subscriber %s: %s[%d]@%d sent to the DLQ after %d retries: %r",
                self.health_key,
                record.topic,
                record.partition,
                record.offset,
                retries,
                error,
            )
            return True
