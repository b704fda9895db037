"""``EventBus``: the guide's API over a transport adapter.

Publishing: enrich -> validate -> encode every event, then send (one call per batch), and
return once the broker acknowledged. Subscribing: one consumer per subscription, live when
the call returns, handled in the background until ``unsubscribe`` or ``close``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from tradecore_eventbus import _core

from ...exceptions import (
    BatchDeliveryError,
    ClosedError,
    EventBusError,
    EventValidationError,
    InvalidArgumentError,
)
from ..config.checks import check_spool_dir
from ..config.consumer_groups import group_id as prefixed_group
from ..config.consumer_groups import static_instance_id
from ..config.settings import EventBusConfig, TransportConfig
from ..consuming.handlers import Handler
from ..consuming.subscription import MARK_CHUNK, FilterFn, Subscription
from ..publishing.coalescer import Coalescer
from ..publishing.pipeline import Publisher
from ..publishing.prepare import (
    PreparedBatch,
    PreparedEvent,
    PublishResult,
    PythonBatch,
    prepare,
    results_for,
)
from ..reliability.breakers import BreakerRegistry
from ..reliability.dead_letter import Failure, record_size_limit, replay_target
from ..reliability.dead_letter_values import writable_dlq_record
from ..reliability.spool import Spool
from ..transports.kafka.poll import poll_batch
from ..transports.protocol import RecordLike, TransportAdapter
from ..transports.structs import ConsumerSpec, Mode, OutgoingRecord
from ..wire.envelope import encode, headers_for
from ..wire.topics import dlq_channel
from .arguments import (
    check_callable,
    check_event,
    check_events,
    check_key,
    check_milliseconds,
    check_name,
    check_positive_int,
    check_seconds,
    one_key,
)

logger = logging.getLogger("tradecore_eventbus.event_bus")


class EventBus:
    """Publish/subscribe (ephemeral) and streams (durable) over one transport adapter.

    ``validate_on_publish`` defaults to ``EVENT_BUS_VALIDATE_ON_PUBLISH`` (true). The bus
    connects on first use; ``async with`` and ``close()`` release it.
    """

    def __init__(
        self,
        adapter: TransportAdapter,
        validate_on_publish: bool | None = None,
        event_bus_config: EventBusConfig | None = None,
        transport_config: TransportConfig | None = None,
        *,
        clock: _core.ManualClock | None = None,
        spool_dir: str | None = None,
    ) -> None:
        self.adapter = adapter
        self.config = (
            event_bus_config
            if event_bus_config is not None
            else getattr(adapter, "event_bus_config", None) or EventBusConfig.from_env()
        )
        # Topic names and client settings come from the adapter, which creates the clients.
        self.transport_config = (
            getattr(adapter, "transport_config", None)
            or transport_config
            or TransportConfig.from_env()
        )
        self.validate_on_publish = (
            self.config.validate_on_publish if validate_on_publish is None else validate_on_publish
        )
        self.breakers = BreakerRegistry(self.config, clock)
        # Checked now: an outage is the worst time to learn that events cannot be kept.
        check_spool_dir(
            spool_dir or self.config.spool_dir,
            "spool_dir" if spool_dir else "EventBusConfig.spool_dir (EVENT_BUS_SPOOL_DIR)",
        )
        self.spool = Spool(spool_dir or self.config.spool_dir)
        self.publisher = Publisher(
            adapter, self.config, self.transport_config, self.breakers, self.spool
        )
        self._subscriptions: dict[str, Subscription] = {}
        self._drainer: asyncio.Task[None] | None = None
        self._health_sources: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {}
        self._coalescers: dict[str, Coalescer] = {}
        self._start_lock = asyncio.Lock()
        self._started = False
        self._closing = False
        self._close_task: asyncio.Task[None] | None = None
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._published = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connects the producer. Optional: every call connects on first use."""
        if self._closing:
            raise ClosedError("the event bus is closed")
        await self._connect()

    async def _connect(self) -> None:
        # Also used by calls accepted before close() began: they finish normally.
        if self._started:
            return
        async with self._start_lock:
            if not self._started:
                await self.adapter.start()
                self._started = True
                if self.spool.has_pending():
                    self._start_drainer()  # left over from an earlier run

    async def __aenter__(self) -> EventBus:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self, timeout: float | None = None) -> None:
        """Stops the subscribers (running handlers finish, what they processed is committed,
        groups are left), waits for in-flight publishes to be acknowledged, then releases the
        transport. Bounded by ``timeout`` (default ``EVENT_BUS_CLOSE_TIMEOUT_SECONDS``).
        Idempotent; concurrent calls wait for the same close."""
        if timeout is not None:
            check_seconds(timeout, "timeout")
        if self._close_task is None:
            self._closing = True
            self._close_task = asyncio.ensure_future(self._close(timeout))
        await asyncio.shield(self._close_task)

    async def _close(self, timeout: float | None) -> None:
        budget = self.config.close_timeout_seconds if timeout is None else timeout
        deadline = time.monotonic() + budget
        subs = list(self._subscriptions.values())
        self._subscriptions.clear()
        await asyncio.gather(
            *(s.stop(max(0.0, deadline - time.monotonic())) for s in subs), return_exceptions=True
        )
        try:
            await asyncio.wait_for(self._idle.wait(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            logger.error(
                "close: %d publish call(s) still waiting for the broker after %.1fs",
                self._inflight,
                budget,
            )
        await self.adapter.close()

    @property
    def closed(self) -> bool:
        return self._closing

    # ------------------------------------------------------------------ publishing

    def mark_channel_as_critical(self, channel: str) -> None:
        """Critical channels trip their circuit breaker sooner, recover sooner and get more
        publish attempts."""
        self.breakers.mark_critical(channel)

    @property
    def critical_channels(self) -> list[str]:
        return self.breakers.critical_channels

    async def publish(
        self,
        channel: str,
        event_data_dict: Mapping[str, Any],
        partition_key: str | None = None,
        *,
        key: str | None = None,
    ) -> PublishResult:
        """Publishes one event to a pub/sub channel; returns once the broker stored it."""
        check_name(channel, "channel")
        check_event(event_data_dict, "event_data_dict")
        return await self._publish_one(channel, event_data_dict, one_key(partition_key, key))

    async def publish_stream(
        self,
        stream_name: str,
        event_data_dict: Mapping[str, Any],
        partition_key: str | None = None,
        *,
        key: str | None = None,
    ) -> PublishResult:
        """Publishes one event to a durable stream; returns once the broker acknowledged it
        (acks=all). Events with the same ``partition_key`` keep their order."""
        check_name(stream_name, "stream_name")
        check_event(event_data_dict, "event_data_dict")
        return await self._publish_one(stream_name, event_data_dict, one_key(partition_key, key))

    async def publish_batch(
        self,
        channel: str,
        events_data_list: Sequence[Mapping[str, Any]],
        partition_key: str | None = None,
    ) -> list[PublishResult]:
        """Validates every event, then sends them all in one call. If any event is invalid,
        nothing is sent and the error names each invalid position."""
        check_name(channel, "channel")
        check_events(events_data_list, "events_data_list")
        check_key(partition_key)
        if not events_data_list:
            return []
        if self._closing:
            raise ClosedError("the event bus is closed")
        topic = self.adapter.topic_for(channel)
        prepared = prepare(
            channel,
            events_data_list,
            partition_key,
            validate=self.validate_on_publish,
            strict=self.config.strict_validation,
            headers=self.transport_config.producer_event_headers,
        )
        self._enter()
        try:
            deliveries = await self._send(channel, topic, prepared)
        finally:
            self._leave()
        return self._results(
            channel, topic, partition_key, prepared, range(len(prepared)), deliveries
        )

    async def _publish_one(
        self, channel: str, event: Mapping[str, Any], key: str | None
    ) -> PublishResult:
        if self._closing:
            raise ClosedError("the event bus is closed")
        coalescer = self._coalescers.get(channel)
        if coalescer is None:
            topic = self.adapter.topic_for(channel)
            coalescer = self._coalescers[channel] = Coalescer(self, channel, topic)
        return await coalescer.submit(event, key)

    def _enter(self) -> None:
        self._inflight += 1
        self._idle.clear()

    def _leave(self) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self._idle.set()

    async def _send(
        self, channel: str, topic: str, prepared: PreparedBatch
    ) -> Sequence[tuple[int, int]]:
        await self._connect()
        try:
            # Creates the channel's topics on its first publish, within the first attempt.
            deliveries = await self.publisher.send(channel, topic, prepared)
        finally:
            if self.spool.has_pending():
                self._start_drainer()
        self._published += len(prepared)
        return deliveries

    @staticmethod
    def _results(
        channel: str,
        topic: str,
        key: str | None,
        prepared: PreparedBatch,
        indices: Sequence[int],
        deliveries: Sequence[tuple[int, int]],
    ) -> list[PublishResult]:
        whole = len(indices) == len(prepared)
        return results_for(channel, topic, key, prepared, deliveries, None if whole else indices)

    # ------------------------------------------------------------------ spool and DLQ

    def _start_drainer(self) -> None:
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(
                self._drain_when_possible(), name="eventbus-spool-drainer"
            )

    async def _drain_when_possible(self) -> None:
        """Publishes the spool as soon as the broker answers again; stops when it is empty."""
        # The spool just got events because the broker did not answer: give it a moment,
        # then look again on the publish retry schedule (its caps, without jitter).
        retry = self.config.publish_retry
        attempt = 0
        while self.spool.has_pending() and not self._closing:
            attempt += 1
            await asyncio.sleep(max(retry.delay_cap_ms(attempt), retry.initial_delay_ms) / 1000.0)
            try:
                if await self.adapter.ping(self.config.spool_ping_timeout_seconds):
                    report = await self.publisher.drain()
                    if not report.remaining:
                        return
            except Exception:
                logger.exception("draining the spool failed")

    async def replay_spool(self) -> dict[str, int]:
        """Publishes every spooled event now (in order); returns {sent, already_delivered,
        remaining}. Events whose failed delivery may have been written are looked up first
        and not sent twice."""
        await self.start()
        return (await self.publisher.drain()).as_dict()

    def dead_spool_entries(self) -> list[dict[str, Any]]:
        """Spooled events the broker refused for good (too large, not authorized, ...), kept
        in the spool's ``dead/`` directory, oldest first: name, topic, channel, event_id,
        destination ("topic" or "dlq"), size, spooled_at_ms, dead_at_ms, error_type, error,
        code_name. Nothing is lost: the files hold the records as they were to be sent."""
        return [d.as_dict() for d in self.spool.dead_entries()]

    async def replay_dead_spool(self, names: Sequence[str] | None = None) -> dict[str, int]:
        """Sends dead spool entries (all, or those named) again, e.g. after the topic's
        limit or ACLs were changed: they go back to their place in the spool and the spool
        is drained. Returns ``replay_spool``'s counts plus ``revived``; an entry refused
        again is dead again (counted in ``dead``)."""
        if self._closing:
            raise ClosedError("the event bus is closed")
        if names is not None:
            if isinstance(names, str):
                raise InvalidArgumentError("names must be a list of entry names, got str")
            names = [check_name(n, "names[]") for n in names]
        await self.start()
        revived = self.spool.revive(names)
        return {"revived": revived, **(await self.publisher.drain()).as_dict()}

    async def _dead_letter_consumed(
        self,
        sub: Subscription,
        record: RecordLike,
        event: dict[str, Any] | None,
        error: BaseException,
        retries: int,
    ) -> None:
        """Writes one consumed record to its channel's DLQ, in a copy that fits the
        producer's ``message.max.bytes``. Raises the record's own delivery error (retriable
        or not: the subscription decides whether to try again)."""
        failure = Failure(
            original_channel=sub.channel,
            error_type=type(error).__name__,
            error_message=str(error),
            retry_count=retries,
            original_partition=record.partition,
            original_offset=record.offset,
            consumer_group=sub.group_id,
        )
        dlq = dlq_channel(sub.channel, self.config.dlq_topic_suffix)
        await self.publisher.ensure_channel(dlq)
        topic = self.adapter.topic_for(dlq)
        # Never raises for what the event holds (NaN from another client, say): a dead letter
        # that cannot be written would hold the partition forever (decision 52).
        copy = functools.partial(
            writable_dlq_record,
            failure,
            event=event,
            raw_value=record.value,
            key=record.key,
            headers=list(record.headers),
            max_bytes=record_size_limit(self.transport_config),
            original_topic=record.topic,
        )
        try:
            await self._send_dead_letter(topic, copy())
        except EventBusError as exc:
            if exc.retriable:
                raise
            # Refused for good (a broker or topic whose size limit is below the producer's,
            # say): one more try with the metadata and coordinates only.
            logger.error(
                "the DLQ %s refused the copy of %s[%d]@%d (%s); writing it without the original",
                topic,
                record.topic,
                record.partition,
                record.offset,
                exc,
            )
            await self._send_dead_letter(topic, copy(keep_original=False))

    async def _send_dead_letter(self, topic: str, record: OutgoingRecord) -> None:
        try:
            await self.adapter.producer().send_batch(topic, [record])
        except BatchDeliveryError as exc:
            first = exc.results[0] if exc.results else None
            if isinstance(first, EventBusError):
                raise first from exc
            raise

    async def replay_dlq(
        self,
        channel: str,
        *,
        max_events: int | None = None,
        idle_timeout: float = 2.0,
        group: str = "dlq-replay",
    ) -> dict[str, int]:
        """Republishes the events of ``channel``'s DLQ to their original channel (without
        ``_dlq_metadata``, same event_id and key) and reports counts: {read, republished,
        skipped, failed}. Progress is committed in the group ``group``, so a replay never
        republishes an event twice; records that are not events (``_raw_value``) are counted
        as skipped. Stops when the DLQ has been idle for ``idle_timeout`` seconds."""
        check_name(channel, "channel")
        if max_events is not None:
            check_positive_int(max_events, "max_events")
        check_seconds(idle_timeout, "idle_timeout")
        check_name(group, "group")
        if self._closing:
            raise ClosedError("the event bus is closed")
        await self.start()
        dlq = dlq_channel(channel, self.config.dlq_topic_suffix)
        budget = self.config.consumer_poll_timeout_ms / 1000.0
        deadline = time.monotonic() + budget
        await self.publisher.ensure_channel(dlq, timeout=budget)
        dlq_topic = self.adapter.topic_for(dlq)
        consumer = self.adapter.new_consumer(
            ConsumerSpec(
                topic=dlq_topic,
                group_id=prefixed_group(
                    f"{group}-{channel}", self.transport_config.consumer_group_id_prefix
                ),
                mode="stream",
                auto_offset_reset="earliest",
                enable_commit=True,
                max_poll_records=self.transport_config.consumer_max_poll_records,
                client_id=f"{self.transport_config.client_id}-dlq-replay",
            )
        )
        counts = {"read": 0, "republished": 0, "skipped": 0, "failed": 0}
        consumer.subscribe([dlq_topic])
        try:
            await consumer.wait_assigned(max(0.0, deadline - time.monotonic()))
            while max_events is None or counts["read"] < max_events:
                limit = 500 if max_events is None else min(500, max_events - counts["read"])
                records = await poll_batch(consumer, limit, idle_timeout)  # type: ignore[arg-type]
                if not records:
                    break
                counts["read"] += len(records)
                handled = await self._replay_records(channel, records, counts)
                consumer.mark_processed(handled)
                if len(handled) < len(records):
                    break
            await consumer.commit()
        finally:
            await consumer.close()
        logger.info("replayed the DLQ of %s: %s", channel, counts)
        return counts

    async def _replay_records(
        self, channel: str, records: Sequence[RecordLike], counts: dict[str, int]
    ) -> list[RecordLike]:
        handled: list[RecordLike] = []
        for record in records:
            found = replay_target(record.value, channel)
            if found is None:
                counts["skipped"] += 1
                handled.append(record)
                continue
            event, target = found
            try:
                value = encode(event)
            except EventValidationError as exc:
                # It can never be republished as it is (NaN, say: decision 52); it stays in
                # the DLQ topic, and the replay goes on past it.
                counts["skipped"] += 1
                handled.append(record)
                logger.error("not replaying %s from the DLQ: %s", event.get("event_id"), exc)
                continue
            headers = headers_for(event) if self.transport_config.producer_event_headers else []
            prepared = PythonBatch([PreparedEvent(event, (record.key, value, headers))])
            try:
                await self.publisher.ensure_channel(target)
                await self.publisher.send(target, self.adapter.topic_for(target), prepared)
            except EventBusError as exc:
                counts["failed"] += 1
                logger.error("replaying %s from the DLQ failed: %s", event.get("event_id"), exc)
                break
            counts["republished"] += 1
            handled.append(record)
        return handled

    # ------------------------------------------------------------------ subscribing

    async def subscribe(
        self, channel: str, handler: Handler, filter_fn: FilterFn | None = None
    ) -> str:
        """Subscribes to a pub/sub channel: the subscriber has its own group, starts at the
        latest offset and never commits (at-most-once). Returns a subscription id once the
        subscriber is live: every event published after that reaches it."""
        check_name(channel, "channel")
        group = prefixed_group(
            f"pubsub-{channel}-{uuid.uuid4().hex[:12]}",
            self.transport_config.consumer_group_id_prefix,
        )
        return await self._subscribe(
            channel,
            handler,
            mode="pubsub",
            group=group,
            consumer_name=group,
            filter_fn=filter_fn,
            batch_size=self.transport_config.consumer_max_poll_records,
            block_ms=self.config.sub_block_ms,
            auto_offset_reset="latest",
        )

    async def subscribe_stream(
        self,
        channel: str,
        handler: Handler,
        group: str | None = None,
        consumer: str | None = None,
        batch_size: int | None = None,
        block_ms: int | None = None,
        filter_fn: FilterFn | None = None,
    ) -> str:
        """Subscribes to a durable stream as a member of ``group``: members share the
        partitions, a new group replays from the earliest offset, and an event is committed
        only after its handler returned (at-least-once). Returns a subscription id once the
        consumer is live, or, if the group is still rebalancing after
        ``EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS`` (a member that died keeps its partitions until
        its session times out), registered and waiting for them: ``health_check()`` shows
        ``waiting_for_partitions`` and handling starts when Kafka assigns them (decision 42).

        With ``KAFKA_CONSUMER_STATIC_MEMBERSHIP=true`` the consumer joins with a
        ``group.instance.id`` derived from group, channel and ``consumer`` (which is then
        required: one stable name per replica), so a restarted replica takes its partitions
        back without a rebalance."""
        check_name(channel, "channel")
        if group is not None:
            check_name(group, "group")
        if consumer is not None:
            check_name(consumer, "consumer")
        group = group or self.adapter.default_consumer_group
        if not group:
            raise InvalidArgumentError(
                "subscribe_stream needs a group (or an adapter with a worker_type)"
            )
        size = (
            check_positive_int(batch_size, "batch_size")
            if batch_size is not None
            else self.config.sub_batch_size
        )
        wait_ms = (
            check_milliseconds(block_ms, "block_ms")
            if block_ms is not None
            else self.config.sub_block_ms
        )
        group_id = prefixed_group(group, self.transport_config.consumer_group_id_prefix)
        instance_id = self._instance_id(group_id, channel, consumer)
        return await self._subscribe(
            channel,
            handler,
            mode="stream",
            group=group_id,
            consumer_name=consumer or uuid.uuid4().hex[:8],
            filter_fn=filter_fn,
            batch_size=min(size, self.transport_config.consumer_max_poll_records),
            block_ms=wait_ms,
            auto_offset_reset=self.transport_config.consumer_auto_offset_reset,
            group_instance_id=instance_id,
        )

    def _instance_id(self, group_id: str, channel: str, consumer: str | None) -> str | None:
        """The static member id of a stream subscription, or None (dynamic membership)."""
        if not self.transport_config.consumer_static_membership:
            return None
        if consumer is None:
            raise InvalidArgumentError(
                "KAFKA_CONSUMER_STATIC_MEMBERSHIP=true: subscribe_stream needs a stable "
                "consumer name (consumer='worker-1'), one per replica"
            )
        self.adapter.topic_for(channel)  # the channel is checked before it becomes part of it
        instance_id = static_instance_id(group_id, channel, consumer)
        for sub in self._subscriptions.values():
            if sub.group_instance_id == instance_id and sub.failure is None:
                raise InvalidArgumentError(
                    f"consumer {consumer!r} already subscribed {channel!r} in group "
                    f"{group_id!r} in this process: with static membership a second member "
                    "with the same name would fence the first; use another consumer name"
                )
        return instance_id

    async def _subscribe(
        self,
        channel: str,
        handler: Handler,
        *,
        mode: Mode,
        group: str,
        consumer_name: str,
        filter_fn: FilterFn | None,
        batch_size: int,
        block_ms: int,
        auto_offset_reset: str,
        group_instance_id: str | None = None,
    ) -> str:
        if self._closing:
            raise ClosedError("the event bus is closed")
        check_callable(handler, "handler")
        check_callable(filter_fn, "filter_fn", optional=True)
        topic = self.adapter.topic_for(channel)
        # One budget for the whole call (decision 46): creating the topics and joining the
        # group both come out of EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS.
        budget = self.config.consumer_poll_timeout_ms / 1000.0
        deadline = time.monotonic() + budget
        await self.start()
        await self.publisher.ensure_channel(channel, timeout=budget)
        spec = ConsumerSpec(
            topic=topic,
            group_id=group,
            mode=mode,
            auto_offset_reset=auto_offset_reset,
            enable_commit=mode == "stream",
            max_poll_records=self.transport_config.consumer_max_poll_records,
            client_id=f"{self.transport_config.client_id}-{consumer_name}",
            group_instance_id=group_instance_id,
        )
        sub = Subscription(
            id=str(uuid.uuid4()),
            channel=channel,
            topic=topic,
            mode=mode,
            group_id=group,
            consumer_name=consumer_name,
            consumer=self.adapter.new_consumer(spec),
            handler=handler,
            filter_fn=filter_fn,
            batch_size=batch_size,
            block_ms=block_ms,
            max_concurrent_partitions=self.config.max_concurrent_partitions,
            retry=self.config.handler_retry_for(channel),
            dead_letter=None,
            stop_timeout_s=self.config.close_timeout_seconds,
            # At most one commit batch of handled records per partition waits to be marked,
            # so a crash hands at most that many to the next owner again.
            mark_chunk=min(MARK_CHUNK, self.transport_config.commit_batch_size),
            group_instance_id=group_instance_id,
            dlq_retry=self.config.publish_retry,
        )
        if self.config.enable_dlq:
            sub.dead_letter = lambda record, event, error, retries: self._dead_letter_consumed(
                sub, record, event, error, retries
            )
        live_timeout = max(0.0, deadline - time.monotonic())
        # A stream subscription outlives a rebalance that takes longer than the timeout; a
        # pub/sub one must be live when the call returns (it starts at the latest offset).
        await sub.start(
            live_timeout,
            (lambda: self.adapter.ping(live_timeout)) if mode == "stream" else None,
        )
        self._subscriptions[sub.id] = sub
        logger.info(
            "subscribed %s to %s (%s, group %s, %s)", sub.id, channel, mode, group, sub.state
        )
        return sub.id

    async def unsubscribe(self, subscription_id: str) -> bool:
        """Stops exactly that subscriber (its running handler finishes, what it processed
        is committed). Returns False for an unknown or already stopped id."""
        sub = self._subscriptions.pop(subscription_id, None)
        if sub is None:
            return False
        await sub.stop(self.config.close_timeout_seconds)
        return True

    def subscriptions(self) -> list[dict[str, Any]]:
        return [
            {
                "id": s.id,
                "channel": s.channel,
                "topic": s.topic,
                "mode": s.mode,
                "group": s.group_id,
                "active": s.active,
                "state": s.state,
            }
            for s in self._subscriptions.values()
        ]

    # ------------------------------------------------------------------ health

    def add_health_source(self, name: str, source: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        """Adds ``name: await source()`` to ``health_check()["adapter"]["details"]`` (the
        outbox registers its backlog this way)."""
        self._health_sources[name] = source

    async def get_circuit_breaker_status(self) -> dict[str, dict[str, Any]]:
        """Per channel: state, failure_count, consecutive_successes, total_failures,
        total_success, last_failure_time."""
        return self.breakers.status()

    async def check_connection(self, timeout: float = 5.0) -> bool:
        """Whether the broker answers a metadata request within ``timeout`` seconds."""
        return await self.adapter.ping(check_seconds(timeout, "timeout"))

    async def health_check(self, timeout: float = 5.0) -> dict[str, Any]:
        """The guide's health structure. Never raises (but for a ``timeout`` that is not a
        finite, non-negative number); bounded by ``timeout``."""
        check_seconds(timeout, "timeout")
        try:
            ping = await asyncio.wait_for(self.adapter.ping(timeout), timeout)
        except (TimeoutError, EventBusError):
            ping = False
        consumers = {s.health_key: s.health() for s in self._subscriptions.values()}
        failed_consumers = [
            s.health_key for s in self._subscriptions.values() if s.failure is not None
        ]
        processed = sum(c["messages_processed"] for c in consumers.values())
        errors = sum(c["errors"] for c in consumers.values())
        adapter_stats = self.adapter.stats()
        producer_started = (
            bool(adapter_stats.get("producer_started", self._started)) and not self._closing
        )
        adapter_healthy = ping and not self._closing
        extra: dict[str, Any] = {}
        for name, source in self._health_sources.items():
            try:
                extra[name] = await asyncio.wait_for(source(), timeout)
            except Exception as exc:  # health never raises
                extra[name] = {"error": f"{type(exc).__name__}: {exc}"}
        breakers = self.breakers.status()
        open_circuits = [c for c, b in breakers.items() if b["state"] == "OPEN"]
        return {
            "circuit_breakers": breakers,
            "open_circuits": open_circuits,
            "open_circuits_count": len(open_circuits),
            "adapter": {
                "healthy": adapter_healthy,
                "details": {
                    "ping_successful": ping,
                    "producer_started": producer_started,
                    "messages_sent": self._published,
                    "messages_received": processed,
                    "active_consumers": sum(1 for s in self._subscriptions.values() if s.active),
                    "consumer_error_rate": round(100.0 * errors / max(1, processed + errors), 3),
                    "consumers": consumers,
                    "dead_lettered": self.publisher.dead_lettered
                    + sum(s.stats.dead_lettered for s in self._subscriptions.values()),
                    "dlq_write_failures": sum(
                        s.stats.dlq_failures for s in self._subscriptions.values()
                    ),
                    "dlq_refused": sum(s.stats.dlq_refused for s in self._subscriptions.values()),
                    "worker_restarts": sum(
                        s.stats.worker_restarts for s in self._subscriptions.values()
                    ),
                    "consumer_faults": {
                        s.health_key: s.stats.faults() for s in self._subscriptions.values()
                    },
                    "spool": self.publisher.spool_health(),
                    "failed_consumers": failed_consumers,
                    # Why nothing works when the broker refuses the credentials (else None).
                    "authentication_error": adapter_stats.get("authentication_error"),
                    **extra,
                },
            },
            # A subscription stopped by a fatal error (fenced) no longer consumes.
            "healthy": adapter_healthy and not open_circuits and not failed_consumers,
            "config": {
                "dlq_enabled": self.config.enable_dlq,
                "validation_enabled": self.validate_on_publish,
                "critical_channels": self.critical_channels,
                "total_channels_monitored": len(breakers),
            },
        }


_default_bus: EventBus | None = None


def set_event_bus(bus: EventBus | None) -> None:
    """Installs the process-wide bus that :func:`get_event_bus` returns."""
    global _default_bus
    _default_bus = bus


def reset_event_bus() -> None:
    """Forgets the process-wide bus (for tests); does not close it."""
    set_event_bus(None)


def get_event_bus() -> EventBus:
    """The process-wide bus. If none was installed, one is built from the environment: on
    Kafka (``RedpandaTransportAdapter``), or in memory when ``ENABLE_EVENT_BUS=false``. It
    connects on first use."""
    global _default_bus
    if _default_bus is None:
        config = EventBusConfig.from_env()
        transport = TransportConfig.from_env()
        adapter: TransportAdapter
        if config.enable_event_bus:
            from ..transports.kafka.adapter import RedpandaTransportAdapter

            adapter = RedpandaTransportAdapter(event_bus_config=config, transport_config=transport)
        else:
            from ..transports.memory.adapter import MemoryTransportAdapter

            logger.warning(
                "ENABLE_EVENT_BUS=false: events stay in this process (in-memory transport)"
            )
            adapter = MemoryTransportAdapter(config, transport)
        _default_bus = EventBus(adapter, event_bus_config=config, transport_config=transport)
    return _default_bus
