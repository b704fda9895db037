"""Reading a topic as an operator's tool: a plain consumer assigned to every partition from a
point in time (no group membership, nothing committed), so that reading never moves a
subscriber's offsets or joins its group."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tradecore_eventbus import _core

from ..config.consumer_groups import group_id as prefixed_group
from ..transports.poll import close_within
from ..transports.protocol import RecordLike
from .settings import Settings


@dataclass
class TopicReader:
    consumer: _core.Consumer
    #: Per partition, the end offset when the reader started (what "up to now" means).
    ends: dict[int, int]
    #: Partitions with records between the start and ``ends``.
    behind: dict[int, int]

    def passed(self, record: RecordLike) -> None:
        end = self.behind.get(record.partition)
        if end is not None and record.offset + 1 >= end:
            del self.behind[record.partition]


@asynccontextmanager
async def topic_reader(
    settings: Settings, topic: str, *, since_ms: int | None, purpose: str
) -> AsyncIterator[TopicReader]:
    """A reader of ``topic`` from ``since_ms`` (0: the beginning; None: now)."""
    tc = settings.transport
    group = prefixed_group(f"cli-{purpose}-{uuid.uuid4().hex[:12]}", tc.consumer_group_id_prefix)
    consumer = _core.Consumer(
        tc.bootstrap_servers,
        group,
        client_id=f"{tc.client_id}-cli-{purpose}",
        enable_commit=False,
        max_poll_records=tc.consumer_max_poll_records,
        config=tc.librdkafka_config,
    )
    try:
        start = int(time.time() * 1000) if since_ms is None else since_ms
        plan = await consumer.assign_from_time(topic, start, settings.timeout)
        ends = {p: end for p, _, end in plan}
        yield TopicReader(consumer, ends, {p: end for p, begin, end in plan if begin < end})
    finally:
        await close_within(consumer, settings.bus.close_timeout_seconds, f"reader of {topic}")
