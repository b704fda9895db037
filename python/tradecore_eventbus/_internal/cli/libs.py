"""click and rich, the ``cli`` extra: imported here, through ``extras.require``, so that a
missing extra is one ``MissingExtraError`` naming it (decision 72). The type checker reads
the real modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..extras import require

FEATURE = "the tradecore-eventbus command line"

if TYPE_CHECKING:
    import click
    from rich.console import Console
    from rich.json import JSON
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.table import Table
else:
    click = require("click", "cli", feature=FEATURE)
    _console = require("rich.console", "cli", feature=FEATURE)
    _json = require("rich.json", "cli", feature=FEATURE)
    _progress = require("rich.progress", "cli", feature=FEATURE)
    _table = require("rich.table", "cli", feature=FEATURE)
    Console = _console.Console
    JSON = _json.JSON
    BarColumn = _progress.BarColumn
    MofNCompleteColumn = _progress.MofNCompleteColumn
    Progress = _progress.Progress
    TextColumn = _progress.TextColumn
    TimeElapsedColumn = _progress.TimeElapsedColumn
    Table = _table.Table

__all__ = [
    "JSON",
    "BarColumn",
    "Console",
    "MofNCompleteColumn",
    "Progress",
    "Table",
    "TextColumn",
    "TimeElapsedColumn",
    "click",
]
