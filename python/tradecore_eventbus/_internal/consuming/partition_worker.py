"""One partition's worker: handles its records in order, one at a time, and is restarted by
its supervisor if it dies outside the per-record guard (decision 43)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from ..observability.observer import Observer
from ..reliability.backoff import Backoff
from ..reliability.retry import RetryConfig
from ..transports.protocol import ConsumerLike, RecordLike
from .failures import PASS_THROUGH, describe, event_of
from .record_copies import RecordCopies
from .retry_tier import RetryTier
from .stats import SubscriberStats

logger = logging.getLogger("tradecore_eventbus.subscription")

#: Records queued per partition before it is paused.
QUEUE_HIGH = 1000
QUEUE_LOW = 250


class WorkerOwner(Protocol):
    """What a worker needs of its subscription (``Subscription``)."""

    channel: str
    group_id: str
    consumer: ConsumerLike
    retry: RetryConfig
    stats: SubscriberStats
    observers: Observer
    mark_chunk: int
    stopping: bool
    limit: asyncio.Semaphore
    retry_tier: RetryTier | None
    _handle_hook: Callable[[RecordLike], Awaitable[bool]]
    copies: RecordCopies

    @property
    def health_key(self) -> str: ...
    def mark(self, records: Sequence[RecordLike]) -> None: ...
    def direct_invoker(self) -> Callable[[dict[str, Any]], Awaitable[None]] | None: ...
    async def handler_raised(
        self, record: RecordLike, event: dict[str, Any], error: BaseException
    ) -> bool: ...
    async def _sleep(self, seconds: float) -> bool: ...


class PartitionWorker:
    def __init__(self, sub: WorkerOwner, topic: str, partition: int) -> None:
        self.sub = sub
        self.tp = (topic, partition)
        self.queue: deque[RecordLike] = deque()
        self.paused = False
        self._more = asyncio.Event()
        #: The record being resolved: if the worker dies with it, it goes back to the queue.
        self._current: RecordLike | None = None
        #: A retry topic's partition: each record waits until it is due (decision 106).
        tier = sub.retry_tier
        self.schedule = tier if tier is not None and tier.tier_of(topic) else None
        self.task = asyncio.create_task(
            self._supervise(), name=f"eventbus-partition-{topic}-{partition}"
        )

    def push(self, records: Sequence[RecordLike]) -> None:
        self.queue.extend(records)
        self._more.set()
        if not self.paused and len(self.queue) >= QUEUE_HIGH:
            self.sub.consumer.pause([self.tp])
            self.paused = True

    def wake(self) -> None:
        self._more.set()

    async def _supervise(self) -> None:
        """Runs the worker; restarts it if it dies (after the handler backoff), from the
        record it held. Dying repeatedly on one record sends that record to the DLQ path,
        so a record that kills the worker cannot hold its partition forever."""
        sub = self.sub
        restarts = Backoff(sub.retry)
        last_offset: int | None = None
        while True:
            try:
                await self._run()
                return
            except PASS_THROUGH:
                raise
            except BaseException as exc:
                held = self._current
                self._current = None
                if held is not None:
                    self.queue.appendleft(held)  # at-least-once: handled again after restart
                sub.stats.errors += 1
                sub.stats.error(exc)
                if sub.stopping:
                    logger.error(
                        "subscriber %s: partition worker %s[%d] died while stopping",
                        sub.health_key,
                        *self.tp,
                        exc_info=exc,
                    )
                    return
                offset = held.offset if held is not None else None
                if offset is None or offset != last_offset:
                    restarts.reset()  # deaths are counted per record
                last_offset = offset
                delay = restarts.next_delay_s()
                deaths = restarts.failures
                sub.stats.worker_restarts += 1
                sub.observers.worker_restarted(sub.channel, sub.group_id, self.tp[1])
                logger.error(
                    "subscriber %s: partition worker %s[%d] died at offset %s (%s); "
                    "restarting in %.3fs",
                    sub.health_key,
                    *self.tp,
                    offset,
                    describe(exc),
                    delay,
                    exc_info=exc,
                )
                if not await sub._sleep(delay):
                    return
                if held is not None and restarts.exhausted:
                    self.queue.popleft()
                    self._current = held
                    resolved = await sub.copies.dead_letter(held, event_of(held), exc, deaths - 1)
                    self._current = None
                    if not resolved:
                        self.queue.appendleft(held)
                        return
                    sub.mark([held])
                    restarts.reset()

    def _resume_if_drained(self) -> None:
        if self.paused and len(self.queue) <= QUEUE_LOW:
            self.sub.consumer.resume([self.tp])
            self.paused = False

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
                if self.schedule is not None:
                    # The head of a retry partition is its earliest due record (one fixed
                    # delay per tier): waiting for it delays no other record past its due
                    # time, and holds no concurrency slot. Handled records are marked first.
                    wait = self.schedule.due_in_s(self.queue[0])
                    if wait > 0:
                        if done:
                            sub.mark(done)
                            done = []
                        self._resume_if_drained()
                        if not await sub._sleep(wait):
                            return
                        continue
                # One concurrency slot for a run of records, not one per record.
                async with sub.limit:
                    invoke = sub.direct_invoker()
                    stats = sub.stats
                    while self.queue and len(done) < sub.mark_chunk and not sub.stopping:
                        if self.schedule is not None and self.schedule.due_in_s(self.queue[0]) > 0:
                            break
                        record = self._current = self.queue.popleft()
                        if invoke is None or (event := record.event) is None:
                            resolved = await sub._handle_hook(record)
                        else:
                            # The common case: the handler awaited right here, with no
                            # coroutine of ours per record (decision 120). A failure takes the
                            # full path from its first attempt.
                            try:
                                await invoke(event)
                            except PASS_THROUGH:
                                raise
                            except BaseException as exc:
                                resolved = await sub.handler_raised(record, event, exc)
                            else:
                                stats.current_backoff = 0.0
                                stats.messages_processed += 1
                                resolved = True
                        self._current = None
                        if not resolved:
                            self.queue.appendleft(record)
                            return  # stopping before it was resolved: not marked
                        done.append(record)
                if len(done) >= sub.mark_chunk:
                    sub.mark(done)
                    done = []
                self._resume_if_drained()
        finally:
            if done:
                sub.mark(done)
