"""Public import path of the guide (``event_registry``); the implementation lives in
``tradecore_eventbus._internal.validation.registry``."""

from ._internal.validation.registry import (
    EVENT_TYPE_TO_PYDANTIC_MODEL,
    E,
    model_for,
    register_event,
    validate_event,
)

__all__ = [
    "EVENT_TYPE_TO_PYDANTIC_MODEL",
    "E",
    "model_for",
    "register_event",
    "validate_event",
]
