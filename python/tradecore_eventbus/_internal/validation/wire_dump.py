"""Validating an event against its model and dumping it for the wire, with pydantic-core
called directly (no ``model_validate`` / ``model_dump`` wrappers on the per-event path).

The dump is the model's own JSON-mode dump with one difference: NaN and infinities stay
floats where Pydantic would write ``null`` (values typed ``Any``), so that the Rust encoder
refuses them naming the field, as on every other path (decision 52). That lets the
validated path skip a whole extra JSON pass over each event (decision 75).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaSerializer

from .registry import invalid_event

#: model -> its serializer that keeps non-finite floats (built once per model).
_SERIALIZERS: dict[type[BaseModel], SchemaSerializer] = {}


def _wire_serializer(model: type[BaseModel]) -> SchemaSerializer:
    serializer = _SERIALIZERS.get(model)
    if serializer is None:
        # Per-field settings are in the schema itself; the config given here only steers
        # how values typed Any are serialized, so the model's own `ser_json_*` choices are
        # kept and only the NaN rule changes.
        config: dict[str, Any] = {
            k: v for k, v in model.model_config.items() if k.startswith("ser_json_")
        }
        config["ser_json_inf_nan"] = "constants"
        serializer = _SERIALIZERS[model] = SchemaSerializer(
            model.__pydantic_core_schema__,
            config,  # type: ignore[arg-type]
        )
    return serializer


def validate_and_dump(model: type[BaseModel], event: dict[str, Any]) -> dict[str, Any]:
    """What ``model`` accepts of ``event`` (coerced values, defaults, extra fields), as the
    dict the encoder writes. Raises ``EventValidationError`` with Pydantic's errors."""
    try:
        instance = model.__pydantic_validator__.validate_python(event)
    except ValidationError as exc:
        raise invalid_event(event.get("event_type"), exc) from exc
    try:
        dumped: dict[str, Any] = _wire_serializer(model).to_python(instance, mode="json")
    except ValueError as exc:
        # pydantic-core's own recursion guard; the callers report nesting as RecursionError.
        if "depth exceeded" in str(exc):
            raise RecursionError(str(exc)) from exc
        raise
    return dumped
