"""How a subscribe call becomes a running ``Subscription``: its consumer, its retry tier and
the retry topics' own subscription (decision 106), the one time budget of the call
(decision 46), static member ids (decision 42), and the DLQ path of its records.

``EventBus.subscribe`` / ``subscribe_stream`` check the caller's arguments and build a
:class:`SubscribeRequest`; :class:`Subscriber` does the rest.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ...exceptions import InvalidArgumentError
from ..config.consumer_groups import static_instance_id
from ..config.settings import EventBusConfig, TransportConfig
from ..consuming.handlers import Handler
from ..consuming.retry_tier import RetryTier
from ..consuming.subscription import MARK_CHUNK, FilterFn, Subscription
from ..observability.dispatch import Observers
from ..reliability.dead_letters.writer import DeadLetterWriter, consumed_letter
from ..transports.protocol import RecordLike, TransportAdapter
from ..transports.structs import ConsumerSpec, Mode
from ..wire.topics import retry_topic_specs

logger = logging.getLogger("tradecore_eventbus.event_bus")


@dataclass(frozen=True)
class SubscribeRequest:
    """One subscriber, as the caller asked for it (arguments already checked)."""

    channel: str
    handler: Handler[Any]
    mode: Mode
    group: str
    consumer_name: str
    filter_fn: FilterFn | None
    batch_size: int
    block_ms: int
    auto_offset_reset: str
    group_instance_id: str | None = None


class Subscriber:
    """Starts subscriptions into ``subscriptions`` (the bus's registry, by id) and records
    which retry-topic subscription belongs to which channel subscription."""

    def __init__(
        self,
        adapter: TransportAdapter,
        config: EventBusConfig,
        transport_config: TransportConfig,
        observers: Observers,
        dead_letters: DeadLetterWriter,
        ensure_channel: Callable[..., Awaitable[Any]],
        subscriptions: dict[str, Subscription],
    ) -> None:
        self.adapter = adapter
        self.config = config
        self.transport_config = transport_config
        self.observers = observers
        self.dead_letters = dead_letters
        self.ensure_channel = ensure_channel
        self.subscriptions = subscriptions
        #: channel subscription id -> the id of its retry topics' subscription.
        self.retry_subscriptions: dict[str, str] = {}

    def instance_id(self, group_id: str, channel: str, consumer: str | None) -> str | None:
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
        for sub in self.subscriptions.values():
            if sub.group_instance_id == instance_id and sub.failure is None:
                raise InvalidArgumentError(
                    f"consumer {consumer!r} already subscribed {channel!r} in group "
                    f"{group_id!r} in this process: with static membership a second member "
                    "with the same name would fence the first; use another consumer name"
                )
        return instance_id

    async def subscribe(
        self,
        request: SubscribeRequest,
        retry_delays: tuple[int, ...] | None,
        budget: float,
        deadline: float,
    ) -> str:
        """Starts the subscription (and, with ``retry_delays``, its retry tier) by
        ``deadline`` (``time.monotonic()``), the end of the call's one budget of
        ``EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS`` (decision 46)."""
        channel = request.channel
        topic = self.adapter.topic_for(channel)
        await self.ensure_channel(channel, timeout=budget)
        tier: RetryTier | None = None
        if retry_delays:
            specs = retry_topic_specs(channel, retry_delays, self.config, self.transport_config)
            await self.adapter.ensure_topics(specs, max(0.0, deadline - time.monotonic()))
            tier = RetryTier(
                channel,
                request.group,
                retry_delays,
                tuple(s.name for s in specs),
                self.adapter.producer,
                self.observers,
            )
        sub = self._new_subscription(request, topic, tier)
        retry_sub: Subscription | None = None
        if tier is not None:
            # The retry topics' own consumer, in the group ``{group}.retry`` (decision 106):
            # started first, so the channel's subscription never writes where nobody reads.
            retry_group = f"{request.group}.retry"
            retry_request = dataclasses.replace(
                request,
                group=retry_group,
                filter_fn=None,  # filtered out events never reach a retry topic
                # A new retry group must not skip what was scheduled before it first joined.
                auto_offset_reset="earliest",
                group_instance_id=None
                if request.group_instance_id is None
                else static_instance_id(retry_group, channel, request.consumer_name),
            )
            retry_sub = self._new_subscription(retry_request, tier.topics[0], tier, tier.topics)
            await self._start(retry_sub, deadline)
        try:
            await self._start(sub, deadline)
        except BaseException:
            if retry_sub is not None:
                self.subscriptions.pop(retry_sub.id, None)
                await retry_sub.stop(self.config.close_timeout_seconds)
            raise
        if retry_sub is not None:
            self.retry_subscriptions[sub.id] = retry_sub.id
        return sub.id

    def _new_subscription(
        self,
        request: SubscribeRequest,
        topic: str,
        tier: RetryTier | None,
        topics: tuple[str, ...] = (),
    ) -> Subscription:
        tc = self.transport_config
        spec = ConsumerSpec(
            topic=topic,
            group_id=request.group,
            mode=request.mode,
            auto_offset_reset=request.auto_offset_reset,
            enable_commit=request.mode == "stream",
            max_poll_records=tc.consumer_max_poll_records,
            client_id=f"{tc.client_id}-{request.consumer_name}",
            group_instance_id=request.group_instance_id,
        )
        sub = Subscription(
            id=str(uuid.uuid4()),
            channel=request.channel,
            topic=topic,
            mode=request.mode,
            group_id=request.group,
            consumer_name=request.consumer_name,
            consumer=self.adapter.new_consumer(spec),
            handler=request.handler,
            filter_fn=request.filter_fn,
            batch_size=request.batch_size,
            block_ms=request.block_ms,
            max_concurrent_partitions=self.config.max_concurrent_partitions,
            retry=self.config.handler_retry_for(request.channel),
            dead_letter=None,
            stop_timeout_s=self.config.close_timeout_seconds,
            # At most one commit batch of handled records per partition waits to be marked,
            # so a crash hands at most that many to the next owner again.
            mark_chunk=min(MARK_CHUNK, tc.commit_batch_size),
            group_instance_id=request.group_instance_id,
            dlq_retry=self.config.publish_retry,
            observers=self.observers,
            retry_tier=tier,
            topics=topics,
        )
        if self.config.enable_dlq:
            sub.dead_letter = functools.partial(self._dead_letter_consumed, sub)
        return sub

    async def _start(self, sub: Subscription, deadline: float) -> None:
        live_timeout = max(0.0, deadline - time.monotonic())
        # A stream subscription outlives a rebalance that takes longer than the timeout; a
        # pub/sub one must be live when the call returns (it starts at the latest offset).
        await sub.start(
            live_timeout,
            (lambda: self.adapter.ping(live_timeout)) if sub.mode == "stream" else None,
        )
        self.subscriptions[sub.id] = sub
        logger.info(
            "subscribed %s to %s (%s, group %s, %s)",
            sub.id,
            ", ".join(sub.topics or (sub.topic,)),
            sub.mode,
            sub.group_id,
            sub.state,
        )

    async def _dead_letter_consumed(
        self,
        sub: Subscription,
        record: RecordLike,
        event: dict[str, Any] | None,
        error: BaseException,
        retries: int,
    ) -> None:
        letter = (
            consumed_letter(sub.group_id, sub.channel, record, event, error, retries)
            if sub.retry_tier is None
            else sub.retry_tier.dead_letter(record, event, error, retries)
        )
        await self.dead_letters.write_consumed(sub.channel, letter)
