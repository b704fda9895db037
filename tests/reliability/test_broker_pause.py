"""The real broker paused (SIGSTOP) under a critical channel: the breaker opens, later calls
fail fast, failed events are spooled; after SIGCONT the breaker half-opens and closes, the
spool drains, and the consumer sees every accepted event exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.reliability.conftest import BusBuilder

from tradecore_eventbus import CircuitBreakerOpenError, PublishError, RetryConfig
from tradecore_eventbus.eventbus_transport_config import CircuitBreakerConfig

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parents[2]
DELIVERY_TIMEOUT_MS = 1500


def broker_pid() -> int:
    result = subprocess.run(
        [str(ROOT / "scripts/kafka/broker.sh"), "pid"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            "this test pauses the project's own broker (make broker-start); none is running"
        )
    return int(result.stdout.strip())


@contextmanager
def paused_broker() -> Iterator[None]:
    pid = broker_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_a_paused_broker_trips_the_critical_breaker_and_nothing_is_lost(
    reliable_bus: BusBuilder,
) -> None:
    bus = await reliable_bus(
        "kafka",
        transport={"producer_delivery_timeout_ms": DELIVERY_TIMEOUT_MS},
        publish_retry=RetryConfig(max_attempts=2, initial_delay_ms=10, max_delay_ms=50),
        critical_publish_max_attempts=2,
        critical_circuit_breaker=CircuitBreakerConfig(
            failure_threshold=3, success_threshold=3, timeout_seconds=3.0, half_open_calls=3
        ),
    )
    ch = f"transport.paused-{uuid.uuid4().hex[:8]}"
    bus.mark_channel_as_critical(ch)
    seen: list[str] = []

    async def collect(event: dict[str, Any]) -> None:
        seen.append(event["event_id"])

    await bus.subscribe_stream(ch, collect, group="pause-audit", consumer="w1")
    accepted: list[str] = []
    refused = 0

    async def publish() -> None:
        nonlocal refused
        event_id = str(uuid.uuid4())
        try:
            await bus.publish_stream(
                ch, {"event_type": "OrderPlaced", "event_id": event_id}, partition_key="acct"
            )
        except PublishError as exc:
            if not exc.spooled:
                raise
            accepted.append(event_id)  # kept in the spool: it will be published
        except CircuitBreakerOpenError:
            refused += 1  # refused at once: the caller knows it was not sent
        else:
            accepted.append(event_id)

    for _ in range(20):
        await publish()
    assert len(accepted) == 20

    with paused_broker():
        for _ in range(3):
            await publish()
        status = await bus.get_circuit_breaker_status()
        assert status[ch]["state"] == "OPEN", status[ch]
        assert bus.spool.count() == 3
        started = time.perf_counter()
        for _ in range(200):
            await publish()
        took = time.perf_counter() - started
        assert refused == 200
        # Fail fast means no refused call waits for the broker: all 200 together take less
        # than the one delivery timeout a single send to the paused broker would wait.
        assert took < DELIVERY_TIMEOUT_MS / 1000, f"200 refusals took {took:.3f} s"
        assert bus.spool.count() == 3, "a refused call is not spooled: its caller knows"
        health = await bus.health_check(timeout=2.0)
        assert health["healthy"] is False
        assert health["open_circuits"] == [ch]

    await asyncio.sleep(3.2)  # the breaker's timeout: it lets trial calls through now
    assert (await bus.get_circuit_breaker_status())[ch]["state"] == "HALF_OPEN"
    for _ in range(3):
        await publish()
    assert (await bus.get_circuit_breaker_status())[ch]["state"] == "CLOSED"
    assert bus.spool.count() == 0, "the spool drained before the new events (key order)"

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while set(seen) != set(accepted) and loop.time() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    counts = Counter(seen)
    assert set(counts) == set(accepted), f"missing: {set(accepted) - set(counts)}"
    assert max(counts.values()) == 1, f"duplicates: {[k for k, v in counts.items() if v > 1]}"
    assert len(seen) == 26


CLOSE_TIMEOUT_S = 2.0


async def test_close_with_the_broker_paused_keeps_to_its_timeout_and_loses_nothing(
    reliable_bus: BusBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker that stops answering while the bus closes, with a handler still running:
    close() returns within its timeout (before, it waited for the broker to come back), the
    handler is cancelled, the consumer finishes closing in the background, and the group's
    next member gets the event whose handler did not finish."""
    bus = await reliable_bus("kafka")
    ch = f"transport.close-paused-{uuid.uuid4().hex[:8]}"
    group = f"close-paused-{uuid.uuid4().hex[:8]}"
    published = [str(uuid.uuid4()) for _ in range(5)]
    unfinished = published[-1]
    seen: list[str] = []
    started = asyncio.Event()

    async def collect(event: dict[str, Any]) -> None:
        if event["event_id"] == unfinished:
            started.set()
            await asyncio.Event().wait()  # runs until the stop cancels it
        seen.append(event["event_id"])

    await bus.subscribe_stream(ch, collect, group=group, consumer="w1")
    for event_id in published:
        await bus.publish(ch, {"event_type": "OrderPlaced", "event_id": event_id})
    await wait_until(lambda: set(seen) == set(published[:-1]), "the first 4 are handled")
    await asyncio.wait_for(started.wait(), 60)

    with paused_broker():
        began = time.monotonic()
        await bus.close(timeout=CLOSE_TIMEOUT_S)
        took = time.monotonic() - began
    # The bound is the timeout; the margin is for the event loop, not for the broker.
    assert took < CLOSE_TIMEOUT_S + 1.0, f"close took {took:.2f} s"
    assert "handlers still running" in caplog.text
    assert unfinished not in seen

    # The same static member comes back (same consumer name): it takes the partitions over
    # at once and gets what was not committed (at least the unfinished event), then a new one.
    again = await reliable_bus("kafka")
    seen_again: list[str] = []

    async def collect_again(event: dict[str, Any]) -> None:
        seen_again.append(event["event_id"])

    await again.subscribe_stream(ch, collect_again, group=group, consumer="w1")
    later = str(uuid.uuid4())
    await again.publish(ch, {"event_type": "OrderPlaced", "event_id": later})
    await wait_until(
        lambda: unfinished in seen_again and later in seen_again,
        "the next member handles the unfinished event and a new one",
    )
    assert set(seen) | set(seen_again) == {*published, later}


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.05)
