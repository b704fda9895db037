"""Public import path of the guide (``event_bus``); the implementation lives in
``tradecore_eventbus._internal.bus``."""

from ._internal.bus.default_bus import get_event_bus, reset_event_bus, set_event_bus
from ._internal.bus.event_bus import EventBus

__all__ = [
    "EventBus",
    "get_event_bus",
    "reset_event_bus",
    "set_event_bus",
]
