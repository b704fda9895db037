"""Turning caller events into records: enrichment, validation and encoding, all before
anything is sent, so a batch with one bad event sends nothing.

Events with nothing to validate (validation off, or no registered model for their type) are
enriched and encoded in one pass in Rust (``_core.encode_events``); events checked against
a Pydantic model take the Python path. Both give the same records.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

from tradecore_eventbus import _core

from ...exceptions import EventValidationError
from ..transports.protocol import EncodedSender, ProducerLike
from ..transports.structs import OutgoingRecord
from ..validation.registry import EVENT_TYPE_TO_PYDANTIC_MODEL, validate_event
from ..validation.wire_dump import validate_and_dump
from ..wire.envelope import _json_default, encode, enrich, headers_for, refuse_non_finite

logger = logging.getLogger("tradecore_eventbus.publish")

#: Per event, more headers for its record (None: none), or None for no event at all: the
#: trace context of a traced publish, carried through the one encoding call.
ExtraHeaders = Sequence[Mapping[str, str] | None] | None


class PreparedBatch(Protocol):
    """Encoded events ready to send, addressed by position. ``immediate``: an explicit batch,
    sent without waiting for linger.ms (decision 95)."""

    immediate: bool

    @property
    def source(self) -> Any:
        """What results read event ids, types and events from (see ``results_for``)."""
        ...

    def __len__(self) -> int: ...
    def event_id(self, i: int) -> str: ...
    def event_type(self, i: int) -> str: ...
    def event(self, i: int) -> dict[str, Any]: ...
    def record(self, i: int) -> OutgoingRecord: ...
    async def send(
        self, producer: ProducerLike, topic: str, indices: Sequence[int]
    ) -> Sequence[tuple[int, int]]: ...


@dataclass(frozen=True)
class PreparedEvent:
    event: dict[str, Any]
    record: OutgoingRecord


class PythonBatch:
    """Events prepared in Python (validated against their models)."""

    def __init__(self, events: list[PreparedEvent], immediate: bool = False) -> None:
        self.events = events
        self.immediate = immediate

    @property
    def source(self) -> PythonBatch:
        return self

    def __len__(self) -> int:
        return len(self.events)

    def event_id(self, i: int) -> str:
        return str(self.events[i].event["event_id"])

    def event_type(self, i: int) -> str:
        return str(self.events[i].event["event_type"])

    def event(self, i: int) -> dict[str, Any]:
        return self.events[i].event

    def record(self, i: int) -> OutgoingRecord:
        return self.events[i].record

    async def send(
        self, producer: ProducerLike, topic: str, indices: Sequence[int]
    ) -> list[tuple[int, int]]:
        return await producer.send_batch(
            topic, [self.events[i].record for i in indices], immediate=self.immediate
        )


_SENDS_ENCODED: dict[type, bool] = {}


def sends_encoded(producer: ProducerLike) -> TypeGuard[EncodedSender]:
    """Whether the producer declares the encoded fast path (``EncodedSender``); looked up
    once per producer type, since an ``isinstance`` on a protocol inspects its members."""
    kind = type(producer)
    found = _SENDS_ENCODED.get(kind)
    if found is None:
        found = _SENDS_ENCODED[kind] = isinstance(producer, EncodedSender)
    return found


class RustBatch:
    """Events enriched and encoded by the Rust core; sent without leaving Rust when the
    producer is the Rust one."""

    def __init__(self, batch: _core.EncodedBatch, immediate: bool = False) -> None:
        self.batch = batch
        self.immediate = immediate

    @property
    def source(self) -> _core.EncodedBatch:
        return self.batch

    def __len__(self) -> int:
        return len(self.batch)

    def event_id(self, i: int) -> str:
        return self.batch.event_id(i)

    def event_type(self, i: int) -> str:
        return self.batch.event_type(i)

    def event(self, i: int) -> dict[str, Any]:
        return self.batch.event(i)

    def record(self, i: int) -> OutgoingRecord:
        return self.batch.record(i)

    async def send(
        self, producer: ProducerLike, topic: str, indices: Sequence[int]
    ) -> Sequence[tuple[int, int]]:
        if sends_encoded(producer):
            whole = len(indices) == len(self.batch)
            return await producer.send_encoded(
                topic, self.batch, None if whole else indices, immediate=self.immediate
            )
        return await producer.send_batch(
            topic, [self.record(i) for i in indices], immediate=self.immediate
        )


# What one published event became: channel, topic, event_id, event_type, partition, offset,
# key, and ``event`` (the enriched event, read from the batch on access). Built in Rust for
# a whole batch at once (``results_for``), not as a Python dataclass per event (decision 65).
PublishResult = _core.PublishResult


def results_for(
    channel: str,
    topic: str,
    keys: str | list[str | None] | None,
    prepared: PreparedBatch,
    deliveries: Sequence[tuple[int, int]],
    indices: Sequence[int] | None = None,
) -> list[PublishResult]:
    """``deliveries[j]`` belongs to the event at ``indices[j]`` (or ``j``) of ``prepared``."""
    return _core.publish_results(
        channel,
        topic,
        keys,
        prepared.source,
        deliveries,
        None if indices is None else list(indices),
    )


def prepare_one(
    event_data: Mapping[str, Any],
    key: str | None,
    *,
    validate: bool,
    strict: bool,
    headers: bool = False,
) -> PreparedEvent:
    """One event enriched, validated and encoded in Python; anything wrong with it raises
    :class:`EventValidationError` (never another exception: decision 51)."""
    try:
        event = enrich(event_data)
        if validate:
            model = validate_event(event, strict=strict)
            if model is not None:
                # Send what the model accepted (coerced values, defaults), extra fields
                # included; its JSON dump writes null for NaN in values typed Any, so NaN is
                # refused before (decision 52), and after for what the model made NaN.
                refuse_non_finite(event)
                event = model.model_dump(mode="json")
        value = encode(event)
        key_bytes = key.encode() if key is not None else None
    except EventValidationError:
        raise
    except RecursionError as exc:
        raise _encoding_error(f"{_type_of(event_data)} is nested too deeply") from exc
    except Exception as exc:  # a model's validator or serializer, a default conversion, ...
        raise _encoding_error(
            f"{_type_of(event_data)} cannot be prepared: {type(exc).__name__}: {exc}"
        ) from exc
    return PreparedEvent(
        event,
        (
            key_bytes,
            value,
            headers_for(event) if headers else [],
        ),
    )


def _type_of(event_data: Any) -> str:
    event_type = event_data.get("event_type") if isinstance(event_data, Mapping) else None
    return f"event {event_type!r}" if isinstance(event_type, str) else "the event"


def _encoding_error(message: str, loc: tuple[str | int, ...] = ()) -> EventValidationError:
    return EventValidationError(
        message, errors=[{"type": "value_error", "loc": loc, "msg": message}]
    )


def _needs_python(events: Sequence[Any], validate: bool, strict: bool) -> bool:
    if validate and strict:
        return True
    registry = EVENT_TYPE_TO_PYDANTIC_MODEL
    for e in events:
        if type(e) is not dict:
            return True
        if validate and registry:
            # Only a str can name a model; anything else (a list, say) is the Rust
            # encoder's to refuse for that event alone.
            event_type = e.get("event_type")
            if type(event_type) is str and event_type in registry:
                return True
    return False


def _key_at(key: str | Sequence[str | None] | None, i: int) -> str | None:
    return key if key is None or isinstance(key, str) else key[i]


def _prepare_python(
    events: Sequence[Any],
    key: str | Sequence[str | None] | None,
    *,
    validate: bool,
    strict: bool,
    headers: bool,
    extra_headers: ExtraHeaders,
    immediate: bool = False,
) -> tuple[PreparedBatch, list[int], dict[int, EventValidationError]]:
    """Events checked against their models in Python, then encoded together in Rust like
    unvalidated ones: what a model accepted is what is written, and the encoder applies the
    one rule on NaN (decision 52) to it (decision 75)."""
    ready: list[dict[str, Any]] = []
    positions: list[int] = []
    failures: dict[int, EventValidationError] = {}
    registry = EVENT_TYPE_TO_PYDANTIC_MODEL
    for i, data in enumerate(events):
        k = _key_at(key, i)
        try:
            if k is not None and not isinstance(k, str):
                raise EventValidationError(
                    f"partition_key must be a str, got {type(k).__name__}",
                    errors=[{"type": "string_type", "loc": ("partition_key",), "input": k}],
                )
            event = enrich(data)
            if validate:
                model = registry.get(event["event_type"])
                if model is not None:
                    event = validate_and_dump(model, event)
                elif strict:
                    validate_event(event, strict=True)  # raises: no model for the type
        except EventValidationError as exc:
            failures[i] = exc
            continue
        except RecursionError:
            failures[i] = _encoding_error(f"{_type_of(data)} is nested too deeply")
            continue
        except Exception as exc:  # a model's validator or serializer, ...
            failures[i] = _encoding_error(
                f"{_type_of(data)} cannot be prepared: {type(exc).__name__}: {exc}"
            )
            continue
        ready.append(event)
        positions.append(i)
    keys = key if key is None or isinstance(key, str) else [key[i] for i in positions]
    extra = None if extra_headers is None else [extra_headers[i] for i in positions]
    encoded, problems = _core.encode_events(
        ready, keys, _json_default, event_headers=headers, extra_headers=extra
    )
    if problems:
        refused = set()
        for j, message, loc in problems:
            failures[positions[j]] = _encoding_error(message, tuple(loc))
            refused.add(j)
        positions = [p for j, p in enumerate(positions) if j not in refused]
    return RustBatch(encoded, immediate), positions, failures


def _prepare_all(
    events: Sequence[Any],
    key: str | Sequence[str | None] | None,
    *,
    validate: bool,
    strict: bool,
    headers: bool,
    extra_headers: ExtraHeaders = None,
    immediate: bool = False,
) -> tuple[PreparedBatch, list[int], dict[int, EventValidationError]]:
    """The batch of the events that could be prepared, their positions, and the error of
    each other one. One event's problem is always its own: it never fails the others.
    ``extra_headers``: None, or one item per event (None or more headers for its record)."""
    if not _needs_python(events, validate, strict):
        encoded, problems = _core.encode_events(
            events, key, _json_default, event_headers=headers, extra_headers=extra_headers
        )
        failures = {i: _encoding_error(message, tuple(loc)) for i, message, loc in problems}
        batch = RustBatch(encoded, immediate)
        if not failures:
            return batch, list(range(len(events))), failures
        return batch, [i for i in range(len(events)) if i not in failures], failures
    return _prepare_python(
        events,
        key,
        validate=validate,
        strict=strict,
        headers=headers,
        extra_headers=extra_headers,
        immediate=immediate,
    )


def prepare_each(
    events: Sequence[Mapping[str, Any]],
    keys: list[str | None],
    *,
    validate: bool,
    strict: bool,
    headers: bool = False,
    extra_headers: ExtraHeaders = None,
) -> tuple[PreparedBatch, list[int], dict[int, EventValidationError]]:
    """Prepares events independently: the batch of those that are valid, the original
    position of each of them, and the error of each invalid one (by position). ``keys``:
    one per event, a list (used as it is, not copied)."""
    return _prepare_all(
        events,
        keys,
        validate=validate,
        strict=strict,
        headers=headers,
        extra_headers=extra_headers,
    )


def prepare(
    channel: str,
    events: Sequence[Mapping[str, Any]],
    key: str | Sequence[str | None] | None,
    *,
    validate: bool,
    strict: bool,
    headers: bool = False,
    extra_headers: ExtraHeaders = None,
    immediate: bool = False,
) -> PreparedBatch:
    """Prepares every event or raises one :class:`EventValidationError`: for a single event
    its own (``errors`` = Pydantic's errors); for several, one naming each invalid position
    (``errors`` holds ``{"index": i, "message": ..., "errors": [...]}``).

    ``key`` is one partition key for all events, or one per event; ``extra_headers`` None,
    or one item per event: more headers for its record (a trace context), or None.
    ``immediate``: see :class:`PreparedBatch`."""
    if isinstance(events, Mapping | str | bytes):
        raise EventValidationError(
            "events_data_list must be a list of event dicts",
            errors=[{"type": "list_type", "loc": (), "input": type(events).__name__}],
        )
    batch, _positions, found = _prepare_all(
        events,
        key,
        validate=validate,
        strict=strict,
        headers=headers,
        extra_headers=extra_headers,
        immediate=immediate,
    )
    failures = sorted(found.items())
    if not failures:
        return batch
    if len(events) == 1:
        # One event: its own error, with Pydantic's error list.
        logger.warning("not publishing to %s: %s", channel, failures[0][1].message)
        raise failures[0][1]
    where = "; ".join(f"position {i}: {exc.message}" for i, exc in failures)
    message = f"{len(failures)} of {len(events)} events are invalid, none was sent: {where}"
    logger.warning("not publishing to %s: %s", channel, message)
    raise EventValidationError(
        message,
        errors=[{"index": i, "message": exc.message, "errors": exc.errors} for i, exc in failures],
    )
