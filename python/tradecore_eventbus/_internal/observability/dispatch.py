"""Calling the registered observers: only the callbacks an observer overrides are called,
so an observer that counts publishes costs nothing on the consume path, and with only the
built-in counters a publish costs one call per batch (decision 63)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from .counters import Counters
from .guards import GuardedHandlingTrace, GuardedPublishTrace
from .observer import Observer

logger = logging.getLogger("tradecore_eventbus.observers")

#: The hooks that return what follows a call or a record (decision 86): one observer at most
#: answers them, and what it returns is guarded like a callback.
_TRACE_HOOKS = ("trace_publish", "trace_handling")
_CALLBACKS = tuple(
    name
    for name, value in vars(Observer).items()
    if callable(value) and not name.startswith("_") and name not in _TRACE_HOOKS
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
        for name in _TRACE_HOOKS:
            if _overrides(observer, name) and any(_overrides(o, name) for o in self._observers):
                from ...exceptions import InvalidArgumentError

                raise InvalidArgumentError(
                    f"{type(observer).__name__} traces publishes or handling ({name}), and "
                    "another registered observer already does: a record carries one trace "
                    "context, so one tracing observer per bus"
                )
        self._observers.append(observer)
        self._bind()

    def listens(self, *callbacks: str) -> bool:
        """Whether any observer overrides one of ``callbacks``."""
        return any(self._targets[name] for name in callbacks)

    def traces(self) -> bool:
        """Whether an observer answers the trace hooks."""
        return self.listens(*_TRACE_HOOKS)

    @property
    def extra(self) -> list[Observer]:
        """The observers registered besides the built-in counters."""
        return self._observers[1:]

    def _bind(self) -> None:
        for name in (*_CALLBACKS, *_TRACE_HOOKS):
            self._targets[name] = [getattr(o, name) for o in self._observers if _overrides(o, name)]
        # Bound per callback, so a call site pays only for the observers that listen.
        for name in _CALLBACKS:
            targets = self._targets[name]
            setattr(self, name, self._caller(name, targets))
        for name, guard in (
            ("trace_publish", GuardedPublishTrace),
            ("trace_handling", GuardedHandlingTrace),
        ):
            targets = self._targets[name]
            setattr(self, name, self._tracer(name, targets[0], guard) if targets else _nothing)

    def _tracer(
        self, name: str, target: Callable[..., Any], guard: Callable[..., Any]
    ) -> Callable[..., Any]:
        """Calls a trace hook; what it returns is wrapped so that its methods never raise
        into the bus either (each failure logged once per method, like a callback's)."""

        def report(method: str) -> None:
            self._report(f"{name}().{method}" if method != name else name, target)

        def start(*args: Any) -> Any:
            try:
                trace = target(*args)
            except Exception:
                report(name)
                return None
            return None if trace is None else guard(trace, report)

        return start

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


def _overrides(observer: Observer, name: str) -> bool:
    return getattr(type(observer), name) is not getattr(Observer, name)
