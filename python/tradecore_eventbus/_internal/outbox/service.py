"""The transactional outbox: an event is published if and only if the database transaction
that queued it commits.

``queue_event`` validates and enriches the event (its ``event_id`` is fixed there) and
inserts it into ``eventbus_outbox`` on the caller's connection, inside the caller's
transaction. A background relay (``start()``) publishes committed rows through the event
bus's producer and marks a row published only after the broker acknowledged it (acks=all).
A failed send leaves the row pending with its attempts counted and a backoff; a row the
broker keeps refusing (not retriable) is marked dead after ``max_attempts`` and its event
goes to the DLQ. Events with the same ``partition_key`` reach Kafka in the order their
transactions committed, also with several relays.

PostgreSQL (asyncpg ``Pool``): the relay wakes on LISTEN/NOTIFY, with polling as fallback,
and several relays (processes) can run side by side. SQLite (an ``aiosqlite`` connection to
a database file): the embedded default, no server needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from ...exceptions import (
    AuthenticationError,
    BatchDeliveryError,
    EventBusError,
    InvalidArgumentError,
)
from ..bus.arguments import check_event, check_key, check_name
from ..bus.event_bus import EventBus
from ..publishing.prepare import prepare_one
from ..reliability.backoff import Backoff
from ..reliability.dead_letters.record import Failure
from ..reliability.dead_letters.writer import DeadLetter
from ..reliability.retry import RetryConfig
from ..transports.structs import OutgoingRecord
from ..wire.envelope import headers_for
from .postgres import NOTIFY_CHANNEL, PostgresStore
from .sqlite import SqliteStore
from .store import ClaimedBatch, OutboxRow, OutboxStore, RowFailure

logger = logging.getLogger("tradecore_eventbus.outbox")

#: Backoff of rows whose send failed.
DEFAULT_RELAY_RETRY = RetryConfig(max_attempts=10, initial_delay_ms=500, max_delay_ms=60_000)


class PgClient:
    """The guide's ``pg_client``: ``async with pg_client.transaction() as conn`` acquires a
    connection from an asyncpg pool and runs the block in a transaction on it."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn


def _store_for(client: Any) -> OutboxStore:
    if isinstance(client, PgClient):
        return PostgresStore(client.pool)
    module = type(client).__module__
    if module.startswith("asyncpg"):
        return PostgresStore(client)
    if module.startswith("aiosqlite"):
        return SqliteStore(client)
    raise InvalidArgumentError(
        "OutboxService needs an asyncpg Pool (or PgClient) or an aiosqlite connection, not "
        f"{type(client).__name__}"
    )


