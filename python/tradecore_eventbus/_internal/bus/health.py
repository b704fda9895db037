"""Assembling ``EventBus.health_check()``: the guide's structure, from the bus's parts.

Totals (sent, dead-lettered, DLQ write failures, worker restarts) come from the bus's
``Counters`` observer, the same events metrics see; per-consumer details from each
subscription.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypedDict

from ...exceptions import EventBusError
from ..config.settings import EventBusConfig
from ..consuming.subscription import Subscription
from ..observability.counters import Counters
from ..reliability.breakers import BreakerRegistry, BreakerStatus
from ..reliability.spool.drainer import SpoolDrainer
from ..transports.protocol import TransportAdapter


class AdapterHealth(TypedDict):
    healthy: bool
    #: ping_successful, producer_started, messages_sent, messages_received, consumers,
    #: spool, ... and one entry per ``add_health_source`` name (the outbox's backlog):
    #: open-ended, so a plain dict.
    details: dict[str, Any]


class HealthConfigReport(TypedDict):
    dlq_enabled: bool
    validation_enabled: bool
    critical_channels: list[str]
    total_channels_monitored: int


class HealthReport(TypedDict):
    """What ``EventBus.health_check()`` returns: the guide's structure."""

    circuit_breakers: dict[str, BreakerStatus]
    open_circuits: list[str]
    open_circuits_count: int
    adapter: AdapterHealth
    healthy: bool
    config: HealthConfigReport


class HealthParts(Protocol):
    """What health is assembled from (``EventBus``)."""

    adapter: TransportAdapter
    config: EventBusConfig
    counters: Counters
    breakers: BreakerRegistry
    drainer: SpoolDrainer
    validate_on_publish: bool
    _subscriptions: dict[str, Subscription]
    _health_sources: dict[str, Callable[[], Awaitable[dict[str, Any]]]]
    _started: bool

    @property
    def closed(self) -> bool: ...
    @property
    def critical_channels(self) -> list[str]: ...


async def assemble_health(bus: HealthParts, timeout: float) -> HealthReport:
    """Never raises; bounded by ``timeout`` (the ping, then each extra source)."""
    try:
        ping = await asyncio.wait_for(bus.adapter.ping(timeout), timeout)
    except (TimeoutError, EventBusError):
        ping = False
    subs = list(bus._subscriptions.values())
    consumers = {s.health_key: s.health() for s in subs}
    failed_consumers = [s.health_key for s in subs if s.failure is not None]
    processed = sum(c["messages_processed"] for c in consumers.values())
    errors = sum(c["errors"] for c in consumers.values())
    adapter_stats = bus.adapter.stats()
    producer_started = bool(adapter_stats.get("producer_started", bus._started)) and not bus.closed
    adapter_healthy = ping and not bus.closed
    extra: dict[str, Any] = {}
    for name, source in bus._health_sources.items():
        try:
            extra[name] = await asyncio.wait_for(source(), timeout)
        except Exception as exc:  # health never raises
            extra[name] = {"error": f"{type(exc).__name__}: {exc}"}
    breakers = bus.breakers.status()
    open_circuits = [c for c, b in breakers.items() if b["state"] == "OPEN"]
    counts = bus.counters
    return {
        "circuit_breakers": breakers,
        "open_circuits": open_circuits,
        "open_circuits_count": len(open_circuits),
        "adapter": {
            "healthy": adapter_healthy,
            "details": {
                "ping_successful": ping,
                "producer_started": producer_started,
                "messages_sent": counts.published_events,
                "messages_received": processed,
                "active_consumers": sum(1 for s in subs if s.active),
                "consumer_error_rate": round(100.0 * errors / max(1, processed + errors), 3),
                "consumers": consumers,
                "dead_lettered": counts.dead_lettered_events,
                "dlq_write_failures": counts.dead_letter_failures,
                "dlq_refused": counts.dead_letter_refusals,
                "worker_restarts": counts.worker_restarts,
                # Failing events moved to a retry topic (decision 105), in all and per tier.
                "retry_scheduled": counts.retry_scheduled_events,
                "retry_scheduled_by_tier": {
                    str(tier): n for tier, n in sorted(counts.retry_scheduled_by_tier.items())
                },
                "consumer_faults": {s.health_key: s.stats.faults() for s in subs},
                "spool": bus.drainer.health(),
                "failed_consumers": failed_consumers,
                # Why nothing works when the broker refuses the credentials (else None).
                "authentication_error": adapter_stats.get("authentication_error"),
                **extra,
            },
        },
        # A subscription stopped by a fatal error (fenced) no longer consumes.
        "healthy": adapter_healthy and not open_circuits and not failed_consumers,
        "config": {
            "dlq_enabled": bus.config.enable_dlq,
            "validation_enabled": bus.validate_on_publish,
            "critical_channels": bus.critical_channels,
            "total_channels_monitored": len(breakers),
        },
    }
