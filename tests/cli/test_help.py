"""``--help`` works on every command, in process and through ``python -m`` and the console
script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from tradecore_eventbus._internal.cli.app import cli

from .conftest import COMMAND_TIMEOUT_S, invoke, run_module


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, (*prefix, name)))
        else:
            paths.append((*prefix, name))
    return paths


COMMANDS = command_paths(cli)


def test_every_command_of_the_issue_is_there() -> None:
    assert set(COMMANDS) >= {
        (),
        ("demo",),
        ("health",),
        ("topics", "init"),
        ("topics", "list"),
        ("tail",),
        ("dlq", "list"),
        ("dlq", "replay"),
        ("spool", "list"),
        ("spool", "replay"),
        ("spool", "dead"),
        ("bench",),
    }


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "(root)")
def test_help_works_on_every_command(path: tuple[str, ...]) -> None:
    result = invoke([*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    assert " ".join(["cli", *path]) in result.stdout.splitlines()[0]
    assert result.stderr == ""


def test_python_dash_m_runs_the_command_line() -> None:
    done = run_module(["--help"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: tradecore-eventbus ")
    for name in ("demo", "health", "topics", "tail", "dlq", "spool", "bench"):
        assert f"  {name} " in done.stdout


def test_the_console_script_is_installed_and_runs() -> None:
    """The ``[project.scripts]`` entry point: present once the package is installed
    (``maturin develop`` / ``pip install``); its absence is a failure, not a skip."""
    script = Path(sys.executable).parent / "tradecore-eventbus"
    found = shutil.which("tradecore-eventbus") or (str(script) if script.exists() else None)
    assert found is not None, (
        f"no tradecore-eventbus executable beside {sys.executable} or on PATH: "
        "reinstall the package (make develop)"
    )
    done = subprocess.run(
        [found, "topics", "--help"],
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: tradecore-eventbus topics ")


def test_without_the_cli_extra_the_error_is_one_line_naming_it() -> None:
    code = (
        "import sys; sys.modules['click'] = None\nfrom tradecore_eventbus.cli import main\nmain()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "tradecore-eventbus: the tradecore-eventbus command line needs click, which is not "
        'installed: pip install "tradecore-eventbus[cli]"'
    ]


def test_the_console_script_entry_point_names_the_cli_main() -> None:
    """What ``[project.scripts]`` installs: ``tradecore_eventbus.cli:main``."""
    import importlib
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text())["project"]["scripts"]
    assert scripts == {"tradecore-eventbus": "tradecore_eventbus.cli:main"}
    module, _, name = scripts["tradecore-eventbus"].partition(":")
    from tradecore_eventbus._internal.cli.entry import main

    assert getattr(importlib.import_module(module), name) is main
