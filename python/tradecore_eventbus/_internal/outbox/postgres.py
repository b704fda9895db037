"""The outbox on PostgreSQL (asyncpg).

A relay claims rows inside one transaction with ``FOR UPDATE SKIP LOCKED`` and keeps it open
while it publishes, then records the outcomes and commits: if it dies in between, the
transaction rolls back and the rows are pending again. Each key it publishes is also held
with a transaction-level advisory lock, so two relays never publish the same key at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...exceptions import InvalidArgumentError
from ..extras import require
from .store import OutboxRow, RowFailure, in_key_order, schema

NOTIFY_CHANNEL = "eventbus_outbox"
#: Namespaces pg_try_advisory_xact_lock(int, int) so our locks do not collide with the app's.
LOCK_NAMESPACE = 0x0E7B


class PgClaim:
    def __init__(self, conn: Any, tx: Any, release_conn: Any, rows: list[OutboxRow]) -> None:
        self._conn = conn
        self._tx = tx
        self._release_conn = release_conn
        self.rows = rows
        self._done = False

    async def published(self, rows: Sequence[OutboxRow]) -> None:
        if rows:
            await self._conn.execute(
                "UPDATE eventbus_outbox SET status = 'published', published_at = now(), "
                "last_error = NULL WHERE id = ANY($1::bigint[])",
                [r.id for r in rows],
            )

    async def failed(self, failures: Sequence[RowFailure], next_attempt_in_s: float) -> None:
        for f in failures:
            await self._conn.execute(
                "UPDATE eventbus_outbox SET attempts = attempts + 1, last_error = $2, "
                "next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
                f.row.id,
                f.error[:2000],
                next_attempt_in_s,
            )

    async def dead(self, failures: Sequence[RowFailure]) -> None:
        for f in failures:
            await self._conn.execute(
                "UPDATE eventbus_outbox SET status = 'dead', attempts = attempts + 1, "
                "last_error = $2 WHERE id = $1",
                f.row.id,
                f.error[:2000],
            )

    async def abort(self) -> None:
        """Rolls back everything, as if the relay had died."""
        if self._done:
            return
        self._done = True
        try:
            await self._tx.rollback()
        finally:
            await self._release_conn(self._conn)

    async def release(self) -> None:
        """Commits what was recorded and frees the rows and key locks."""
        if self._done:
            return
        self._done = True
        try:
            await self._tx.commit()
        finally:
            await self._release_conn(self._conn)


class PostgresStore:
    def __init__(self, pool: Any) -> None:
        # The pool is the caller's, but the SQL and the LISTEN/NOTIFY wake-up are asyncpg's:
        # without it the error names the extra when the outbox is made, not in the relay.
        require("asyncpg", "postgres", feature="the PostgreSQL outbox")
        self.pool = pool

    async def migrate(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            # Two processes migrating at once must not race on CREATE ... IF NOT EXISTS.
            await conn.execute("SELECT pg_advisory_xact_lock($1, 0)", LOCK_NAMESPACE)
            await conn.execute(schema("outbox_postgres.sql"))

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
        if not conn.is_in_transaction():
            raise InvalidArgumentError(
                "queue_event needs the caller's transaction: call it inside "
                "`async with conn.transaction():` so the event is published if and only if "
                "the transaction commits"
            )
        seq = None
        if partition_key is not None:
            seq = await conn.fetchval(
                "INSERT INTO eventbus_outbox_keys AS k (partition_key, seq) VALUES ($1, 1) "
                "ON CONFLICT (partition_key) DO UPDATE SET seq = k.seq + 1 RETURNING seq",
                partition_key,
            )
        await conn.execute(
            "INSERT INTO eventbus_outbox "
            "(event_id, stream_name, partition_key, key_seq, event_type, payload) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            event_id,
            stream_name,
            partition_key,
            seq,
            event_type,
            payload,
        )
        # Delivered to LISTENers when (and only if) the caller's transaction commits.
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, stream_name)

    async def claim(self, limit: int) -> PgClaim:
        conn = await self.pool.acquire()
        tx = conn.transaction()
        try:
            await tx.start()
            records = await conn.fetch(
                "SELECT id, event_id, stream_name, partition_key, key_seq, event_type, payload, "
                "attempts "
                "FROM eventbus_outbox WHERE status = 'pending' AND next_attempt_at <= now() "
                "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                limit,
            )
            rows = [OutboxRow(**dict(r)) for r in records]
            max_seq: dict[str, int] = {}
            for r in rows:
                if r.partition_key is not None and r.key_seq is not None:
                    max_seq[r.partition_key] = max(max_seq.get(r.partition_key, 0), r.key_seq)
            owned: list[str] = []
            for key in sorted(max_seq):
                if await conn.fetchval(
                    "SELECT pg_try_advisory_xact_lock($1, hashtext($2))", LOCK_NAMESPACE, key
                ):
                    owned.append(key)
            pending: dict[str, list[int]] = {k: [] for k in owned}
            if owned:
                for r in await conn.fetch(
                    "SELECT o.partition_key, o.key_seq FROM eventbus_outbox o "
                    "JOIN unnest($1::text[], $2::bigint[]) AS m(k, s) ON o.partition_key = m.k "
                    "WHERE o.status = 'pending' AND o.key_seq <= m.s "
                    "ORDER BY o.partition_key, o.key_seq",
                    owned,
                    [max_seq[k] for k in owned],
                ):
                    pending[r["partition_key"]].append(r["key_seq"])
            publishable = in_key_order(
                [r for r in rows if r.partition_key is None or r.partition_key in pending], pending
            )
        except BaseException:
            await tx.rollback()
            await self.pool.release(conn)
            raise
        return PgClaim(conn, tx, self.pool.release, publishable)

    async def stats(self) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE status = 'pending') AS backlog, "
                "count(*) FILTER (WHERE status = 'dead') AS dead, "
                "extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending')) "
                "AS oldest_pending_age FROM eventbus_outbox"
            )
        age = row["oldest_pending_age"]
        return {
            "backlog": int(row["backlog"]),
            "dead": int(row["dead"]),
            "oldest_pending_age": None if age is None else float(age),
        }

    async def cleanup(self, retention_s: float) -> int:
        async with self.pool.acquire() as conn:
            result: str = await conn.execute(
                "DELETE FROM eventbus_outbox WHERE status = 'published' "
                "AND published_at < now() - make_interval(secs => $1)",
                retention_s,
            )
        return int(result.split()[-1])

    async def close(self) -> None:
        return None
