"""Public import path of the guide (``worker_consumer_groups``); the implementation lives in
``tradecore_eventbus._internal.config.consumer_groups``."""

from ._internal.config.consumer_groups import (
    WORKER_CONSUMER_GROUPS,
    WorkerType,
    group_id,
)

__all__ = [
    "WORKER_CONSUMER_GROUPS",
    "WorkerType",
    "group_id",
]
