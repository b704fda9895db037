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
partition); a record that is not an event at all is logged, counted and skipped. On a
channel with retry topics (``retry_tier``; decisions 105-107) a handler's failure goes to
the next retry topic instead, and the partition moves on once the broker has the copy.

States (``health()``, decision 42): ``active`` once the group assigned the consumer its
partitions; ``waiting_for_partitions`` when ``start`` returned without them because the
group is still rebalancing (a member that died keeps its partitions until its session times
out) - it turns ``active`` by itself when they arrive; ``fenced`` or ``failed`` when the
transport reported a fatal error (another live member with the same ``group.instance.id``):
the subscription then stops for good, logged once at ERROR, and never rejoins on its own.

Nothing a record does can kill its worker (decision 43): whatever decoding, the filter or the
handler raise (``RecursionError``, ``MemoryError``, a ``BaseException`` subclass; only
cancellation and the process being asked to stop pass through) sends the record down the DLQ
path with ``error_type`` naming it. A worker that dies anyway is restarted by its supervisor
from the record it held (nothing skipped, at-least-once) and counted in health. A DLQ write
refused for good is logged with the record's coordinates, counted, and the partition moves on
(decision 44).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ...exceptions import (
    AuthenticationError,
    DeserializationError,
    EventBusError,
    EventValidationError,
    FencedInstanceError,
    TransportTimeoutError,
)
from ..config.security import RedactingFilter
from ..observability.dispatch import SILENT
from ..observability.observer import HandlingTrace, Observer
from ..reliability.backoff import Backoff, sleep_unless
from ..reliability.retry import RetryConfig
from ..transports.poll import close_within
from ..transports.protocol import ConsumerLike, RecordLike
from ..transports.structs import Mode
from ..wire.envelope import decode
from .failures import PASS_THROUGH, describe
from .handlers import Handler, Invoker, make_invoker
from .partition_worker import PartitionWorker
from .record_copies import DeadLetterSink, RecordCopies
from .retry_tier import RetryTier
from .stats import SubscriberStats

logger = logging.getLogger("tradecore_eventbus.subscription")
# Handler and filter exceptions are logged here, and they may quote a configured secret.
logger.addFilter(RedactingFilter())

FilterFn = Callable[[dict[str, Any]], bool]

#: Marks are sent to the transport in batches of at most this many records (fewer when the
#: commit batch is smaller: handled records not yet marked are handled again after a crash).
MARK_CHUNK = 500
#: Times handlers (a seam: tests count its calls to show that nobody listening means no
#: timing).
_clock = time.perf_counter
State = Literal["starting", "active", "waiting_for_partitions", "fenced", "failed", "stopped"]
#: Answers whether the cluster responded within the given time (``TransportAdapter.ping``).
ClusterCheck = Callable[[], Awaitable[bool]]


