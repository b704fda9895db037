"""``dead_letters``: what the bus dead-lettered for a channel, read from its DLQ topic."""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass
from typing import Any

from ...exceptions import InvalidArgumentError
from ..bus.arguments import check_name, check_seconds
from ..bus.event_bus import EventBus
from ..reliability.dead_letters.record import METADATA_KEY, RAW_VALUE_KEY, original_event
from ..transports.poll import poll_batch
from ..wire.topics import dlq_channel
from .reading import topic_reader, value_of


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a channel's DLQ topic."""

    #: The event as it was published or consumed, without ``_dlq_metadata``; None when the
    #: DLQ holds raw bytes instead (a record that was not an event, or a copy truncated to
    #: fit ``message.max.bytes``).
    event: dict[str, Any] | None
    #: ``_dlq_metadata``: original_channel, original_partition, original_offset,
    #: consumer_group, error_type, error_message, failed_at, retry_count (and
    #: original_truncated, original_size, original_topic for a truncated copy).
    metadata: dict[str, Any]
    #: The bytes of ``_raw_value`` when ``event`` is None.
    raw_value: bytes | None = None


def _letter(value: dict[str, Any]) -> DeadLetter:
    meta = value.get(METADATA_KEY)
    raw: bytes | None = None
    encoded = value.get(RAW_VALUE_KEY)
    if isinstance(encoded, str):
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raw = encoded.encode()
    return DeadLetter(
        event=original_event(value), metadata=meta if isinstance(meta, dict) else {}, raw_value=raw
    )


async def dead_letters(
    bus: EventBus, channel: str, *, count: int = 1, timeout: float = 10.0
) -> list[DeadLetter]:
    """The dead letters of ``channel`` (its ``{channel}{DLQ_TOPIC_SUFFIX}`` topic, read from
    the beginning), once there are at least ``count`` of them: every one read by then, in
    the order read (per partition, in offset order).

    Dead-lettering a consumed event happens in the background (after the handler's
    retries), so this waits: up to ``timeout`` seconds for ``count`` letters, then raises
    ``AssertionError`` naming the channel, the DLQ topic and how many there were.
    ``count=0`` reads for the whole ``timeout`` and returns what came (``[]`` asserts that
    nothing was dead-lettered within that window).
    """
    check_name(channel, "channel")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidArgumentError(f"count must be an int >= 0, got {count!r}")
    check_seconds(timeout, "timeout")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    dlq = dlq_channel(channel, bus.config.dlq_topic_suffix)
    topic = bus.adapter.topic_for(dlq)
    letters: list[DeadLetter] = []
    async with topic_reader(bus, channel, topic, deadline) as consumer:
        batch = bus.transport_config.consumer_max_poll_records
        while count == 0 or len(letters) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            records = await poll_batch(consumer, batch, remaining)
            letters.extend(_letter(v) for r in records if (v := value_of(r)) is not None)
        # What is already fetched belongs to the answer too (never waits).
        while records := consumer.take(batch):
            letters.extend(_letter(v) for r in records if (v := value_of(r)) is not None)
    if len(letters) < count:
        raise AssertionError(
            f"expected at least {count} dead letter(s) for channel {channel!r} (topic "
            f"{topic!r}) within timeout={timeout}s, found {len(letters)}"
        )
    return letters
