"""The SASL_SSL listener of the project's broker: ``scripts/kafka/broker.sh start`` adds it on
127.0.0.1:19094 (SCRAM-SHA-512, user ``eventbus`` with a password drawn at each start, a CA
made with openssl) and ``broker.sh secure-env`` prints what a client needs, as the
``KAFKA_*`` variables the bus reads. Tests marked ``sasl`` use it; when it is missing they
fail, they are never skipped. (Against a broker started from another checkout, point
``KAFKA_CACHE_DIR`` at that checkout's ``.cache/kafka``.)"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

# The in-memory fixtures of the outbox and reliability suites, for the refusal tests.
from tests.outbox.conftest import memory_bus
from tests.reliability.conftest import broker, reliable_bus

from tradecore_eventbus import EventBus, EventBusConfig, RedpandaTransportAdapter, TransportConfig

ROOT = Path(__file__).resolve().parents[2]
BROKER_SH = ROOT / "scripts" / "kafka" / "broker.sh"

Env = dict[str, str]


def _parse(lines: str) -> Env:
    env: Env = {}
    for line in lines.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            if sep:
                env[key.strip()] = value.strip()
    return env


@pytest.fixture(scope="session")
def secure_env() -> Env:
    """The KAFKA_* / REDPANDA_BOOTSTRAP_SERVERS variables of the SASL_SSL listener."""
    done = subprocess.run(
        [str(BROKER_SH), "secure-env"], capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        pytest.fail(
            "the broker's SASL_SSL listener is missing: `scripts/kafka/broker.sh secure-env` "
            f"failed ({done.stderr.strip()}); start the broker with `make broker-start`, or "
            "set KAFKA_CACHE_DIR to the .cache/kafka of the checkout that started it"
        )
    env = _parse(done.stdout)
    for key in (
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SSL_CA_LOCATION",
        "REDPANDA_BOOTSTRAP_SERVERS",
    ):
        if not env.get(key):
            pytest.fail(f"`broker.sh secure-env` printed no {key}: {sorted(env)}")
    host, _, port = env["REDPANDA_BOOTSTRAP_SERVERS"].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        pytest.fail(f"the SASL_SSL listener {host}:{port} does not answer ({exc})")
    return env


def wrong_password(env: Env, password: str | None = None) -> Env:
    """``env`` with a password the broker does not know."""
    return {**env, "KAFKA_SASL_PASSWORD": password or f"wrong-{uuid.uuid4().hex}"}


#: Without the fail-fast gate, a refused publish waited for the delivery timeout and a
#: refused subscribe for the poll timeout: both far beyond the 10 s the issue allows.
SLOW_TIMEOUTS: Env = {
    "KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS": "120000",
    "EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS": "120000",
}

BusBuilder = Callable[..., Awaitable[EventBus]]


@pytest.fixture
async def env_bus(tmp_path: Path) -> AsyncIterator[BusBuilder]:
    """build(env) -> an EventBus configured only through ``from_env(env)`` (plus a spool
    directory of the test's own and short polls)."""
    buses: list[EventBus] = []

    async def build(env: Env, **transport: Any) -> EventBus:
        full = {
            "EVENT_BUS_SPOOL_DIR": str(tmp_path / f"spool-{len(buses)}"),
            "EVENT_BUS_SUB_BLOCK_MS": "200",
            "EVENT_BUS_HANDLER_RETRY_INITIAL_DELAY_MS": "10",
            "EVENT_BUS_HANDLER_RETRY_MAX_DELAY_MS": "50",
            "KAFKA_COMMIT_INTERVAL_MS": "1000",
            **env,
        }
        config = EventBusConfig.from_env(full)
        tc = TransportConfig.from_env(full)
        for key, value in transport.items():
            tc.librdkafka_config[key] = value
        adapter = RedpandaTransportAdapter(event_bus_config=config, transport_config=tc)
        bus = EventBus(adapter)
        buses.append(bus)
        return bus

    yield build
    await asyncio.gather(*(b.close() for b in buses))


__all__ = ["broker", "memory_bus", "reliable_bus"]
