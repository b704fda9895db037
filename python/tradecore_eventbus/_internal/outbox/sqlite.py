"""The outbox on SQLite (aiosqlite), the embedded default.

The caller's connection only inserts rows, inside the caller's transaction. The relay works
on a connection of its own to the same file: it leases rows in a short ``BEGIN IMMEDIATE``
transaction, publishes without holding any lock (so the application never waits for the
broker), then records the outcomes. A lease that expires (the relay died) makes the rows
claimable again. SQLite runs one write transaction at a time, so row ids are in commit order.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from ..extras import require
from .store import OutboxRow, RowFailure, in_key_order, schema


class SqliteClaim:
    def __init__(self, store: SqliteStore, rows: list[OutboxRow]) -> None:
        self._store = store
        self.rows = rows

    async def published(self, rows: Sequence[OutboxRow]) -> None:
        await self._store.write(
            "UPDATE eventbus_outbox SET status = 'published', published_at = ?, last_error = NULL, "
            "claimed_by = NULL, claimed_until = NULL WHERE id = ?",
            [(time.time(), r.id) for r in rows],
        )

    async def failed(self, failures: Sequence[RowFailure], next_attempt_in_s: float) -> None:
        await self._store.write(
            "UPDATE eventbus_outbox SET attempts = attempts + 1, last_error = ?, "
            "next_attempt_at = ?, claimed_by = NULL, claimed_until = NULL WHERE id = ?",
            [(f.error[:2000], time.time() + next_attempt_in_s, f.row.id) for f in failures],
        )

    async def dead(self, failures: Sequence[RowFailure]) -> None:
        await self._store.write(
            "UPDATE eventbus_outbox SET status = 'dead', attempts = attempts + 1, last_error = ?, "
            "claimed_by = NULL, claimed_until = NULL WHERE id = ?",
            [(f.error[:2000], f.row.id) for f in failures],
        )

    async def abort(self) -> None:
        """As if the relay had died: the leases simply expire."""

    async def release(self) -> None:
        """Gives back leases of rows without a recorded outcome."""
        await self._store.write(
            "UPDATE eventbus_outbox SET claimed_by = NULL, claimed_until = NULL "
            "WHERE claimed_by = ? AND status = 'pending'",
            [(self._store.relay_id,)],
        )


class SqliteStore:
    def __init__(self, conn: Any, *, lease_s: float = 120.0) -> None:
        # The relay opens its own connection with aiosqlite: checked when the outbox is made.
        self._aiosqlite = require("aiosqlite", "sqlite", feature="the SQLite outbox")
        self.app_conn = conn
        self.lease_s = lease_s
        self.relay_id = uuid.uuid4().hex
        self._relay_conn: Any = None

    async def _conn(self) -> Any:
        """The relay's own connection to the application's database file."""
        if self._relay_conn is None:
            rows = await self.app_conn.execute_fetchall("PRAGMA database_list")
            path = next((r[2] for r in rows if r[1] == "main"), "")
            if not path:
                raise ValueError(
                    "the SQLite outbox needs a database file (an in-memory database cannot be "
                    "shared with the relay's connection)"
                )
            self._relay_conn = await self._aiosqlite.connect(path, isolation_level=None)
            await self._relay_conn.execute("PRAGMA busy_timeout = 30000")
        return self._relay_conn

    async def write(self, sql: str, params: Sequence[tuple[Any, ...]]) -> None:
        if not params:
            return
        conn = await self._conn()
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await conn.executemany(sql, params)
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")

    async def migrate(self) -> None:
        await self.app_conn.executescript(schema("outbox_sqlite.sql"))
        await self.app_conn.commit()

    async def insert(
        self,
        conn: Any,
        *,
        event_id: str,
        stream_name: str,
        partition_key: str | None,
        event_type: str,
        payload: str,
    ) -> None:
        await conn.execute(
            "INSERT INTO eventbus_outbox "
            "(event_id, stream_name, partition_key, event_type, payload, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (event_id, stream_name, partition_key, event_type, payload, time.time()),
        )

    async def claim(self, limit: int) -> SqliteClaim:
        conn = await self._conn()
        now = time.time()
        await conn.execute("BEGIN IMMEDIATE")
        try:
            records = await conn.execute_fetchall(
                "SELECT id, event_id, stream_name, partition_key, id, event_type, payload, "
                "attempts FROM eventbus_outbox WHERE status = 'pending' AND next_attempt_at <= ? "
                "AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT ?",
                (now, now, limit),
            )
            rows = [
                OutboxRow(
                    id=r[0],
                    event_id=r[1],
                    stream_name=r[2],
                    partition_key=r[3],
                    key_seq=r[4] if r[3] is not None else None,
                    event_type=r[5],
                    payload=r[6],
                    attempts=r[7],
                )
                for r in records
            ]
            pending: dict[str, list[int]] = {}
            for key in {r.partition_key for r in rows if r.partition_key is not None}:
                top = max(r.id for r in rows if r.partition_key == key)
                ids = await conn.execute_fetchall(
                    "SELECT id FROM eventbus_outbox WHERE partition_key = ? "
                    "AND status = 'pending' AND id <= ? ORDER BY id",
                    (key, top),
                )
                pending[key] = [i[0] for i in ids]
            publishable = in_key_order(rows, pending)
            await conn.executemany(
                "UPDATE eventbus_outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                [(self.relay_id, now + self.lease_s, r.id) for r in publishable],
            )
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")
        return SqliteClaim(self, publishable)

    async def stats(self) -> dict[str, Any]:
        conn = await self._conn()
        rows = await conn.execute_fetchall(
            "SELECT sum(status = 'pending'), sum(status = 'dead'), "
            "min(CASE WHEN status = 'pending' THEN created_at END) FROM eventbus_outbox"
        )
        backlog, dead, oldest = rows[0]
        return {
            "backlog": int(backlog or 0),
            "dead": int(dead or 0),
            "oldest_pending_age": None if oldest is None else max(0.0, time.time() - oldest),
        }

    async def cleanup(self, retention_s: float) -> int:
        conn = await self._conn()
        await conn.execute("BEGIN IMMEDIATE")
        cursor = await conn.execute(
            "DELETE FROM eventbus_outbox WHERE status = 'published' AND published_at < ?",
            (time.time() - retention_s,),
        )
        await conn.execute("COMMIT")
        return int(cursor.rowcount)

    async def close(self) -> None:
        if self._relay_conn is not None:
            await self._relay_conn.close()
            self._relay_conn = None
