"""Sending prepared events reliably: breaker -> send with retry -> outcome, then the DLQ or
the spool for what could not be delivered. Nothing that failed is dropped silently, and
nothing that was acknowledged is sent twice.

- The channel's breaker refuses at once when OPEN (``CircuitBreakerOpenError``).
- Only retriable errors are retried, with the channel's backoff; a batch retries only its
  records that failed. A delivery that timed out after it was sent (librdkafka: "possibly
  persisted") is not retried: it goes to the spool, which checks the topic before resending.
- After the last attempt, records that failed because the broker was unreachable go to the
  local spool (their topic is unreachable, and so is the DLQ on the same cluster); records
  refused for another reason go to the DLQ, or to the spool if the DLQ cannot be written.
  The caller gets ``PublishError`` saying where they went.
- While a topic has events in the spool, a new publish drains them first, so events of one
  key keep their order through an outage.
- Refused credentials (``AuthenticationError``) are neither: not retried, not spooled, not
  dead-lettered, not a breaker failure. The caller gets the error and nothing is kept
  (decision 47).
- A spooled event the broker refuses for good when drained (too large, not authorized, ...)
  is moved aside into the spool's ``dead/`` directory and the drain goes on with the next
  one; so is a DLQ copy the broker refuses for good (decision 53).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ...exceptions import (
    AuthenticationError,
    BatchDeliveryError,
    BrokerUnavailableError,
    ClosedError,
    EventBusError,
    PublishError,
    QueueFullError,
    TransportTimeoutError,
)
from ..config.settings import EventBusConfig, TransportConfig
from ..reliability.breakers import BreakerRegistry
from ..reliability.dead_letter import Failure, dlq_record, record_size_limit
from ..reliability.spool import Spool, SpoolEntry
from ..transports.protocol import TransportAdapter
from ..transports.structs import OutgoingRecord
from ..wire.topics import dlq_channel, topic_specs
from .prepare import PreparedBatch

logger = logging.getLogger("tradecore_eventbus.publisher")

Delivery = tuple[int, int]
_UNREACHABLE = (BrokerUnavailableError, TransportTimeoutError, QueueFullError)


@dataclass
class SendOutcome:
    deliveries: list[Delivery | None]
    errors: dict[int, EventBusError] = field(default_factory=dict)
    attempts: int = 0
    last_error: EventBusError | None = None

    @property
    def failed(self) -> list[int]:
        if not self.errors:  # nothing ever failed: skip the scan
            return []
        return [i for i, d in enumerate(self.deliveries) if d is None]


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


def refused_for_good(error: object) -> bool:
    """The broker refused the record itself and would refuse it again (size, authorization,
    an invalid record, ...): retrying cannot help, and it must not hold up later records.
    Errors that may have been written (a lost acknowledgement) never count, nor do refused
    credentials: those are the client's, and the record goes once they are fixed."""
    return (
        isinstance(error, EventBusError)
        and not error.retriable
        and not error.possibly_persisted
        and not isinstance(error, (ClosedError, AuthenticationError))
    )


