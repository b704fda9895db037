"""One circuit breaker per channel (the state machine lives in Rust, ``_core.CircuitBreaker``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypedDict

from tradecore_eventbus import _core

from ..config.settings import CircuitBreakerConfig, EventBusConfig
from ..observability.observer import Observer


class BreakerStatus(TypedDict):
    """One channel's breaker in ``get_circuit_breaker_status()`` and ``health_check()``."""

    state: str
    failure_count: int
    consecutive_successes: int
    total_failures: int
    total_success: int
    #: ISO 8601 in UTC (``...Z``), None before the first failure.
    last_failure_time: str | None


class BreakerRegistry:
    """Creates each channel's breaker on first use, with the critical settings for channels
    marked critical. ``clock`` (a ``_core.ManualClock``) lets tests drive time."""

    def __init__(
        self,
        config: EventBusConfig,
        clock: _core.ManualClock | None = None,
        observers: Observer | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.observers = observers or Observer()
        self._breakers: dict[str, _core.CircuitBreaker] = {}
        #: The state each breaker was last seen in, to report transitions.
        self._seen: dict[str, str] = {}
        self._critical: set[str] = set()

    def mark_critical(self, channel: str) -> None:
        if channel in self._critical:
            return
        self._critical.add(channel)
        # Marked after first use: start over with the critical settings.
        self._breakers.pop(channel, None)
        self._seen.pop(channel, None)

    def is_critical(self, channel: str) -> bool:
        return channel in self._critical

    @property
    def critical_channels(self) -> list[str]:
        return sorted(self._critical)

    def settings(self, channel: str) -> CircuitBreakerConfig:
        if channel in self._critical:
            return self.config.critical_circuit_breaker
        return self.config.circuit_breaker

    def get(self, channel: str) -> _core.CircuitBreaker:
        breaker = self._breakers.get(channel)
        if breaker is None:
            s = self.settings(channel)
            breaker = _core.CircuitBreaker(
                channel,
                failure_threshold=s.failure_threshold,
                success_threshold=s.success_threshold,
                timeout_seconds=s.timeout_seconds,
                half_open_calls=s.half_open_calls,
                clock=self.clock,
            )
            self._breakers[channel] = breaker
            self._seen[channel] = breaker.state
        return breaker

    def observe(self, channel: str, breaker: _core.CircuitBreaker) -> None:
        """Reports a transition since the breaker was last looked at (after each send)."""
        state = breaker.state
        seen = self._seen.get(channel, state)
        if state != seen:
            self._seen[channel] = state
            self.observers.breaker_transition(channel, seen, state)

    def status(self) -> dict[str, BreakerStatus]:
        """The guide's per-channel stats."""
        out: dict[str, BreakerStatus] = {}
        for channel, breaker in sorted(self._breakers.items()):
            s = breaker.stats()
            self.observe(channel, breaker)
            last = s["last_failure_time"]
            out[channel] = {
                "state": s["state"],
                "failure_count": s["failure_count"],
                "consecutive_successes": s["consecutive_successes"],
                "total_failures": s["total_failures"],
                "total_success": s["total_success"],
                "last_failure_time": (
                    None
                    if last is None
                    else datetime.fromtimestamp(float(last), UTC).isoformat().replace("+00:00", "Z")
                ),
            }
        return out
