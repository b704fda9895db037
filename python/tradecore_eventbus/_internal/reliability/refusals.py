"""Which failures are the broker refusing a record for good: the rule that sends a record to
the DLQ (or aside into the spool's ``dead/``) instead of retrying or spooling it."""

from __future__ import annotations

from ...exceptions import AuthenticationError, ClosedError, EventBusError


def refused_for_good(error: object) -> bool:
    """The broker refused the record itself and would refuse it again (size, authorization,
    an invalid record, ...): retrying cannot help, and it must not hold up later records.
    Errors that may have been written (a lost acknowledgement) never count, nor do refused
    credentials: those are the client's, and the record goes once they are fixed."""
    return (
        isinstance(error, EventBusError)
        and not error.retriable
        and not error.possibly_persisted
        and not isinstance(error, (ClosedError, AuthenticationError))
    )
