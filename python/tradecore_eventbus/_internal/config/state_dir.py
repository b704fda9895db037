"""Where the bus keeps its state on this machine: the per-user XDG state directory.

The spool used to default to ``.eventbus-spool`` in whatever directory the process ran in,
so two runs from different directories had different spools and a spooled event could be
left behind. The default is now ``$XDG_STATE_HOME/tradecore-eventbus/spool``, falling back to
``~/.local/state/tradecore-eventbus/spool`` (the XDG Base Directory specification; plain XDG
logic, no platformdirs dependency: decision 73). ``EVENT_BUS_SPOOL_DIR`` overrides it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: The directory of this package under the state home.
APP_DIR = "tradecore-eventbus"


def state_home(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME``, or ``$HOME/.local/state``. The specification says a relative
    ``XDG_STATE_HOME`` is invalid and must be ignored, so it falls back as if it were unset."""
    e: Mapping[str, str] = os.environ if env is None else env
    xdg = e.get("XDG_STATE_HOME", "").strip()
    if xdg and os.path.isabs(xdg):
        return Path(xdg)
    home = e.get("HOME", "").strip()
    return (Path(home) if home else Path.home()) / ".local" / "state"


def default_spool_dir(env: Mapping[str, str] | None = None) -> str:
    """The spool directory used when neither ``spool_dir`` nor ``EVENT_BUS_SPOOL_DIR`` is
    given: ``{state home}/tradecore-eventbus/spool``."""
    return str(state_home(env) / APP_DIR / "spool")
