"""``python -m tradecore_eventbus``: the ``tradecore-eventbus`` command line."""

from __future__ import annotations

from ._internal.cli.entry import main

if __name__ == "__main__":
    main()
