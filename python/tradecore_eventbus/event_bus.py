"""Public import path of the guide (``event_bus``); the implementation lives in
``tradecore_eventbus._internal.bus.event_bus``."""

from ._internal.bus.event_bus import (
    EventBus,
    get_event_bus,
    reset_event_bus,
    set_event_bus,
)

__all__ = [
    "EventBus",
    "get_event_bus",
    "reset_event_bus",
    "set_event_bus",
]
