"""SQLite and bus fixtures of the outbox tests (the PostgreSQL ones are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from tests.bus.conftest import test_configs
from tests.conftest import make_pool

from tradecore_eventbus import EventBus
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker
from tradecore_eventbus.memory_adapter import MemoryTransportAdapter
from tradecore_eventbus.redpanda_adapter import RedpandaTransportAdapter


@pytest.fixture
async def sqlite_conn(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    conn = await aiosqlite.connect(tmp_path / "app.db")
    await conn.execute("PRAGMA busy_timeout = 30000")
    await conn.execute("PRAGMA journal_mode = WAL")
    yield conn
    await conn.close()


@pytest.fixture
async def memory_bus(tmp_path: Path) -> AsyncIterator[tuple[EventBus, MemoryBroker]]:
    broker = MemoryBroker()
    bus_config, tc = test_configs()
    bus = EventBus(
        MemoryTransportAdapter(bus_config, tc, broker=broker), spool_dir=str(tmp_path / "spool")
    )
    yield bus, broker
    await bus.close()


@pytest.fixture
async def kafka_bus(tmp_path: Path) -> AsyncIterator[EventBus]:
    bus_config, tc = test_configs()
    bus = EventBus(
        RedpandaTransportAdapter(event_bus_config=bus_config, transport_config=tc),
        spool_dir=str(tmp_path / "spool"),
    )
    yield bus
    await bus.close()


__all__ = ["make_pool"]
