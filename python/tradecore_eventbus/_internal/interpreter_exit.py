"""At interpreter exit the core's threads stay out of Python (``_core.before_exit``). The wait
for those already inside is bounded by the close timeout, read when the interpreter exits."""

from __future__ import annotations

import atexit
import os

from .. import _core
from .config.settings import _EVENT_BUS_RULES, EventBusConfig

# The settings' own rule: the same variable name and the same parser as a bus reads.
_PARSER, _VARIABLE = _EVENT_BUS_RULES["close_timeout_seconds"]


def exit_bound() -> float:
    """``EVENT_BUS_CLOSE_TIMEOUT_SECONDS``, or its default if unset or malformed (a bus
    reading it reported that already; exiting still needs a bound)."""
    default = EventBusConfig.close_timeout_seconds
    raw = os.environ.get(_VARIABLE) if _VARIABLE is not None else None
    if raw is None:
        return default
    try:
        return float(_PARSER.parse(raw))
    except Exception:  # nothing may keep the core from being told (see _before_exit)
        return default


def _before_exit() -> None:
    # exit_bound never raises: the core's threads must be told to stay out of Python.
    _core.before_exit(exit_bound())


def register() -> None:
    atexit.register(_before_exit)
