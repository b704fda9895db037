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

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...exceptions import (
    AuthenticationError,
    BatchDeliveryError,
    BrokerUnavailableError,
    EventBusError,
    PublishError,
    QueueFullError,
    TransportTimeoutError,
)
from ..config.settings import EventBusConfig
from ..observability.observer import Observer
from ..reliability import backoff as backoff_module
from ..reliability.backoff import Backoff
from ..reliability.breakers import BreakerRegistry
from ..reliability.dead_letters.record import Failure
from ..reliability.dead_letters.writer import DeadLetter, DeadLetterWriter
from ..reliability.spool.drainer import DrainReport, SpoolDrainer
from ..reliability.spool.files import SpoolEntry
from ..transports.protocol import TransportAdapter
from ..transports.structs import OutgoingRecord
from .prepare import PreparedBatch
from .topic_creation import ChannelTopics

if TYPE_CHECKING:
    from tradecore_eventbus._core import BreakerPermit

logger = logging.getLogger("tradecore_eventbus.publisher")

Delivery = tuple[int, int]
_UNREACHABLE = (BrokerUnavailableError, TransportTimeoutError, QueueFullError)


@dataclass
class SendOutcome:
    deliveries: list[Delivery | None]
    errors: dict[int, EventBusError] = field(default_factory=dict)
    attempts: int = 0
    last_error: EventBusError | None = None
    #: Every delivery, in order, once nothing is left undelivered.
    complete: Sequence[Delivery] | None = None

    @property
    def failed(self) -> list[int]:
        if not self.errors:  # nothing ever failed: skip the scan
            return []
        return [i for i, d in enumerate(self.deliveries) if d is None]


