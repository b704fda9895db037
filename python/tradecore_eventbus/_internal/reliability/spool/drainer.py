"""The spool drainer: the one owner of sending spooled entries and of the background task
that does it when the broker is back.

A drain publishes spooled entries (of one topic, or all) in spool order, in batches of one
topic. Entries whose failed delivery may have been written are first looked up in their
topic, so they are not sent twice. It stops at the first failure; what is left stays
spooled. An entry the broker refuses for good is moved aside into ``dead/`` and the drain
goes on with the next one (decision 53).

The background task (:meth:`SpoolDrainer.start`) runs while the spool holds entries: it
pings the broker on the publish retry schedule (its caps, without jitter, and never more
often than its initial delay) and drains when the broker answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from ....exceptions import BatchDeliveryError, EventBusError
from ...config.settings import EventBusConfig, TransportConfig
from ...observability.observer import Observer
from ...transports.protocol import TransportAdapter
from ...wire.topics import dlq_channel
from ..backoff import Backoff
from ..refusals import refused_for_good
from .files import Spool, SpoolEntry

logger = logging.getLogger("tradecore_eventbus.spool")

#: Entries of one topic sent in one call.
DRAIN_BATCH = 500


@dataclass
class DrainReport:
    sent: int = 0
    already_delivered: int = 0
    remaining: int = 0
    #: Entries the broker refused for good, moved into the spool's ``dead/`` directory.
    dead: int = 0
    error: EventBusError | None = None

    def as_dict(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "already_delivered": self.already_delivered,
            "remaining": self.remaining,
            "dead": self.dead,
        }


class SpoolDrainer:
    def __init__(
        self,
        adapter: TransportAdapter,
        config: EventBusConfig,
        transport_config: TransportConfig,
        spool: Spool,
        observers: Observer,
        ensure_channel: Callable[[str], Awaitable[None]],
    ) -> None:
        self.adapter = adapter
        self.config = config
        self.transport_config = transport_config
        self.spool = spool
        self.observers = observers
        self._ensure_channel = ensure_channel
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    @property
    def attempt_timeout_s(self) -> float:
        """How long a lookup may take: one publish attempt
        (``KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS``)."""
        return self.transport_config.producer_delivery_timeout_ms / 1000.0

    # ------------------------------------------------------------ the background task

    def start(self) -> None:
        """Starts the background drain if the spool holds entries and none runs."""
        if self._stopped.is_set() or not self.spool.has_pending():
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(
                self._drain_when_possible(), name="eventbus-spool-drainer"
            )

    def stop(self) -> None:
        """No new background drain after this; a running one stops at its next wait."""
        self._stopped.set()

    async def _drain_when_possible(self) -> None:
        # The spool just got entries because the broker did not answer: give it a moment,
        # then look again on the publish retry schedule.
        retry = self.config.publish_retry
        backoff = Backoff(retry, jitter=False, floor_s=retry.initial_delay_ms / 1000.0)
        while self.spool.has_pending():
            if not await backoff.wait(self._stopped):
                return
            try:
                if await self.adapter.ping(self.config.spool_ping_timeout_seconds):
                    report = await self.drain()
                    if not report.remaining:
                        return
            except Exception:
                logger.exception("draining the spool failed")

    # ------------------------------------------------------------ draining

    async def drain(self, topic: str | None = None) -> DrainReport:
        """Publishes spooled entries (of ``topic``, or all) in spool order, as the module
        says. Another process draining the same spool meanwhile: nothing is sent here."""
        report = DrainReport()
        async with self._lock:
            with self.spool.drain_lock() as mine:
                if not mine:
                    report.remaining = self.spool.count()
                    return report
                self.spool.refresh()
                entries = self.spool.entries(topic)
                start = 0
                try:
                    while start < len(entries):
                        batch = [entries[start]]
                        while (
                            start + len(batch) < len(entries)
                            and len(batch) < DRAIN_BATCH
                            and entries[start + len(batch)].topic == batch[0].topic
                        ):
                            batch.append(entries[start + len(batch)])
                        await self._drain_batch(batch, report)
                        start += len(batch)
                except EventBusError as exc:
                    report.error = exc
                    logger.warning("draining the spool stopped: %s", exc)
                report.remaining = len(self.spool.entries(topic))
        return report

    async def _drain_batch(self, batch: list[SpoolEntry], report: DrainReport) -> None:
        topic = batch[0].topic
        uncertain = {e.event_id for e in batch if e.possibly_persisted}
        present: set[str] = set()
        if uncertain:
            # A delivery reported lost may have been written up to its delivery timeout
            # after it was spooled; the minute more covers clocks a little apart.
            lookback_ms = self.transport_config.producer_delivery_timeout_ms + 60_000
            since = min(e.spooled_at_ms for e in batch) - lookback_ms
            present = await self.adapter.find_event_ids(
                topic, uncertain, since, self.attempt_timeout_s
            )
        done = [e for e in batch if e.event_id in present]
        self.spool.remove(done)
        report.already_delivered += len(done)
        to_send = [e for e in batch if e.event_id not in present]
        if not to_send:
            return
        first = to_send[0]
        if first.destination == "dlq":
            await self._ensure_channel(dlq_channel(first.channel, self.config.dlq_topic_suffix))
        else:
            await self._ensure_channel(first.channel)
        try:
            await self.adapter.producer().send_batch(topic, [e.record() for e in to_send])
        except BatchDeliveryError as exc:
            self._settle_partly(topic, to_send, exc, report)
            return
        self.spool.remove(to_send)
        report.sent += len(to_send)
        self.observers.spool_drained(topic, len(to_send), len(done), 0)
        logger.info("published %d spooled event(s) to %s", len(to_send), topic)

    def _settle_partly(
        self, topic: str, to_send: list[SpoolEntry], exc: BatchDeliveryError, report: DrainReport
    ) -> None:
        """Removes what the broker took, buries what it refused for good, and raises if
        anything must wait (the drain stops there)."""
        delivered = [
            e for e, r in zip(to_send, exc.results, strict=True) if not isinstance(r, EventBusError)
        ]
        self.spool.remove(delivered)
        report.sent += len(delivered)
        waiting = False
        dead = 0
        for e, r in zip(to_send, exc.results, strict=True):
            if not isinstance(r, EventBusError):
                continue
            if refused_for_good(r):
                # Moved aside, so that it never holds up what was spooled after it.
                logger.error(
                    "the broker refused spooled event %s for %s for good (%s); kept in %s",
                    e.event_id,
                    topic,
                    r,
                    self.spool.dead_directory,
                )
                self.spool.bury(e, r)
                dead += 1
                continue
            waiting = True
            if r.possibly_persisted and not e.possibly_persisted:
                self.spool.update(replace(e, possibly_persisted=True))
        report.dead += dead
        self.observers.spool_drained(topic, len(delivered), 0, dead)
        if waiting:
            raise exc
        # Every failure was a refusal for good: the drain goes on.

    def health(self) -> dict[str, object]:
        return {
            "pending": self.spool.count(),
            "dead": self.spool.dead_count(),
            "oldest_age": self.spool.oldest_age_s(),
            "directory": str(self.spool.directory),
        }
