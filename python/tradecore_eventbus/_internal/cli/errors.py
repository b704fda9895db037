"""How a command fails: one line on stderr and exit code 1, never a traceback, for every
error the library raises on bad settings, bad arguments or an unreachable broker (the
``EventBusError`` hierarchy, whose messages never hold secrets: decision 50)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from ...exceptions import EventBusError
from .libs import click

T = TypeVar("T")


class CliError(click.ClickException):
    """Printed as ``Error: <message>`` on stderr; exit code 1."""


class Interrupted(Exception):
    """Ctrl-C (SIGINT) stopped a command that treats it as its normal end (``tail``)."""


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def run(coroutine: Coroutine[Any, Any, T], *, interrupt_ends: bool = False) -> T:
    """Runs ``coroutine`` on a new event loop. The library's errors become one line.

    Ctrl-C cancels the coroutine (asyncio's runner does: its cleanups run, consumers are
    closed); with ``interrupt_ends`` that is a normal end (``Interrupted``), otherwise
    click's "Aborted!" and exit code 1."""
    try:
        return asyncio.run(coroutine)
    except KeyboardInterrupt:
        if interrupt_ends:
            raise Interrupted() from None
        raise click.Abort() from None
    except EventBusError as exc:
        raise CliError(one_line(exc)) from None
