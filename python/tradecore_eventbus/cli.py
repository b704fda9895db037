"""The ``tradecore-eventbus`` command line (the ``cli`` extra): ``main`` is the console
script; ``python -m tradecore_eventbus`` runs it too."""

from __future__ import annotations

from ._internal.cli.entry import main

__all__ = ["main"]
