"""Public import path of the guide (``outbox_service``); the implementation lives in
``tradecore_eventbus._internal.outbox.service``."""

from ._internal.outbox.service import (
    DEFAULT_RELAY_RETRY,
    OutboxService,
    PgClient,
)

__all__ = [
    "DEFAULT_RELAY_RETRY",
    "OutboxService",
    "PgClient",
]