class Publisher:
    def __init__(
        self,
        adapter: TransportAdapter,
        config: EventBusConfig,
        transport_config: TransportConfig,
        breakers: BreakerRegistry,
        spool: Spool,
    ) -> None:
        self.adapter = adapter
        self.config = config
        self.transport_config = transport_config
        self.breakers = breakers
        self.spool = spool
        self._ensured: set[str] = set()
        # Topic creations under way, shared by every send that needs the channel meanwhile.
        self._ensuring: dict[str, asyncio.Future[None]] = {}
        self._drain_lock = asyncio.Lock()
        self.sent = 0
        self.dead_lettered = 0
        self.spooled = 0

    @property
    def attempt_timeout_s(self) -> float:
        """How long one publish attempt may wait for the broker: the producer's delivery
        timeout (``KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS``)."""
        return self.transport_config.producer_delivery_timeout_ms / 1000.0

    async def ensure_channel(
        self, channel: str, *, required: bool = True, timeout: float | None = None
    ) -> None:
        """Creates the channel's topic (and DLQ topic) as ``initialize_topics`` would, once,
        waiting at most ``timeout`` seconds (default: one publish attempt's time); past it,
        ``TransportTimeoutError``.

        With ``required=False`` a failure is logged and tried again on the next call."""
        if channel in self._ensured:
            return
        wait = self.attempt_timeout_s if timeout is None else timeout
        # Sends that arrive while the topics are being created wait for that one creation,
        # and resume in the order they arrived: two sends started in one turn (single
        # publishes coalesced into two batches, say) then reach the producer in call order,
        # where each creating the topics itself let the second overtake the first.
        creating = self._ensuring.get(channel)
        if creating is None:
            creating = asyncio.ensure_future(self._create_topics(channel, wait))
            self._ensuring[channel] = creating
            creating.add_done_callback(functools.partial(self._created, channel))
        try:
            # Shielded: one caller cancelled must not cancel the creation the others await.
            # Each caller waits at most its own timeout (the creation is bounded by the
            # timeout of the caller that started it).
            try:
                await asyncio.wait_for(asyncio.shield(creating), wait)
            except TimeoutError:
                raise TransportTimeoutError(
                    f"creating the topics of {channel} took longer than {wait:g}s "
                    f"(bootstrap servers {self.transport_config.bootstrap_servers})"
                ) from None
        except AuthenticationError:
            raise  # the send would be refused the same way: say so now (decision 47)
        except EventBusError as exc:
            if required:
                raise
            logger.warning("could not create the topics of %s yet: %s", channel, exc)

    def _created(self, channel: str, creating: asyncio.Future[None]) -> None:
        del self._ensuring[channel]
        # Retrieved here too: if every caller was cancelled, nobody else reads the error.
        if not creating.cancelled():
            creating.exception()

    async def _create_topics(self, channel: str, timeout: float) -> None:
        await self.adapter.ensure_topics(
            topic_specs(channel, self.config, self.transport_config), timeout
        )
        self._ensured.add(channel)

    # ---------------------------------------------------------------- publish

    async def send(self, channel: str, topic: str, prepared: PreparedBatch) -> Sequence[Delivery]:
        breaker = self.breakers.get(channel)
        with breaker.acquire() as permit:
            if self.spool.has_pending(topic):
                # Earlier events of this topic wait in the spool: they go first, so that a
                # key's order holds. While the broker does not answer, queue behind them.
                if await self.adapter.ping(self.config.spool_ping_timeout_seconds):
                    report = await self.drain(topic)
                else:
                    report = DrainReport(
                        remaining=self.spool.count(),
                        error=BrokerUnavailableError("the broker does not answer a metadata ping"),
                    )
                if report.remaining:
                    permit.failure()
                    self._spool(channel, topic, prepared, range(len(prepared)), None)
                    cause = report.error
                    if isinstance(cause, BatchDeliveryError) and cause.failed_indices:
                        first = cause.results[cause.failed_indices[0]]
                        cause = first if isinstance(first, EventBusError) else cause
                    raise PublishError(
                        f"{len(prepared)} event(s) for {channel} were spooled behind "
                        f"{report.remaining} earlier one(s) the broker has not taken yet "
                        f"({cause}); they will be published in order when it is back",
                        cause=cause,
                        channel=channel,
                        dlq="spool",
                        retriable=False,
                    )
            outcome = await self._send_with_retry(channel, topic, prepared)
            if not outcome.failed:
                permit.success()
                self.sent += len(prepared)
                return outcome.deliveries  # type: ignore[return-value]  # no None left
            refused = self._refused_credentials(channel, prepared, outcome)
            if refused is not None:
                # Not an outage of the channel: the permit goes back without an outcome.
                self.sent += len(prepared) - len(outcome.failed)
                raise refused
            permit.failure()
        self.sent += len(prepared) - len(outcome.failed)
        await self._give_up(channel, topic, prepared, outcome)
        raise AssertionError("unreachable: _give_up always raises")

    async def _send_with_retry(
        self, channel: str, topic: str, prepared: PreparedBatch
    ) -> SendOutcome:
        retry = self.config.retry_for(channel, self.breakers.is_critical(channel))
        outcome = SendOutcome(deliveries=[None] * len(prepared))
        producer = self.adapter.producer()
        pending = list(range(len(prepared)))
        while True:
            outcome.attempts += 1
            retriable = False
            try:
                if channel not in self._ensured:
                    # The first publish of a channel creates its topics within the attempt's
                    # time; a broker that does not answer fails the attempt (decision 46).
                    try:
                        await self.ensure_channel(channel)
                    except _UNREACHABLE:
                        raise
                    except EventBusError as exc:
                        # Refused (no permission to create topics, ...): the send says
                        # whether the topic is there anyway.
                        logger.warning("could not create the topics of %s: %s", channel, exc)
                results = await prepared.send(producer, topic, pending)
                if outcome.attempts == 1:
                    # The common case: everything went through at once, in order.
                    outcome.deliveries = results  # type: ignore[assignment]
                    return outcome
                for i, d in zip(pending, results, strict=True):
                    outcome.deliveries[i] = d
                return outcome
            except BatchDeliveryError as exc:
                still: list[int] = []
                for i, r in zip(pending, exc.results, strict=True):
                    if isinstance(r, EventBusError):
                        outcome.errors[i] = r
                        still.append(i)
                    else:
                        outcome.deliveries[i] = (int(r[0]), int(r[1]))
                        outcome.errors.pop(i, None)
                pending = still
                outcome.last_error = exc.results[still[0]] if still else exc  # type: ignore[assignment]
                retriable = all(outcome.errors[i].retriable for i in still)
            except EventBusError as exc:
                outcome.last_error = exc
                for i in pending:
                    outcome.errors[i] = exc
                retriable = exc.retriable
            # A delivery that may have been written anyway is not sent again blindly: that
            # would duplicate it. It goes to the spool, which looks it up before resending.
            uncertain = any(outcome.errors[i].possibly_persisted for i in pending)
            if not retriable or uncertain or outcome.attempts >= retry.max_attempts:
                return outcome
            delay = retry.delay_s(outcome.attempts)
            logger.warning(
                "publish to %s failed (attempt %d of %d): %s; retrying in %.3fs",
                channel,
                outcome.attempts,
                retry.max_attempts,
                outcome.last_error,
                delay,
            )
            await backoff_sleep(delay)

    def _refused_credentials(
        self, channel: str, prepared: PreparedBatch, outcome: SendOutcome
    ) -> AuthenticationError | None:
        """The error for the caller when the broker refused the client's credentials for any
        failed event (decision 47): no spool (the broker is there), no DLQ (it is on the same
        cluster, behind the same credentials); the caller has the events, nothing kept them."""
        failed = outcome.failed
        refusal = next(
            (e for i in failed if isinstance(e := outcome.errors.get(i), AuthenticationError)),
            None,
        )
        if refusal is None:
            return None
        results: list[Delivery | EventBusError] = [
            d if d is not None else outcome.errors.get(i, refusal)
            for i, d in enumerate(outcome.deliveries)
        ]
        message = (
            f"publishing {len(failed)} of {len(prepared)} event(s) to {channel} was refused: "
            f"the broker did not accept the client's credentials ({refusal}); nothing was "
            "kept (not spooled, not dead-lettered): fix KAFKA_SASL_USERNAME / "
            "KAFKA_SASL_PASSWORD and publish them again"
        )
        logger.error(message)
        error = AuthenticationError(
            message,
            channel=channel,
            results=results if len(failed) < len(prepared) else [],
            code=refusal.code,
            code_name=refusal.code_name,
        )
        error.__cause__ = refusal
        return error

    async def _give_up(
        self, channel: str, topic: str, prepared: PreparedBatch, outcome: SendOutcome
    ) -> None:
        failed = outcome.failed
        last = outcome.last_error
        results: list[Delivery | EventBusError] = [
            d if d is not None else outcome.errors.get(i, last or EventBusError("not delivered"))
            for i, d in enumerate(outcome.deliveries)
        ]
        unreachable = all(isinstance(outcome.errors.get(i), _UNREACHABLE) for i in failed)
        where: str | None
        if unreachable:
            self._spool(channel, topic, prepared, failed, outcome)
            where = "spool"
            what = (
                "the broker is unreachable; kept in the local spool and published when it is back"
            )
        elif self.config.enable_dlq:
            where = await self._to_dlq(channel, prepared, failed, outcome)
            what = {
                "dlq": "sent to the dead-letter queue",
                "spool": "kept in the local spool for the dead-letter queue (it could not be "
                "written now)",
                "dead": "the dead-letter queue refused them too; kept in "
                f"{self.spool.dead_directory} for an operator (EventBus.dead_spool_entries)",
            }[where]
        else:
            where = None
            what = "not stored anywhere (ENABLE_DLQ=false)"
        message = (
            f"publishing {len(failed)} of {len(prepared)} event(s) to {channel} failed after "
            f"{outcome.attempts} attempt(s): {last}; {what}"
        )
        logger.error(message)
        raise PublishError(
            message,
            cause=last,
            channel=channel,
            dlq=where,
            results=results,
            retriable=bool(where is None and last is not None and last.retriable),
            code=last.code if last is not None else None,
            code_name=last.code_name if last is not None else None,
        )

    def _spool(
        self,
        channel: str,
        topic: str,
        prepared: PreparedBatch,
        indices: Sequence[int] | range,
        outcome: SendOutcome | None,
        *,
        records: Sequence[OutgoingRecord] | None = None,
        destination: str = "topic",
    ) -> None:
        entries = []
        for n, i in enumerate(indices):
            err = outcome.errors.get(i) if outcome is not None else None
            entries.append(
                SpoolEntry.create(
                    topic,
                    channel,
                    prepared.event_id(i),
                    records[n] if records is not None else prepared.record(i),
                    reason=str(err) if err is not None else "queued behind spooled events",
                    possibly_persisted=bool(err is not None and err.possibly_persisted),
                    destination=destination,
                )
            )
        self.spool.put(entries)
        self.spooled += len(entries)

    async def _to_dlq(
        self,
        channel: str,
        prepared: PreparedBatch,
        failed: Sequence[int],
        outcome: SendOutcome,
    ) -> str:
        dlq = dlq_channel(channel, self.config.dlq_topic_suffix)
        dlq_topic = self.adapter.topic_for(dlq)
        # The copy fits the producer's limit even when the event itself was refused for its
        # size (decision 44): the caller keeps the whole event (PublishError.results).
        limit = record_size_limit(self.transport_config)
        records = []
        for i in failed:
            err = outcome.errors.get(i) or outcome.last_error
            failure = Failure(
                original_channel=channel,
                error_type=type(err).__name__,
                error_message=str(err),
                retry_count=max(0, outcome.attempts - 1),
            )
            key, value, headers = prepared.record(i)
            records.append(
                dlq_record(
                    failure,
                    event=prepared.event(i),
                    raw_value=value,
                    key=key,
                    headers=headers,
                    max_bytes=limit,
                    original_topic=self.adapter.topic_for(channel),
                )
            )
        try:
            await self.ensure_channel(dlq)
            await self.adapter.producer().send_batch(dlq_topic, records)
            self.dead_lettered += len(records)
            return "dlq"
        except BatchDeliveryError as exc:
            outcomes: Sequence[object] = exc.results
        except EventBusError as exc:
            outcomes = [exc] * len(records)
        # What the DLQ took is there; what it refused for good goes to the dead directory
        # (a spool entry would be refused again on every drain); the rest waits in the spool.
        kept, buried = [], []
        for n, result in enumerate(outcomes):
            if not isinstance(result, BaseException):
                self.dead_lettered += 1
            elif refused_for_good(result):
                buried.append(n)
                entry = self._entry(channel, dlq_topic, prepared, failed[n], records[n], "dlq")
                self.spool.bury(entry, result)
            else:
                kept.append(n)
        first = next(r for r in outcomes if isinstance(r, BaseException))
        logger.error(
            "writing %d event(s) to %s failed (%s); %d spooled, %d kept as dead",
            len(kept) + len(buried),
            dlq_topic,
            first,
            len(kept),
            len(buried),
        )
        if kept:
            self._spool(
                channel,
                dlq_topic,
                prepared,
                [failed[n] for n in kept],
                None,
                records=[records[n] for n in kept],
                destination="dlq",
            )
            return "spool"
        return "dead"

    @staticmethod
    def _entry(
        channel: str,
        topic: str,
        prepared: PreparedBatch,
        index: int,
        record: OutgoingRecord,
        destination: str,
    ) -> SpoolEntry:
        return SpoolEntry.create(
            topic,
            channel,
            prepared.event_id(index),
            record,
            reason="refused by the broker",
            possibly_persisted=False,
            destination=destination,
        )

    # ---------------------------------------------------------------- spool

    async def drain(self, topic: str | None = None) -> DrainReport:
        """Publishes spooled events (of one topic, or all) in spool order. Entries whose
        failed delivery may have been written are first looked up in their topic, so they are
        not sent twice. Stops at the first failure; what is left stays spooled."""
        report = DrainReport()
        async with self._drain_lock:
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
                            and len(batch) < 500
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
            await self.ensure_channel(dlq_channel(first.channel, self.config.dlq_topic_suffix))
        else:
            await self.ensure_channel(first.channel)
        try:
            await self.adapter.producer().send_batch(topic, [e.record() for e in to_send])
        except BatchDeliveryError as exc:
            delivered = [
                e
                for e, r in zip(to_send, exc.results, strict=True)
                if not isinstance(r, EventBusError)
            ]
            self.spool.remove(delivered)
            report.sent += len(delivered)
            waiting = False
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
                    report.dead += 1
                    continue
                waiting = True
                if r.possibly_persisted and not e.possibly_persisted:
                    self.spool.update(replace(e, possibly_persisted=True))
            if waiting:
                raise
            return  # every failure was a refusal for good: the drain goes on
        self.spool.remove(to_send)
        report.sent += len(to_send)
        logger.info("published %d spooled event(s) to %s", len(to_send), topic)

    def spool_health(self) -> dict[str, object]:
        return {
            "pending": self.spool.count(),
            "dead": self.spool.dead_count(),
            "oldest_age": self.spool.oldest_age_s(),
            "directory": str(self.spool.directory),
        }


async def backoff_sleep(seconds: float) -> None:
    """The wait between publish attempts (a seam the retry tests observe)."""
    await asyncio.sleep(seconds)


def now_ms() -> int:
    return int(time.time() * 1000)
