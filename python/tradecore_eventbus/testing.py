"""Testing support for applications built on the bus: a pytest plugin and helpers.

The plugin is registered through the ``pytest11`` entry point, so installing the package
makes its fixtures available in every test (``-p no:tradecore_eventbus`` turns it off):

- ``memory_event_bus``: an ``EventBus`` on the in-memory transport with a fresh broker and
  a spool of its own, closed after the test; ``memory_faults``: ``MemoryFaults`` of it;
- ``kafka_event_bus``: an ``EventBus`` on the broker given by ``--eventbus-bootstrap`` or
  ``KAFKA_BOOTSTRAP_SERVERS``; without either, the default ``localhost:19092`` is tried and
  the test skipped if it does not answer (ini ``eventbus_ping_timeout``, 5 s);
- ``eventbus_spool_dir``: a spool directory per test (under ``tmp_path``).

The bus fixtures are async: they need pytest-asyncio (strict mode: mark the tests
``@pytest.mark.asyncio``; auto mode: nothing to do). The helpers need no pytest at all:

- ``await wait_for_event(bus, channel, event_type, timeout=...)``: the first event of that
  type on the channel, read from the channel's beginning (so it cannot miss one published
  before it was called); ``AssertionError`` naming channel, type and timeout otherwise;
- ``await dead_letters(bus, channel, count=1, timeout=...)``: the channel's DLQ records as
  ``DeadLetter(event, metadata, raw_value)``;
- ``MemoryFaults(bus)``: ``broker_down()`` / ``broker_up()``, ``fail_next_publish(channel,
  error=None, count=1)``, ``await slow_partition(channel, partition, delay_seconds)``,
  ``clear()``.
"""

from __future__ import annotations

from importlib.util import find_spec

from ._internal.testing.dead_letters import DeadLetter, dead_letters
from ._internal.testing.faults import MemoryFaults
from ._internal.testing.waiting import wait_for_event

__all__ = ["DeadLetter", "MemoryFaults", "dead_letters", "wait_for_event"]

# The helpers work in a plain script; the plugin's hooks and fixtures need pytest.
if find_spec("pytest") is not None:
    from ._internal.testing.plugin import (
        eventbus_spool_dir,
        kafka_event_bus,
        memory_event_bus,
        memory_faults,
        pytest_addoption,
    )

    __all__ += [
        "eventbus_spool_dir",
        "kafka_event_bus",
        "memory_event_bus",
        "memory_faults",
        "pytest_addoption",
    ]
