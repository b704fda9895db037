"""The bus against the broker's SASL_SSL listener (SCRAM-SHA-512 over TLS), configured only
through the documented variables; and what refused credentials look like: a typed
``AuthenticationError`` within 10 s, nothing spooled, no breaker opened."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from tests.security.conftest import SLOW_TIMEOUTS, BusBuilder, Env, wrong_password

from tradecore_eventbus import (
    AuthenticationError,
    EventBusError,
    PublishError,
    TransportError,
    _core,
    poll_batch,
)
from tradecore_eventbus._internal.config.security import security_from_env

pytestmark = [pytest.mark.kafka, pytest.mark.sasl]

#: The issue's bound for a refused publish or subscribe.
BOUND_S = 10.0


def channel() -> str:
    return f"transport.sasl-{uuid.uuid4().hex[:8]}"


def client_config(env: Env) -> dict[str, str]:
    return security_from_env(env)


async def test_the_bus_publishes_and_consumes_over_sasl_ssl(
    secure_env: Env, env_bus: BusBuilder
) -> None:
    bus = await env_bus(secure_env)
    tc = bus.adapter.transport_config
    assert tc.bootstrap_servers == secure_env["REDPANDA_BOOTSTRAP_SERVERS"]
    assert tc.librdkafka_config["security.protocol"].lower() == "sasl_ssl"
    assert tc.librdkafka_config["sasl.mechanism"] == "SCRAM-SHA-512"
    ch = channel()
    got: list[dict[str, Any]] = []
    three = asyncio.Event()

    async def handler(event: dict[str, Any]) -> None:
        got.append(event)
        if len(got) == 3:
            three.set()

    await bus.subscribe_stream(ch, handler, group=f"g-{uuid.uuid4().hex[:6]}", consumer="c1")
    first = await bus.publish_stream(ch, {"event_type": "OrderPlaced", "n": 0}, partition_key="k")
    rest = await bus.publish_batch(
        ch, [{"event_type": "OrderPlaced", "n": n} for n in (1, 2)], partition_key="k"
    )
    await asyncio.wait_for(three.wait(), 30)
    assert [e["n"] for e in got] == [0, 1, 2]
    assert [r.offset for r in [first, *rest]] == [0, 1, 2]
    health = await bus.health_check()
    assert health["healthy"] is True
    assert health["adapter"]["details"]["authentication_error"] is None


async def test_a_wrong_password_fails_a_publish_at_once_and_keeps_nothing(
    secure_env: Env, env_bus: BusBuilder
) -> None:
    bus = await env_bus({**wrong_password(secure_env), **SLOW_TIMEOUTS})
    ch = channel()
    for attempt in range(2):  # the first meets the refusal, the second the latched client
        started = time.monotonic()
        with pytest.raises(AuthenticationError) as info:
            await bus.publish_stream(ch, {"event_type": "OrderPlaced", "n": attempt})
        elapsed = time.monotonic() - started
        assert elapsed < BOUND_S, f"attempt {attempt}: refused after {elapsed:.1f}s"
        err = info.value
        assert isinstance(err, TransportError)
        assert not isinstance(err, PublishError | ConnectionError | TimeoutError)
        assert err.retriable is False
        assert "Authentication" in str(err), str(err)
    assert bus.spool.count() == 0, "a refusal is not spooled as an outage"
    assert bus.counters.dead_lettered_events == 0
    assert bus.counters.spooled_events == 0
    breakers = await bus.get_circuit_breaker_status()
    assert all(b["state"] == "CLOSED" and b["total_failures"] == 0 for b in breakers.values())

    # A batch too, and many more than the breaker's threshold: it never opens.
    for _ in range(bus.config.circuit_breaker.failure_threshold + 1):
        with pytest.raises(AuthenticationError):
            await bus.publish_batch(ch, [{"event_type": "OrderPlaced", "n": n} for n in range(3)])
    breakers = await bus.get_circuit_breaker_status()
    assert all(b["state"] == "CLOSED" for b in breakers.values()), breakers
    assert bus.spool.count() == 0

    health = await bus.health_check(timeout=2.0)
    assert health["healthy"] is False
    assert "SASL authentication" in str(health["adapter"]["details"]["authentication_error"])


async def test_a_wrong_password_fails_subscribe_stream_at_once(
    secure_env: Env, env_bus: BusBuilder
) -> None:
    bus = await env_bus({**wrong_password(secure_env), **SLOW_TIMEOUTS})

    async def handler(event: dict[str, Any]) -> None:
        pass

    started = time.monotonic()
    with pytest.raises(AuthenticationError) as info:
        await bus.subscribe_stream(channel(), handler, group="g", consumer="c1")
    assert time.monotonic() - started < BOUND_S
    assert info.value.retriable is False
    assert bus.subscriptions() == [], "no subscription is left behind"


async def test_a_wrong_password_fails_every_core_client_at_once(
    secure_env: Env, new_topic: Any
) -> None:
    # The topic exists (made over PLAINTEXT), so the consumer's own gate is what ends its
    # wait, not the admin client's.
    topic = await new_topic()
    bootstrap = secure_env["REDPANDA_BOOTSTRAP_SERVERS"]
    config = client_config(wrong_password(secure_env))

    producer = _core.Producer(bootstrap, delivery_timeout_ms=120_000, config=config)
    started = time.monotonic()
    with pytest.raises(AuthenticationError):
        await producer.send(topic, b"refused")
    with pytest.raises(AuthenticationError):  # the latched producer: refused on the call
        await producer.send_batch(topic, [(None, b"a"), (None, b"b")])
    assert time.monotonic() - started < BOUND_S
    assert producer.in_flight() == 0
    assert "SASL authentication" in str(producer.stats()["authentication_error"])
    await producer.close(5.0)

    consumer = _core.Consumer(bootstrap, f"g-{uuid.uuid4().hex[:8]}", config=config)
    consumer.subscribe([topic])
    started = time.monotonic()
    with pytest.raises(AuthenticationError):
        await consumer.wait_assigned(120.0)
    with pytest.raises(AuthenticationError):
        await poll_batch(consumer, 10, 120.0)
    assert time.monotonic() - started < BOUND_S
    await consumer.close()

    admin = _core.Admin(bootstrap, config=config)
    started = time.monotonic()
    with pytest.raises(AuthenticationError):
        await admin.create_topics([(f"t-{uuid.uuid4().hex[:8]}", 1, 1, None)], 120.0)
    with pytest.raises(AuthenticationError):
        await admin.ping(120.0)
    assert time.monotonic() - started < BOUND_S
    assert admin.stats()["authentication_error"] is not None


async def test_a_client_works_once_its_credentials_do(secure_env: Env) -> None:
    """A SCRAM user that does not exist yet is refused; created meanwhile (as an operator
    would fix the credentials), the same clients notice and work, without a restart."""
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    user, password = f"late-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    env = {**secure_env, "KAFKA_SASL_USERNAME": user, "KAFKA_SASL_PASSWORD": password}
    config = {**client_config(env), "reconnect.backoff.max.ms": "500"}
    bootstrap = env["REDPANDA_BOOTSTRAP_SERVERS"]
    admin = _core.Admin(bootstrap, config=config)
    producer = _core.Producer(bootstrap, config=config)
    topic = f"late-{uuid.uuid4().hex[:8]}"
    with pytest.raises(AuthenticationError):
        await admin.create_topics([(topic, 1, 1, None)], 60.0)
    with pytest.raises(AuthenticationError):
        await producer.send(topic, b"too early")

    operator = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            **client_config(secure_env),
        }
    )
    upsert = UserScramCredentialUpsertion(
        user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), password.encode()
    )
    for future in operator.alter_user_scram_credentials([upsert]).values():
        await asyncio.get_running_loop().run_in_executor(None, future.result, 30)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    created: dict[str, str] | None = None
    while created is None:
        try:
            created = await admin.create_topics([(topic, 1, 1, None)], 30.0)
        except AuthenticationError:
            assert loop.time() < deadline, "the admin client never accepted work again"
            await asyncio.sleep(0.2)
    # "exists" when the request abandoned at the refusal was carried out once the user
    # existed (librdkafka keeps an admin request queued until its own timeout).
    assert created[topic] in ("created", "exists"), created
    assert topic in await admin.list_topics(30.0)
    while True:
        try:
            partition, offset = await producer.send(topic, b"in time")
            break
        except EventBusError:
            assert loop.time() < deadline, "the producer never accepted work again"
            await asyncio.sleep(0.2)
    assert (partition, offset) == (0, 0)
    assert producer.stats()["authentication_error"] is None
    await producer.close(10.0)
