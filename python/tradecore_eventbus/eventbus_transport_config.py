"""Public import path of the guide (``eventbus_transport_config``); the implementation lives in
``tradecore_eventbus._internal.config.settings``."""

from ._internal.config.settings import (
    CircuitBreakerConfig,
    EventBusConfig,
    TopicConfig,
    TopicType,
    TransportConfig,
)

__all__ = [
    "CircuitBreakerConfig",
    "EventBusConfig",
    "TopicConfig",
    "TopicType",
    "TransportConfig",
]
