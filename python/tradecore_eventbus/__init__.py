"""tradecore-eventbus: an asyncio event bus for Kafka and Redpanda with a Rust core.

The guide's classes are importable from here and from submodules named like the guide's
files (``tradecore_eventbus.event_bus``, ``.redpanda_adapter``, ``.memory_adapter``,
``.eventbus_transport_config``, ``.retry``, ``.base_model``, ``.event_registry``,
``.worker_consumer_groups``, ``.outbox_service``).
"""

from __future__ import annotations

from ._core import Admin, Consumer, Producer, Record, librdkafka_version
from ._core import __version__ as __version__
from ._internal import interpreter_exit as _interpreter_exit
from ._internal.outbox.inbox import idempotent
from ._internal.publishing.prepare import PublishResult
from ._internal.transports.poll import poll_batch
from .base_model import BaseEvent
from .event_bus import EventBus, get_event_bus, reset_event_bus, set_event_bus
from .event_registry import EVENT_TYPE_TO_PYDANTIC_MODEL, register_event, validate_event
from .eventbus_transport_config import EventBusConfig, TopicConfig, TransportConfig
from .exceptions import (
    AuthenticationError,
    AuthorizationError,
    BatchDeliveryError,
    BrokerUnavailableError,
    CircuitBreakerOpenError,
    ClosedError,
    ConfigError,
    DeserializationError,
    EventBusError,
    EventValidationError,
    FencedInstanceError,
    InternalError,
    InvalidArgumentError,
    InvalidTopicError,
    KafkaError,
    PublishError,
    QueueFullError,
    TransportError,
    TransportTimeoutError,
    UnknownTopicError,
)
from .memory_adapter import MemoryTransportAdapter
from .observers import Observer
from .outbox_service import OutboxService, PgClient
from .redpanda_adapter import RedpandaTransportAdapter
from .retry import RetryConfig
from .transport_adapter import TransportAdapter
from .worker_consumer_groups import WorkerType

__all__ = [
    "EVENT_TYPE_TO_PYDANTIC_MODEL",
    "Admin",
    "AuthenticationError",
    "AuthorizationError",
    "BaseEvent",
    "BatchDeliveryError",
    "BrokerUnavailableError",
    "CircuitBreakerOpenError",
    "ClosedError",
    "ConfigError",
    "Consumer",
    "DeserializationError",
    "EventBus",
    "EventBusConfig",
    "EventBusError",
    "EventValidationError",
    "FencedInstanceError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidTopicError",
    "KafkaError",
    "MemoryTransportAdapter",
    "Observer",
    "OutboxService",
    "PgClient",
    "Producer",
    "PublishError",
    "PublishResult",
    "QueueFullError",
    "Record",
    "RedpandaTransportAdapter",
    "RetryConfig",
    "TopicConfig",
    "TransportAdapter",
    "TransportConfig",
    "TransportError",
    "TransportTimeoutError",
    "UnknownTopicError",
    "WorkerType",
    "get_event_bus",
    "idempotent",
    "librdkafka_version",
    "poll_batch",
    "register_event",
    "reset_event_bus",
    "set_event_bus",
    "validate_event",
]

# From the interpreter's exit on, the core's threads stay out of Python.
_interpreter_exit.register()
