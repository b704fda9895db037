"""The one dead-letter writer: refused publishes, consumed records that failed, and dead
outbox rows all reach their channel's DLQ topic through :class:`DeadLetterWriter`.

It builds each record (``record.dlq_record`` through ``values.writable_dlq_record``: never
raises for what the event holds, capped to the producer's ``message.max.bytes``), creates
the DLQ topic, sends, counts (the bus's observers), and decides what happens when the DLQ
does not take a copy. That last rule depends on who still holds the original, so each path
has its method here (decision 61):

- a refused publish (:meth:`write_refused_publish`): the caller has the events. A copy the
  DLQ cannot take now goes to the spool, bound for the DLQ; one it refuses for good goes to
  the spool's ``dead/`` directory in full;
- a consumed record (:meth:`write_consumed`): the original stays in its topic. A copy the
  DLQ refuses for good is written again with the metadata and coordinates only; a failure
  is raised, and the subscription retries it, holding its partition;
- a dead outbox row (:meth:`write_outbox_row`): the row keeps the event. A copy refused for
  good leaves the row marked dead (it is the copy an operator reads); any other failure
  leaves it for the next relay cycle.

The DLQ is written with the producer directly, not through the publish pipeline: a dead
letter has no breaker of its own (its channel's breaker counts the original's failures),
and it is never retried there, since each path above has its own rule.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ....exceptions import BatchDeliveryError, EventBusError
from ...config.settings import EventBusConfig, TransportConfig
from ...observability.observer import Observer
from ...transports.protocol import RecordLike, TransportAdapter
from ...transports.structs import HeaderList, OutgoingRecord
from ...wire.topics import dlq_channel
from ..refusals import refused_for_good
from ..spool.files import Spool, SpoolEntry
from .record import Failure, record_size_limit
from .values import writable_dlq_record

logger = logging.getLogger("tradecore_eventbus.dead_letters")

#: Creates a channel's topics (``Publisher.ensure_channel``); ``required=False`` logs and
#: goes on when they cannot be created now.
EnsureChannel = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class DeadLetter:
    """One event (or raw record) bound for its channel's DLQ."""

    failure: Failure
    event: Mapping[str, Any] | None
    #: The original's bytes as they were (or would have been) on the wire.
    raw_value: bytes | None
    key: bytes | None
    headers: HeaderList | None = None
    #: The topic the original was (or was to be) in, named in a capped copy.
    original_topic: str | None = None
    #: Names the spool entry of a copy that has to wait.
    event_id: str = ""


