"""The memory transport's group consumer, with ``_core.Consumer``'s behaviour."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from ...._core import OffsetTracker
from ....exceptions import (
    ClosedError,
    FencedInstanceError,
    InvalidArgumentError,
    TransportTimeoutError,
)
from ..protocol import (
    ConsumerSpec,
)
from ..structs import TopicPartition
from .broker import MemoryBroker
from .records import MemoryRecord, checked_seconds


class MemoryConsumer:
    """A group consumer on a :class:`MemoryBroker`, with ``_core.Consumer``'s behaviour.

    Fetch positions are this member's; committed offsets are the group's (in the broker).
    Processed offsets are stored on ``mark_processed`` and committed every
    ``commit_batch_size`` marks or ``commit_interval_ms``, on ``commit()``, when a partition
    is revoked and on ``close()``.
    """

    def __init__(
        self,
        broker: MemoryBroker,
        spec: ConsumerSpec,
        *,
        commit_batch_size: int,
        commit_interval_ms: int,
        auto_create_partitions: int | None = None,
        session_timeout_ms: int = 45_000,
    ) -> None:
        if spec.auto_offset_reset not in ("earliest", "latest"):
            raise InvalidArgumentError(
                f"auto_offset_reset must be 'earliest' or 'latest', not {spec.auto_offset_reset!r}"
            )
        self._broker = broker
        self._spec = spec
        self._commit_batch_size = max(1, commit_batch_size)
        self._commit_interval_s = commit_interval_ms / 1000.0
        self._auto_create_partitions = auto_create_partitions
        self._session_timeout_s = session_timeout_ms / 1000.0
        self._tracker = OffsetTracker()
        #: Next offset to hand out per assigned partition, in assignment order.
        self._positions: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        #: Processed offsets waiting for the next commit (librdkafka's stored offsets).
        self._stored: dict[TopicPartition, int] = {}
        self._last_commit = time.monotonic()
        self._subscribed = False
        self._assigned = False
        self._closed = False
        #: Set when another member took this one's group.instance.id: fatal, like on Kafka.
        self._fenced: FencedInstanceError | None = None
        #: Simulated process death (``MemoryTransportAdapter.simulate_crash``).
        self._crashed = False
        #: Rotates the partition ``take`` starts with, so a busy one cannot starve the others.
        self._next_start = 0
        self._wake = asyncio.Event()
        self._stats = {"received": 0, "processed": 0, "commits": 0, "rebalances": 0}

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def assigned(self) -> bool:
        return self._assigned

    def _check_open(self) -> None:
        if self._fenced is not None:
            raise FencedInstanceError(
                str(self._fenced),
                code=self._fenced.code,
                code_name=self._fenced.code_name,
                fatal=True,
            )
        if self._closed:
            raise ClosedError("the consumer is closed")

    # --- group membership (GroupMember callbacks) -------------------------------------------

    def subscribe(self, topics: Sequence[str]) -> None:
        """Joins the group for ``topics`` (created if missing); the rebalance is immediate."""
        self._check_open()
        if not topics:
            raise InvalidArgumentError("subscribe needs at least one topic")
        for topic in topics:
            if not self._broker.has_topic(topic):
                self._broker.create_topic(topic, self._auto_create_partitions)
        self._subscribed = True
        self._broker.join_group(
            self._spec.group_id, self, list(topics), instance_id=self._spec.group_instance_id
        )

    def fenced(self, error: FencedInstanceError) -> None:
        # The partitions are the other member's now: nothing more is handed out or committed.
        self._fenced = error
        self._positions.clear()
        self._paused.clear()
        self._stored.clear()
        self._wake.set()

    def crash(self) -> None:
        """Simulates the death of this consumer's process: no commit, no leave. Its
        partitions stay with it until its session times out (or, static, it rejoins)."""
        if self._closed:
            return
        self._crashed = True
        self._broker.depart(self._spec.group_id, self, self._session_timeout_s)
        self._closed = True
        self._positions.clear()
        self._stored.clear()
        self._wake.set()

    def partitions_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        # Commit what was processed on the partitions we lose, before the new owner reads the
        # committed offsets. Records in hand but not processed are delivered to it again.
        offsets: dict[TopicPartition, int] = {}
        for tp in partitions:
            committable = self._tracker.revoke(*tp)
            if committable is not None:
                offsets[tp] = committable
            self._positions.pop(tp, None)
            self._paused.discard(tp)
            self._stored.pop(tp, None)
        if self._spec.enable_commit and offsets:
            self._broker.commit(self._spec.group_id, offsets)
            self._stats["commits"] += 1
        self._stats["rebalances"] += 1
        self._wake.set()

    def partitions_assigned(self, partitions: Sequence[TopicPartition]) -> None:
        # The start offset is fixed now: the group's commit, else the reset policy resolved at
        # this moment, so with "latest" a record appended after we are live is never skipped.
        for topic, partition in partitions:
            start = (
                self._broker.committed(self._spec.group_id, (topic, partition))
                if self._spec.enable_commit
                else None
            )
            if start is None:
                latest = self._spec.auto_offset_reset == "latest"
                start = self._broker.end_offset(topic, partition) if latest else 0
            self._positions[(topic, partition)] = start
            self._tracker.assign(topic, partition)
        self._assigned = True
        self._stats["rebalances"] += 1
        self._wake.set()

    def records_appended(self, topic: str, partition: int) -> None:
        self._wake.set()

    async def wait_assigned(self, timeout: float) -> None:
        """Returns once the group gave this consumer its partitions (possibly none); raises
        ``TransportTimeoutError`` after ``timeout`` seconds (e.g. never subscribed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + checked_seconds(timeout, "timeout")
        while True:
            self._check_open()
            if self._assigned:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TransportTimeoutError(
                    f"no partition assignment within {timeout}s "
                    f"({'not subscribed' if not self._subscribed else 'subscribed'})"
                )
            await self._sleep_until_woken(remaining)

    def assignment(self) -> list[tuple[str, int]]:
        self._check_open()
        return sorted(self._positions)

    # --- records ----------------------------------------------------------------------------

    def _fetchable(self) -> list[TopicPartition]:
        return [tp for tp in self._positions if tp not in self._paused]

    def _has_records(self) -> bool:
        return any(self._positions[tp] < self._broker.readable_end(*tp) for tp in self._fetchable())

    def take(
        self, max_records: int | None = None, *, decode_events: bool = False
    ) -> list[MemoryRecord]:
        """Up to ``max_records`` (default and cap: ``max_poll_records``) records that are
        already here, from assigned partitions that are not paused. Never waits.
        ``decode_events`` is accepted for parity with the Kafka consumer; records here leave
        ``event`` unset and the subscription decodes the value."""
        if self._crashed:
            return []  # a dead process fetches nothing
        self._check_open()
        self._commit_if_due()
        limit = self._spec.max_poll_records if max_records is None else max_records
        limit = min(max(limit, 1), self._spec.max_poll_records)
        fetchable = self._fetchable()
        if not fetchable:
            return []
        start = self._next_start % len(fetchable)
        self._next_start = start + 1
        out: list[MemoryRecord] = []
        for topic, partition in fetchable[start:] + fetchable[:start]:
            if len(out) >= limit:
                break
            position = self._positions[(topic, partition)]
            stored = self._broker.read(topic, partition, position, limit - len(out))
            if not stored:
                continue
            self._positions[(topic, partition)] = stored[-1].offset + 1
            for record in stored:
                if self._spec.enable_commit:
                    self._tracker.delivered(topic, partition, record.offset)
                out.append(MemoryRecord.from_stored(topic, record))
        self._stats["received"] += len(out)
        return out

    async def wait(self, timeout: float) -> bool:
        """True when records or an assignment change may be waiting (call ``take``), False
        after ``timeout`` seconds or when closed. Cancel-safe: it hands out nothing."""
        checked_seconds(timeout, "timeout")
        if self._fenced is not None:
            return True  # `take` reports it
        if self._crashed:
            await asyncio.sleep(timeout)
            return False
        if self._closed:
            return False
        if self._has_records():
            return True
        woken = await self._sleep_until_woken(timeout)
        return woken and not self._closed

    async def _sleep_until_woken(self, timeout: float) -> bool:
        # Single-threaded: nothing can set the event between the caller's check and clear().
        self._wake.clear()
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            return False
        return True

    # --- offsets ----------------------------------------------------------------------------

    def mark_processed(self, records: Sequence[Any]) -> int:
        """Marks records processed; their offsets become committable once every earlier
        record of their partition is processed too. Returns how many marks counted (0 for a
        consumer that does not commit)."""
        if self._crashed:
            return 0  # a dead process commits nothing
        self._check_open()
        if not self._spec.enable_commit:
            return 0
        known = self._tracker.processed([(r.topic, r.partition, r.offset) for r in records])
        for topic, partition, next_offset in self._tracker.take_dirty():
            self._stored[(topic, partition)] = next_offset
        self._stats["processed"] += known
        self._commit_if_due()
        return known

    def _commit_if_due(self) -> None:
        """librdkafka's auto-commit of stored offsets: every ``commit_batch_size`` marks or
        every ``commit_interval_ms``."""
        if not self._spec.enable_commit:
            return
        batch_full = self._tracker.marked_since_commit() >= self._commit_batch_size
        if batch_full or time.monotonic() - self._last_commit >= self._commit_interval_s:
            self._commit(dict(self._stored))

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        self._last_commit = time.monotonic()
        self._tracker.reset_marked_since_commit()
        self._stored.clear()
        if offsets:
            self._broker.commit(self._spec.group_id, offsets)
            self._stats["commits"] += 1

    async def commit(self) -> None:
        """Commits every processed offset now."""
        if not self._spec.enable_commit:
            return
        self._check_open()
        self._commit({(t, p): o for t, p, o in self._tracker.committable()})

    # --- flow control and lifecycle ---------------------------------------------------------

    def _selected(self, partitions: Sequence[tuple[str, int]] | None) -> list[TopicPartition]:
        self._check_open()
        if partitions is None:
            return list(self._positions)
        # As after librdkafka's pause of a partition we do not own: nothing to pause.
        return [(t, p) for t, p in partitions if (t, p) in self._positions]

    def pause(self, partitions: Sequence[tuple[str, int]] | None = None) -> None:
        """Stops handing out records of the given partitions (all assigned ones by default)."""
        self._paused.update(self._selected(partitions))

    def resume(self, partitions: Sequence[tuple[str, int]] | None = None) -> None:
        self._paused.difference_update(self._selected(partitions))
        self._wake.set()

    async def close(self) -> None:
        """Commits what was processed, leaves the group (the others rebalance) and wakes
        waiters. Idempotent. A static member commits but does not leave: its partitions wait
        for its instance id to come back until its session times out, as on Kafka. A fenced
        member commits nothing (its partitions are another member's)."""
        if self._closed:
            return
        if self._fenced is None and self._spec.group_instance_id is not None:
            if self._spec.enable_commit:
                self._commit({(t, p): o for t, p, o in self._tracker.committable()})
            self._broker.depart(self._spec.group_id, self, self._session_timeout_s)
        elif self._fenced is None:
            # Leaving revokes every partition, and the revoke commits the processed offsets.
            self._broker.leave_group(self._spec.group_id, self)
        self._closed = True
        self._stored.clear()
        self._wake.set()

    def lag(self) -> list[tuple[str, int, int]]:
        """Per assigned partition: records after this member's fetch position."""
        if self._closed or self._crashed:
            return []
        return [
            (topic, partition, max(0, self._broker.end_offset(topic, partition) - position))
            for (topic, partition), position in sorted(self._positions.items())
        ]

    def stats(self) -> dict[str, Any]:
        return {
            **self._stats,
            "commit_failures": 0,
            "assigned": len(self._positions),
            "paused": len(self._paused),
            "closed": self._closed,
        }
