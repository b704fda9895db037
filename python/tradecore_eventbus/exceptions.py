"""The exception hierarchy of tradecore-eventbus.

Every error the library raises is an :class:`EventBusError`. Each one says whether trying
again may help (``retriable``) and, when Kafka or librdkafka reported it, keeps the error
code (``code``, ``code_name``). Where a builtin fits, it is mixed in, so existing
``except TimeoutError`` / ``except ValueError`` code keeps working.

The Rust core raises these classes directly (``rust/py/errors.rs`` maps its error enum here).
"""

from __future__ import annotations

from typing import Any


class EventBusError(Exception):
    """Root of every error raised by tradecore-eventbus."""

    retriable: bool = False

    def __init__(
        self,
        message: str = "",
        *,
        retriable: bool | None = None,
        code: int | None = None,
        code_name: str | None = None,
        fatal: bool = False,
        possibly_persisted: bool | None = None,
    ) -> None:
        super().__init__(message)
        if retriable is not None:
            self.retriable = retriable
        #: librdkafka / Kafka protocol error code (negative codes are librdkafka's own).
        self.code = code
        #: The code's name, e.g. ``MessageTimedOut``.
        self.code_name = code_name
        #: The client can no longer be used (librdkafka reported a fatal error).
        self.fatal = fatal
        #: For a failed delivery: the broker may have written the record anyway, so sending
        #: it again may duplicate it. ``None`` when it does not apply.
        self.possibly_persisted = possibly_persisted

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigError(EventBusError, ValueError):
    """A setting is invalid; the message names the setting or environment variable."""


