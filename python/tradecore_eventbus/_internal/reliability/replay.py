"""Replaying a channel's DLQ: its events go back to the channel they failed on.

Each DLQ record's event (without ``_dlq_metadata``, same ``event_id`` and key) is published
again through the publish pipeline. Progress is committed in a consumer group of its own,
so a replay never republishes an event twice; records that hold no event (``_raw_value``:
an undecodable or capped copy) and events that can never be published as they are (NaN,
decision 52) are skipped and stay in the DLQ topic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from ...exceptions import EventBusError, EventValidationError
from ..config.consumer_groups import group_id as prefixed_group
from ..config.settings import EventBusConfig, TransportConfig
from ..publishing.pipeline import Publisher
from ..publishing.prepare import PreparedEvent, PythonBatch
from ..transports.poll import poll_batch
from ..transports.protocol import RecordLike, TransportAdapter
from ..transports.structs import ConsumerSpec
from ..wire.envelope import encode, headers_for
from ..wire.topics import dlq_channel
from ..wire.trace_context import trace_headers
from .dead_letters.record import replay_target

logger = logging.getLogger("tradecore_eventbus.replay")

#: Records taken from the DLQ per round.
REPLAY_BATCH = 500


class DlqReplay:
    def __init__(
        self,
        adapter: TransportAdapter,
        config: EventBusConfig,
        transport_config: TransportConfig,
        publisher: Publisher,
    ) -> None:
        self.adapter = adapter
        self.config = config
        self.transport_config = transport_config
        self.publisher = publisher

    async def run(
        self, channel: str, *, max_events: int | None, idle_timeout: float, group: str
    ) -> dict[str, int]:
        """Replays ``channel``'s DLQ: {read, republished, skipped, failed}. Stops when the
        DLQ has been idle for ``idle_timeout`` seconds, after ``max_events``, or at the
        first event that cannot be republished now (it is replayed next time)."""
        dlq = dlq_channel(channel, self.config.dlq_topic_suffix)
        budget = self.config.consumer_poll_timeout_ms / 1000.0
        deadline = time.monotonic() + budget
        await self.publisher.ensure_channel(dlq, timeout=budget)
        dlq_topic = self.adapter.topic_for(dlq)
        tc = self.transport_config
        consumer = self.adapter.new_consumer(
            ConsumerSpec(
                topic=dlq_topic,
                group_id=prefixed_group(f"{group}-{channel}", tc.consumer_group_id_prefix),
                mode="stream",
                auto_offset_reset="earliest",
                enable_commit=True,
                max_poll_records=tc.consumer_max_poll_records,
                client_id=f"{tc.client_id}-dlq-replay",
            )
        )
        counts = {"read": 0, "republished": 0, "skipped": 0, "failed": 0}
        consumer.subscribe([dlq_topic])
        try:
            await consumer.wait_assigned(max(0.0, deadline - time.monotonic()))
            while max_events is None or counts["read"] < max_events:
                limit = (
                    REPLAY_BATCH
                    if max_events is None
                    else min(REPLAY_BATCH, max_events - counts["read"])
                )
                records = await poll_batch(consumer, limit, idle_timeout)
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
            # The event's trace goes on: the dead letter kept its creation context.
            headers += trace_headers(record.headers)
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
