"""Public import path of the guide (``redpanda_adapter``); the implementation lives in
``tradecore_eventbus._internal.transports.kafka.adapter``."""

from ._internal.transports.kafka.adapter import (
    TOPIC_ADMIN_TIMEOUT_S,
    RedpandaTransportAdapter,
)

__all__ = [
    "TOPIC_ADMIN_TIMEOUT_S",
    "RedpandaTransportAdapter",
]
