"""The default spool is the per-user XDG state directory, not the process's working
directory; ``EVENT_BUS_SPOOL_DIR`` and ``spool_dir=`` override it (decision 73)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tradecore_eventbus import EventBus
from tradecore_eventbus.eventbus_transport_config import EventBusConfig
from tradecore_eventbus.memory_adapter import MemoryTransportAdapter


def test_the_default_spool_is_under_xdg_state_home(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path / "home")}
    assert EventBusConfig.from_env(env).spool_dir == str(
        tmp_path / "state" / "tradecore-eventbus" / "spool"
    )


def test_without_xdg_state_home_the_spool_is_under_home_local_state(tmp_path: Path) -> None:
    assert EventBusConfig.from_env({"HOME": str(tmp_path)}).spool_dir == str(
        tmp_path / ".local" / "state" / "tradecore-eventbus" / "spool"
    )


def test_a_relative_xdg_state_home_is_ignored_as_the_specification_says(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": "relative/state", "HOME": str(tmp_path)}
    assert EventBusConfig.from_env(env).spool_dir == str(
        tmp_path / ".local" / "state" / "tradecore-eventbus" / "spool"
    )


def test_event_bus_spool_dir_overrides_the_state_directory(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "EVENT_BUS_SPOOL_DIR": str(tmp_path / "x")}
    assert EventBusConfig.from_env(env).spool_dir == str(tmp_path / "x")


def test_a_config_made_in_python_reads_the_state_directory_when_it_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "one"))
    first = EventBusConfig()
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "two"))
    assert first.spool_dir == str(tmp_path / "one" / "tradecore-eventbus" / "spool")
    assert EventBusConfig().spool_dir == str(tmp_path / "two" / "tradecore-eventbus" / "spool")


def test_the_test_suite_keeps_the_default_spool_out_of_the_real_home() -> None:
    """conftest.py points XDG_STATE_HOME at a temporary directory for the whole run."""
    real = Path.home() / ".local" / "state"
    assert not EventBusConfig().spool_dir.startswith(str(real))
    assert os.environ["XDG_STATE_HOME"] != str(real)


async def test_health_check_shows_the_default_spool_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    async with EventBus(MemoryTransportAdapter()) as bus:
        spool = (await bus.health_check())["adapter"]["details"]["spool"]
    assert spool["directory"] == str(tmp_path / "tradecore-eventbus" / "spool")
    assert not (tmp_path / ".eventbus-spool").exists()


async def test_health_check_shows_a_spool_directory_given_to_the_bus(tmp_path: Path) -> None:
    async with EventBus(MemoryTransportAdapter(), spool_dir=str(tmp_path / "mine")) as bus:
        spool = (await bus.health_check())["adapter"]["details"]["spool"]
    assert spool["directory"] == str(tmp_path / "mine")
