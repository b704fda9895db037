"""Turning retry topics on: arguments and settings checked, topics created with the
channel's (decision 105)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.retry_topics.conftest import channel

from tradecore_eventbus import EventBus, EventBusConfig, MemoryTransportAdapter, TransportConfig
from tradecore_eventbus._internal.wire.topics import topic_specs
from tradecore_eventbus.exceptions import ConfigError


async def handler(event: dict[str, Any]) -> None:
    return None


@pytest.mark.parametrize(
    ("delays", "says"),
    [
        ("1000", "must be a list of delays"),
        (1000, "must be a list of delays"),
        ((), "at least one delay"),
        ((1000, 0), r"retry_topic_delays_ms\[1\]=0 must be between 1"),
        ((1000, True), r"retry_topic_delays_ms\[1\]=True must be an integer"),
        ((1.5,), r"retry_topic_delays_ms\[0\]=1.5 must be an integer"),
        ((2**31,), "must be between 1 and 2147483647"),
        (tuple(range(1, 22)), "at most 20"),
    ],
)
async def test_bad_delays_name_the_argument(delays: Any, says: str) -> None:
    async with EventBus(MemoryTransportAdapter()) as bus:
        with pytest.raises(ConfigError, match=f"retry_topic_delays_ms.*{says}|{says}"):
            await bus.subscribe_stream(channel(), handler, group="g", retry_topic_delays_ms=delays)
        assert bus.subscriptions() == []
    config = EventBusConfig()
    with pytest.raises(ConfigError, match=says):
        config.add_topic_config("transport.x", retry_topic_delays_ms=delays)


def test_a_topic_config_with_delays_creates_the_retry_topics() -> None:
    config = EventBusConfig()
    config.add_topic_config("transport.mail", partitions=4, retry_topic_delays_ms=[500, 5000])
    tc = TransportConfig(topic_prefix="prod")
    specs = {s.name: s for s in topic_specs("transport.mail", config, tc)}
    assert list(specs) == [
        "prod.transport.mail",
        "prod.transport.mail.dlq",
        "prod.transport.mail.retry.1",
        "prod.transport.mail.retry.2",
    ]
    assert specs["prod.transport.mail.retry.2"].partitions == 4
    assert config.retry_topic_delays_for("transport.mail") == (500, 5000)
    assert config.retry_topic_delays_for("transport.other") is None
    assert [s.name for s in topic_specs("transport.other", config, tc)] == [
        "prod.transport.other",
        "prod.transport.other.dlq",
    ]


async def test_the_channel_setting_turns_retry_topics_on_at_subscribe() -> None:
    ch = channel()
    config = EventBusConfig()
    config.add_topic_config(ch, retry_topic_delays_ms=(100,))
    async with EventBus(MemoryTransportAdapter(config)) as bus:
        sub_id = await bus.subscribe_stream(ch, handler, group="g")
        subs = bus.subscriptions()
        assert sorted(s["group"] for s in subs) == ["tradecore-g", "tradecore-g.retry"]
        topics = await bus.adapter.list_topics()
        assert f"{ch}.retry.1" in topics
        assert await bus.unsubscribe(sub_id)
        assert bus.subscriptions() == [], "unsubscribing stops the retry subscription too"
        # A channel without the setting has none.
        await bus.subscribe_stream(channel(), handler, group="g")
        assert [s["group"] for s in bus.subscriptions()] == ["tradecore-g"]
        # Pub/sub never commits: there is no offset to move past, so no retry topics.
        await bus.subscribe(ch, handler)
        assert len(bus.subscriptions()) == 2
        assert not any(s["group"].endswith(".retry") for s in bus.subscriptions())


def test_the_environment_names_channels_and_their_delays() -> None:
    config = EventBusConfig.from_env(
        {"EVENT_BUS_RETRY_TOPICS": " transport.mail=1000, 5000,30000 ; transport.sms=500;"}
    )
    assert config.retry_topic_delays_for("transport.mail") == (1000, 5000, 30000)
    assert config.retry_topic_delays_for("transport.sms") == (500,)
    assert EventBusConfig.from_env({}).topic_configs == {}


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("transport.mail", "is not channel=delay"),
        ("transport.mail=", "is not channel=delay"),
        ("=1000", "is not channel=delay"),
        ("transport.mail=1s", "delays must be integers"),
        ("transport.mail=1000,0", r"transport.mail\[1\]=0 must be between 1"),
        ("bad channel=1000", "channel 'bad channel'"),
        ("transport.a=1;transport.a=2", "named twice"),
    ],
)
def test_a_bad_environment_value_names_the_variable(value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=f"^EVENT_BUS_RETRY_TOPICS=.*{says}"):
        EventBusConfig.from_env({"EVENT_BUS_RETRY_TOPICS": value})
