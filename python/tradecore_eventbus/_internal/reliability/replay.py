"""Replaying a channel's DLQ: its events go back to the channel they failed on.

Each DLQ record's event (without ``_dlq_metadata``, same ``event_id`` and key) is published
again through the publish pipeline. Progress is committed in a consumer group of its own,
so a replay never republishes an event twice; records that hold no event (``_raw_value``:
an undecodable or capped copy) and events that can never be published as they are (NaN,
decision 52) are skipped and stay in the DLQ topic.

A replay can be limited to dead letters of some ``error_type``s (the others are passed over,
``filtered``, and committed like the rest: a filtered replay should have a group of its own),
can be a dry run (nothing is published or committed; ``republished`` counts what would be),
and reports its progress after each batch to a callback (the CLI's progress bar).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

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
from .dead_letters.record import METADATA_KEY, replay_target

logger = logging.getLogger("tradecore_eventbus.replay")

#: Records taken from the DLQ per round.
REPLAY_BATCH = 500


@dataclass(frozen=True)
class ReplayProgress:
    """Where a replay is, after each batch: its counts so far, and the records still behind
    in the DLQ as far as the consumer knows (None before it knows)."""

    counts: dict[str, int]
    remaining: int | None


ProgressCallback = Callable[[ReplayProgress], None]


def error_type_of(value: bytes | None) -> str | None:
    """The ``_dlq_metadata.error_type`` of a DLQ record's value, if it has one."""
    if value is None:
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return None
    meta = decoded.get(METADATA_KEY) if isinstance(decoded, dict) else None
    error_type = meta.get("error_type") if isinstance(meta, dict) else None
    return error_type if isinstance(error_type, str) else None


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
        self,
        channel: str,
        *,
        max_events: int | None,
        idle_timeout: float,
        group: str,
        error_types: Collection[str] | None = None,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        stop_at_end: bool = False,
    ) -> dict[str, int]:
        """Replays ``channel``'s DLQ: {read, republished, skipped, filtered, failed}. Stops
        when the DLQ has been idle for ``idle_timeout`` seconds, after ``max_events``, or at
        the first event that cannot be republished now (it is replayed next time).

        ``error_types``: only dead letters whose ``error_type`` is one of these are
        republished; the others count as ``filtered``. ``dry_run``: nothing is published
        and nothing committed. ``progress`` is called after each batch.
        ``stop_at_end``: also stop once every assigned partition is read to its end (as the
        consumer's cached high watermarks say), without waiting ``idle_timeout``."""
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
                enable_commit=not dry_run,
                max_poll_records=tc.consumer_max_poll_records,
                client_id=f"{tc.client_id}-dlq-replay",
            )
        )
        counts = {"read": 0, "republished": 0, "skipped": 0, "filtered": 0, "failed": 0}
        wanted = None if error_types is None else frozenset(error_types)
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
                handled = await self._replay_records(channel, records, counts, wanted, dry_run)
                behind = consumer.lag()
                if progress is not None:
                    remaining = sum(n for _, _, n in behind) if behind else None
                    progress(ReplayProgress(dict(counts), remaining))
                if not dry_run:
                    consumer.mark_processed(handled)
                    if len(handled) < len(records):
                        break
                if stop_at_end and _at_end(behind, consumer.assignment()):
                    break
            if not dry_run:
                await consumer.commit()
        finally:
            await consumer.close()
        logger.info("replayed the DLQ of %s: %s", channel, counts)
        return counts

    async def _replay_records(
        self,
        channel: str,
        records: Sequence[RecordLike],
        counts: dict[str, int],
        wanted: frozenset[str] | None,
        dry_run: bool,
    ) -> list[RecordLike]:
        handled: list[RecordLike] = []
        for record in records:
            if wanted is not None and error_type_of(record.value) not in wanted:
                counts["filtered"] += 1
                handled.append(record)
                continue
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
            if dry_run:
                counts["republished"] += 1
                handled.append(record)
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


def _at_end(behind: list[tuple[str, int, int]], assignment: list[tuple[str, int]]) -> bool:
    """Every assigned partition's lag is known and zero."""
    known = {(t, p) for t, p, _ in behind}
    return bool(assignment) and known >= set(assignment) and all(n == 0 for *_, n in behind)
