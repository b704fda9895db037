"""Which configuration is live: the adapter's, always (decision 64).

The adapter creates the clients, so its ``TransportConfig`` is the one in use, and the bus
shares the adapter's ``EventBusConfig`` so that both decide the same (DLQ on or off, topic
settings, retries). A config given to ``EventBus`` as well must agree with the adapter's;
where it does not, ``ConfigError`` names the fields, instead of one of the two being
silently ignored. Fields the adapter's own arguments set (``bootstrap_servers`` and
``client_id`` of ``RedpandaTransportAdapter``, as in the guide's example) are the adapter's
and are not compared.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ...exceptions import ConfigError
from ..config.settings import EventBusConfig, TransportConfig
from ..transports.protocol import TransportAdapter


def live_configs(
    adapter: TransportAdapter,
    event_bus_config: EventBusConfig | None,
    transport_config: TransportConfig | None,
) -> tuple[EventBusConfig, TransportConfig]:
    """The configs the bus and the adapter share, as the module says."""
    bus_config = _one(adapter, "event_bus_config", event_bus_config, EventBusConfig)
    transport = _one(adapter, "transport_config", transport_config, TransportConfig)
    return bus_config, transport


def _one(adapter: TransportAdapter, name: str, given: Any, kind: Any) -> Any:
    current = getattr(adapter, name, None)
    if current is None:
        # An adapter without one of its own (a third-party transport): it shares the bus's.
        chosen = given if given is not None else kind.from_env()
        setattr(adapter, name, chosen)
        return chosen
    if given is None or given is current:
        return current
    own = set(getattr(adapter, "own_fields", ()))
    differ = [
        f.name
        for f in fields(current)
        if f.name not in own and getattr(current, f.name) != getattr(given, f.name)
    ]
    if differ:
        raise ConfigError(
            f"EventBus({name}=...) disagrees with the adapter's {name} in "
            f"{', '.join(differ)}: the adapter's configuration is the live one; pass the "
            f"config to the adapter only (or the same one to both)"
        )
    return current
