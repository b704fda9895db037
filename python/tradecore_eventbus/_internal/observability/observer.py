"""What the bus reports as it works: the seam metrics, tracing and logs plug into.

Subclass :class:`Observer` and override the callbacks you need (each is a no-op here), then
``EventBus(..., observers=[mine])`` or ``bus.add_observer(mine)``. Callbacks run on the
event loop's thread, synchronously, at most once per batch on the hot paths (a publish call
or batch, a chunk of handled records), except ``handled``, once per handled record and only
while an observer overrides it: keep them quick and never block. An exception an
observer raises is logged once per callback and never reaches the bus (decision 63).

``destination`` names where an event went: ``"dlq"`` (the dead-letter topic), ``"spool"``
(the local spool: the broker was unreachable), ``"dead"`` (the spool's ``dead/``
directory: refused for good), or None (kept nowhere, e.g. ``ENABLE_DLQ=false``).
``source`` names the path a dead letter came from: ``"publish"``, ``"consume"`` or
``"outbox"``.

Two hooks follow one publish call or one record from start to end instead of reporting what
happened: ``trace_publish`` and ``trace_handling`` return a :class:`PublishTrace` or a
:class:`HandlingTrace` (or None), through which an observer carries a context in the
records' headers and back out of them (tracing: ``tradecore_eventbus.tracing``). They are
called only while an observer overrides them, and one observer at most per bus may: a record
carries one trace context (decision 86).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..transports.protocol import RecordLike


class PublishTrace:
    """Follows the events of one publish call (one event for ``publish`` and
    ``publish_stream``, all of them for ``publish_batch``), by position. The bus calls
    ``headers`` for every event before encoding them, then ``delivered`` or ``failed`` once
    for each event, then ``end`` once. Every method is optional."""

    def headers(self, i: int) -> Mapping[str, str] | None:
        """Headers to add to event ``i``'s record (e.g. ``traceparent``), or None."""
        return None

    def delivered(self, i: int, partition: int, offset: int) -> None:
        """Event ``i`` was acknowledged at ``partition``/``offset``."""

    def failed(self, i: int, error: BaseException) -> None:
        """Event ``i`` was not delivered (invalid, refused, spooled, dead-lettered, ...)."""

    def end(self) -> None:
        """The call is over."""


class HandlingTrace:
    """Follows the handling of one consumed record: the bus enters it before the filter and
    the handler run and leaves it once the record is resolved (handled, filtered out or
    dead-lettered), so whatever the handler does runs inside it. Every method is optional."""

    def __enter__(self) -> HandlingTrace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def attempt_failed(self, error: BaseException, attempt: int) -> None:
        """The handler raised on its ``attempt``-th try."""

    def gave_up(self, error: BaseException) -> None:
        """The record could not be handled: it goes to the DLQ (or is skipped without one)."""


class Observer:
    """Receives the events that matter; every callback is optional."""

    # ------------------------------------------------------------ publishing

    def published(self, channel: str, count: int, latency_s: float) -> None:
        """``count`` events of one call were acknowledged ``latency_s`` after it started."""

    def publish_retried(
        self, channel: str, count: int, attempt: int, error: BaseException, delay_s: float
    ) -> None:
        """Attempt ``attempt`` failed for ``count`` events; the next starts in ``delay_s``."""

    def publish_failed(
        self, channel: str, count: int, error: BaseException, destination: str | None
    ) -> None:
        """``count`` events of a call were not delivered (the caller gets the error)."""

    def spooled(self, channel: str, count: int, destination: str) -> None:
        """``count`` records went to the local spool, bound for their ``"topic"`` or the
        ``"dlq"``."""

    def spool_drained(self, topic: str, sent: int, already_delivered: int, dead: int) -> None:
        """A drain of the spool published ``sent`` entries to ``topic``."""

    # ------------------------------------------------------------ dead letters

    def dead_lettered(self, channel: str, count: int, source: str) -> None:
        """``count`` records were written to ``channel``'s DLQ topic."""

    def dead_letter_failed(
        self, channel: str, count: int, source: str, error: BaseException, refused: bool
    ) -> None:
        """Writing ``count`` dead letters failed: for now (``refused=False``: tried again,
        or spooled), or for good (``refused=True``)."""

    # ------------------------------------------------------------ consuming

    def consumed(self, channel: str, group: str, count: int) -> None:
        """A subscription's handlers finished ``count`` more records (handled, filtered out
        or dead-lettered)."""

    def handled(self, channel: str, group: str, seconds: float) -> None:
        """A handler returned for one record, ``seconds`` after it was called (the last,
        successful attempt; failed attempts are ``handler_failed``). The one per-record
        callback: handlers are timed only while an observer overrides it (decision 71)."""

    def handler_failed(self, channel: str, group: str, error: BaseException, attempt: int) -> None:
        """A handler raised on its ``attempt``-th try of one record."""

    def worker_restarted(self, channel: str, group: str, partition: int) -> None:
        """A partition worker died and was restarted."""

    def retry_scheduled(self, channel: str, group: str, tier: int, count: int) -> None:
        """``count`` failing records were written to the channel's retry topic ``tier``
        (1-based, ``{channel}.retry.{tier}``; decision 105), acknowledged by the broker."""

    def offsets_committed(self, channel: str, group: str, count: int) -> None:
        """The subscription's consumer completed ``count`` more offset commits."""

    def consumer_lag(self, channel: str, group: str, partition: int, lag: int) -> None:
        """Records of ``partition`` not yet consumed by this member (sampled)."""

    # ------------------------------------------------------------ breakers

    def breaker_transition(self, channel: str, old_state: str, new_state: str) -> None:
        """The channel's circuit breaker went from ``old_state`` to ``new_state``."""

    # ------------------------------------------------------------ tracing

    def trace_publish(
        self,
        channel: str,
        topic: str,
        events: Sequence[Mapping[str, Any]],
        keys: Sequence[str | None],
        batch: bool,
    ) -> PublishTrace | None:
        """A publish call is about to encode ``events`` (each with its ``event_id``) for
        ``topic``: return what follows them, or None. Called in the caller's context (its
        current span is the parent); ``batch`` is True for ``publish_batch``."""
        return None

    def trace_handling(
        self, channel: str, group: str, record: RecordLike, event: dict[str, Any]
    ) -> HandlingTrace | None:
        """A subscription is about to handle ``record`` (decoded as ``event``): return what
        follows it, or None."""
        return None
