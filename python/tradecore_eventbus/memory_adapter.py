"""Public import path of the guide (``memory_adapter``); the implementation lives in
``tradecore_eventbus._internal.transports.memory.adapter``."""

from ._internal.transports.memory.adapter import (
    Bytesish,
    HeadersArg,
    MemoryConsumer,
    MemoryProducer,
    MemoryRecord,
    MemoryTransportAdapter,
)

__all__ = [
    "Bytesish",
    "HeadersArg",
    "MemoryConsumer",
    "MemoryProducer",
    "MemoryRecord",
    "MemoryTransportAdapter",
]
