"""Optional dependencies: the one place that imports a module an extra brings.

The core needs only pydantic (and the Rust extension). Features built on other libraries
import them through :func:`require` when the feature is first used, never when the package
is imported, so ``import tradecore_eventbus`` works with no extra installed and a missing
one is reported as :class:`~tradecore_eventbus.exceptions.MissingExtraError` naming the
extra to install (decision 72). ``tests/architecture`` checks that no other module imports
these libraries at run time.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..exceptions import MissingExtraError

#: Each extra of ``pyproject.toml`` and the top-level modules it makes importable.
EXTRAS: dict[str, tuple[str, ...]] = {
    "postgres": ("asyncpg",),
    "sqlite": ("aiosqlite",),
    "prometheus": ("prometheus_client",),
    "otel": ("opentelemetry",),
    "cli": ("click", "rich"),
}


def install_hint(extra: str) -> str:
    """The command that installs ``extra``."""
    return f'pip install "tradecore-eventbus[{extra}]"'


def require(module: str, extra: str, *, feature: str = "") -> ModuleType:
    """Imports and returns ``module`` (a dotted name such as ``"opentelemetry.trace"``),
    which the extra ``extra`` installs. If it is not installed, raises ``MissingExtraError``
    (a ``ConfigError``) with ``extra`` set and the ``pip install`` line in its message;
    ``feature`` names what needed it (default: the module).

    Only a missing module (``ModuleNotFoundError``, also for a missing dependency of the
    module) becomes ``MissingExtraError``: a module that is installed but fails while it is
    imported raises its own error, which installing the extra would not fix."""
    modules = EXTRAS.get(extra)
    if modules is None:
        raise ValueError(f"unknown extra {extra!r}; the extras are {sorted(EXTRAS)}")
    if module.partition(".")[0] not in modules:
        raise ValueError(f"the {extra!r} extra does not install {module!r} (it has {modules})")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        what = feature or module
        raise MissingExtraError(
            f"{what} needs {module}, which is not installed: {install_hint(extra)}",
            extra=extra,
        ) from exc
