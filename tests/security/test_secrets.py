"""A configured secret appears nowhere: not in reprs of configs and adapters, health reports,
log records (Python's and librdkafka's, at every level), exception messages, or DLQ records.

Each test sets a password of its own (a random string) and looks for it in everything the
package produced meanwhile."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from tests.security.conftest import SLOW_TIMEOUTS, BusBuilder, Env, wrong_password

from tradecore_eventbus import (
    AuthenticationError,
    ConfigError,
    EventBus,
    EventBusConfig,
    MemoryTransportAdapter,
    RedpandaTransportAdapter,
    RetryConfig,
    TransportConfig,
    _core,
)
from tradecore_eventbus._internal.config.security import security_from_env


def secret() -> str:
    return f"pw-{uuid.uuid4().hex}"


def exception_texts(exc: BaseException) -> list[str]:
    """What a traceback or a log line could show of an exception and its causes."""
    out: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        out += [str(e), repr(e), repr(e.args), repr(vars(e))]
        todo += [e.__cause__, e.__context__]
        todo += [r for r in getattr(e, "results", []) if isinstance(r, BaseException)]
    return out


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    out = [caplog.text]
    for record in caplog.records:
        out += [record.getMessage(), record.exc_text or ""]
        if record.exc_info and record.exc_info[1] is not None:
            out += exception_texts(record.exc_info[1])
    return out


def assert_hidden(password: str, texts: Iterable[str]) -> None:
    texts = list(texts)
    assert texts, "nothing was looked at"
    leaks = [t for t in texts if password in t]
    assert not leaks, f"the password leaked in {len(leaks)} text(s), e.g. {leaks[0][:300]!r}"


def test_config_reprs_mask_every_secret_property() -> None:
    password, key_password, token = secret(), secret(), secret()
    ca = Path(__file__)  # any existing file
    env = {
        "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "eventbus",
        "KAFKA_SASL_PASSWORD": password,
        "KAFKA_SSL_CA_LOCATION": str(ca),
        "KAFKA_SSL_KEY_PASSWORD": key_password,
    }
    tc = TransportConfig.from_env(env)
    tc.librdkafka_config["sasl.oauthbearer.config"] = f"principal=svc token={token}"
    tc.librdkafka_config["ssl.key.pem"] = f"-----BEGIN PRIVATE KEY-----{token}"
    assert tc.librdkafka_config["sasl.password"] == password, "the value itself is kept"
    texts = [repr(tc), str(tc), f"{tc}", repr([tc]), repr(EventBusConfig.from_env(env))]
    adapter = RedpandaTransportAdapter(event_bus_config=EventBusConfig(), transport_config=tc)
    texts += [repr(adapter), str(adapter)]
    for hidden in (password, key_password, token):
        assert_hidden(hidden, texts)
    assert "eventbus" in repr(tc), repr(tc)
    assert "'sasl.password': '***'" in repr(tc), repr(tc)
    assert "sasl_ssl" in repr(adapter), repr(adapter)


def test_config_errors_name_the_setting_but_not_the_secret() -> None:
    password = secret()
    base = {
        "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "eventbus",
        "KAFKA_SASL_PASSWORD": password,
    }
    bad = [
        ({**base, "KAFKA_SECURITY_PROTOCOL": "sasl_tls"}, "KAFKA_SECURITY_PROTOCOL"),
        ({**base, "KAFKA_SASL_MECHANISM": "SCRAM-SHA-1"}, "KAFKA_SASL_MECHANISM"),
        ({**base, "KAFKA_SASL_USERNAME": ""}, "KAFKA_SASL_USERNAME"),
        ({**base, "KAFKA_SSL_CA_LOCATION": "/no/such/ca.pem"}, "KAFKA_SSL_CA_LOCATION"),
        ({**base, "KAFKA_SECURITY_PROTOCOL": "plaintext"}, "KAFKA_SECURITY_PROTOCOL"),
        ({**base, "KAFKA_PRODUCER_LINGER_MS": "soon"}, "KAFKA_PRODUCER_LINGER_MS"),
    ]
    texts: list[str] = []
    for env, variable in bad:
        with pytest.raises(ConfigError) as info:
            TransportConfig.from_env(env)
        assert variable in str(info.value), str(info.value)
        texts += exception_texts(info.value)
    # librdkafka refusing a secret setting quotes its value; the message must not.
    with pytest.raises(ConfigError) as refused:
        _core.Producer("127.0.0.1:1", config={"sasl.oauthbearer.method": password})
    assert "sasl.oauthbearer.method" in str(refused.value), str(refused.value)
    texts += exception_texts(refused.value)
    assert_hidden(password, texts)


async def test_a_handlers_exception_quoting_a_secret_is_masked_in_logs_and_the_dlq(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = secret()
    # A client configured with the secret makes it known to the package.
    _core.Producer("127.0.0.1:1", config={"sasl.password": password})
    config = EventBusConfig(
        sub_block_ms=100,
        handler_retry=RetryConfig(max_attempts=2, initial_delay_ms=1, max_delay_ms=5),
    )
    bus = EventBus(MemoryTransportAdapter(config), spool_dir=str(tmp_path / "spool"))
    ch = f"transport.leaky-{uuid.uuid4().hex[:6]}"

    async def handler(event: dict[str, Any]) -> None:
        raise RuntimeError(f"could not log in to the ledger with password {password}")

    try:
        await bus.subscribe_stream(ch, handler, group="g", consumer="c1")
        await bus.publish_stream(ch, {"event_type": "OrderPlaced"})
        adapter = bus.adapter
        assert isinstance(adapter, MemoryTransportAdapter)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not adapter.get_published_messages(f"{ch}.dlq"):
            assert loop.time() < deadline, "the event never reached the DLQ"
            await asyncio.sleep(0.02)
        [dead] = adapter.get_published_messages(f"{ch}.dlq")
        meta = dead["_dlq_metadata"]
        assert meta["error_type"] == "RuntimeError"
        assert "could not log in" in meta["error_message"]
        texts = [json.dumps(dead), *log_texts(caplog)]
        assert any("could not log in" in t for t in log_texts(caplog)), "the failure was logged"
        assert_hidden(password, texts)
    finally:
        await bus.close()


@pytest.mark.kafka
@pytest.mark.sasl
async def test_a_refused_password_appears_in_no_repr_health_log_or_error(
    secure_env: Env, env_bus: BusBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = secret()
    env = {**wrong_password(secure_env, password), **SLOW_TIMEOUTS}
    # librdkafka's own debug logging of security and connections, on top.
    bus = await env_bus(env, debug="security,broker,conf")
    adapter = bus.adapter
    texts = [
        repr(adapter.transport_config),
        str(adapter.transport_config),
        repr(bus.config),
        repr(adapter),
        str(adapter),
    ]
    ch = f"transport.secret-{uuid.uuid4().hex[:8]}"
    with pytest.raises(AuthenticationError) as published:
        await bus.publish_stream(ch, {"event_type": "OrderPlaced"})

    async def handler(event: dict[str, Any]) -> None:
        pass

    with pytest.raises(AuthenticationError) as subscribed:
        await bus.subscribe_stream(ch, handler, group="g", consumer="c1")
    config = {**security_from_env(env), "debug": "security,broker"}
    bootstrap = env["REDPANDA_BOOTSTRAP_SERVERS"]
    producer = _core.Producer(bootstrap, delivery_timeout_ms=120_000, config=config)
    with pytest.raises(AuthenticationError) as sent:
        await producer.send(f"{ch}-raw", b"x")
    consumer = _core.Consumer(bootstrap, "g-secret", config=config)
    consumer.subscribe([f"{ch}-raw"])
    with pytest.raises(AuthenticationError) as joined:
        await consumer.wait_assigned(120.0)
    for info in (published, subscribed, sent, joined):
        texts += exception_texts(info.value)
        assert "SASL authentication" in str(info.value), str(info.value)
    health = await bus.health_check(timeout=2.0)
    texts += [json.dumps(health, default=str), repr(adapter.stats()), repr(producer.stats())]
    texts += [repr(consumer.stats())]
    await consumer.close()
    await producer.close(5.0)
    await bus.close()
    # Let the forwarder thread hand over what librdkafka logged meanwhile.
    await asyncio.sleep(0.5)
    logs = log_texts(caplog)
    assert any("SASL authentication" in t for t in logs), "the refusal was logged"
    assert_hidden(password, texts + logs)


@pytest.mark.kafka
@pytest.mark.sasl
async def test_dead_letters_of_a_sasl_bus_do_not_carry_its_password(
    secure_env: Env, env_bus: BusBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = secure_env["KAFKA_SASL_PASSWORD"]
    bus = await env_bus({**secure_env, "EVENT_BUS_HANDLER_RETRY_MAX_ATTEMPTS": "2"})
    ch = f"transport.dlq-secret-{uuid.uuid4().hex[:8]}"

    async def handler(event: dict[str, Any]) -> None:
        raise RuntimeError(f"replaying with the bus's own password {password} failed")

    dead: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    async def dlq_reader(event: dict[str, Any]) -> None:
        dead.append(event)
        arrived.set()

    await bus.subscribe_stream(ch, handler, group="workers", consumer="c1")
    await bus.subscribe_stream(f"{ch}.dlq", dlq_reader, group="triage", consumer="c1")
    await bus.publish_stream(ch, {"event_type": "OrderPlaced", "order_id": "1"})
    await asyncio.wait_for(arrived.wait(), 60)
    [record] = dead
    assert record["order_id"] == "1"
    assert "replaying with the bus's own password" in record["_dlq_metadata"]["error_message"]
    health = await bus.health_check()
    assert_hidden(
        password, [json.dumps(record), json.dumps(health, default=str), *log_texts(caplog)]
    )
