"""The chaos suite: faults injected into real brokers and consumers while the bus runs.

Registers the ``chaos`` marker (pyproject's marker list belongs to the rest of the suite),
provides the brokers as fixtures that leave them as they were found, and prints every
scenario's numbers at the end of the run."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.chaos import modes, report
from tests.chaos.infra import CLUSTER_SH, ROOT, SCRIPT_TIMEOUT_S, Cluster, SingleBroker, require


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


class ClusterBoot:
    """Booting the 3-broker cluster takes ~25 s of JVM start on two cores. In short mode it
    boots in the background while the scenarios before scenario 3 run, so that ``make test``
    does not wait for it; full mode boots it when scenario 3 starts, so that no other
    scenario's timings share the CPU with three starting JVMs."""

    def __init__(self) -> None:
        self.wanted = False  # some collected test uses the cluster
        self.proc: subprocess.Popen[bytes] | None = None
        self.was_running: bool | None = None
        self.log = ROOT / ".cache/chaos/cluster-start.log"

    def begin(self) -> None:
        if self.proc is not None or self.was_running is not None:
            return
        require(CLUSTER_SH)
        self.was_running = (
            subprocess.run([CLUSTER_SH, "status"], capture_output=True).returncode == 0
        )
        if self.was_running:
            return
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [CLUSTER_SH, "start"], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )

    async def finish(self) -> None:
        """Waits for a background boot; fails with its output if it failed."""
        if self.proc is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SCRIPT_TIMEOUT_S
        while self.proc.poll() is None:
            if loop.time() >= deadline:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"cluster.sh start did not finish within {SCRIPT_TIMEOUT_S}s")
            await asyncio.sleep(0.2)  # polling the boot's process; the deadline bounds it
        if self.proc.returncode != 0:
            pytest.fail(f"cluster.sh start failed: {self.log.read_text(errors='replace')[-3000:]}")


BOOT = ClusterBoot()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    BOOT.wanted = any("cluster" in getattr(item, "fixturenames", ()) for item in items)


@pytest.fixture(autouse=True)
def _boot_cluster_ahead(request: pytest.FixtureRequest) -> None:
    # Not beside scenario 1: the single broker's restart is what it times, and three JVMs
    # starting next to it would take half of the CPU.
    if BOOT.wanted and not modes.FULL and request.node.path.name != "test_broker_kill.py":
        BOOT.begin()


async def stop_cluster(c: Cluster) -> None:
    """SIGKILL first, then ``cluster.sh stop``: a graceful stop of the last node waits 30 s
    for a controller quorum that left with the other two, and ``cluster.sh start`` formats
    fresh storage anyway, so nothing is lost by not shutting down cleanly."""
    for n in (1, 2, 3):
        await c.kill(n)
    await c.stop()


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    """The 3-broker cluster, started for the test and stopped afterwards (unless it was
    already running before the suite touched it)."""
    c = Cluster()
    BOOT.begin()
    try:
        await BOOT.finish()
        await c.start()  # returns at once when the boot above got it ready
        yield c
    finally:
        if not BOOT.was_running:
            await stop_cluster(c)  # also after a start that failed half way
            BOOT.proc = None


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A cluster booted ahead for a test that then never ran (``-x``, a crash) is stopped."""
    if BOOT.proc is None:
        return
    BOOT.proc.wait()
    for n in ("1", "2", "3"):
        subprocess.run([CLUSTER_SH, "kill", n], capture_output=True)
    subprocess.run([CLUSTER_SH, "stop"], capture_output=True)
