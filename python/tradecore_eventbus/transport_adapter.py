"""Public import path of the guide (``transport_adapter``); the implementation lives in
``tradecore_eventbus._internal.transports.protocol``."""

from ._internal.transports.protocol import (
    ConsumerLike,
    ConsumerSpec,
    HeaderList,
    Mode,
    OutgoingRecord,
    ProducerLike,
    RecordLike,
    TopicSpec,
    TransportAdapter,
)

__all__ = [
    "ConsumerLike",
    "ConsumerSpec",
    "HeaderList",
    "Mode",
    "OutgoingRecord",
    "ProducerLike",
    "RecordLike",
    "TopicSpec",
    "TransportAdapter",
]
