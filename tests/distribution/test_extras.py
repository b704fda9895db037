"""Each optional feature names its extra when the library it needs is missing (decision 72).

Absence is simulated with a ``None`` entry in ``sys.modules``, which makes ``import name``
raise ``ModuleNotFoundError`` as an uninstalled module does."""

from __future__ import annotations

import sys
import tomllib
import types
from pathlib import Path
from typing import Any

import pytest

from tradecore_eventbus import EventBus
from tradecore_eventbus._internal.extras import EXTRAS, require
from tradecore_eventbus.exceptions import ConfigError, MissingExtraError
from tradecore_eventbus.memory_adapter import MemoryTransportAdapter
from tradecore_eventbus.outbox_service import OutboxService
from tradecore_eventbus.prometheus import PrometheusObserver, start_http_server
from tradecore_eventbus.tracing import OpenTelemetryTracing

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def optional_dependencies() -> dict[str, list[str]]:
    with PYPROJECT.open("rb") as f:
        extras: dict[str, list[str]] = tomllib.load(f)["project"]["optional-dependencies"]
    return extras


def a_client_of(module: str) -> Any:
    """An object that looks, by its type's module, like a client from ``module``."""
    return type("Client", (), {"__module__": f"{module}.connection"})()


def test_require_returns_the_module_when_it_is_installed() -> None:
    assert require("prometheus_client", "prometheus") is sys.modules["prometheus_client"]


@pytest.mark.parametrize(("extra", "module"), [(e, m) for e, ms in EXTRAS.items() for m in ms])
def test_a_missing_module_raises_missing_extra_error_naming_its_extra(
    monkeypatch: pytest.MonkeyPatch, extra: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError) as raised:
        require(module, extra, feature="this feature")
    assert raised.value.extra == extra
    assert str(raised.value) == (
        f'this feature needs {module}, which is not installed: pip install "tradecore-eventbus[{extra}]"'
    )
    assert isinstance(raised.value, ConfigError)


def test_a_submodule_is_required_by_its_top_level_package(monkeypatch: pytest.MonkeyPatch) -> None:
    # Submodules too: another test may have imported one, and an imported one is found.
    for module in [m for m in sys.modules if m.partition(".")[0] == "opentelemetry"]:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(MissingExtraError, match=r"tradecore-eventbus\[otel\]") as raised:
        require("opentelemetry.trace", "otel", feature="tracing")
    assert raised.value.extra == "otel"


def test_an_installed_module_that_fails_to_import_raises_its_own_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Installing the extra again would not fix an import that breaks inside the module."""
    broken = types.ModuleType("rich")

    def fail(name: str) -> Any:
        raise ImportError("the module is broken")

    monkeypatch.setattr("importlib.import_module", fail)
    monkeypatch.setitem(sys.modules, "rich", broken)
    with pytest.raises(ImportError, match="broken") as raised:
        require("rich", "cli")
    assert not isinstance(raised.value, MissingExtraError)


def test_an_unknown_extra_or_a_module_of_another_extra_is_a_bug_of_the_caller() -> None:
    with pytest.raises(ValueError, match="unknown extra 'graphs'"):
        require("asyncpg", "graphs")
    with pytest.raises(ValueError, match="'postgres' extra does not install 'click'"):
        require("click", "postgres")


def test_every_extra_is_declared_in_pyproject_and_included_in_dev() -> None:
    declared = optional_dependencies()
    dev = {requirement.split(">")[0].split("[")[0] for requirement in declared["dev"]}
    for extra in EXTRAS:
        assert extra in declared, extra
        for requirement in declared[extra]:
            assert requirement.split(">")[0] in dev, (extra, requirement)
    assert "aiosqlite" not in " ".join(
        tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    )
    assert "opentelemetry-sdk" in " ".join(declared["dev"])


def test_the_prometheus_observer_and_server_name_the_prometheus_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(MissingExtraError, match="the Prometheus observer") as raised:
        PrometheusObserver()
    assert raised.value.extra == "prometheus"
    with pytest.raises(MissingExtraError, match=r"tradecore-eventbus\[prometheus\]"):
        start_http_server(0)


def test_tracing_names_the_otel_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # Submodules too: earlier tests imported them, and an imported one would be found.
    for module in [m for m in sys.modules if m.partition(".")[0] == "opentelemetry"]:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(MissingExtraError, match="OpenTelemetry tracing") as raised:
        OpenTelemetryTracing()
    assert raised.value.extra == "otel"
    assert 'pip install "tradecore-eventbus[otel]"' in str(raised.value)


@pytest.mark.parametrize(
    ("module", "extra", "feature"),
    [
        ("asyncpg", "postgres", "the PostgreSQL outbox"),
        ("aiosqlite", "sqlite", "the SQLite outbox"),
    ],
)
async def test_each_outbox_store_names_its_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, extra: str, feature: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    async with EventBus(MemoryTransportAdapter()) as bus:
        with pytest.raises(MissingExtraError, match=feature) as raised:
            OutboxService(bus, a_client_of(module))
    assert raised.value.extra == extra
    assert f'pip install "tradecore-eventbus[{extra}]"' in str(raised.value)
