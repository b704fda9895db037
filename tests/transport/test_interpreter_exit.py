"""A program that awaited the core's futures and returned exits cleanly.

On Python < 3.14 a thread that re-enters Python while the interpreter finalizes is killed
with pthread_exit, which aborts the process when it unwinds through Rust frames. Before the
core kept its threads out of Python at exit, about one run in three of this script died with
SIGABRT (exit status 134): the race is wide, so a handful of runs catches it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from tests.conftest import unique

pytestmark = pytest.mark.kafka

SCRIPT = """
import asyncio, sys
from tradecore_eventbus import _core

async def main():
    # The client is a temporary: the future holds the last reference, so the client is
    # released on a runtime thread just before the result is handed to asyncio, and the
    # script returns (and the interpreter finalizes) while that thread is still busy.
    await _core.Admin(sys.argv[1]).create_topics([(sys.argv[2], 6, 1, None)])

asyncio.run(main())
print("done")
"""


def test_scripts_exit_cleanly_right_after_awaiting_core_futures(bootstrap: str) -> None:
    failures = []
    for run in range(16):
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, bootstrap, unique("exit")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if out.returncode != 0 or out.stdout.strip() != "done":
            failures.append((run, out.returncode, out.stderr[-500:]))
    assert failures == []
