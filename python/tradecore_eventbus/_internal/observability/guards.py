"""What a trace hook returns, wrapped so that nothing it raises reaches the bus: a failing
method is reported (logged once per method) and the publish or the handling goes on, as for
any observer callback (decision 63)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType

from .observer import HandlingTrace, PublishTrace

Report = Callable[[str], None]


class GuardedPublishTrace(PublishTrace):
    def __init__(self, trace: PublishTrace, report: Report) -> None:
        self._trace = trace
        self._report = report

    def headers(self, i: int) -> Mapping[str, str] | None:
        try:
            given = self._trace.headers(i)
            if given is None:
                return None
            # A dict of str, as the encoder takes it: anything else fails here, for this
            # trace alone, not in the encoder for every event of the batch.
            headers = dict(given)
            for name, value in headers.items():
                if not isinstance(name, str) or not isinstance(value, str):
                    raise TypeError(f"trace header {name!r} must be a str with a str value")
            return headers
        except Exception:
            self._report("headers")
            return None

    def delivered(self, i: int, partition: int, offset: int) -> None:
        try:
            self._trace.delivered(i, partition, offset)
        except Exception:
            self._report("delivered")

    def failed(self, i: int, error: BaseException) -> None:
        try:
            self._trace.failed(i, error)
        except Exception:
            self._report("failed")

    def end(self) -> None:
        try:
            self._trace.end()
        except Exception:
            self._report("end")


class GuardedHandlingTrace(HandlingTrace):
    def __init__(self, trace: HandlingTrace, report: Report) -> None:
        self._trace = trace
        self._report = report

    def __enter__(self) -> HandlingTrace:
        try:
            self._trace.__enter__()
        except Exception:
            self._report("__enter__")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Never suppresses: whatever the handling raised goes on up.
        try:
            self._trace.__exit__(exc_type, exc, tb)
        except Exception:
            self._report("__exit__")

    def attempt_failed(self, error: BaseException, attempt: int) -> None:
        try:
            self._trace.attempt_failed(error, attempt)
        except Exception:
            self._report("attempt_failed")

    def gave_up(self, error: BaseException) -> None:
        try:
            self._trace.gave_up(error)
        except Exception:
            self._report("gave_up")
