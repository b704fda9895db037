"""``wait_for_event``: "an event of type X arrived on channel Y", with a timeout."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..bus.arguments import check_callable, check_name, check_seconds
from ..bus.event_bus import EventBus
from ..transports.poll import poll_batch
from .reading import topic_reader, value_of

EventPredicate = Callable[[dict[str, Any]], bool]


async def wait_for_event(
    bus: EventBus,
    channel: str,
    event_type: str,
    *,
    timeout: float = 10.0,
    where: EventPredicate | None = None,
) -> dict[str, Any]:
    """Returns the first event of ``event_type`` on ``channel`` (for which ``where(event)``
    holds, if given), as the JSON object that was published.

    The channel is read from its beginning, so an event published before the call counts:
    ``publish`` (or the handler it triggers) can never win a race against the wait. On a
    broker shared between test runs a channel may hold older events: use a channel of the
    test's own, or ``where`` to pick the one the test caused (by ``event_id``, an order id).

    Raises ``AssertionError`` naming the channel, the type and the timeout when no such
    event arrived within ``timeout`` seconds (setting up the reader included), with the
    types that did arrive.
    """
    check_name(channel, "channel")
    check_name(event_type, "event_type")
    check_seconds(timeout, "timeout")
    check_callable(where, "where", optional=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    topic = bus.adapter.topic_for(channel)
    seen: Counter[str] = Counter()
    async with topic_reader(bus, channel, topic, deadline) as consumer:
        batch = bus.transport_config.consumer_max_poll_records
        while (remaining := deadline - loop.time()) > 0:
            for record in await poll_batch(consumer, batch, remaining):
                event = value_of(record)
                if event is None:
                    continue
                kind = event.get("event_type")
                seen[str(kind)] += 1
                if kind == event_type and (where is None or where(event)):
                    return event
    arrived = ", ".join(f"{kind} x{n}" for kind, n in seen.items()) or "nothing"
    condition = "" if where is None else " matching `where`"
    raise AssertionError(
        f"no {event_type!r} event{condition} arrived on channel {channel!r} (topic {topic!r}) "
        f"within timeout={timeout}s; the channel held: {arrived}"
    )
