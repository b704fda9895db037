"""The chaos suite: faults injected into real brokers and consumers while the bus runs.

Registers the ``chaos`` marker (pyproject's marker list belongs to the rest of the suite),
provides the brokers as fixtures that leave them as they were found, and prints every
scenario's numbers at the end of the run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.chaos import modes, report
from tests.chaos.infra import Cluster, SingleBroker


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "chaos: fault injection against real brokers (tests/chaos; CHAOS_FULL=1 for full counts)",
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not report.SESSION:
        return
    terminalreporter.section(f"chaos results ({modes.MODE} mode)")
    terminalreporter.write_line(report.HEADER)
    for result in report.SESSION:
        terminalreporter.write_line(result.row())
    for result in report.SESSION:
        terminalreporter.write_line("")
        terminalreporter.write_line(result.block().split("\n", 1)[1].rstrip())
    if not modes.REPORT:
        terminalreporter.write_line("(docs/reliability.md not updated: CHAOS_REPORT is not set)")


@pytest.fixture
async def single_broker() -> AsyncIterator[SingleBroker]:
    """The project's broker, running; running again afterwards whatever the test did to it
    (the rest of the suite needs it)."""
    broker = SingleBroker()
    await broker.require_running()
    try:
        yield broker
    finally:
        await broker.ensure_running()


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    """The 3-broker cluster, started for the test and stopped afterwards (unless it was
    already running when the test began)."""
    c = Cluster()
    was_running = await c.running()
    try:
        await c.start()
        yield c
    finally:
        if not was_running:
            await c.stop()  # also after a start that failed half way
