"""Reading a channel's topic from its beginning, as any Kafka client would, for test helpers.

The readers are plain consumers of the bus's transport, not ``bus.subscribe*`` subscriptions:
they never show up in ``bus.subscriptions()`` or ``health_check()`` (a test asserting on
those must not see its own helpers), never commit, and have a group of their own each.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..bus.event_bus import EventBus
from ..config.consumer_groups import group_id as prefixed_group
from ..transports.protocol import ConsumerLike, RecordLike
from ..transports.structs import ConsumerSpec


@asynccontextmanager
async def topic_reader(
    bus: EventBus, channel: str, topic: str, deadline: float
) -> AsyncIterator[ConsumerLike]:
    """A consumer of ``topic`` (``channel``'s topic or its DLQ topic) from the earliest
    offset, assigned and ready to poll; setting it up counts against ``deadline`` (the
    loop's clock)."""
    loop = asyncio.get_running_loop()
    await bus.start()
    # The bus's own topic creation (with the channel's retention and its DLQ topic): a reader
    # started before the first publish must not create the topic with other settings.
    await bus.topics.ensure_channel(channel, timeout=max(0.0, deadline - loop.time()))
    tc = bus.transport_config
    group = prefixed_group(f"eventbus-testing-{uuid.uuid4().hex[:12]}", tc.consumer_group_id_prefix)
    consumer = bus.adapter.new_consumer(
        ConsumerSpec(
            topic=topic,
            group_id=group,
            mode="stream",
            # Fixed here, not from KAFKA_CONSUMER_AUTO_OFFSET_RESET: the helpers count what
            # was written before they were called.
            auto_offset_reset="earliest",
            enable_commit=False,
            max_poll_records=tc.consumer_max_poll_records,
            client_id=f"{tc.client_id}-{group}",
        )
    )
    try:
        consumer.subscribe([topic])
        await consumer.wait_assigned(max(0.0, deadline - loop.time()))
        yield consumer
    finally:
        await consumer.close()


def value_of(record: RecordLike) -> dict[str, Any] | None:
    """The record's value as a JSON object, or None for one that is not (a tombstone, not
    JSON): readers skip those rather than fail a test on another client's record. Not
    ``envelope.decode``: a DLQ value holding raw bytes has no ``event_type``."""
    raw = record.value
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:  # not UTF-8 or not JSON
        return None
    return value if isinstance(value, dict) else None
