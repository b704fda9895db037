"""Observing the bus: subclass :class:`Observer`, override the callbacks you need, and pass
it as ``EventBus(..., observers=[...])`` or ``bus.add_observer(...)``. The Prometheus and
OpenTelemetry integrations plug in here."""

from ._internal.observability.observer import Observer

__all__ = ["Observer"]
