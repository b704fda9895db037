"""The registry of event models (``EVENT_TYPE_TO_PYDANTIC_MODEL``) and validation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from ...exceptions import EventValidationError
from .base_model import BaseEvent

#: event_type -> model. Register with :func:`register_event` or by assignment.
EVENT_TYPE_TO_PYDANTIC_MODEL: dict[str, type[BaseEvent]] = {}

E = TypeVar("E", bound=type[BaseEvent])


def _event_type_of(model: type[BaseEvent]) -> str:
    field = model.model_fields.get("event_type")
    default = field.default if field is not None else None
    if not isinstance(default, str):
        raise TypeError(
            f"{model.__name__} needs a default event_type (e.g. "
            'event_type: Literal["OrderPlaced"] = "OrderPlaced") or an explicit name'
        )
    return default


def register_event(
    model: E | None = None, *, event_type: str | None = None
) -> E | Callable[[E], E]:
    """Registers a model under its ``event_type``. Usable as ``register_event(Model)`` or as
    a decorator, with or without ``event_type=``."""

    def add(m: E) -> E:
        name = event_type or _event_type_of(m)
        EVENT_TYPE_TO_PYDANTIC_MODEL[name] = m
        return m

    if model is None:
        return add
    return add(model)


def model_for(event_type: str) -> type[BaseEvent] | None:
    return EVENT_TYPE_TO_PYDANTIC_MODEL.get(event_type)


def validate_event(event: Mapping[str, Any], *, strict: bool = False) -> BaseEvent | None:
    """Validates an (enriched) event against its registered model.

    Returns the model instance, or ``None`` when the type is not registered and ``strict``
    is off. Raises :class:`EventValidationError` (a ``ValueError``) with Pydantic's errors.
    """
    event_type = event.get("event_type")
    model = EVENT_TYPE_TO_PYDANTIC_MODEL.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        if strict:
            raise EventValidationError(
                f"event type {event_type!r} has no registered model (strict validation is on)",
                errors=[
                    {"type": "unregistered_event_type", "loc": ("event_type",), "input": event_type}
                ],
            )
        return None
    try:
        return model.model_validate(dict(event))
    except ValidationError as exc:
        raise invalid_event(event_type, exc) from exc


def invalid_event(event_type: object, exc: ValidationError) -> EventValidationError:
    """The error of an event its model refused, with Pydantic's errors."""
    return EventValidationError(
        f"invalid {event_type} event: {exc.error_count()} error(s): "
        + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()),
        errors=exc.errors(include_url=False),
    )
