"""A channel's retry topics (decision 105): where a failing event waits for its next attempt
without holding back its partition.

After its in-place attempts (the handler retry policy) a failing event is written to
``{channel}.retry.1`` and its original offset is committed as handled; only once the broker
acknowledged the copy (at-least-once). Tier ``n`` holds events due ``delays_ms[n-1]`` after
they were written, so the records of one retry partition are in due order (each tier has one
fixed delay): the retry subscription waits for a partition's first record to be due, which
never delays a record behind it past its own due time. Each delivery from a retry topic is
one attempt; a failure moves the event to the next tier, and after the last one to the DLQ
with its history (decision 107).

The copy keeps the original's key, value and headers, plus ``retry.*`` headers: the attempts
made so far, the tier, the due time (ms since the epoch), the original's coordinates, the
last error, and the history of the tiers it went through (JSON).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config.security import redact
from ..observability.observer import Observer
from ..reliability.dead_letters.record import Failure
from ..reliability.dead_letters.writer import DeadLetter
from ..transports.protocol import ProducerLike, RecordLike
from ..transports.structs import HeaderList

logger = logging.getLogger("tradecore_eventbus.retry_topics")

HEADER_PREFIX = "retry."
ATTEMPTS = "retry.attempts"
TIER = "retry.tier"
DUE_AT_MS = "retry.due_at_ms"
ORIGINAL_TOPIC = "retry.original_topic"
ORIGINAL_PARTITION = "retry.original_partition"
ORIGINAL_OFFSET = "retry.original_offset"
ERROR_TYPE = "retry.error_type"
ERROR_MESSAGE = "retry.error_message"
HISTORY = "retry.history"
#: An error message in a retry header is cut to this many characters (the history repeats
#: it once per tier; the DLQ keeps up to ``ERROR_MESSAGE_CHARS`` of the last one).
ERROR_CHARS = 500

#: Wall-clock time in seconds (a seam: tests read it to compare with the due headers).
_now = time.time


def _int_header(record: RecordLike, name: str) -> int | None:
    raw = record.header(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def _message(error: BaseException) -> str:
    text = redact(str(error))
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 3] + "..."


@dataclass
class RetryTier:
    """The retry topics of one stream subscription's channel."""

    channel: str
    #: The user's group (the DLQ metadata's ``consumer_group``).
    group: str
    delays_ms: tuple[int, ...]
    #: Topic of tier 1, 2, ... (``{topic}.retry.{n}``).
    topics: tuple[str, ...]
    producer: Callable[[], ProducerLike]
    observers: Observer = field(default_factory=Observer)

    def tier_of(self, topic: str) -> int:
        """0 for the channel's own topic, else the tier (1-based) of a retry topic."""
        try:
            return self.topics.index(topic) + 1
        except ValueError:
            return 0

    def attempts_per_delivery(self, record: RecordLike, in_place: int) -> int:
        """Handler attempts for one delivery: the handler policy's on the channel's topic,
        one per delivery from a retry topic (its tiers are the schedule)."""
        return in_place if self.tier_of(record.topic) == 0 else 1

    def attempts_before(self, record: RecordLike) -> int:
        """Attempts the event had before this delivery (0 on the channel's topic)."""
        if self.tier_of(record.topic) == 0:
            return 0
        return _int_header(record, ATTEMPTS) or 0

    def due_in_s(self, record: RecordLike) -> float:
        """Seconds until a retry record is due (<= 0: now). A record without a readable due
        header is due now: its delivery is what counts, not the wait."""
        due = _int_header(record, DUE_AT_MS)
        if due is None:
            return 0.0
        return due / 1000.0 - _now()

    def next_tier(self, record: RecordLike) -> int | None:
        """The tier a failed delivery of ``record`` goes to, or None after the last one."""
        tier = self.tier_of(record.topic)
        return tier + 1 if tier < len(self.topics) else None

    def _history(self, record: RecordLike) -> list[dict[str, Any]]:
        raw = record.header(HISTORY)
        if raw is None:
            return []
        try:
            steps = json.loads(raw)
        except ValueError:
            return []
        return [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []

    def _origin(self, record: RecordLike) -> tuple[str, int, int]:
        """The original's topic, partition and offset (the record's own on the channel's
        topic; from the headers on a retry topic)."""
        if self.tier_of(record.topic) == 0:
            return record.topic, record.partition, record.offset
        topic = record.header(ORIGINAL_TOPIC)
        partition = _int_header(record, ORIGINAL_PARTITION)
        offset = _int_header(record, ORIGINAL_OFFSET)
        if topic is None or partition is None or offset is None:
            return record.topic, record.partition, record.offset
        return topic.decode("utf-8", "replace"), partition, offset

    def copy_for(
        self, record: RecordLike, tier: int, error: BaseException, attempts: int
    ) -> tuple[str, bytes | None, bytes, HeaderList]:
        """(topic, key, value, headers) of ``record``'s copy bound for ``tier``."""
        delay_ms = self.delays_ms[tier - 1]
        now_ms = int(_now() * 1000)
        topic, partition, offset = self._origin(record)
        history = self._history(record)
        history.append(
            {
                "tier": self.tier_of(record.topic),
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "attempts": attempts,
                "error_type": type(error).__name__,
                "error_message": _message(error),
                "failed_at_ms": now_ms,
            }
        )
        own = [(k, v) for k, v in record.headers if not k.startswith(HEADER_PREFIX)]
        headers: HeaderList = [
            *own,
            (ATTEMPTS, str(attempts).encode()),
            (TIER, str(tier).encode()),
            (DUE_AT_MS, str(now_ms + delay_ms).encode()),
            (ORIGINAL_TOPIC, topic.encode()),
            (ORIGINAL_PARTITION, str(partition).encode()),
            (ORIGINAL_OFFSET, str(offset).encode()),
            (ERROR_TYPE, type(error).__name__.encode()),
            (ERROR_MESSAGE, _message(error).encode("utf-8", "backslashreplace")),
            (HISTORY, json.dumps(history, separators=(",", ":")).encode()),
        ]
        return self.topics[tier - 1], record.key, record.value or b"", headers

    async def forward(
        self, record: RecordLike, tier: int, error: BaseException, attempts: int
    ) -> None:
        """Writes ``record``'s copy to ``tier`` and returns once the broker acknowledged it;
        raises the delivery error (the subscription decides whether to try again)."""
        topic, key, value, headers = self.copy_for(record, tier, error, attempts)
        await self.producer().send_batch(topic, [(key, value, headers)])
        self.observers.retry_scheduled(self.channel, self.group, tier, 1)

    def dead_letter(
        self,
        record: RecordLike,
        event: dict[str, Any] | None,
        error: BaseException,
        retries: int,
    ) -> DeadLetter:
        """The dead letter of a record of this channel (from its topic or a retry topic):
        the original's coordinates and, for a retried one, the tiers it went through."""
        topic, partition, offset = self._origin(record)
        history: tuple[Mapping[str, Any], ...] = ()
        if self.tier_of(record.topic):
            history = (
                *self._history(record),
                {
                    "tier": self.tier_of(record.topic),
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "attempts": retries + 1,
                    "error_type": type(error).__name__,
                    "error_message": _message(error),
                    "failed_at_ms": int(_now() * 1000),
                },
            )
        return DeadLetter(
            Failure(
                original_channel=self.channel,
                error_type=type(error).__name__,
                error_message=str(error),
                retry_count=retries,
                original_partition=partition,
                original_offset=offset,
                consumer_group=self.group,
                retry_history=history,
            ),
            event=event,
            raw_value=record.value,
            key=record.key,
            headers=[(k, v) for k, v in record.headers if not k.startswith(HEADER_PREFIX)],
            original_topic=topic,
        )
