"""Public import path of the guide (``event_bus``); the implementation lives in
``tradecore_eventbus._internal.bus``."""

from ._internal.bus.default_bus import get_event_bus, reset_event_bus, set_event_bus
from ._internal.bus.event_bus import EventBus
from ._internal.bus.health import AdapterHealth, HealthConfigReport, HealthReport
from ._internal.consuming.handlers import Handler
from ._internal.reliability.breakers import BreakerStatus

__all__ = [
    "AdapterHealth",
    "BreakerStatus",
    "EventBus",
    "Handler",
    "HealthConfigReport",
    "HealthReport",
    "get_event_bus",
    "reset_event_bus",
    "set_event_bus",
]
