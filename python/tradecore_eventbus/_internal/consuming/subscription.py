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
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ...exceptions import (
    AuthenticationError,
    ClosedError,
    DeserializationError,
    EventBusError,
    EventValidationError,
    FencedInstanceError,
    TransportTimeoutError,
)
from ..config.security import RedactingFilter, redact
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
#: Marks are sent to the transport in batches of at most this many records (fewer when the
#: commit batch is smaller: handled records not yet marked are handled again after a crash).
MARK_CHUNK = 500
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


def _event_of(record: RecordLike) -> dict[str, Any] | None:
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


State = Literal["starting", "active", "waiting_for_partitions", "fenced", "failed", "stopped"]
#: Answers whether the cluster responded within the given time (``TransportAdapter.ping``).
ClusterCheck = Callable[[], Awaitable[bool]]


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
            "dlq_write_failures": self.dlq_failures,
            "dlq_refused": self.dlq_refused,
            "skipped": self.skipped,
            "worker_restarts": self.worker_restarts,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }


class PartitionWorker:
    def __init__(self, sub: Subscription, topic: str, partition: int) -> None:
        self.sub = sub
        self.tp = (topic, partition)
        self.queue: deque[RecordLike] = deque()
        self.paused = False
        self._more = asyncio.Event()
        #: The record being resolved: if the worker dies with it, it goes back to the queue.
        self._current: RecordLike | None = None
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
        deaths = 0
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
                deaths = deaths + 1 if offset is not None and offset == last_offset else 1
                last_offset = offset
                sub.stats.worker_restarts += 1
                delay = sub.retry.delay_s(deaths)
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
                if held is not None and deaths >= sub.retry.max_attempts:
                    self.queue.popleft()
                    self._current = held
                    resolved = await sub._dead_letter(held, _event_of(held), exc, deaths - 1)
                    self._current = None
                    if not resolved:
                        self.queue.appendleft(held)
                        return
                    sub.mark([held])
                    deaths = 0

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
                    while self.queue and len(done) < sub.mark_chunk and not sub.stopping:
                        record = self._current = self.queue.popleft()
                        resolved = await sub._handle_hook(record)
                        self._current = None
                        if not resolved:
                            self.queue.appendleft(record)
                            return  # stopping before it was resolved: not marked
                        done.append(record)
                if len(done) >= sub.mark_chunk:
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
    #: How long a stop after a fatal error waits for running handlers.
    stop_timeout_s: float = 30.0
    #: Handled records are marked at least this often per partition.
    mark_chunk: int = MARK_CHUNK
    group_instance_id: str | None = None
    stats: SubscriberStats = field(default_factory=SubscriberStats)
    #: Backoff between attempts to write a record to the DLQ while the broker does not take
    #: it (the publish retry policy); ``None``: the handler retry policy.
    dlq_retry: RetryConfig | None = None

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
        self.consumer.subscribe([self.topic])
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
            await self.consumer.close()
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
        if self.failure is None:
            self.state = "stopped"

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
            await asyncio.gather(*still, return_exceptions=True)
        try:
            await self.consumer.close()
        except EventBusError as exc:
            logger.debug("subscriber %s: closing after %s: %s", self.health_key, error, exc)

    def mark(self, records: Sequence[RecordLike]) -> None:
        if self.failure is not None:
            return  # nothing can be committed any more; the new owner handles them again
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
        failures = 0
        while not self.stopping:
            try:
                records = self.consumer.take(self.batch_size, decode_events=True)
            except Exception as exc:
                if isinstance(exc, EventBusError) and (
                    exc.fatal or isinstance(exc, FencedInstanceError)
                ):
                    await self._stop_after(exc)
                    return
                # The transport recovers from non-fatal errors by itself; back off a little
                # (the caps of the handler retry schedule).
                if isinstance(exc, AuthenticationError):
                    # Refused credentials: nothing to debug in a traceback, and the same
                    # refusal every few seconds says nothing new (decision 48).
                    logger.log(
                        logging.ERROR if failures == 0 else logging.DEBUG,
                        "subscriber %s: %s; retrying until the broker accepts the credentials",
                        self.health_key,
                        exc,
                    )
                else:
                    logger.exception("subscriber %s: fetching records failed", self.health_key)
                self.stats.errors += 1
                self.stats.error(exc)
                failures += 1
                if not await self._sleep(self.retry.delay_cap_ms(failures) / 1000.0):
                    return
                continue
            failures = 0
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
                    return await self._dead_letter(record, None, exc, 0)
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
                    return await self._dead_letter(record, event, exc, 0)
                if not keep:
                    self.stats.filtered += 1
                    return True
            return await self._run_handler(record, event)
        except PASS_THROUGH:
            raise
        except BaseException as exc:
            # Anything the stages above did not expect (a record whose event cannot be read,
            # an error raised while logging one, ...): the record is resolved through the DLQ.
            self.stats.errors += 1
            self.stats.error(exc)
            logger.error(
                "subscriber %s: %s[%d]@%d failed: %s",
                self.health_key,
                record.topic,
                record.partition,
                record.offset,
                describe(exc),
            )
            return await self._dead_letter(record, event, exc, 0)

    async def _run_handler(self, record: RecordLike, event: dict[str, Any]) -> bool:
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._invoke(event)
            except PASS_THROUGH:
                raise
            except EventValidationError as exc:
                # The event does not fit the handler's model: retrying cannot help.
                self.stats.errors += 1
                self.stats.error(exc)
                logger.error("subscriber %s: %s", self.health_key, exc)
                return await self._dead_letter(record, event, exc, attempt - 1)
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
        """Writes the record to the DLQ; returns False only when stopping first. Retriable
        failures (the broker does not take it now) are retried with the publish backoff for
        as long as they last, holding back the partition; a refusal for good is logged with
        the record's coordinates and counted, and the partition moves on (decision 44)."""
        if self.dead_letter is None:
            self.stats.skipped += 1
            logger.error(
                "subscriber %s: %s at %s[%d]@%d and the DLQ is disabled: skipped",
                self.health_key,
                describe(error),
                record.topic,
                record.partition,
                record.offset,
            )
            return True
        backoff = self.dlq_retry or self.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.dead_letter(record, event, error, retries)
            except PASS_THROUGH:
                raise
            except ClosedError:
                return False  # the bus is closing: not resolved, the group gets it again
            except BaseException as exc:
                if not retriable(exc):
                    self.stats.current_backoff = 0.0
                    self.stats.dlq_refused += 1
                    self.stats.error(exc)
                    logger.error(
                        "subscriber %s: the DLQ refused %s[%d]@%d for good (%s; the record "
                        "failed with %s); moving on: the record stays in %s at offset %d",
                        self.health_key,
                        record.topic,
                        record.partition,
                        record.offset,
                        describe(exc),
                        describe(error),
                        record.topic,
                        record.offset,
                    )
                    return True
                delay = backoff.delay_s(min(attempt, 64))
                self.stats.dlq_failures += 1
                self.stats.current_backoff = delay
                self.stats.error(exc)
                logger.error(
                    "subscriber %s: writing %s[%d]@%d to the DLQ failed (%s); retrying in "
                    "%.3fs, not committing past it",
                    self.health_key,
                    record.topic,
                    record.partition,
                    record.offset,
                    describe(exc),
                    delay,
                )
                if not await self._sleep(delay):
                    return False
                continue
            self.stats.current_backoff = 0.0
            self.stats.dead_lettered += 1
            logger.warning(
                "subscriber %s: %s[%d]@%d sent to the DLQ after %d retries: %s",
                self.health_key,
                record.topic,
                record.partition,
                record.offset,
                retries,
                describe(error),
            )
            return True