class MissingExtraError(ConfigError):
    """A feature needs an optional dependency that is not installed; the message names the
    extra that brings it (``pip install "tradecore-eventbus[NAME]"``), ``extra`` holds NAME."""

    def __init__(self, message: str = "", *, extra: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.extra = extra


class InvalidArgumentError(EventBusError, ValueError):
    """A call got an argument it cannot use."""


class InternalError(EventBusError):
    """The core failed in a way it should not (a background task panicked): a bug to report,
    with the message saying where. Not the caller's argument and not the broker's answer, so
    not retriable: the same call meets the same bug."""


class ClosedError(EventBusError, RuntimeError):
    """The bus, producer or consumer was closed."""


class EventValidationError(EventBusError, ValueError):
    """An event failed validation and was not sent."""

    def __init__(self, message: str = "", *, errors: list[Any] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        #: Pydantic's error list (``ValidationError.errors()``), or per-position errors.
        self.errors = errors or []


class DeserializationError(EventBusError, ValueError):
    """A consumed record is not a valid event (not JSON, not an object, no ``event_type``)."""


class TransportError(EventBusError):
    """Kafka or librdkafka reported an error."""


class KafkaError(TransportError):
    """A Kafka error without a more specific class (see ``code``)."""


class BrokerUnavailableError(TransportError, ConnectionError):
    """No broker answered, or the partition leader is unavailable."""

    retriable = True


class TransportTimeoutError(TransportError, TimeoutError):
    """An operation or a delivery did not complete within its timeout."""

    retriable = True


class QueueFullError(TransportError):
    """The producer's local queue stayed full: the broker is not keeping up (backpressure)."""

    retriable = True


class UnknownTopicError(TransportError):
    """The topic or partition does not exist (yet)."""

    retriable = True


class InvalidTopicError(TransportError, ValueError):
    """Kafka refuses the topic name."""


class AuthenticationError(TransportError):
    """The broker refused the client's credentials (SASL): a refusal, not an outage.

    Raised as soon as the broker refuses the SASL handshake (not after a delivery or poll
    timeout) by publishing, subscribing and topic administration. It is not retried, not
    spooled, not written to the DLQ (which is on the same cluster, behind the same
    credentials) and not counted against a channel's circuit breaker: nothing was kept, the
    caller has the events.
    Fix the credentials (``KAFKA_SASL_USERNAME`` / ``KAFKA_SASL_PASSWORD``); the client
    notices by itself when they work again.

    From a publish: ``channel`` names the channel, and ``results`` has one entry per event,
    ``(partition, offset)`` for one the broker acknowledged anyway (only possible when
    credentials change mid-batch), else the error; empty when none was acknowledged.
    """

    retriable = False

    def __init__(
        self,
        message: str = "",
        *,
        channel: str | None = None,
        results: list[Any] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.channel = channel
        self.results: list[Any] = list(results or [])


class AuthorizationError(TransportError):
    """The authenticated client may not do this (topic, group or cluster ACLs). A refusal
    for that resource only: a publish refused this way goes to the DLQ like other refusals."""

    retriable = False


class FencedInstanceError(TransportError):
    """Another live consumer joined the group with this consumer's ``group.instance.id``
    (static membership, ``KAFKA_CONSUMER_STATIC_MEMBERSHIP``): Kafka fenced this one out
    and gave its partitions to the newcomer. Not retriable: rejoining would fence the other
    one in turn. Give every replica its own ``consumer`` name."""


class BatchDeliveryError(TransportError):
    """Some records of a batch were not delivered.

    ``results`` has one entry per record, in order: a ``(partition, offset)`` tuple for a
    delivered record, an exception for a failed one. Records that were delivered must not be
    sent again.
    """

    def __init__(self, message: str = "", *, results: list[Any] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.results: list[tuple[int, int] | EventBusError] = list(results or [])

    @property
    def failed_indices(self) -> list[int]:
        return [i for i, r in enumerate(self.results) if isinstance(r, BaseException)]

    @property
    def delivered_indices(self) -> list[int]:
        return [i for i, r in enumerate(self.results) if not isinstance(r, BaseException)]


class PublishError(EventBusError):
    """Publishing failed after every attempt.

    ``cause`` is the last error. ``dlq`` says where the undelivered events went instead:
    ``"dlq"`` (the channel's dead-letter topic), ``"spool"`` (the local durable spool: they
    will be published when the broker is back, so do not send them again), ``"dead"`` (the
    broker refused them and their DLQ copies for good, e.g. too large: they are kept in the
    spool's ``dead/`` directory for an operator, see ``EventBus.dead_spool_entries``) or
    ``None`` (the DLQ is disabled: nothing kept them). For a batch, ``results`` has one entry
    per event:
    ``(partition, offset)`` if it was delivered, else its error.
    """

    def __init__(
        self,
        message: str = "",
        *,
        cause: BaseException | None = None,
        channel: str | None = None,
        dlq: str | None = None,
        results: list[Any] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.cause = cause
        self.channel = channel
        self.dlq = dlq
        self.results: list[Any] = list(results or [])
        if cause is not None:
            self.__cause__ = cause

    def for_one(self, result: Any) -> PublishError:
        """This error as seen by the caller of one event of the batch (``result``: its
        entry of ``results``)."""
        cause = result if isinstance(result, BaseException) else self.cause
        return PublishError(
            self.message,
            cause=cause,
            channel=self.channel,
            dlq=self.dlq,
            results=[result] if result is not None else [],
            retriable=self.retriable,
            code=self.code,
            code_name=self.code_name,
        )

    @property
    def spooled(self) -> bool:
        """The events are safe in the local spool and will be published later."""
        return self.dlq == "spool"


class CircuitBreakerOpenError(EventBusError):
    """The channel's circuit breaker is open: the call was refused at once, nothing sent.
    ``retry_after`` is how many seconds until the breaker lets a trial call through."""

    retriable = True

    def __init__(
        self, message: str = "", *, channel: str = "", retry_after: float = 0.0, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.channel = channel
        self.retry_after = retry_after


__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "BatchDeliveryError",
    "BrokerUnavailableError",
    "CircuitBreakerOpenError",
    "ClosedError",
    "ConfigError",
    "DeserializationError",
    "EventBusError",
    "EventValidationError",
    "FencedInstanceError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidTopicError",
    "KafkaError",
    "MissingExtraError",
    "PublishError",
    "QueueFullError",
    "TransportError",
    "TransportTimeoutError",
    "UnknownTopicError",
]
