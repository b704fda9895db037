"""Bad input gets a typed error that names the argument or field, raised before anything is
sent, and never costs another caller its event. Each test runs on memory and on Kafka."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from typing import Any, Literal

import pytest
from tests.bus.conftest import BusFactory

from tradecore_eventbus import (
    BaseEvent,
    EventBus,
    EventValidationError,
    InvalidArgumentError,
    poll_batch,
    register_event,
)
from tradecore_eventbus.transport_adapter import ConsumerSpec


class Priced(BaseEvent):
    event_type: Literal["Priced"] = "Priced"
    price: float


class Loose(BaseEvent):
    """A model for the event type "A" that accepts what the bad events hold, so that they
    reach the encoder on the Python path."""

    event_type: Literal["A"] = "A"
    price: float | None = None


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        value = {"x": value}
    return value


async def only_these_were_sent(bus: EventBus, channel: str, event_ids: set[str]) -> None:
    """Reads the channel's topic back with a fresh group from the start (raw records, as any
    client sees them), for a second more once the expected count is there, and checks that
    it holds exactly ``event_ids``, each once."""
    topic = bus.adapter.topic_for(channel)
    consumer = bus.adapter.new_consumer(
        ConsumerSpec(topic, f"reader-{uuid.uuid4().hex[:8]}", "stream", "earliest", False, 500)
    )
    consumer.subscribe([topic])
    seen: list[str] = []
    try:
        await consumer.wait_assigned(30)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        settled_at: float | None = None
        while loop.time() < deadline and (settled_at is None or loop.time() < settled_at):
            for record in await poll_batch(consumer, 500, 0.5):
                seen.append(json.loads(record.value)["event_id"])
            if settled_at is None and len(seen) >= len(event_ids):
                settled_at = loop.time() + 1.0
    finally:
        await consumer.close()
    assert sorted(seen) == sorted(event_ids)


# ------------------------------------------------------------------ arguments


async def test_arguments_of_publish_are_checked_and_named(bus: EventBus, channel: str) -> None:
    ok = {"event_type": "Fine"}
    # The calls below pass what the signatures do not allow.
    anything: Any = bus
    five: Any = 5
    one_and_a_half: Any = 1.5
    for call, message in [
        (lambda: bus.publish(channel, ok, partition_key=five), "got int"),
        (lambda: bus.publish(channel, ok, key=b"k"), "key must be a str or None, got bytes"),
        (lambda: bus.publish(channel, ok, partition_key="a", key="b"), "give one of them"),
        (lambda: bus.publish_stream(channel, ok, one_and_a_half), "partition_key must be a str"),
        (lambda: anything.publish(42, ok), "channel must be a str, got int"),
        (lambda: anything.publish_stream(None, ok), "stream_name must be a str, got NoneType"),
        (lambda: anything.publish_batch(channel, [ok], partition_key=7), "partition_key must"),
        (lambda: bus.publish(channel, ok, partition_key="\ud800"), "lone surrogate"),
    ]:
        with pytest.raises(InvalidArgumentError, match=message):
            await call()
    for call, message in [
        (lambda: anything.publish(channel, [("event_type", "X")]), "event_data_dict must be a"),
        (lambda: anything.publish_stream(channel, "X"), "event_data_dict must be a dict, got str"),
        (lambda: anything.publish_batch(channel, ok), "events_data_list must be a list of event"),
        (lambda: anything.publish_batch(channel, "abc"), "events_data_list must be a list"),
    ]:
        with pytest.raises(EventValidationError, match=message):
            await call()
    # Nothing of the above was sent: the topic holds the one good event published now.
    good = await bus.publish(channel, ok)
    await only_these_were_sent(bus, channel, {good.event_id})


async def test_arguments_of_subscribe_are_checked_and_named(bus: EventBus, channel: str) -> None:
    async def handler(event: dict[str, Any]) -> None:
        return None

    bad_batch_sizes: list[Any] = [0, -1, True, 1.5, "10"]
    for value in bad_batch_sizes:
        with pytest.raises(InvalidArgumentError, match="batch_size must be"):
            await bus.subscribe_stream(channel, handler, group="g", batch_size=value)
    bad_block_ms: list[Any] = [math.nan, math.inf, -math.inf, -1, 0, 0.5, "100", True]
    for value in bad_block_ms:
        with pytest.raises(InvalidArgumentError, match="block_ms must be"):
            await bus.subscribe_stream(channel, handler, group="g", block_ms=value)
    with pytest.raises(InvalidArgumentError, match="group must be a str, got int"):
        await bus.subscribe_stream(channel, handler, group=3)
    with pytest.raises(InvalidArgumentError, match="handler must be callable, got str"):
        await bus.subscribe(channel, "not a handler")
    with pytest.raises(InvalidArgumentError, match="filter_fn must be callable, got int"):
        await bus.subscribe(channel, handler, filter_fn=1)
    with pytest.raises(InvalidArgumentError, match="channel must be a str, got list"):
        await bus.subscribe([channel], handler)
    assert bus.subscriptions() == []
    # A float block_ms that is a finite number of milliseconds is fine.
    sub = await bus.subscribe_stream(channel, handler, group="g", batch_size=5, block_ms=250.0)
    assert await bus.unsubscribe(sub)


async def test_timeouts_must_be_finite_and_not_negative(bus: EventBus) -> None:
    for value in (math.nan, -1.0, math.inf):
        with pytest.raises(InvalidArgumentError, match="timeout must be a finite"):
            await bus.health_check(timeout=value)
        with pytest.raises(InvalidArgumentError, match="timeout must be a finite"):
            await bus.check_connection(timeout=value)
    with pytest.raises(InvalidArgumentError, match="idle_timeout"):
        await bus.replay_dlq("transport.x", idle_timeout=math.nan)
    with pytest.raises(InvalidArgumentError, match="max_events must be at least 1"):
        await bus.replay_dlq("transport.x", max_events=0)


# ------------------------------------------------------------------ event content

BAD_EVENTS: list[tuple[str, dict[str, Any], str, tuple[Any, ...]]] = [
    ("no event_type", {"n": 1}, "event_type is required", ("event_type",)),
    ("empty event_type", {"event_type": ""}, "event_type must be a non-empty str", ("event_type",)),
    (
        "list event_type",
        {"event_type": ["A"]},
        "event_type must be a non-empty str, got list",
        ("event_type",),
    ),
    (
        "int event_id 0",
        {"event_type": "A", "event_id": 0},
        "event_id must be a non-empty str",
        ("event_id",),
    ),
    (
        "int event_id",
        {"event_type": "A", "event_id": 123},
        r"event_id must be a non-empty str \(or left out\), got int",
        ("event_id",),
    ),
    ("dict event_id", {"event_type": "A", "event_id": {"id": 1}}, "got dict", ("event_id",)),
    ("empty event_id", {"event_type": "A", "event_id": ""}, "got an empty string", ("event_id",)),
    (
        "NaN",
        {"event_type": "A", "p": [1, {"q": math.nan}]},
        r"field p\[1\]\.q: NaN is not a JSON number",
        ("p", 1, "q"),
    ),
    ("Infinity", {"event_type": "A", "price": math.inf}, "field price: Infinity", ("price",)),
    ("-Infinity", {"event_type": "A", "t": (-math.inf,)}, r"field t\[0\]: -Infinity", ("t", 0)),
    ("deeply nested", {"event_type": "A", "d": nested(10_000)}, "nested", ()),
    ("no JSON form", {"event_type": "A", "o": object()}, "(not JSON serializable|serialize)", ()),
]


@pytest.mark.parametrize("path", ["rust", "model"])
@pytest.mark.parametrize(
    ("case", "event", "message", "loc"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS]
)
async def test_a_bad_event_gets_an_error_naming_the_field(
    make_bus: BusFactory,
    channel: str,
    path: str,
    case: str,
    event: dict[str, Any],
    message: str,
    loc: tuple[Any, ...],
) -> None:
    """The same rule on the Rust encoder's path (no model) and the Python path (an event
    type with a registered model makes its whole batch take it)."""
    bus = await make_bus()
    if path == "model":
        register_event(Loose)
    with pytest.raises(EventValidationError, match=message) as info:
        await bus.publish(channel, event)
    if loc:
        assert tuple(info.value.errors[0]["loc"]) == loc
    with pytest.raises(EventValidationError, match=f"position 1: .*{message}"):
        await bus.publish_batch(channel, [{"event_type": "A", "price": 1.0}, event])
    good = await bus.publish(channel, {"event_type": "A", "price": 2.0})
    await only_these_were_sent(bus, channel, {good.event_id})


async def test_a_registered_model_does_not_let_nan_through(bus: EventBus, channel: str) -> None:
    register_event(Priced)
    for value in (math.nan, math.inf, "NaN", "-Infinity"):  # Pydantic reads the strings too
        with pytest.raises(EventValidationError, match=r"field price: .* is not a JSON number"):
            await bus.publish(channel, {"event_type": "Priced", "price": value})
    good = await bus.publish(channel, {"event_type": "Priced", "price": 1.5})
    await only_these_were_sent(bus, channel, {good.event_id})


async def test_a_given_event_id_is_kept_as_it_is(bus: EventBus, channel: str) -> None:
    event_id = str(uuid.uuid4())
    result = await bus.publish(channel, {"event_type": "A", "event_id": event_id})
    assert result.event_id == event_id
    generated = await bus.publish(channel, {"event_type": "A", "event_id": None})
    assert generated.event_id != event_id
    assert len(generated.event_id) == 36
    await only_these_were_sent(bus, channel, {event_id, generated.event_id})


# ------------------------------------------------------------------ one caller, one error

BAD_CALLERS: list[tuple[dict[str, Any], Any, type[Exception], str]] = [
    ({"event_type": "A"}, 5, InvalidArgumentError, "partition_key must be a str"),
    ({"event_type": ["A"]}, None, EventValidationError, "event_type must be a non-empty str"),
    ({"event_type": "A", "d": nested(10_000)}, None, EventValidationError, "nested"),
    ({"event_type": "A", "p": math.nan}, None, EventValidationError, "field p: NaN"),
    ({"event_type": "A", "event_id": 123}, None, EventValidationError, "event_id must be"),
    ({"event_type": "A", "event_id": 0}, None, EventValidationError, "event_id must be"),
    ({"event_type": "A", "o": object()}, None, EventValidationError, "not JSON serializable"),
]


@pytest.mark.parametrize("path", ["rust", "model"])
async def test_bad_callers_in_one_loop_turn_do_not_fail_the_good_ones(
    make_bus: BusFactory, channel: str, path: str
) -> None:
    bus = await make_bus()
    if path == "model":
        register_event(Priced)
    good: list[dict[str, Any]] = [
        {"event_type": "A", "event_id": str(uuid.uuid4()), "n": n} for n in range(40)
    ]
    if path == "model":
        good.append({"event_type": "Priced", "event_id": str(uuid.uuid4()), "price": 1.0})
    calls: list[Any] = []
    expected: list[tuple[type[Exception], str] | None] = []
    bad = iter(BAD_CALLERS * 2)
    for n, event in enumerate(good):
        calls.append(bus.publish(channel, event, partition_key=f"k{n % 3}"))
        expected.append(None)
        if n % 3 == 0:
            bad_event, key, error, message = next(bad, BAD_CALLERS[0])
            calls.append(bus.publish(channel, bad_event, partition_key=key))
            expected.append((error, message))
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome, want in zip(outcomes, expected, strict=True):
        if want is None:
            assert not isinstance(outcome, BaseException), outcome
        else:
            assert isinstance(outcome, want[0]), outcome
            assert want[1] in str(outcome), outcome
    await only_these_were_sent(bus, channel, {e["event_id"] for e in good})
