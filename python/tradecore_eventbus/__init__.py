"""tradecore-eventbus: an asyncio event bus for Kafka and Redpanda with a Rust core."""

from __future__ import annotations

from ._core import Admin, Consumer, Producer, Record, librdkafka_version
from ._core import __version__ as __version__
from .exceptions import (
    BatchDeliveryError,
    BrokerUnavailableError,
    ClosedError,
    ConfigError,
    EventBusError,
    EventValidationError,
    InvalidArgumentError,
    InvalidTopicError,
    KafkaError,
    QueueFullError,
    TransportError,
    TransportTimeoutError,
    UnknownTopicError,
)
from .transport import poll_batch

__all__ = [
    "Admin",
    "BatchDeliveryError",
    "BrokerUnavailableError",
    "ClosedError",
    "ConfigError",
    "Consumer",
    "EventBusError",
    "EventValidationError",
    "InvalidArgumentError",
    "InvalidTopicError",
    "KafkaError",
    "Producer",
    "QueueFullError",
    "Record",
    "TransportError",
    "TransportTimeoutError",
    "UnknownTopicError",
    "librdkafka_version",
    "poll_batch",
]
