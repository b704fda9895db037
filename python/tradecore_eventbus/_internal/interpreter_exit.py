"""At interpreter exit the core's threads stay out of Python (``_core.before_exit``). The wait
for those already inside is bounded by the close timeout, read when the interpreter exits."""

from __future__ import annotations

import atexit

from .. import _core
from ..exceptions import ConfigError
from .config.settings import EventBusConfig


def _before_exit() -> None:
    try:
        bound = EventBusConfig.from_env().close_timeout_seconds
    except ConfigError:
        # A malformed variable was reported where a bus read it; exiting still needs a bound.
        bound = EventBusConfig().close_timeout_seconds
    _core.before_exit(bound)


def register() -> None:
    atexit.register(_before_exit)
