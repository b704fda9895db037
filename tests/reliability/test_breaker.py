"""The Rust circuit breaker as Python sees it, driven by a manual clock (no sleeping)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tradecore_eventbus import CircuitBreakerOpenError, EventBusError
from tradecore_eventbus._core import CircuitBreaker, ManualClock


def breaker(clock: ManualClock, **kw: object) -> CircuitBreaker:
    return CircuitBreaker("transport.orders", clock=clock, **kw)  # type: ignore[arg-type]


def fail(b: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        b.acquire().failure()


def test_the_full_cycle_closed_open_half_open_closed() -> None:
    clock = ManualClock()
    b = breaker(clock)
    fail(b, 4)
    assert b.state == "CLOSED"
    fail(b, 1)
    assert b.state == "OPEN"
    with pytest.raises(CircuitBreakerOpenError) as info:
        b.acquire()
    err = info.value
    assert isinstance(err, EventBusError)
    assert err.channel == "transport.orders"
    assert err.retry_after == pytest.approx(30.0)
    assert "transport.orders" in str(err)
    assert err.retriable
    clock.advance(29.9)
    with pytest.raises(CircuitBreakerOpenError) as info:
        b.acquire()
    assert info.value.retry_after == pytest.approx(0.1, abs=1e-6)
    clock.advance(0.1)
    assert b.state == "HALF_OPEN"
    trials = [b.acquire() for _ in range(3)]
    with pytest.raises(CircuitBreakerOpenError, match="HALF_OPEN"):
        b.acquire()
    for t in trials:
        t.success()
    assert b.state == "CLOSED"
    stats = b.stats()
    assert stats["total_failures"] == 5
    assert stats["total_success"] == 3
    assert stats["failure_count"] == 0
    assert stats["last_failure_time"] is not None


def test_a_failure_in_half_open_reopens() -> None:
    clock = ManualClock()
    b = breaker(clock, failure_threshold=3, timeout_seconds=15)
    fail(b, 3)
    clock.advance(15)
    b.acquire().success()
    b.acquire().failure()
    assert b.state == "OPEN"
    clock.advance(14)
    assert b.state == "OPEN"
    clock.advance(1)
    assert b.state == "HALF_OPEN"


def test_a_permit_left_without_outcome_is_released() -> None:
    clock = ManualClock()
    b = breaker(clock)
    fail(b, 5)
    clock.advance(30)
    for _ in range(5):
        with b.acquire(), b.acquire(), b.acquire():
            pass  # the calls were cancelled: no outcome
    with pytest.raises(ValueError, match="boom"), b.acquire():
        raise ValueError("boom")
    assert b.stats()["half_open_in_flight"] == 0
    for _ in range(3):
        b.acquire().success()
    assert b.state == "CLOSED"


async def test_a_cancelled_call_releases_its_permit() -> None:
    clock = ManualClock()
    b = breaker(clock, half_open_calls=1)
    fail(b, 5)
    clock.advance(30)

    async def call() -> None:
        with b.acquire() as permit:
            await asyncio.sleep(10)
            permit.success()

    task = asyncio.create_task(call())
    await asyncio.sleep(0)
    with pytest.raises(CircuitBreakerOpenError):
        b.acquire()  # the single trial slot is taken
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    b.acquire().success()  # the slot came back
    assert b.stats()["total_success"] == 1


def test_an_open_breaker_refuses_in_well_under_a_millisecond() -> None:
    b = breaker(ManualClock())
    fail(b, 5)
    started = time.perf_counter()
    for _ in range(1000):
        with pytest.raises(CircuitBreakerOpenError):
            b.acquire()
    per_call = (time.perf_counter() - started) / 1000
    assert per_call < 0.001, f"{per_call * 1e6:.0f} us per refused call"


def test_only_the_first_outcome_of_a_permit_counts() -> None:
    b = breaker(ManualClock())
    p = b.acquire()
    p.failure()
    p.failure()
    p.success()
    assert b.stats()["total_failures"] == 1
    assert b.stats()["total_success"] == 0
