"""The process-wide bus of ``get_event_bus()``, built from the environment on first use."""

from __future__ import annotations

import logging

from ..config.settings import EventBusConfig, TransportConfig
from ..transports.protocol import TransportAdapter
from .event_bus import EventBus

logger = logging.getLogger("tradecore_eventbus.event_bus")

_default_bus: EventBus | None = None


def set_event_bus(bus: EventBus | None) -> None:
    """Installs the process-wide bus that :func:`get_event_bus` returns."""
    global _default_bus
    _default_bus = bus


def reset_event_bus() -> None:
    """Forgets the process-wide bus (for tests); does not close it."""
    set_event_bus(None)


def get_event_bus() -> EventBus:
    """The process-wide bus. If none was installed, one is built from the environment: on
    Kafka (``RedpandaTransportAdapter``), or in memory when ``ENABLE_EVENT_BUS=false``. It
    connects on first use."""
    global _default_bus
    if _default_bus is None:
        config = EventBusConfig.from_env()
        transport = TransportConfig.from_env()
        adapter: TransportAdapter
        if config.enable_event_bus:
            from ..transports.kafka.adapter import RedpandaTransportAdapter

            adapter = RedpandaTransportAdapter(event_bus_config=config, transport_config=transport)
        else:
            from ..transports.memory.adapter import MemoryTransportAdapter

            logger.warning(
                "ENABLE_EVENT_BUS=false: events stay in this process (in-memory transport)"
            )
            adapter = MemoryTransportAdapter(config, transport)
        _default_bus = EventBus(adapter, event_bus_config=config, transport_config=transport)
    return _default_bus