class Publisher:
    def __init__(
        self,
        adapter: TransportAdapter,
        config: EventBusConfig,
        breakers: BreakerRegistry,
        topics: ChannelTopics,
        dead_letters: DeadLetterWriter,
        drainer: SpoolDrainer,
        observers: Observer,
    ) -> None:
        self.adapter = adapter
        self.config = config
        self.breakers = breakers
        self.topics = topics
        self.dead_letters = dead_letters
        self.drainer = drainer
        self.spool = drainer.spool
        self.observers = observers

    async def ensure_channel(
        self, channel: str, *, required: bool = True, timeout: float | None = None
    ) -> None:
        """Creates the channel's topics once (``ChannelTopics.ensure_channel``)."""
        await self.topics.ensure_channel(channel, required=required, timeout=timeout)

    async def send_durable(
        self, topic: str, records: Sequence[OutgoingRecord]
    ) -> Sequence[Delivery]:
        """Sends records whose caller keeps them durably until acknowledged (the outbox
        relay: its table is the spool). No breaker, no retry, no spool, no DLQ: the caller
        retries on its own schedule and dead-letters through ``DeadLetterWriter``; a breaker
        opened by the relay's backlog would only refuse the application's own publishes
        (decision 61)."""
        return await self.adapter.producer().send_batch(topic, records)

    # ---------------------------------------------------------------- publish

    async def send(self, channel: str, topic: str, prepared: PreparedBatch) -> Sequence[Delivery]:
        started = time.perf_counter()
        breaker = self.breakers.get(channel)
        try:
            with breaker.acquire() as permit:
                if self.spool.has_pending(topic):
                    await self._behind_the_spool(channel, topic, prepared, permit)
                outcome = await self._send_with_retry(channel, topic, prepared)
                if outcome.complete is not None:
                    permit.success()
                    self.observers.published(channel, len(prepared), time.perf_counter() - started)
                    return outcome.complete
                refused = self._refused_credentials(channel, prepared, outcome)
                if refused is not None:
                    # Not an outage of the channel: the permit goes back without an outcome.
                    self._count_partial(channel, prepared, outcome, started, refused, None)
                    raise refused
                permit.failure()
        finally:
            self.breakers.observe(channel, breaker)
        await self._give_up(channel, topic, prepared, outcome, started)
        raise AssertionError("unreachable: _give_up always raises")

    async def _behind_the_spool(
        self, channel: str, topic: str, prepared: PreparedBatch, permit: BreakerPermit
    ) -> None:
        """Earlier events of this topic wait in the spool: they go first, so that a key's
        order holds. While the broker does not answer, this batch queues behind them."""
        if await self.adapter.ping(self.config.spool_ping_timeout_seconds):
            report = await self.drainer.drain(topic)
        else:
            report = DrainReport(
                remaining=self.spool.count(),
                error=BrokerUnavailableError("the broker does not answer a metadata ping"),
            )
        if not report.remaining:
            return
        permit.failure()
        self._spool(channel, topic, prepared, range(len(prepared)), None)
        cause = report.error
        if isinstance(cause, BatchDeliveryError) and cause.failed_indices:
            first = cause.results[cause.failed_indices[0]]
            cause = first if isinstance(first, EventBusError) else cause
        error = PublishError(
            f"{len(prepared)} event(s) for {channel} were spooled behind "
            f"{report.remaining} earlier one(s) the broker has not taken yet "
            f"({cause}); they will be published in order when it is back",
            cause=cause,
            channel=channel,
            dlq="spool",
            retriable=False,
        )
        self.observers.publish_failed(channel, len(prepared), error, "spool")
        raise error

    def _count_partial(
        self,
        channel: str,
        prepared: PreparedBatch,
        outcome: SendOutcome,
        started: float,
        error: BaseException,
        destination: str | None,
    ) -> None:
        failed = len(outcome.failed)
        if failed < len(prepared):
            self.observers.published(channel, len(prepared) - failed, time.perf_counter() - started)
        self.observers.publish_failed(channel, failed, error, destination)

    async def _send_with_retry(
        self, channel: str, topic: str, prepared: PreparedBatch
    ) -> SendOutcome:
        backoff: Backoff | None = None  # made on the first failure: none on the hot path
        outcome = SendOutcome(deliveries=[None] * len(prepared))
        producer = self.adapter.producer()
        pending = list(range(len(prepared)))
        while True:
            outcome.attempts += 1
            retriable = False
            try:
                if not self.topics.ensured(channel):
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
                    outcome.complete = results
                    return outcome
                for i, d in zip(pending, results, strict=True):
                    outcome.deliveries[i] = d
                outcome.complete = [d for d in outcome.deliveries if d is not None]
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
                outcome.last_error = outcome.errors[still[0]] if still else exc
                retriable = all(outcome.errors[i].retriable for i in still)
            except EventBusError as exc:
                outcome.last_error = exc
                for i in pending:
                    outcome.errors[i] = exc
                retriable = exc.retriable
            # A delivery that may have been written anyway is not sent again blindly: that
            # would duplicate it. It goes to the spool, which looks it up before resending.
            uncertain = any(outcome.errors[i].possibly_persisted for i in pending)
            if backoff is None:
                backoff = Backoff(
                    self.config.retry_for(channel, self.breakers.is_critical(channel))
                )
            if not retriable or uncertain or outcome.attempts >= backoff.policy.max_attempts:
                return outcome
            delay = backoff.next_delay_s()
            logger.warning(
                "publish to %s failed (attempt %d of %d): %s; retrying in %.3fs",
                channel,
                outcome.attempts,
                backoff.policy.max_attempts,
                outcome.last_error,
                delay,
            )
            self.observers.publish_retried(
                channel, len(pending), outcome.attempts, outcome.last_error, delay
            )
            await backoff_module.sleep(delay)

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
        self,
        channel: str,
        topic: str,
        prepared: PreparedBatch,
        outcome: SendOutcome,
        started: float,
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
            where = await self.dead_letters.write_refused_publish(
                channel, [self._dead_letter(channel, prepared, i, outcome) for i in failed]
            )
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
        error = PublishError(
            message,
            cause=last,
            channel=channel,
            dlq=where,
            results=results,
            retriable=bool(where is None and last is not None and last.retriable),
            code=last.code if last is not None else None,
            code_name=last.code_name if last is not None else None,
        )
        self._count_partial(channel, prepared, outcome, started, error, where)
        raise error

    def _dead_letter(
        self, channel: str, prepared: PreparedBatch, i: int, outcome: SendOutcome
    ) -> DeadLetter:
        err = outcome.errors.get(i) or outcome.last_error
        key, value, headers = prepared.record(i)
        return DeadLetter(
            Failure(
                original_channel=channel,
                error_type=type(err).__name__,
                error_message=str(err),
                retry_count=max(0, outcome.attempts - 1),
            ),
            # The copy fits the producer's limit even when the event itself was refused for
            # its size (decision 44): the caller keeps the whole event (PublishError.results).
            event=prepared.event(i),
            raw_value=value,
            key=key,
            headers=headers,
            original_topic=self.adapter.topic_for(channel),
            event_id=prepared.event_id(i),
        )

    def _spool(
        self,
        channel: str,
        topic: str,
        prepared: PreparedBatch,
        indices: Sequence[int] | range,
        outcome: SendOutcome | None,
    ) -> None:
        entries = []
        for i in indices:
            err = outcome.errors.get(i) if outcome is not None else None
            entries.append(
                SpoolEntry.create(
                    topic,
                    channel,
                    prepared.event_id(i),
                    prepared.record(i),
                    reason=str(err) if err is not None else "queued behind spooled events",
                    possibly_persisted=bool(err is not None and err.possibly_persisted),
                )
            )
        self.spool.put(entries)
        self.observers.spooled(channel, len(entries), "topic")
