"""Public import path of the guide (``retry``); the implementation lives in
``tradecore_eventbus._internal.reliability.retry``."""

from ._internal.reliability.retry import (
    RetryConfig,
)

__all__ = [
    "RetryConfig",
]
