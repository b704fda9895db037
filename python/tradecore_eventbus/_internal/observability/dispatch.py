"""Calling the registered observers: only the callbacks an observer overrides are called,
so an observer that counts publishes costs nothing on the consume path, and with only the
built-in counters a publish costs one call per batch (decision 63)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from .counters import Counters
from .observer import Observer

logger = logging.getLogger("tradecore_eventbus.observers")

_CALLBACKS = tuple(
    name for name, value in vars(Observer).items() if callable(value) and not name.startswith("_")
)


def _nothing(*args: Any) -> None:
    return None


#: What a callback nobody listens for is bound to: a call site whose report costs work of its
#: own (timing a handler) compares against it and skips that work (decision 71).
SILENT: Callable[..., None] = _nothing


class Observers(Observer):
    """The bus's observers (its :class:`Counters` first) behind one ``Observer``."""

    def __init__(self, counters: Counters, extra: Iterable[Observer] = ()) -> None:
        self.counters = counters
        self._observers: list[Observer] = [counters]
        self._failed: set[tuple[int, str]] = set()
        self._targets: dict[str, list[Callable[..., None]]] = {}
        for observer in extra:
            self.add(observer)
        self._bind()

    def add(self, observer: Observer) -> None:
        if not isinstance(observer, Observer):
            from ...exceptions import InvalidArgumentError

            raise InvalidArgumentError(
                f"observers must be tradecore_eventbus.observers.Observer instances, got "
                f"{type(observer).__name__}"
            )
        self._observers.append(observer)
        self._bind()

    def listens(self, *callbacks: str) -> bool:
        """Whether any observer overrides one of ``callbacks``."""
        return any(self._targets[name] for name in callbacks)

    @property
    def extra(self) -> list[Observer]:
        """The observers registered besides the built-in counters."""
        return self._observers[1:]

    def _bind(self) -> None:
        for name in _CALLBACKS:
            default = getattr(Observer, name)
            self._targets[name] = [
                getattr(o, name) for o in self._observers if getattr(type(o), name) is not default
            ]
        # Bound per callback, so a call site pays only for the observers that listen.
        for name in _CALLBACKS:
            targets = self._targets[name]
            setattr(self, name, self._caller(name, targets))

    def _caller(self, name: str, targets: list[Callable[..., None]]) -> Callable[..., None]:
        if not targets:
            return _nothing
        if len(targets) == 1 and getattr(targets[0], "__self__", None) is self.counters:
            return targets[0]  # the counters never raise

        def call(*args: Any) -> None:
            for target in targets:
                try:
                    target(*args)
                except Exception:
                    self._report(name, target)

        return call

    def _report(self, name: str, target: Callable[..., None]) -> None:
        owner = getattr(target, "__self__", target)
        key = (id(owner), name)
        if key in self._failed:
            return
        self._failed.add(key)
        logger.exception(
            "observer %s raised in %s (ignored; logged once per callback)",
            type(owner).__name__,
            name,
        )
