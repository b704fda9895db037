"""The README's command-line section shows every command; its block runs as written in
``tests/test_readme_shell_blocks.py`` (with the installed ``tradecore-eventbus``)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

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
