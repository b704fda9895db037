"""librdkafka's debug output on request (``KAFKA_DEBUG``, librdkafka's ``debug`` property):
its DEBUG lines reach Python's ``logging`` (logger ``tradecore_eventbus.librdkafka``) only
when asked for, checked by name, and scrubbed of secrets like every other line
(decision 89)."""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from pathlib import Path

import pytest
from tests.reliability.test_observers import until
from tests.security.conftest import Env, secure_env

from tradecore_eventbus import (
    ConfigError,
    EventBus,
    EventBusConfig,
    RedpandaTransportAdapter,
    TransportConfig,
)

LOGGER = "tradecore_eventbus.librdkafka"


def librdkafka_debug(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.DEBUG]


def test_kafka_debug_takes_librdkafkas_context_names_and_refuses_others() -> None:
    assert "debug" not in TransportConfig.from_env({}).librdkafka_config
    tc = TransportConfig.from_env({"KAFKA_DEBUG": " Broker, msg "})
    assert tc.librdkafka_config["debug"] == "broker,msg"
    assert TransportConfig.from_env({"KAFKA_DEBUG": "all"}).librdkafka_config["debug"] == "all"
    with pytest.raises(ConfigError, match=r"^KAFKA_DEBUG='broker,brokr' .*unknown .*'brokr'"):
        TransportConfig.from_env({"KAFKA_DEBUG": "broker,brokr"})
    with pytest.raises(ConfigError, match="KAFKA_DEBUG"):
        TransportConfig.from_env({"KAFKA_DEBUG": ",,"})
    with pytest.raises(ConfigError, match=r"librdkafka_config\['debug'\]='everything'"):
        TransportConfig(librdkafka_config={"debug": "everything"})


async def publish_one(bootstrap: str, tmp_path: Path, env: dict[str, str]) -> None:
    full = {"REDPANDA_BOOTSTRAP_SERVERS": bootstrap, **env}
    adapter = RedpandaTransportAdapter(
        event_bus_config=EventBusConfig(spool_dir=str(tmp_path / "spool")),
        transport_config=TransportConfig.from_env(full),
    )
    async with EventBus(adapter) as bus:
        await bus.publish(f"transport.debug-{uuid.uuid4().hex[:8]}", {"event_type": "A"})


@pytest.mark.kafka
async def test_with_kafka_debug_a_publish_logs_librdkafkas_debug_lines(
    bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    await publish_one(bootstrap, tmp_path, {"KAFKA_DEBUG": "msg,topic"})
    # Produce lines of the "msg" context, e.g. "PRODUCE: ... Produce MessageSet with 1
    # message(s) ...". The forwarder hands lines over in order but asynchronously: the
    # topic context's lines can arrive first, so wait for the produce line itself.

    def produce_lines() -> list[str]:
        return [
            r.getMessage() for r in librdkafka_debug(caplog) if "message" in r.getMessage().lower()
        ]

    await until(lambda: len(produce_lines()) > 0, timeout=10)
    assert produce_lines()


@pytest.mark.kafka
async def test_without_kafka_debug_no_debug_line_is_logged(
    bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Also after a client of this process asked for debug lines (the test above), which
    opened the Rust logging facade to them: a client that did not ask logs none."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    await quiet(caplog)
    await publish_one(bootstrap, tmp_path, {})
    # The forwarder hands records over within milliseconds; give it ample time.
    await asyncio.sleep(1.0)
    assert librdkafka_debug(caplog) == []


async def quiet(caplog: pytest.LogCaptureFixture, window: float = 0.5, limit: float = 15.0) -> None:
    """Waits until no librdkafka debug line has arrived for ``window`` seconds: lines of the
    clients of an earlier test may still be on their way through the forwarder. Clients of
    earlier tests that only a reference cycle keeps alive (a caught exception's traceback
    holds the frame that holds the client) are destroyed first: until the collector runs,
    a debug client with refused credentials goes on reconnecting, and logging, for ever."""
    gc.collect()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        caplog.clear()
        await asyncio.sleep(window)
        if not librdkafka_debug(caplog):
            return
        assert loop.time() < deadline, "librdkafka debug lines keep coming"


@pytest.mark.kafka
@pytest.mark.sasl
async def test_debug_lines_never_carry_the_password(
    secure_env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    env = {**secure_env, "KAFKA_DEBUG": "security,broker,conf,protocol"}
    await publish_one(secure_env["REDPANDA_BOOTSTRAP_SERVERS"], tmp_path, env)
    await until(lambda: any("sasl" in r.getMessage().lower() for r in caplog.records), 10)
    password = secure_env["KAFKA_SASL_PASSWORD"]
    assert len(librdkafka_debug(caplog)) > 0
    assert not [r.getMessage() for r in caplog.records if password in r.getMessage()]


__all__ = ["secure_env"]
