"""Every ```bash block of the README is checked or run (decision 74).

- ``make TARGET`` lines: the target exists (``make -n``, which runs nothing). ``make test`` is
  what CI itself runs; ``make demo``'s job runs in tests/test_demo.py.
- ``pip install`` lines: every extra they name is declared in pyproject.toml (the wheel
  itself is installed by tests/distribution).
- Any other block runs, as written, in bash from the repository's root with the virtualenv's
  commands first on PATH, against the local broker, and must exit 0.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def commands(block: str) -> list[str]:
    lines = (line.split("  #")[0].strip() for line in block.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def kind(block: str) -> str:
    first = {c.split()[0] for c in commands(block)}
    if first == {"make"}:
        return "make"
    if first == {"pip"}:
        return "pip"
    return "run"


def test_the_readme_has_shell_blocks_of_each_kind() -> None:
    assert {kind(b) for b in BLOCKS} == {"make", "pip", "run"}


@pytest.mark.parametrize("block", [b for b in BLOCKS if kind(b) == "make"])
def test_make_targets_exist(block: str) -> None:
    for command in commands(block):
        target = command.split()[1]
        done = subprocess.run(
            ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"`{command}`: {done.stderr}"


@pytest.mark.parametrize("block", [b for b in BLOCKS if kind(b) == "pip"])
def test_pip_extras_exist(block: str) -> None:
    declared = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    for command in commands(block):
        for word in shlex.split(command)[2:]:
            name, _, extras = word.partition("[")
            assert name == "tradecore-eventbus", command
            named = set(extras.rstrip("]").split(",")) - {""}
            assert named <= declared, f"`{command}` names undeclared extras {named - declared}"


@pytest.mark.kafka
@pytest.mark.parametrize("block", [b for b in BLOCKS if kind(b) == "run"])
def test_shell_block_runs(block: str) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{block}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