@dataclass(eq=False)
class Subscription:
    id: str
    channel: str
    topic: str
    mode: Mode
    group_id: str
    consumer_name: str
    consumer: ConsumerLike
    handler: Handler[Any]
    filter_fn: FilterFn | None
    batch_size: int
    block_ms: int
    max_concurrent_partitions: int
    retry: RetryConfig
    dead_letter: DeadLetterSink | None
    #: How long a stop after a fatal error waits for running handlers.
    stop_timeout_s: float = 30.0
    #: Handled records are marked at least this often per partition.
    mark_chunk: int = MARK_CHUNK
    group_instance_id: str | None = None
    stats: SubscriberStats = field(default_factory=SubscriberStats)
    #: Backoff between attempts to write a record to the DLQ while the broker does not take
    #: it (the publish retry policy); ``None``: the handler retry policy.
    dlq_retry: RetryConfig | None = None
    #: The bus's observers (consumed, handler failed, worker restarted).
    observers: Observer = field(default_factory=Observer)
    #: The channel's retry topics (decision 105): on the channel's subscription, where an
    #: event goes after its in-place attempts; on the retry subscription (which consumes
    #: ``topics``), the schedule its records wait for. None: failures go to the DLQ.
    retry_tier: RetryTier | None = None
    #: Every topic the consumer subscribes to (default: ``topic`` alone).
    topics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._invoke = make_invoker(self.handler)
        self.limit = asyncio.Semaphore(self.max_concurrent_partitions)
        self.state: State = "starting"
        #: Wall-clock time since when the subscription waits for its partitions.
        self.waiting_since: float | None = None
        #: The fatal error that stopped the subscription (``fenced`` / ``failed``).
        self.failure: EventBusError | None = None
        self.stopping = False
        self._stop_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._waiting = False
        self._workers: dict[tuple[str, int], PartitionWorker] = {}
        # The per-record entry point the workers call (a seam: tests replace it to make a
        # worker die outside the per-record guard).
        self._handle_hook: Callable[[RecordLike], Awaitable[bool]] = self.handle
        #: Where failed records are copied (retry topics, the DLQ).
        self.copies = RecordCopies(self)

    @property
    def health_key(self) -> str:
        return f"{self.channel}:{self.group_id}"

    @property
    def active(self) -> bool:
        """Live: partitions assigned and records being handled."""
        return (
            self.state == "active"
            and self._task is not None
            and not self._task.done()
            and not self.stopping
        )

    async def start(self, live_timeout: float, cluster_answers: ClusterCheck | None = None) -> None:
        """Subscribes and returns once the consumer is live (partitions assigned, start
        offsets fixed); fetching then runs in the background.

        With ``cluster_answers`` (streams), an assignment that has not come within
        ``live_timeout`` while the cluster answered is a rebalance still under way, not an
        error: the subscription is registered in state ``waiting_for_partitions`` and turns
        live when Kafka assigns them, however long that takes. Without it (pub/sub), or if
        the cluster did not answer either, the timeout is raised. Fatal errors (a fenced
        static member) and refusals (authorization) always raise."""
        self.consumer.subscribe(list(self.topics or (self.topic,)))
        # Asked alongside the wait, so that an unreachable cluster costs one timeout, not two.
        answering = asyncio.ensure_future(cluster_answers()) if cluster_answers else None
        try:
            try:
                await self.consumer.wait_assigned(live_timeout)
            except TransportTimeoutError:
                if answering is None or not await answering:
                    raise
                self._wait_for_partitions(live_timeout)
            else:
                self.state = "active"
        except BaseException:
            await self._close_consumer(self.stop_timeout_s)
            raise
        finally:
            if answering is not None and not answering.done():
                answering.cancel()
        self._task = asyncio.create_task(
            self._fetch_loop(), name=f"eventbus-subscriber-{self.health_key}"
        )
        self._task.add_done_callback(self._fetch_loop_ended)

    def _fetch_loop_ended(self, task: asyncio.Task[None]) -> None:
        # Not restarted: records it took but had not queued yet cannot be fetched again, so
        # a restart could commit past them. Health shows it (active false, last_error).
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        assert exc is not None
        self.stats.errors += 1
        self.stats.error(exc)
        logger.error("subscriber %s: the fetch loop died", self.health_key, exc_info=exc)

    def _wait_for_partitions(self, waited: float) -> None:
        self.state = "waiting_for_partitions"
        self.waiting_since = time.time()
        logger.warning(
            "subscriber %s: no partitions after %.1fs although the cluster answers: the group "
            "is rebalancing (a member that died keeps its partitions until its session times "
            "out). Subscribed; handling starts when Kafka assigns them.",
            self.health_key,
            waited,
        )

    def _now_live(self) -> None:
        waited = time.time() - (self.waiting_since or time.time())
        self.state = "active"
        self.waiting_since = None
        logger.info("subscriber %s: partitions assigned after %.1fs", self.health_key, waited)

    def health(self) -> dict[str, Any]:
        """The guide's counters plus where the subscription stands (``state``; since when
        it waits for partitions; the partitions it holds; the error that stopped it)."""
        entry = self.stats.as_health(self.active)
        entry["state"] = self.state
        entry["waiting_since"] = (
            None
            if self.waiting_since is None
            else datetime.fromtimestamp(self.waiting_since, UTC).isoformat()
        )
        partitions: list[int] = []
        if self.state == "active" and not self.consumer.closed:
            try:
                partitions = sorted(p for _, p in self.consumer.assignment())
            except EventBusError:
                partitions = []
        entry["partitions"] = partitions
        entry["group_instance_id"] = self.group_instance_id
        entry["error"] = (
            None if self.failure is None else f"{type(self.failure).__name__}: {self.failure}"
        )
        return entry

    async def stop(self, timeout: float) -> None:
        """Running handlers finish, what was handled is marked, then the consumer closes
        (committing it and leaving the group). Queued records that no handler started are
        not marked: the group's next consumer gets them.

        ``timeout`` bounds the whole stop, closing the consumer included: a consumer whose
        close outlasts it (a broker that stopped answering) is left to finish closing in the
        background, and what it had not committed is redelivered to the group."""
        deadline = time.monotonic() + timeout
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
                # Within the budget too: a handler that swallows its cancellation does not
                # hold the stop (asyncio.wait gives each cancelled task at least one step).
                await asyncio.wait(still, timeout=max(0.0, deadline - time.monotonic()))
            for t in done:
                if not t.cancelled() and t.exception() is not None:
                    logger.error(
                        "subscriber %s task failed", self.health_key, exc_info=t.exception()
                    )
        await self._close_consumer(max(0.0, deadline - time.monotonic()))
        if self.failure is None:
            self.state = "stopped"

    async def _close_consumer(self, timeout: float) -> None:
        """Commits and leaves the group, waiting at most ``timeout`` for it."""
        await close_within(self.consumer, timeout, f"subscriber {self.health_key}")

    async def _stop_after(self, error: EventBusError) -> None:
        """A fatal transport error: logged once, shown in health, and the subscription stops
        (running handlers finish; nothing more is committed, the group's other member owns
        the partitions now and gets every unfinished record). It does not rejoin: with a
        duplicated group.instance.id that would fence the other member, back and forth."""
        self.failure = error
        self.state = "fenced" if isinstance(error, FencedInstanceError) else "failed"
        self.waiting_since = None
        self.stats.errors += 1
        if isinstance(error, FencedInstanceError):
            logger.error(
                "subscriber %s: fenced: another live consumer joined the group with "
                "group.instance.id %r and took its partitions (%s). This subscription stopped "
                "and will not rejoin; give every replica its own consumer name.",
                self.health_key,
                self.group_instance_id,
                error,
            )
        else:
            logger.error(
                "subscriber %s: the consumer failed for good (%s); this subscription stopped",
                self.health_key,
                error,
            )
        self.stopping = True
        self._stop_event.set()
        workers = [w.task for w in self._workers.values() if not w.task.done()]
        for w in self._workers.values():
            w.wake()
        if workers:
            _, still = await asyncio.wait(workers, timeout=self.stop_timeout_s)
            for t in still:
                t.cancel()
            if still:
                # As in stop(): a handler that swallows its cancellation does not hold this.
                await asyncio.wait(still, timeout=self.stop_timeout_s)
        try:
            await self._close_consumer(self.stop_timeout_s)
        except EventBusError as exc:
            logger.debug("subscriber %s: closing after %s: %s", self.health_key, error, exc)

    def mark(self, records: Sequence[RecordLike]) -> None:
        self.observers.consumed(self.channel, self.group_id, len(records))
        if self.failure is not None:
            return  # nothing can be committed any more; the new owner handles them again
        try:
            self.consumer.mark_processed(records)
        except Exception:
            logger.exception("subscriber %s: marking records processed failed", self.health_key)

    async def _sleep(self, seconds: float) -> bool:
        """Sleeps unless stopping; returns False if it was interrupted by stop()."""
        return await sleep_unless(self._stop_event, seconds)

    async def _fetch_loop(self) -> None:
        block_s = self.block_ms / 1000.0
        # The transport recovers from non-fatal errors by itself: back off a little (the
        # caps of the handler retry schedule).
        failures = Backoff(self.retry, jitter=False)
        while not self.stopping:
            try:
                records = self.consumer.take(self.batch_size, decode_events=True)
            except Exception as exc:
                if isinstance(exc, EventBusError) and (
                    exc.fatal or isinstance(exc, FencedInstanceError)
                ):
                    await self._stop_after(exc)
                    return
                if isinstance(exc, AuthenticationError):
                    # Refused credentials: nothing to debug in a traceback, and the same
                    # refusal every few seconds says nothing new (decision 48).
                    logger.log(
                        logging.ERROR if failures.failures == 0 else logging.DEBUG,
                        "subscriber %s: %s; retrying until the broker accepts the credentials",
                        self.health_key,
                        exc,
                    )
                else:
                    logger.exception("subscriber %s: fetching records failed", self.health_key)
                self.stats.errors += 1
                self.stats.error(exc)
                if not await self._sleep(failures.next_delay_s()):
                    return
                continue
            failures.reset()
            if self.state == "waiting_for_partitions" and self.consumer.assigned:
                self._now_live()
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
        """Resolves one record; returns False only when stopping first. Never raises for a
        record: whatever decoding, the filter or the handler raise sends it to the DLQ path."""
        event: dict[str, Any] | None = None
        try:
            event = record.event
            if event is None:
                try:
                    event = decode(record.value)
                except DeserializationError as exc:
                    self.stats.errors += 1
                    self.stats.error(exc)
                    return await self.copies.dead_letter(record, None, exc, 0)
            # Looked up per record, like ``handled`` (decision 71): nobody tracing costs one
            # attribute read and one identity test.
            tracing = self.observers.trace_handling
            if tracing is not SILENT:
                trace = tracing(self.channel, self.group_id, record, event)
                if trace is not None:
                    with trace:
                        return await self._resolve(record, event, trace)
            return await self._resolve(record, event, None)
        except PASS_THROUGH:
            raise
        except BaseException as exc:
            return await self._unexpected(record, event, exc)

    def direct_invoker(self) -> Invoker | None:
        """The handler's invoker when a decoded record needs nothing but its handler: no
        filter, nobody tracing or timing handlers, and the default per-record hook. The
        partition worker then awaits the handler itself, with no coroutine of ours per
        record (decisions 108, 120). Asked once per run of records, so an observer added
        meanwhile counts from the next run."""
        if (
            self.filter_fn is None
            and self.observers.trace_handling is SILENT
            and self.observers.handled is SILENT
            and self._handle_hook == self.handle
        ):
            return self._invoke
        return None

    async def handler_raised(
        self, record: RecordLike, event: dict[str, Any], error: BaseException
    ) -> bool:
        """The handler, awaited by the worker (``direct_invoker``), raised ``error`` on its
        first attempt: the record takes the full path from there (retries, the retry tier,
        the DLQ, logging and counts as from ``handle``). Never raises for the record."""
        try:
            return await self._run_handler(record, event, None, first_failure=error)
        except PASS_THROUGH:
            raise
        except BaseException as exc:
            return await self._unexpected(record, event, exc)

    async def _unexpected(
        self, record: RecordLike, event: dict[str, Any] | None, error: BaseException
    ) -> bool:
        """Anything the per-record stages did not expect (a record whose event cannot be
        read, an error raised while logging one, ...): the record is resolved through the
        DLQ."""
        self.stats.errors += 1
        self.stats.error(error)
        logger.error(
            "subscriber %s: %s[%d]@%d failed: %s",
            self.health_key,
            record.topic,
            record.partition,
            record.offset,
            describe(error),
        )
        return await self.copies.dead_letter(record, event, error, 0)

    async def _resolve(
        self, record: RecordLike, event: dict[str, Any], trace: HandlingTrace | None
    ) -> bool:
        """The filter, then the handler (``trace``: what follows this record, if traced)."""
        if self.filter_fn is not None:
            try:
                keep = self.filter_fn(event)
            except PASS_THROUGH:
                raise
            except BaseException as exc:
                self.stats.errors += 1
                self.stats.error(exc)
                logger.error(
                    "subscriber %s: filter_fn raised for %s at %s[%d]@%d: %s",
                    self.health_key,
                    event.get("event_id"),
                    record.topic,
                    record.partition,
                    record.offset,
                    describe(exc),
                )
                if trace is not None:
                    trace.gave_up(exc)
                return await self.copies.dead_letter(record, event, exc, 0)
            if not keep:
                self.stats.filtered += 1
                return True
        return await self._run_handler(record, event, trace)

    async def _run_handler(
        self,
        record: RecordLike,
        event: dict[str, Any],
        trace: HandlingTrace | None = None,
        *,
        first_failure: BaseException | None = None,
    ) -> bool:
        """Runs the handler until it succeeds or the record is resolved otherwise (retry
        topic, DLQ). ``first_failure``: the first attempt already ran and raised this."""
        attempt = 0
        backoff: Backoff | None = None  # made on the first failure: none on the hot path
        # Looked up per record (an observer may be added while the subscription runs), and
        # the handler is timed only if someone listens: two clock reads per record otherwise
        # cost every consumer for a metric nobody reads (decision 71).
        report = self.observers.handled
        timed = report is not SILENT
        elapsed = 0.0
        while True:
            attempt += 1
            try:
                if first_failure is not None:
                    failed, first_failure = first_failure, None
                    raise failed
                if timed:
                    started = _clock()
                    await self._invoke(event)
                    elapsed = _clock() - started
                else:
                    await self._invoke(event)
            except PASS_THROUGH:
                raise
            except EventValidationError as exc:
                # The event does not fit the handler's model: retrying cannot help.
                self.stats.errors += 1
                self.stats.error(exc)
                self.observers.handler_failed(self.channel, self.group_id, exc, attempt)
                logger.error("subscriber %s: %s", self.health_key, exc)
                if trace is not None:
                    trace.attempt_failed(exc, attempt)
                    trace.gave_up(exc)
                return await self.copies.dead_letter(record, event, exc, attempt - 1)
            except BaseException as exc:
                self.stats.errors += 1
                self.stats.error(exc)
                logger.warning(
                    "subscriber %s: handler failed for %s event %s at %s[%d]@%d (attempt %d): %s",
                    self.health_key,
                    event.get("event_type"),
                    event.get("event_id"),
                    record.topic,
                    record.partition,
                    record.offset,
                    attempt,
                    describe(exc),
                )
                self.observers.handler_failed(self.channel, self.group_id, exc, attempt)
                if trace is not None:
                    trace.attempt_failed(exc, attempt)
                if backoff is None:
                    backoff = Backoff(self.retry)
                tier = self.retry_tier
                if attempt < (
                    self.retry.max_attempts
                    if tier is None
                    else tier.attempts_per_delivery(record, self.retry.max_attempts)
                ):
                    delay = backoff.next_delay_s()
                elif tier is not None:
                    return await self.copies.retry_later(record, event, exc, attempt)
                elif self.dead_letter is not None:
                    if trace is not None:
                        trace.gave_up(exc)
                    return await self.copies.dead_letter(record, event, exc, attempt - 1)
                else:
                    # No DLQ: keep trying, holding back this partition only.
                    delay = max(backoff.next_delay_s(), self.retry.max_delay_ms / 1000.0)
                self.stats.current_backoff = delay
                if not await self._sleep(delay):
                    return False
                continue
            self.stats.current_backoff = 0.0
            self.stats.messages_processed += 1
            if timed:
                report(self.channel, self.group_id, elapsed)
            return True
