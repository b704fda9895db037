"""``EventBus``: the guide's API over a transport adapter.

Publishing: enrich -> validate -> encode every event, then send (one call per batch), and
return once the broker acknowledged. Subscribing: one consumer per subscription, live when
the call returns, handled in the background until ``unsubscribe`` or ``close``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from tradecore_eventbus import _core

from ...exceptions import ClosedError, InvalidArgumentError
from ..config.checks import check_retry_delays, check_spool_dir
from ..config.consumer_groups import group_id as prefixed_group
from ..config.settings import EventBusConfig, TransportConfig
from ..consuming.handlers import EventT, Handler
from ..consuming.subscription import FilterFn, Subscription
from ..observability.counters import Counters
from ..observability.dispatch import SILENT, Observers
from ..observability.observer import Observer, PublishTrace
from ..observability.sampler import Sampler
from ..observability.tracing import OpenTelemetryTracing
from ..publishing.coalescer import Coalescer
from ..publishing.pipeline import Publisher
from ..publishing.prepare import PreparedBatch, PublishResult, prepare, results_for
from ..publishing.topic_creation import ChannelTopics
from ..publishing.traced import report_delivered, report_failure, with_event_ids
from ..reliability.breakers import BreakerRegistry, BreakerStatus
from ..reliability.dead_letters.writer import DeadLetterWriter
from ..reliability.replay import DlqReplay, ReplayProgress
from ..reliability.spool.drainer import SpoolDrainer
from ..reliability.spool.files import Spool
from ..transports.protocol import TransportAdapter
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
from .configs import live_configs
from .health import HealthReport, assemble_health
from .subscribing import Subscriber, SubscribeRequest

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
        observers: Sequence[Observer] | None = None,
    ) -> None:
        self.adapter = adapter
        # One live configuration, the adapter's (decision 64).
        self.config, self.transport_config = live_configs(
            adapter, event_bus_config, transport_config
        )
        self.validate_on_publish = (
            self.config.validate_on_publish if validate_on_publish is None else validate_on_publish
        )
        self.counters = Counters()
        self.observers = Observers(self.counters, observers or ())
        if self.config.tracing and not self.observers.traces():
            # EVENT_BUS_TRACING: the global tracer provider and propagator (configured in
            # code, or by opentelemetry-instrument from the OTEL_* variables).
            self.observers.add(OpenTelemetryTracing())
        self.breakers = BreakerRegistry(self.config, clock, self.observers)
        # Checked now: an outage is the worst time to learn that events cannot be kept.
        check_spool_dir(
            spool_dir or self.config.spool_dir,
            "spool_dir" if spool_dir else "EventBusConfig.spool_dir (EVENT_BUS_SPOOL_DIR)",
        )
        self.spool = Spool(spool_dir or self.config.spool_dir)
        self.topics = ChannelTopics(adapter, self.config, self.transport_config)
        self.dead_letters = DeadLetterWriter(
            adapter,
            self.config,
            self.transport_config,
            self.spool,
            self.observers,
            self.topics.ensure_channel,
        )
        self.drainer = SpoolDrainer(
            adapter,
            self.config,
            self.transport_config,
            self.spool,
            self.observers,
            self.topics.ensure_channel,
        )
        self.publisher = Publisher(
            adapter,
            self.config,
            self.breakers,
            self.topics,
            self.dead_letters,
            self.drainer,
            self.observers,
        )
        self._subscriptions: dict[str, Subscription] = {}
        self.subscriber = Subscriber(
            adapter,
            self.config,
            self.transport_config,
            self.observers,
            self.dead_letters,
            self.publisher.ensure_channel,
            self._subscriptions,
        )
        self._health_sources: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {}
        self._coalescers: dict[str, Coalescer] = {}
        self._start_lock = asyncio.Lock()
        self._started = False
        self._closing = False
        self._close_task: asyncio.Task[None] | None = None
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._sampler = Sampler(self.observers, self._subscriptions, self.config)

    def add_observer(self, observer: Observer) -> None:
        """Reports what the bus does to ``observer`` from now on (metrics, tracing, ...)."""
        self.observers.add(observer)
        self._sampler.start_if_needed()

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
                self.drainer.start()  # if entries are left over from an earlier run
                self._sampler.start_if_needed()

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
        self.drainer.stop()
        await self._sampler.stop()
        subs = list(self._subscriptions.values())
        self._subscriptions.clear()
        await asyncio.gather(
            *(s.stop(max(0.0, deadline - time.monotonic())) for s in subs), return_exceptions=True
        )
        try:
            # Asked first: a spent budget must not report idle publishers as still waiting.
            if not self._idle.is_set():
                await asyncio.wait_for(self._idle.wait(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            logger.error(
                "close: %d publish call(s) still waiting for the broker after %.1fs",
                self._inflight,
                budget,
            )
        # What is left of the budget: the producer's flush is part of the bound too.
        await self.adapter.close(max(0.0, deadline - time.monotonic()))

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
        tracing = self.observers.trace_publish
        if tracing is not SILENT:
            events_data_list = with_event_ids(events_data_list)
            trace = tracing(
                channel, topic, events_data_list, [partition_key] * len(events_data_list), True
            )
            if trace is not None:
                return await self._publish_batch_traced(
                    channel, topic, events_data_list, partition_key, trace
                )
        return await self._publish_batch(channel, topic, events_data_list, partition_key)

    async def _publish_batch(
        self,
        channel: str,
        topic: str,
        events: Sequence[Mapping[str, Any]],
        partition_key: str | None,
        extra_headers: Sequence[Mapping[str, str] | None] | None = None,
    ) -> list[PublishResult]:
        prepared = prepare(
            channel,
            events,
            partition_key,
            validate=self.validate_on_publish,
            strict=self.config.strict_validation,
            headers=self.transport_config.producer_event_headers,
            extra_headers=extra_headers,
            # An explicit batch is complete: it does not wait for linger.ms (decision 95).
            immediate=True,
        )
        self._enter()
        try:
            deliveries = await self._send(channel, topic, prepared)
        finally:
            self._leave()
        return results_for(channel, topic, partition_key, prepared, deliveries)

    async def _publish_batch_traced(
        self,
        channel: str,
        topic: str,
        events: Sequence[Mapping[str, Any]],
        partition_key: str | None,
        trace: PublishTrace,
    ) -> list[PublishResult]:
        try:
            results = await self._publish_batch(
                channel,
                topic,
                events,
                partition_key,
                [trace.headers(i) for i in range(len(events))],
            )
        except BaseException as exc:
            report_failure(trace, exc, len(events))
            raise
        else:
            report_delivered(trace, [(r.partition, r.offset) for r in results])
        finally:
            trace.end()
        return results

    def _publish_one(
        self, channel: str, event: Mapping[str, Any], key: str | None
    ) -> Awaitable[PublishResult]:
        """What the caller awaits for one event: its future in the channel's next batch (a
        plain function, not a coroutine: one coroutine less per publish, decision 109)."""
        if self._closing:
            raise ClosedError("the event bus is closed")
        coalescer = self._coalescers.get(channel)
        if coalescer is None:
            topic = self.adapter.topic_for(channel)
            coalescer = self._coalescers[channel] = Coalescer(self, channel, topic)
        tracing = self.observers.trace_publish
        if tracing is not SILENT:
            # Started here, in the caller's context (its span is the parent), not in the
            # coalesced batch's task.
            [event] = with_event_ids([event])
            trace = tracing(channel, coalescer.topic, [event], [key], False)
            if trace is not None:
                return self._publish_one_traced(coalescer, event, key, trace)
        return coalescer.submit(event, key)

    async def _publish_one_traced(
        self, coalescer: Coalescer, event: Mapping[str, Any], key: str | None, trace: PublishTrace
    ) -> PublishResult:
        try:
            result = await coalescer.submit(event, key, trace.headers(0))
        except BaseException as exc:
            trace.failed(0, exc)
            raise
        else:
            trace.delivered(0, result.partition, result.offset)
        finally:
            trace.end()
        return result

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
            return await self.publisher.send(channel, topic, prepared)
        finally:
            self.drainer.start()

    # ------------------------------------------------------------------ spool and DLQ

    async def replay_spool(self) -> dict[str, int]:
        """Publishes every spooled event now (in order); returns {sent, already_delivered,
        remaining}. Events whose failed delivery may have been written are looked up first
        and not sent twice."""
        await self.start()
        return (await self.drainer.drain()).as_dict()

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
        return {"revived": revived, **(await self.drainer.drain()).as_dict()}

    async def replay_dlq(
        self,
        channel: str,
        *,
        max_events: int | None = None,
        idle_timeout: float = 2.0,
        group: str = "dlq-replay",
        error_types: Sequence[str] | None = None,
        dry_run: bool = False,
        progress: Callable[[ReplayProgress], None] | None = None,
        stop_at_end: bool = False,
    ) -> dict[str, int]:
        """Republishes the events of ``channel``'s DLQ to their original channel (without
        ``_dlq_metadata``, same event_id and key) and reports counts: {read, republished,
        skipped, filtered, failed}. Progress is committed in the group ``group``, so a
        replay never republishes an event twice; records that are not events
        (``_raw_value``) are counted as skipped. Stops when the DLQ has been idle for
        ``idle_timeout`` seconds.

        ``error_types`` limits the replay to dead letters of those ``error_type``s; the
        others are counted as ``filtered`` and committed too, so give a filtered replay a
        ``group`` of its own (they stay replayable in any other group). ``dry_run`` publishes
        and commits nothing (``republished`` counts what would be). ``progress`` is called
        with a ``ReplayProgress`` after each batch read. ``stop_at_end`` also stops once the
        DLQ is read to its end, without waiting ``idle_timeout``."""
        check_name(channel, "channel")
        if max_events is not None:
            check_positive_int(max_events, "max_events")
        check_seconds(idle_timeout, "idle_timeout")
        check_name(group, "group")
        if error_types is not None:
            if isinstance(error_types, str):
                raise InvalidArgumentError("error_types must be a list of names, got str")
            error_types = [check_name(t, "error_types[]") for t in error_types]
        check_callable(progress, "progress", optional=True)
        if self._closing:
            raise ClosedError("the event bus is closed")
        await self.start()
        replay = DlqReplay(self.adapter, self.config, self.transport_config, self.publisher)
        return await replay.run(
            channel,
            max_events=max_events,
            idle_timeout=idle_timeout,
            group=group,
            error_types=error_types,
            dry_run=bool(dry_run),
            progress=progress,
            stop_at_end=bool(stop_at_end),
        )

    # ------------------------------------------------------------------ subscribing

    async def subscribe(
        self, channel: str, handler: Handler[EventT], filter_fn: FilterFn | None = None
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
            SubscribeRequest(
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
        )

    async def subscribe_stream(
        self,
        channel: str,
        handler: Handler[EventT],
        group: str | None = None,
        consumer: str | None = None,
        batch_size: int | None = None,
        block_ms: int | None = None,
        filter_fn: FilterFn | None = None,
        *,
        retry_topic_delays_ms: Sequence[int] | None = None,
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
        back without a rebalance.

        ``retry_topic_delays_ms`` (default: the channel's ``add_topic_config`` setting; None:
        off) turns on retry topics (decision 105): an event that still fails after the
        handler retry policy's attempts goes to ``{channel}.retry.1``, due after the first
        delay, then to ``.retry.2``, ..., and after the last tier to the DLQ. Its partition
        moves on meanwhile, so events of one key can be handled out of order."""
        check_name(channel, "channel")
        delays = (
            check_retry_delays(retry_topic_delays_ms, "retry_topic_delays_ms")
            if retry_topic_delays_ms is not None
            else self.config.retry_topic_delays_for(channel)
        )
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
        instance_id = self.subscriber.instance_id(group_id, channel, consumer)
        request = SubscribeRequest(
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
        return await self._subscribe(request, delays)

    async def _subscribe(
        self, request: SubscribeRequest, retry_delays: tuple[int, ...] | None = None
    ) -> str:
        if self._closing:
            raise ClosedError("the event bus is closed")
        check_callable(request.handler, "handler")
        check_callable(request.filter_fn, "filter_fn", optional=True)
        self.adapter.topic_for(request.channel)  # checked before anything starts
        # One budget for the whole call (decision 46): connecting, creating the topics and
        # joining the group all come out of EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS.
        budget = self.config.consumer_poll_timeout_ms / 1000.0
        deadline = time.monotonic() + budget
        await self.start()
        return await self.subscriber.subscribe(request, retry_delays, budget, deadline)

    async def unsubscribe(self, subscription_id: str) -> bool:
        """Stops exactly that subscriber (its running handler finishes, what it processed
        is committed). Returns False for an unknown or already stopped id."""
        sub = self._subscriptions.pop(subscription_id, None)
        if sub is None:
            return False
        retry_id = self.subscriber.retry_subscriptions.pop(subscription_id, None)
        retry_sub = None if retry_id is None else self._subscriptions.pop(retry_id, None)
        await asyncio.gather(
            *(s.stop(self.config.close_timeout_seconds) for s in (sub, retry_sub) if s is not None)
        )
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

    async def get_circuit_breaker_status(self) -> dict[str, BreakerStatus]:
        """Per channel: state, failure_count, consecutive_successes, total_failures,
        total_success, last_failure_time."""
        return self.breakers.status()

    async def check_connection(self, timeout: float = 5.0) -> bool:
        """Whether the broker answers a metadata request within ``timeout`` seconds."""
        return await self.adapter.ping(check_seconds(timeout, "timeout"))

    async def health_check(self, timeout: float = 5.0) -> HealthReport:
        """The guide's health structure. Never raises (but for a ``timeout`` that is not a
        finite, non-negative number); bounded by ``timeout``."""
        check_seconds(timeout, "timeout")
        return await assemble_health(self, timeout)