class DeadLetterWriter:
    def __init__(
        self,
        adapter: TransportAdapter,
        config: EventBusConfig,
        transport_config: TransportConfig,
        spool: Spool,
        observers: Observer,
        ensure_channel: EnsureChannel,
    ) -> None:
        self.adapter = adapter
        self.config = config
        self.transport_config = transport_config
        self.spool = spool
        self.observers = observers
        self._ensure_channel = ensure_channel

    def dlq_topic(self, channel: str) -> str:
        return self.adapter.topic_for(dlq_channel(channel, self.config.dlq_topic_suffix))

    def record(self, letter: DeadLetter, *, keep_original: bool = True) -> OutgoingRecord:
        """The DLQ record of ``letter``, as the module says."""
        event = letter.event
        return writable_dlq_record(
            letter.failure,
            event=dict(event) if event is not None else None,
            raw_value=letter.raw_value,
            key=letter.key,
            headers=list(letter.headers) if letter.headers is not None else None,
            max_bytes=record_size_limit(self.transport_config),
            original_topic=letter.original_topic,
            keep_original=keep_original,
        )

    async def _send(
        self, channel: str, records: Sequence[OutgoingRecord], *, required: bool = True
    ) -> list[EventBusError | None]:
        """Sends ``records`` to the DLQ topic: per record, None (written) or its error."""
        try:
            await self._ensure_channel(
                dlq_channel(channel, self.config.dlq_topic_suffix), required=required
            )
            await self.adapter.producer().send_batch(self.dlq_topic(channel), records)
            return [None] * len(records)
        except BatchDeliveryError as exc:
            return [r if isinstance(r, EventBusError) else None for r in exc.results]
        except EventBusError as exc:
            return [exc] * len(records)

    def _count(self, channel: str, source: str, errors: Sequence[EventBusError | None]) -> None:
        written = sum(1 for e in errors if e is None)
        if written:
            self.observers.dead_lettered(channel, written, source)
        refused = [e for e in errors if e is not None and refused_for_good(e)]
        failed = [e for e in errors if e is not None and not refused_for_good(e)]
        if refused:
            self.observers.dead_letter_failed(channel, len(refused), source, refused[0], True)
        if failed:
            self.observers.dead_letter_failed(channel, len(failed), source, failed[0], False)

    # ------------------------------------------------------------ a refused publish

    async def write_refused_publish(self, channel: str, letters: Sequence[DeadLetter]) -> str:
        """Dead-letters events a publish could not deliver; returns where they went:
        ``"dlq"``, ``"spool"`` (some wait there for the DLQ) or ``"dead"`` (the DLQ refused
        them for good; kept in the spool's ``dead/``)."""
        records = [self.record(letter) for letter in letters]
        errors = await self._send(channel, records)
        self._count(channel, "publish", errors)
        if not any(errors):
            return "dlq"
        topic = self.dlq_topic(channel)
        kept: list[SpoolEntry] = []
        buried = 0
        for letter, record, error in zip(letters, records, errors, strict=True):
            if error is None:
                continue
            entry = SpoolEntry.create(
                topic,
                channel,
                letter.event_id,
                record,
                reason="refused by the broker" if refused_for_good(error) else str(error),
                possibly_persisted=False,
                destination="dlq",
            )
            if refused_for_good(error):
                # A spool entry would be refused again on every drain.
                self.spool.bury(entry, error)
                buried += 1
            else:
                kept.append(entry)
        first = next(e for e in errors if e is not None)
        logger.error(
            "writing %d event(s) to %s failed (%s); %d spooled, %d kept as dead",
            len(kept) + buried,
            topic,
            first,
            len(kept),
            buried,
        )
        if kept:
            self.spool.put(kept)
            self.observers.spooled(channel, len(kept), "dlq")
            return "spool"
        return "dead"

    # ------------------------------------------------------------ a consumed record

    async def write_consumed(self, channel: str, letter: DeadLetter) -> None:
        """Dead-letters one consumed record; raises the record's delivery error (retriable
        or not: the subscription decides whether to try again)."""
        copy = functools.partial(self.record, letter)
        [error] = await self._send(channel, [copy()])
        if error is not None and refused_for_good(error):
            # Refused for good (a DLQ topic whose size limit is below the producer's, say):
            # one more try with the metadata and coordinates only; the original stays in
            # its topic at the offset the metadata names.
            logger.error(
                "the DLQ of %s refused the copy of %s[%s]@%s (%s); writing it without the original",
                channel,
                letter.original_topic,
                letter.failure.original_partition,
                letter.failure.original_offset,
                error,
            )
            [error] = await self._send(channel, [copy(keep_original=False)])
        self._count(channel, "consume", [error])
        if error is not None:
            raise error

    # ------------------------------------------------------------ a dead outbox row

    async def write_outbox_row(self, channel: str, letter: DeadLetter, row_id: int) -> bool:
        """Dead-letters the event of a dead outbox row; True when the row is settled
        (written, or refused for good: the row marked dead is then the copy kept), False
        when it should be tried again on the next relay cycle."""
        [error] = await self._send(channel, [self.record(letter)], required=False)
        self._count(channel, "outbox", [error])
        if error is None:
            return True
        if not refused_for_good(error):
            logger.error(
                "outbox: writing row %d to the DLQ of %s failed: %s", row_id, channel, error
            )
            return False
        logger.error(
            "outbox: the DLQ of %s refused row %d (%s) for good (%s); it stays in the outbox "
            "as dead",
            channel,
            row_id,
            letter.event_id,
            error,
        )
        return True


def consumed_letter(
    group: str,
    channel: str,
    record: RecordLike,
    event: dict[str, Any] | None,
    error: BaseException,
    retries: int,
) -> DeadLetter:
    """The dead letter of a consumed record that failed with ``error`` after ``retries``."""
    return DeadLetter(
        Failure(
            original_channel=channel,
            error_type=type(error).__name__,
            error_message=str(error),
            retry_count=retries,
            original_partition=record.partition,
            original_offset=record.offset,
            consumer_group=group,
        ),
        event=event,
        raw_value=record.value,
        key=record.key,
        headers=list(record.headers),
        original_topic=record.topic,
    )
