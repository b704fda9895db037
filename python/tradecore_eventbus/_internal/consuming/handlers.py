"""Calling user handlers: sync or async, with a dict or with the event's Pydantic model.

A handler whose first parameter is annotated with a Pydantic model receives the event
validated into that model (``BaseEvent`` itself means "the registered model of the event's
type"); any other handler receives the event dict.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ...exceptions import EventValidationError
from ..validation.base_model import BaseEvent
from ..validation.registry import model_for

#: What a handler receives: the event's JSON object, or the Pydantic model its first
#: parameter is annotated with.
EventT = TypeVar("EventT", bound="Mapping[str, Any] | BaseModel")
#: A subscriber's handler, sync or async; what it returns is not used.
Handler = Callable[[EventT], Awaitable[object] | object]
Invoker = Callable[[dict[str, Any]], Awaitable[None]]


def _first_param_annotation(handler: Handler[Any]) -> Any:
    target: Any = handler
    if not (inspect.isfunction(target) or inspect.ismethod(target)) and callable(target):
        target = type(target).__call__
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable forward references: fall back to dicts
        return None
    params = [
        p
        for p in inspect.signature(target).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in ("self", "cls")
    ]
    if not params:
        return None
    return hints.get(params[0].name)


def model_parameter(handler: Handler[Any]) -> type[BaseModel] | None:
    """The Pydantic model the handler asks for, if any."""
    annotation = _first_param_annotation(handler)
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _validate(model: type[BaseModel], event: dict[str, Any]) -> BaseModel:
    if model is BaseEvent:
        model = model_for(str(event.get("event_type"))) or BaseEvent
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        raise EventValidationError(
            f"event {event.get('event_type')!r} does not fit {model.__name__}: "
            f"{exc.error_count()} error(s)",
            errors=exc.errors(include_url=False),
        ) from exc


def make_invoker(handler: Handler[Any]) -> Invoker:
    """An async callable that hands one event dict to ``handler`` as it wants it."""
    if not callable(handler):
        raise TypeError(f"handler must be callable, not {type(handler).__name__}")
    model = model_parameter(handler)
    if model is None and inspect.iscoroutinefunction(handler):
        # The common case: an `async def` taking the dict; no wrapper coroutine per event.
        return handler

    async def invoke(event: dict[str, Any]) -> None:
        arg: Any = _validate(model, event) if model is not None else event
        result = handler(arg)
        if inspect.isawaitable(result):
            await result

    return invoke