class OutboxService:
    def __init__(
        self,
        event_bus: EventBus,
        pg_client: Any,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        max_attempts: int = 10,
        retry: RetryConfig = DEFAULT_RELAY_RETRY,
        retention_seconds: float = 7 * 24 * 3600,
        cleanup_interval: float = 300.0,
        after_send: Callable[[list[OutboxRow]], Awaitable[None]] | None = None,
    ) -> None:
        if batch_size < 1 or max_attempts < 1 or poll_interval <= 0:
            raise InvalidArgumentError(
                "batch_size and max_attempts must be >= 1, poll_interval > 0"
            )
        self.bus = event_bus
        self.client = pg_client
        self.store = _store_for(pg_client)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.retry = retry
        self.retention_seconds = retention_seconds
        self.cleanup_interval = cleanup_interval
        #: Called after a batch was acknowledged and before it is marked (instrumentation;
        #: the tests use it to kill a relay at the worst moment).
        self.after_send = after_send
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None
        self.published = 0

    # ---------------------------------------------------------------- schema and queueing

    async def migrate(self) -> None:
        """Creates the outbox and inbox tables (the SQL ships in the package). Idempotent;
        never run implicitly."""
        await self.store.migrate()

    async def queue_event(
        self,
        stream_name: str,
        event_data: Mapping[str, Any],
        transaction_conn: Any,
        partition_key: str | None = None,
    ) -> str:
        """Validates and enriches the event and inserts it in the caller's transaction.
        Returns its ``event_id`` (fixed now: a retry republishes the same event). An invalid
        event raises here, so the caller's transaction can roll back."""
        check_name(stream_name, "stream_name")
        check_event(event_data, "event_data")
        check_key(partition_key)
        self.bus.adapter.topic_for(stream_name)  # a name Kafka would refuse fails here
        prepared = prepare_one(
            event_data,
            partition_key,
            validate=self.bus.validate_on_publish,
            strict=self.bus.config.strict_validation,
        )
        event_id = str(prepared.event["event_id"])
        await self.store.insert(
            transaction_conn,
            event_id=event_id,
            stream_name=stream_name,
            partition_key=partition_key,
            event_type=str(prepared.event["event_type"]),
            payload=prepared.record[1].decode(),
        )
        self._wake.set()  # a hint only: the row is visible once the caller commits
        return event_id

    # ---------------------------------------------------------------- relay

    async def start(self) -> None:
        """Starts the background relay (tables must exist: see ``migrate``)."""
        if self._task is not None:
            return
        self._stopping = False
        if isinstance(self.store, PostgresStore):
            self._listener = await self.store.pool.acquire()
            await self._listener.add_listener(NOTIFY_CHANNEL, self._notified)
        self.bus.add_health_source("outbox", self.health)
        self._task = asyncio.create_task(self._relay(), name="eventbus-outbox-relay")

    def _notified(self, *_args: object) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Finishes the batch in hand, then stops the relay."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._listener is not None and isinstance(self.store, PostgresStore):
            await self._listener.remove_listener(NOTIFY_CHANNEL, self._notified)
            await self.store.pool.release(self._listener)
            self._listener = None
        await self.store.close()

    async def __aenter__(self) -> OutboxService:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _relay(self) -> None:
        last_cleanup = time.monotonic()
        # After a failed cycle: the relay's retry schedule (its caps), at least one poll.
        failures = Backoff(self.retry, jitter=False, floor_s=self.poll_interval)
        while not self._stopping:
            self._wake.clear()
            backoff = 0.0
            try:
                published = await self.run_once()
                failures.reset()
            except Exception:
                logger.exception("outbox relay cycle failed")
                backoff = failures.next_delay_s()
                published = 0
            if time.monotonic() - last_cleanup >= self.cleanup_interval:
                last_cleanup = time.monotonic()
                try:
                    removed = await self.store.cleanup(self.retention_seconds)
                    if removed:
                        logger.info("outbox: removed %d published rows", removed)
                except Exception:
                    logger.exception("outbox cleanup failed")
            if published >= self.batch_size and not backoff:
                continue  # more may be waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff or self.poll_interval)

    async def run_once(self) -> int:
        """One relay cycle: claim, publish, record outcomes. Returns how many rows were
        published."""
        claim: ClaimedBatch = await self.store.claim(self.batch_size)
        try:
            if not claim.rows:
                await claim.release()
                return 0
            published, failures = await self._publish(claim.rows)
            if self.after_send is not None:
                await self.after_send(published)
            await claim.published(published)
            await self._record_failures(claim, failures)
        except BaseException:
            await claim.abort()
            raise
        await claim.release()
        self.published += len(published)
        return len(published)

    async def _publish(self, rows: list[OutboxRow]) -> tuple[list[OutboxRow], list[RowFailure]]:
        await self.bus.start()
        by_stream: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_stream.setdefault(row.stream_name, []).append(row)
        published: list[OutboxRow] = []
        failures: list[RowFailure] = []
        for stream, stream_rows in by_stream.items():
            try:
                await self.bus.publisher.ensure_channel(stream, required=False)
            except AuthenticationError as exc:
                failures += [RowFailure(r, str(exc), True) for r in stream_rows]
                continue
            with_headers = self.bus.transport_config.producer_event_headers
            records: list[OutgoingRecord] = [
                (
                    r.partition_key.encode() if r.partition_key is not None else None,
                    r.payload.encode(),
                    headers_for({"event_type": r.event_type, "event_id": r.event_id})
                    if with_headers
                    else [],
                )
                for r in stream_rows
            ]
            try:
                await self.bus.publisher.send_durable(self.bus.adapter.topic_for(stream), records)
                published += stream_rows
            except BatchDeliveryError as exc:
                for row, result in zip(stream_rows, exc.results, strict=True):
                    if isinstance(result, EventBusError):
                        failures.append(RowFailure(row, str(result), _keep_trying(result)))
                    else:
                        published.append(row)
            except EventBusError as exc:
                failures += [RowFailure(r, str(exc), _keep_trying(exc)) for r in stream_rows]
        return published, failures

    async def _record_failures(self, claim: ClaimedBatch, failures: list[RowFailure]) -> None:
        if not failures:
            return
        # Broker outages are retried for as long as they last; only a broker that keeps
        # refusing an event makes its row dead.
        dead = [f for f in failures if not f.retriable and f.row.attempts + 1 >= self.max_attempts]
        dead_ids = {f.row.id for f in dead}
        buried = await self._to_dlq(dead) if dead else []
        buried_ids = {f.row.id for f in buried}
        retry = [f for f in failures if f.row.id not in buried_ids]
        for f in retry:
            logger.warning(
                "outbox row %d (%s) not published: %s", f.row.id, f.row.event_id, f.error
            )
        await claim.dead(buried)
        if retry:
            attempts = max(f.row.attempts for f in retry) + 1
            await claim.failed(retry, self.retry.delay_s(attempts))
        if dead_ids - buried_ids:
            logger.error(
                "outbox: %d dead row(s) could not be written to the DLQ yet",
                len(dead_ids - buried_ids),
            )

    async def _to_dlq(self, dead: list[RowFailure]) -> list[RowFailure]:
        """The dead rows whose event the DLQ now has (or refused for good: the row marked
        dead is then the copy kept, decision 53)."""
        buried: list[RowFailure] = []
        for f in dead:
            letter = DeadLetter(
                Failure(
                    original_channel=f.row.stream_name,
                    error_type="OutboxPublishError",
                    error_message=f.error,
                    retry_count=f.row.attempts,
                ),
                event=json.loads(f.row.payload),
                raw_value=f.row.payload.encode(),
                key=f.row.partition_key.encode() if f.row.partition_key is not None else None,
                original_topic=self.bus.adapter.topic_for(f.row.stream_name),
                event_id=f.row.event_id,
            )
            if await self.bus.dead_letters.write_outbox_row(f.row.stream_name, letter, f.row.id):
                buried.append(f)
        return buried

    async def health(self) -> dict[str, Any]:
        stats = await self.store.stats()
        stats["relay_running"] = self._task is not None and not self._task.done()
        stats["published"] = self.published
        return stats


def _keep_trying(error: EventBusError) -> bool:
    """Whether a failed row stays pending however often it fails: outages, and refused
    credentials (not the event's fault: it is published once they are fixed; decision 47)."""
    return error.retriable or isinstance(error, AuthenticationError)
