"""Public import path of the guide (``base_model``); the implementation lives in
``tradecore_eventbus._internal.validation.base_model``."""

from ._internal.validation.base_model import (
    BaseEvent,
    new_event_id,
    utc_now,
)

__all__ = [
    "BaseEvent",
    "new_event_id",
    "utc_now",
]
