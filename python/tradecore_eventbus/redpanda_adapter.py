"""Public import path of the guide (``redpanda_adapter``); the implementation lives in
``tradecore_eventbus._internal.transports.kafka.adapter``."""

from ._internal.transports.kafka.adapter import RedpandaTransportAdapter

__all__ = ["RedpandaTransportAdapter"]
