"""The console script. It imports the commands (and so click and rich) only when it runs,
so that a missing ``cli`` extra is one line on stderr, not a traceback."""

from __future__ import annotations

import sys

from ...exceptions import MissingExtraError

PROG = "tradecore-eventbus"


def main() -> None:
    try:
        from .app import cli
    except MissingExtraError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        sys.exit(2)
    cli.main(prog_name=PROG)
