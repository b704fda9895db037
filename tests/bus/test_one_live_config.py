"""Exactly one configuration is live: the adapter's; a bus given another must agree with it
(decision 64)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tradecore_eventbus import ConfigError, EventBus, EventBusConfig, TransportConfig
from tradecore_eventbus.memory_adapter import MemoryTransportAdapter
from tradecore_eventbus.redpanda_adapter import RedpandaTransportAdapter


def test_a_bus_config_that_disagrees_with_the_adapters_names_the_fields() -> None:
    adapter = MemoryTransportAdapter(EventBusConfig(enable_dlq=False), TransportConfig())
    with pytest.raises(ConfigError, match=r"event_bus_config.*enable_dlq"):
        EventBus(adapter, event_bus_config=EventBusConfig(enable_dlq=True))
    with pytest.raises(ConfigError, match=r"transport_config.*topic_prefix"):
        EventBus(adapter, transport_config=TransportConfig(topic_prefix="other."))


def test_equal_configs_are_one_config_and_the_adapters_is_the_live_one() -> None:
    adapter = MemoryTransportAdapter(EventBusConfig(enable_dlq=False), TransportConfig())
    bus = EventBus(
        adapter,
        event_bus_config=EventBusConfig(enable_dlq=False),
        transport_config=TransportConfig(),
    )
    assert bus.config is adapter.event_bus_config
    assert bus.transport_config is adapter.transport_config


def test_the_guides_example_passes_the_same_settings_twice_and_works() -> None:
    """The guide builds the adapter with bootstrap_servers and client_id and passes fresh
    configs to both: the adapter's own arguments win and are not a disagreement."""
    adapter = RedpandaTransportAdapter(
        bootstrap_servers="localhost:29999",
        client_id="my-service",
        event_bus_config=EventBusConfig.from_env({}),
        transport_config=TransportConfig.from_env({}),
    )
    bus = EventBus(
        adapter,
        validate_on_publish=True,
        event_bus_config=EventBusConfig.from_env({}),
        transport_config=TransportConfig.from_env({}),
    )
    assert bus.transport_config.bootstrap_servers == "localhost:29999"
    assert bus.transport_config.client_id == "my-service"
    other = replace(TransportConfig.from_env({}), commit_batch_size=7)
    with pytest.raises(ConfigError, match="commit_batch_size"):
        EventBus(adapter, transport_config=other)
