"""The one backoff helper every retry loop uses."""

from __future__ import annotations

import asyncio
import random

from tradecore_eventbus import RetryConfig
from tradecore_eventbus._internal.reliability.backoff import Backoff, sleep_unless

POLICY = RetryConfig(max_attempts=4, initial_delay_ms=100, max_delay_ms=350, backoff_factor=2.0)


def test_without_jitter_the_delays_are_the_schedules_caps_and_counted() -> None:
    backoff = Backoff(POLICY, jitter=False)
    assert [backoff.next_delay_s() for _ in range(4)] == [0.1, 0.2, 0.35, 0.35]
    assert backoff.failures == 4
    assert backoff.exhausted
    backoff.reset()
    assert backoff.failures == 0
    assert not backoff.exhausted
    assert backoff.next_delay_s() == 0.1


def test_with_jitter_each_delay_is_drawn_below_its_cap_and_not_below_the_floor() -> None:
    backoff = Backoff(POLICY, rng=random.Random(7))
    delays = [backoff.next_delay_s() for _ in range(200)]
    caps = [POLICY.delay_cap_ms(n) / 1000 for n in range(1, 201)]
    assert all(0 <= d <= c for d, c in zip(delays, caps, strict=True))
    assert len(set(delays)) > 100, "drawn, not constant"
    floored = Backoff(POLICY, floor_s=0.3, rng=random.Random(7))
    assert min(floored.next_delay_s() for _ in range(50)) >= 0.3


async def test_a_wait_ends_early_when_stopped_and_says_so() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    asyncio.get_running_loop().call_later(0.05, stop.set)
    assert await sleep_unless(stop, 30.0) is False
    assert loop.time() - started < 5.0
    assert await sleep_unless(asyncio.Event(), 0.01) is True
    assert await sleep_unless(stop, 0.01) is False, "already stopped"
