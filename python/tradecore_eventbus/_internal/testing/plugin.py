"""The pytest side of ``tradecore_eventbus.testing``: the command-line option and fixtures.

Async fixtures are declared with ``pytest_asyncio.fixture`` when pytest-asyncio is installed
(its public decorator, which works in its strict and auto modes alike), else with
``pytest.fixture`` (pytest then refuses them with its own message: they need an async
plugin). Only the public names of pytest-asyncio are used.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ..bus.event_bus import EventBus
from ..config.settings import TransportConfig
from ..transports.kafka.adapter import RedpandaTransportAdapter
from ..transports.memory.adapter import MemoryTransportAdapter
from ..transports.memory.broker import MemoryBroker
from .faults import MemoryFaults

BOOTSTRAP_OPTION = "--eventbus-bootstrap"
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
PING_TIMEOUT_INI = "eventbus_ping_timeout"

F = TypeVar("F", bound=Callable[..., Any])


def _async_fixture_decorator() -> Callable[[F], F]:
    try:
        module = importlib.import_module("pytest_asyncio")
    except ImportError:
        return pytest.fixture  # type: ignore[return-value]
    decorator: Callable[[F], F] = module.fixture
    return decorator


async_fixture = _async_fixture_decorator()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tradecore_eventbus", "tradecore-eventbus test fixtures")
    group.addoption(
        BOOTSTRAP_OPTION,
        dest="eventbus_bootstrap",
        default=None,
        help=(
            "Kafka bootstrap servers for the kafka_event_bus fixture (default: "
            f"${BOOTSTRAP_ENV}, else the package default, skipped if that does not answer)"
        ),
    )
    parser.addini(
        PING_TIMEOUT_INI,
        "seconds kafka_event_bus waits for the broker to answer its first ping",
        default="5",
    )


def broker_address(config: pytest.Config) -> tuple[str, str | None]:
    """(bootstrap servers, where they were given: the option, the variable, or None for the
    package default)."""
    given = config.getoption("eventbus_bootstrap")
    if given:
        return str(given), BOOTSTRAP_OPTION
    env = os.environ.get(BOOTSTRAP_ENV)
    if env:
        return env, BOOTSTRAP_ENV
    return TransportConfig().bootstrap_servers, None


@pytest.fixture
def eventbus_spool_dir(tmp_path: Path) -> Path:
    """A spool directory of this test's own (not created: the bus makes it on first use)."""
    return tmp_path / "eventbus-spool"


@async_fixture
async def memory_event_bus(eventbus_spool_dir: Path) -> AsyncIterator[EventBus]:
    """An ``EventBus`` on the in-memory transport, with a fresh broker and spool of its own,
    closed after the test. ``bus.adapter.broker`` is the broker (share it with another
    ``MemoryTransportAdapter`` to model a second process)."""
    adapter = MemoryTransportAdapter(broker=MemoryBroker())
    bus = EventBus(adapter, spool_dir=str(eventbus_spool_dir))
    try:
        yield bus
    finally:
        await bus.close()


@async_fixture
async def memory_faults(memory_event_bus: EventBus) -> AsyncIterator[MemoryFaults]:
    """``MemoryFaults`` of ``memory_event_bus``'s broker; every fault ends with the test."""
    faults = MemoryFaults(memory_event_bus)
    try:
        yield faults
    finally:
        faults.clear()


@async_fixture
async def kafka_event_bus(
    request: pytest.FixtureRequest, eventbus_spool_dir: Path
) -> AsyncIterator[EventBus]:
    """An ``EventBus`` on the Kafka broker given by ``--eventbus-bootstrap`` or
    ``KAFKA_BOOTSTRAP_SERVERS`` (other settings from the environment, as in production),
    with a spool of its own, closed after the test. Without either, the package default
    is tried and the test is skipped if it does not answer; a broker that was given and
    does not answer fails the test instead (a misconfigured CI must not pass by skipping)."""
    bootstrap, source = broker_address(request.config)
    ping_timeout = float(request.config.getini(PING_TIMEOUT_INI))
    adapter = RedpandaTransportAdapter(bootstrap_servers=bootstrap)
    bus = EventBus(adapter, spool_dir=str(eventbus_spool_dir))
    try:
        if not await adapter.ping(ping_timeout):
            if source is None:
                pytest.skip(
                    f"kafka_event_bus: no broker given ({BOOTSTRAP_OPTION} or "
                    f"${BOOTSTRAP_ENV}) and none answers at the default {bootstrap} "
                    f"within {ping_timeout}s"
                )
            pytest.fail(
                f"kafka_event_bus: the broker at {bootstrap} (from {source}) does not answer "
                f"within {ping_timeout}s",
                pytrace=False,
            )
        yield bus
    finally:
        await bus.close()
