"""The README's command-line examples run as written (through ``python -m``), on the local
broker, and succeed."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from .conftest import run_module

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = README.read_text().split("## Command line", 1)[1].split("\n## ", 1)[0]
COMMANDS = [
    line
    for block in re.findall(r"```bash\n(.*?)```", SECTION, flags=re.S)
    for line in block.splitlines()
    if line.startswith("tradecore-eventbus ")
]


def test_the_section_has_an_example_of_every_command() -> None:
    shown = {" ".join(shlex.split(c)[1:3]) for c in COMMANDS}
    for command in ("topics init", "topics list", "spool list", "spool dead", "spool replay"):
        assert command in shown
    shown_first = {shlex.split(c)[1] for c in COMMANDS}
    assert shown_first >= {"demo", "health", "tail", "bench", "dlq", "topics", "spool"}
    assert {c.split()[2] for c in COMMANDS if c.split()[1] == "dlq"} == {"list", "replay"}


@pytest.mark.kafka
def test_the_examples_run_in_order(spool_dir: str) -> None:
    for command in COMMANDS:
        done = run_module(shlex.split(command)[1:], EVENT_BUS_SPOOL_DIR=spool_dir)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr
