"""The plugin as an installed package registers it: the pytest11 entry point names a module
that provides the fixtures, in a user's project of its own (pytest-asyncio in strict mode)."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import tradecore_eventbus

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ["memory_event_bus", "kafka_event_bus", "eventbus_spool_dir", "memory_faults"]


def entry_point() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return str(project["entry-points"]["pytest11"]["tradecore_eventbus"])


def test_the_entry_point_names_the_testing_module() -> None:
    assert entry_point() == "tradecore_eventbus.testing"
    module = importlib.import_module(entry_point())
    assert callable(module.pytest_addoption)
    for name in [*FIXTURES, "wait_for_event", "dead_letters", "MemoryFaults", "DeadLetter"]:
        assert name in module.__all__, name


USER_TESTS = """
import pytest

seen = []

@pytest.mark.asyncio
async def test_uses_the_memory_bus(memory_event_bus, memory_faults, eventbus_spool_dir):
    seen.append(memory_event_bus)
    await memory_event_bus.publish("transport.x", {"event_type": "E"})
    assert memory_event_bus.spool.directory == eventbus_spool_dir

def test_the_bus_was_closed_after_the_test():
    assert seen and seen[0].closed

@pytest.mark.asyncio
async def test_kafka(kafka_event_bus):
    pass
"""


def run_user_project(tmp_path: Path, *args: str, conftest: str = "") -> str:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
        "eventbus_ping_timeout = 2\n"
    )
    (tmp_path / "conftest.py").write_text(textwrap.dedent(conftest))
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["PYTHONPATH"] = str(Path(tradecore_eventbus.__file__).parents[1])
    # Loaded by its installed entry point when the package is installed (``make develop``),
    # else named here: registering it both ways is refused by pytest.
    installed = any(
        ep.value == entry_point() for ep in importlib.metadata.entry_points(group="pytest11")
    )
    load = [] if installed else ["-p", entry_point()]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *load,
            "-p",
            "no:cacheprovider",
            "-rs",
            *args,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout + done.stderr


def test_without_a_broker_kafka_tests_skip_with_the_reason(tmp_path: Path) -> None:
    # Nothing given, and (here) nothing answers at the default address.
    out = run_user_project(
        tmp_path,
        conftest="""
        from tradecore_eventbus._internal.testing import plugin
        plugin.broker_address = lambda config: ("127.0.0.1:1", None)
        """,
    )
    assert "2 passed, 1 skipped" in out, out
    assert "no broker given (--eventbus-bootstrap or $KAFKA_BOOTSTRAP_SERVERS)" in out, out


def test_a_given_broker_that_does_not_answer_fails(tmp_path: Path) -> None:
    out = run_user_project(tmp_path, "--eventbus-bootstrap", "127.0.0.1:1")
    assert "2 passed, 1 error" in out, out
    assert "the broker at 127.0.0.1:1 (from --eventbus-bootstrap) does not answer" in out, out
