"""Running the command line: in process through click's ``CliRunner``, or as a real process
(``python -m tradecore_eventbus``, the console script) where the process itself matters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from click.testing import CliRunner, Result
from tests.conftest import BOOTSTRAP

from tradecore_eventbus import EventBus
from tradecore_eventbus._internal.cli.app import cli
from tradecore_eventbus.eventbus_transport_config import EventBusConfig, TransportConfig
from tradecore_eventbus.redpanda_adapter import RedpandaTransportAdapter
from tradecore_eventbus.retry import RetryConfig

#: Bounds each command of a test (a test's own limit, not a setting of the code under test).
COMMAND_TIMEOUT_S = 120


def cli_env(**extra: str) -> dict[str, str]:
    return {"REDPANDA_BOOTSTRAP_SERVERS": BOOTSTRAP, **extra}


def invoke(args: Sequence[str], **env: str) -> Result:
    """The command in this process, on the test broker (stdout and stderr apart)."""
    return CliRunner().invoke(cli, list(args), env=cli_env(**env), catch_exceptions=False)


def invoke_json(args: Sequence[str], **env: str) -> Any:
    result = invoke([*args, "--json"], **env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def run_module(args: Sequence[str], **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m tradecore_eventbus ARGS`` in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "tradecore_eventbus", *args],
        env={**os.environ, **cli_env(**env)},
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


#: ``python -m tradecore_eventbus`` as a terminal's foreground job starts it: SIGINT at its
#: default. A shell that starts this suite in the background (``nohup ... &`` without job
#: control) sets SIGINT to ignored, and an ignored signal stays ignored across fork and exec,
#: so a child that inherits it never sees the test's "Ctrl-C".
FOREGROUND_MODULE = (
    "import runpy, signal; "
    "signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('tradecore_eventbus', run_name='__main__', alter_sys=True)"
)


def foreground_command(args: Sequence[str]) -> list[str]:
    """The argv of ``python -m tradecore_eventbus ARGS`` that takes Ctrl-C like a terminal's."""
    return [sys.executable, "-c", FOREGROUND_MODULE, *args]


def signal_state(pid: int) -> str:
    """A process's blocked, ignored and pending signals (why a signal had no effect)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return " ".join(line.strip() for line in status if line.startswith("Sig"))
    except OSError as exc:
        return f"no /proc/{pid}/status: {exc}"


@pytest.fixture
def spool_dir(tmp_path: Any) -> str:
    return str(tmp_path / "spool")


@pytest.fixture
async def kafka_bus(spool_dir: str) -> AsyncIterator[EventBus]:
    """A bus on the test broker whose failing handlers dead-letter at the first failure."""
    config = EventBusConfig(
        sub_block_ms=200,
        consumer_poll_timeout_ms=30_000,
        close_timeout_seconds=20,
        handler_retry=RetryConfig(max_attempts=1, initial_delay_ms=1, max_delay_ms=1),
    )
    transport = TransportConfig(
        bootstrap_servers=BOOTSTRAP, client_id="cli-tests", commit_interval_ms=500
    )
    bus = EventBus(
        RedpandaTransportAdapter(event_bus_config=config, transport_config=transport),
        spool_dir=spool_dir,
    )
    yield bus
    await bus.close()
