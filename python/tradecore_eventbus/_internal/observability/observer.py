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
"""

from __future__ import annotations


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
