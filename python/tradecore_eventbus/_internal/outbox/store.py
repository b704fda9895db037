"""What the outbox relay needs from a database, and the ordering rule both stores share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol


@dataclass(frozen=True)
class OutboxRow:
    id: int
    event_id: str
    stream_name: str
    partition_key: str | None
    #: Order among the key's rows (commit order).
    key_seq: int | None
    event_type: str
    payload: str
    attempts: int


@dataclass(frozen=True)
class RowFailure:
    row: OutboxRow
    error: str
    retriable: bool


class OutboxStore(Protocol):
    async def migrate(self) -> None: ...
    async def insert(
        self,
        conn: Any,
        *,
        event_id: str,
        stream_name: str,
        partition_key: str | None,
        event_type: str,
        payload: str,
    ) -> None: ...
    async def claim(self, limit: int) -> ClaimedBatch: ...
    async def stats(self) -> dict[str, Any]: ...
    async def cleanup(self, retention_s: float) -> int: ...
    async def close(self) -> None: ...


class ClaimedBatch(Protocol):
    """Rows a relay holds until it reports every outcome (and then releases them)."""

    rows: list[OutboxRow]

    async def abort(self) -> None: ...

    async def published(self, rows: Sequence[OutboxRow]) -> None: ...
    async def failed(self, failures: Sequence[RowFailure], next_attempt_in_s: float) -> None: ...
    async def dead(self, failures: Sequence[RowFailure]) -> None: ...
    async def release(self) -> None: ...


def in_key_order(rows: Sequence[OutboxRow], pending: dict[str, list[int]]) -> list[OutboxRow]:
    """The rows a relay may publish now, in id order.

    Rows without a key are all free. For a key, ``pending`` lists the positions of all its
    pending rows (up to the highest one in ``rows``), lowest first; only the run of ``rows``
    that matches the start of that list may go. A key whose first pending row is not in
    ``rows`` (another relay holds it, or it waits for its backoff) is left alone, so a key's
    events can never overtake each other.
    """
    by_key: dict[str, list[OutboxRow]] = {}
    out: list[OutboxRow] = []
    for row in rows:
        if row.partition_key is None:
            out.append(row)
        else:
            by_key.setdefault(row.partition_key, []).append(row)
    for key, key_rows in by_key.items():
        key_rows.sort(key=lambda r: r.key_seq if r.key_seq is not None else r.id)
        for row, position in zip(key_rows, pending.get(key, []), strict=False):
            if row.key_seq != position:
                break
            out.append(row)
    out.sort(key=lambda r: r.id)
    return out


def schema(name: str) -> str:
    return resources.files("tradecore_eventbus._internal.outbox").joinpath("sql", name).read_text()
