"""Buses with retry topics on a channel, on the memory transport or on Kafka."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.bus.conftest import TRANSPORTS
from tests.reliability.conftest import broker, reliable_bus  # noqa: F401 (fixtures)

from tradecore_eventbus import RetryConfig

#: In-place attempts before an event goes to its first retry topic.
IN_PLACE = RetryConfig(max_attempts=3, initial_delay_ms=10, max_delay_ms=20, backoff_factor=2.0)


@pytest.fixture(params=TRANSPORTS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def channel() -> str:
    return f"transport.retry-{uuid.uuid4().hex[:8]}"


async def eventually(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@dataclass
class Recorder:
    """A handler that fails ``failures[n]`` times for event ``n`` (forever when absent and
    ``n`` is in ``poison``), recording every call with its wall-clock time."""

    poison: set[int] = field(default_factory=set)
    failures: dict[int, int] = field(default_factory=dict)
    calls: list[tuple[int, float]] = field(default_factory=list)
    handled: dict[int, float] = field(default_factory=dict)

    def attempts(self, n: int) -> list[float]:
        return [t for m, t in self.calls if m == n]

    async def __call__(self, event: dict[str, Any]) -> None:
        n = int(event["n"])
        self.calls.append((n, time.time()))
        if n in self.poison:
            raise RuntimeError(f"poison {n}")
        if len(self.attempts(n)) <= self.failures.get(n, 0):
            raise RuntimeError(f"not yet {n}")
        self.handled.setdefault(n, time.time())
