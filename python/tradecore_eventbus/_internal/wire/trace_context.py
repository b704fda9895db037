"""The record headers that carry a W3C trace context. A record keeps them wherever it goes
on the bus's behalf (its dead letter, even a capped one, and a replay of that dead letter),
whether or not the process that moves it traces, so the trace of an event stays whole
(decision 87)."""

from __future__ import annotations

from collections.abc import Iterable

from ..transports.structs import Header, HeaderList

#: W3C Trace Context (https://www.w3.org/TR/trace-context/) and W3C Baggage.
TRACE_HEADERS = frozenset({"traceparent", "tracestate", "baggage"})


def trace_headers(headers: Iterable[Header]) -> HeaderList:
    """The trace-context headers among ``headers``, in their order."""
    return [(name, value) for name, value in headers if name in TRACE_HEADERS]
