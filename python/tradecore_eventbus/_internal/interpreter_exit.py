"""At interpreter exit the core's threads stay out of Python (``_core.before_exit``). The wait
for those already inside is bounded by the close timeout, read when the interpreter exits."""

from __future__ import annotations

import atexit
import os

from .. import _core
from .config.settings import SECONDS, EventBusConfig

CLOSE_TIMEOUT_VARIABLE = "EVENT_BUS_CLOSE_TIMEOUT_SECONDS"


def exit_bound() -> float:
    """``EVENT_BUS_CLOSE_TIMEOUT_SECONDS``, or its default if unset or malformed (a bus
    reading it reported that already; exiting still needs a bound)."""
    default = EventBusConfig.close_timeout_seconds
    raw = os.environ.get(CLOSE_TIMEOUT_VARIABLE)
    if raw is None:
        return default
    try:
        return SECONDS.parse(raw)
    except Exception:  # nothing may keep the core from being told (see _before_exit)
        return default


def _before_exit() -> None:
    # exit_bound never raises: the core's threads must be told to stay out of Python.
    _core.before_exit(exit_bound())


def register() -> None:
    atexit.register(_before_exit)
