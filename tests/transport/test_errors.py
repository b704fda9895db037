"""Typed errors from the transport: bad addresses fail fast, bad settings name themselves."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from tests.conftest import TopicFactory, unique

from tradecore_eventbus import (
    BatchDeliveryError,
    ConfigError,
    EventBusError,
    FencedInstanceError,
    InvalidTopicError,
    TransportError,
    TransportTimeoutError,
    _core,
    poll_batch,
)

NOBODY = "127.0.0.1:1"  # nothing listens there: connections are refused at once


async def test_ping_to_a_bad_bootstrap_address_fails_within_its_timeout() -> None:
    admin = _core.Admin(NOBODY)
    started = time.monotonic()
    with pytest.raises(TransportError) as info:
        await admin.ping(2.0)
    elapsed = time.monotonic() - started
    assert elapsed < 4.0, f"took {elapsed:.1f}s for a 2s timeout"
    err = info.value
    assert isinstance(err, EventBusError)
    assert err.retriable
    assert err.code is not None
    assert NOBODY in str(err), "the message names the address that did not answer"


async def test_send_to_a_bad_bootstrap_address_fails_after_the_delivery_timeout() -> None:
    producer = _core.Producer(NOBODY, delivery_timeout_ms=1500)
    started = time.monotonic()
    with pytest.raises(TransportTimeoutError) as info:
        await producer.send("anything", b"x")
    assert time.monotonic() - started < 5.0
    assert isinstance(info.value, TimeoutError), "timeouts are also builtin TimeoutErrors"
    assert info.value.retriable
    assert info.value.code_name == "MessageTimedOut"
    assert info.value.possibly_persisted is False
    await producer.close(1.0)


async def test_joining_a_group_on_a_bad_bootstrap_address_times_out_with_the_cause() -> None:
    consumer = _core.Consumer(NOBODY, unique("g"))
    consumer.subscribe(["anything"])
    started = time.monotonic()
    with pytest.raises(TransportTimeoutError) as info:
        await consumer.wait_assigned(2.0)
    assert time.monotonic() - started < 4.0
    assert "refused" in str(info.value).lower(), str(info.value)
    await asyncio.wait_for(consumer.close(), 30)


def test_invalid_settings_raise_config_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="acks"):
        _core.Producer("127.0.0.1:19092", acks="most")
    with pytest.raises(ConfigError, match=r"no\.such\.property"):
        _core.Producer("127.0.0.1:19092", config={"no.such.property": "1"})
    with pytest.raises(ValueError, match="auto_offset_reset"):
        _core.Consumer("127.0.0.1:19092", "g", auto_offset_reset="middle")


def test_extra_librdkafka_properties_pass_through() -> None:
    # TLS / SASL settings are accepted because librdkafka was built with OpenSSL.
    _core.Producer(
        "127.0.0.1:19092",
        config={
            "security.protocol": "sasl_ssl",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": "u",
            "sasl.password": "p",
            "enable.ssl.certificate.verification": False,
        },
    )


@pytest.mark.kafka
async def test_a_topic_name_kafka_rejects_is_a_typed_value_error(admin: _core.Admin) -> None:
    with pytest.raises(InvalidTopicError) as info:
        await admin.create_topics([("bad topic name!", 1, 1, None)])
    assert isinstance(info.value, ValueError)
    assert not info.value.retriable


@pytest.mark.kafka
async def test_a_partly_failed_batch_reports_each_record(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    # max.message.bytes on the topic makes the broker refuse the one large record only.
    topic = unique("small")
    admin = _core.Admin(bootstrap)
    await admin.create_topics([(topic, 1, 1, {"max.message.bytes": "2000"})])
    producer = _core.Producer(bootstrap, linger_ms=0, compression_type="none", batch_size=1)
    records = [(None, b"ok-1"), (None, b"x" * 50_000), (None, b"ok-2")]
    with pytest.raises(BatchDeliveryError) as info:
        await producer.send_batch(topic, records)
    err = info.value
    assert len(err.results) == 3
    assert err.failed_indices == [1]
    assert err.delivered_indices == [0, 2]
    failure = err.results[1]
    assert isinstance(failure, TransportError)
    assert failure.code_name is not None
    assert "TooLarge" in failure.code_name
    await producer.close()


@pytest.mark.kafka
async def test_waiting_on_the_transport_leaves_the_event_loop_free(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic()
    consumer = _core.Consumer(bootstrap, unique("g"))
    consumer.subscribe([topic])
    await consumer.wait_assigned(30.0)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        for _ in range(50):
            await asyncio.sleep(0.01)
            ticks += 1

    records, _ = await asyncio.gather(poll_batch(consumer, 10, 1.0), ticker())
    assert records == []
    assert ticks == 50, "the loop was blocked while the consumer waited"
    await consumer.close()


def test_every_class_the_rust_core_raises_exists_and_is_exported() -> None:
    import re
    from pathlib import Path

    import tradecore_eventbus
    from tradecore_eventbus import exceptions

    source = (Path(__file__).resolve().parents[2] / "rust" / "py" / "errors.rs").read_text()
    names = set(re.findall(r'"([A-Za-z]+Error)"', source))
    assert {"FencedInstanceError", "TransportTimeoutError", "CircuitBreakerOpenError"} <= names
    for name in names:
        cls = getattr(exceptions, name)
        assert issubclass(cls, EventBusError), name
        assert name in exceptions.__all__, name
        assert getattr(tradecore_eventbus, name) is cls, name


def test_a_fenced_instance_is_a_non_retriable_transport_error() -> None:
    assert issubclass(FencedInstanceError, TransportError)
    assert FencedInstanceError("x").retriable is False


@pytest.mark.kafka
async def test_a_static_consumer_fenced_by_a_second_live_one_raises_fenced_instance_error(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=2)
    group = unique("static")
    heartbeat_ms = 500
    settings: dict[str, Any] = {
        "group_instance_id": f"{group}.{topic}.w1",
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": heartbeat_ms,
    }
    first = _core.Consumer(bootstrap, group, **settings)
    first.subscribe([topic])
    await first.wait_assigned(30.0)
    second = _core.Consumer(bootstrap, group, **settings)
    second.subscribe([topic])
    await second.wait_assigned(30.0)  # takes the first one's place at once
    assert second.assigned

    # The first one hears it at its next heartbeat; from then on every call says so.
    with pytest.raises(FencedInstanceError) as info:
        for _ in range(settings["session_timeout_ms"] // heartbeat_ms):
            await poll_batch(first, 10, heartbeat_ms / 1000)
    assert info.value.fatal
    assert not info.value.retriable
    assert info.value.code_name == "FencedInstanceId"
    with pytest.raises(FencedInstanceError):
        first.take()
    with pytest.raises(FencedInstanceError):
        await first.commit()
    assert first.stats()["fatal_error"] is not None
    await first.close()  # commits nothing: the partitions are the second one's
    await second.close()
