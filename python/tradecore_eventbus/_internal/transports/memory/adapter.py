"""``MemoryTransportAdapter``: the EventBus transport in process, with Kafka's semantics.

The producer appends to a :class:`~.memory_broker.MemoryBroker`; the consumer mirrors
``_core.Consumer``: it joins a group and gets partitions by rebalance, starts at the group's
committed offset (else ``earliest``/``latest`` resolved when the partition is assigned),
hands records out only from ``take`` (so a cancelled ``wait`` loses nothing) and commits
at-least-once with the Rust ``OffsetTracker`` itself, by exactly the rule the Kafka consumer
uses. An application's tests therefore behave on it as they would on Kafka.

Everything runs on the event loop's thread; the adapter is not thread-safe.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...._core import OffsetTracker
from ....exceptions import (
    BatchDeliveryError,
    ClosedError,
    EventBusError,
    FencedInstanceError,
    InvalidArgumentError,
    KafkaError,
    TransportTimeoutError,
)
from ...config.settings import EventBusConfig, TransportConfig
from ...wire.envelope import event_id_of
from ...wire.topics import topic_for
from ..protocol import (
    ConsumerLike,
    ConsumerSpec,
    OutgoingRecord,
    ProducerLike,
    TopicSpec,
    TransportAdapter,
)
from ..structs import Header, TopicPartition
from .broker import MemoryBroker, StoredRecord
from .limits import (
    BATCH_OVERHEAD,
    BROKER_MESSAGE_MAX_BYTES,
    CLIENT_MESSAGE_MAX_BYTES,
    client_message_max_bytes,
    record_wire_size,
    size_error,
)

Bytesish = bytes | str | None
HeadersArg = Sequence[tuple[str, Bytesish]] | Mapping[str, Bytesish]


@dataclass(frozen=True)
class MemoryRecord:
    """One consumed record (the in-memory ``_core.Record``)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None
    # Not hashed: a list is not hashable, and (topic, partition, offset) identifies a record.
    headers: list[Header] = field(default_factory=list, hash=False)
    # The Kafka consumer decodes events in Rust per batch; here the subscription decodes.
    event: dict[str, Any] | None = field(default=None, hash=False, compare=False)

    @classmethod
    def from_stored(cls, topic: str, stored: StoredRecord) -> MemoryRecord:
        # A fresh list per record: a caller editing it cannot change the broker's log.
        return cls(
            topic,
            stored.partition,
            stored.offset,
            stored.key,
            stored.value,
            stored.timestamp,
            list(stored.headers),
        )

    def header(self, name: str) -> bytes | None:
        """The value of the first header called ``name``, or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


def _as_bytes(value: Bytesish, what: str) -> bytes | None:
    """bytes, str (sent as UTF-8) or None, as the Rust producer accepts them."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"{what} must be bytes, str or None, not {type(value).__name__}")


def _as_headers(headers: HeadersArg | None) -> list[Header]:
    if headers is None:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [(name, _as_bytes(value, f"header {name!r}")) for name, value in pairs]


def _seconds(value: float, what: str) -> float:
    if not value >= 0 or value == float("inf"):
        raise InvalidArgumentError(f"{what} must be a non-negative number of seconds, not {value}")
    return value


class MemoryProducer:
    """Appends to the broker. A record is "acknowledged" as soon as it is in the log.

    Sending to a topic that does not exist creates it with ``default_partitions``
    partitions, as Kafka's auto-create does. Records larger than ``message_max_bytes`` (the
    producer's limit) or their topic's ``max.message.bytes`` are refused as the Kafka
    transport refuses them (see ``limits``).
    """

    def __init__(
        self,
        broker: MemoryBroker,
        *,
        default_partitions: int | None = None,
        message_max_bytes: int = CLIENT_MESSAGE_MAX_BYTES,
    ) -> None:
        self._broker = broker
        self._default_partitions = default_partitions
        self._message_max_bytes = message_max_bytes
        self._delivered = 0
        self._failed = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _append(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header],
        partition: int | None,
    ) -> tuple[int, int]:
        if self._closed:
            raise ClosedError("the producer is closed")
        if not self._broker.has_topic(topic):
            self._broker.create_topic(topic, self._default_partitions)
        result = self._broker.append(topic, partition, key, value, headers)
        self._delivered += 1
        return result

    def _broker_limit(self, topic: str) -> int:
        """The topic's ``max.message.bytes`` (created first if missing, as on a send)."""
        if self._closed:
            raise ClosedError("the producer is closed")
        if not self._broker.has_topic(topic):
            self._broker.create_topic(topic, self._default_partitions)
        configured = self._broker.topic_configs(topic).get("max.message.bytes")
        return int(configured) if configured is not None else BROKER_MESSAGE_MAX_BYTES

    def _refusal(
        self, key: bytes | None, value: bytes | None, headers: Sequence[Header], broker_limit: int
    ) -> KafkaError | None:
        """librdkafka's size check before a record is queued, then the broker's check of a
        batch (here: of one record in a batch of its own; the Kafka broker sees the
        compressed batch, so this is the stricter of the two)."""
        size = record_wire_size(key, value, headers)
        if size > self._message_max_bytes:
            return size_error(size, self._message_max_bytes, by_broker=False)
        if size + BATCH_OVERHEAD > broker_limit:
            return size_error(size + BATCH_OVERHEAD, broker_limit, by_broker=True)
        return None

    async def send(
        self,
        topic: str,
        value: Bytesish,
        key: Bytesish = None,
        headers: HeadersArg | None = None,
        partition: int | None = None,
    ) -> tuple[int, int]:
        """Sends one record; returns its (partition, offset)."""
        key_bytes, value_bytes = _as_bytes(key, "key"), _as_bytes(value, "value")
        header_list = _as_headers(headers)
        refused = self._refusal(key_bytes, value_bytes, header_list, self._broker_limit(topic))
        if refused is not None:
            self._failed += 1
            raise refused
        return self._append(topic, key_bytes, value_bytes, header_list, partition)

    async def send_batch(
        self, topic: str, records: Sequence[OutgoingRecord]
    ) -> list[tuple[int, int]]:
        """Sends (key, value, headers) records; returns their (partition, offset) in order.
        Like the Rust producer, a partly failed batch raises :class:`BatchDeliveryError`
        with one result per record (faults are injected through the broker)."""
        results: list[tuple[int, int] | EventBusError] = []
        broker_limit = self._broker_limit(topic)
        for raw_key, raw_value, raw_headers in records:
            # Like the Rust producer: bytes or str (as UTF-8) or None, else TypeError.
            key, value = _as_bytes(raw_key, "key"), _as_bytes(raw_value, "value")
            headers = _as_headers(raw_headers)
            refused = self._refusal(key, value, headers, broker_limit)
            failure = refused if refused is not None else self._broker.check_append()
            if failure is None:
                delivered = self._append(topic, key, value, headers, None)
                if self._broker.take_lost_ack():
                    results.append(
                        TransportTimeoutError(
                            "produce failed: Local: Message timed out (MessageTimedOut): the "
                            "acknowledgement was lost",
                            code=-192,
                            code_name="MessageTimedOut",
                            possibly_persisted=True,
                        )
                    )
                else:
                    results.append(delivered)
            elif isinstance(failure, EventBusError):
                results.append(failure)
            else:
                raise failure
        failed = [r for r in results if isinstance(r, EventBusError)]
        self._failed += len(failed)
        if failed:
            first = failed[0]
            raise BatchDeliveryError(
                f"{len(failed)} of {len(results)} records were not delivered; first error: {first}",
                results=list(results),
                code=first.code,
                code_name=first.code_name,
                retriable=all(f.retriable for f in failed),
            )
        return [r for r in results if not isinstance(r, EventBusError)]

    async def flush(self, timeout: float = 30.0) -> None:
        _seconds(timeout, "timeout")  # nothing is ever pending

    async def close(self, timeout: float = 30.0) -> None:
        _seconds(timeout, "timeout")
        self._closed = True

    def in_flight(self) -> int:
        return 0

    def stats(self) -> dict[str, Any]:
        return {
            "delivered": self._delivered,
            "failed": self._failed,
            "in_flight": 0,
            "closed": self._closed,
        }


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
        deadline = loop.time() + _seconds(timeout, "timeout")
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
        return any(self._positions[tp] < self._broker.end_offset(*tp) for tp in self._fetchable())

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
        _seconds(timeout, "timeout")
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


class MemoryTransportAdapter(TransportAdapter):
    """The in-process transport. Each adapter has its own :class:`MemoryBroker` unless one
    is passed: adapters sharing a broker behave like processes sharing a Kafka cluster.

    The configs default to ``EventBusConfig()`` / ``TransportConfig()`` (not the
    environment), so tests do not depend on it.
    """

    name = "memory"

    def __init__(
        self,
        event_bus_config: EventBusConfig | None = None,
        transport_config: TransportConfig | None = None,
        *,
        broker: MemoryBroker | None = None,
    ) -> None:
        self.event_bus_config = (
            event_bus_config if event_bus_config is not None else EventBusConfig()
        )
        self.transport_config = (
            transport_config if transport_config is not None else TransportConfig()
        )
        partitions = self.transport_config.topic_partitions
        self.broker = broker if broker is not None else MemoryBroker(default_partitions=partitions)
        self._producer: MemoryProducer | None = None
        #: Weakly: the groups hold the consumers that still matter.
        self._consumers: weakref.WeakSet[MemoryConsumer] = weakref.WeakSet()
        self._closed = False

    def simulate_crash(self) -> None:
        """For tests: this adapter's process dies. Its consumers stop without committing or
        leaving their groups, so their partitions stay with them until their sessions time
        out (``KAFKA_CONSUMER_SESSION_TIMEOUT_MS``), as with a SIGKILLed process on Kafka.
        Call from the event loop; build a new adapter (and bus) for the replacement."""
        for consumer in list(self._consumers):
            consumer.crash()
        self._consumers.clear()

    async def start(self) -> None:
        if self._closed:
            raise ClosedError("the transport adapter is closed")
        if self._producer is None:
            self._producer = MemoryProducer(
                self.broker,
                default_partitions=self.transport_config.topic_partitions,
                message_max_bytes=client_message_max_bytes(self.transport_config.librdkafka_config),
            )

    def producer(self) -> ProducerLike:
        # Like the Kafka adapter: the bus starts the adapter before producing.
        if self._closed:
            raise ClosedError("the transport adapter is closed")
        if self._producer is None:
            raise ClosedError("the transport adapter was not started")
        return self._producer

    def new_consumer(self, spec: ConsumerSpec) -> ConsumerLike:
        tc = self.transport_config
        consumer = MemoryConsumer(
            self.broker,
            spec,
            commit_batch_size=tc.commit_batch_size,
            commit_interval_ms=tc.commit_interval_ms,
            auto_create_partitions=tc.topic_partitions,
            session_timeout_ms=tc.consumer_session_timeout_ms,
        )
        self._consumers.add(consumer)
        return consumer

    async def ensure_topics(
        self, specs: Sequence[TopicSpec], timeout: float | None = None
    ) -> dict[str, str]:
        return {
            s.name: "created"
            if self.broker.create_topic(s.name, s.partitions, s.configs)
            else "exists"
            for s in specs
        }

    async def list_topics(self) -> dict[str, int]:
        return self.broker.topics()

    async def find_event_ids(
        self, topic: str, event_ids: set[str], since_ms: int, timeout: float = 30.0
    ) -> set[str]:
        if not self.broker.has_topic(topic):
            return set()
        found: set[str] = set()
        for record in self.broker.published(topic):
            event_id = event_id_of(record.headers, record.value)
            if event_id is not None and event_id in event_ids:
                found.add(event_id)
        return found

    async def describe_topic(self, topic: str) -> dict[str, str]:
        return self.broker.topic_configs(topic)

    async def ping(self, timeout: float) -> bool:
        return not self._closed and self.broker.available

    def get_published_messages(self, channel: str) -> list[dict[str, Any]]:
        """The JSON-decoded value of every record published to ``channel``, in publish order
        (across partitions); [] for a channel nothing was published to. Records without a
        value (tombstones) are left out; a value that is not JSON raises ``ValueError``."""
        topic = topic_for(channel, self.transport_config.topic_prefix)
        return [json.loads(r.value) for r in self.broker.published(topic) if r.value is not None]

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._producer.stats() if self._producer is not None else {}
        stats["producer_started"] = self._producer is not None and not self._closed
        return stats

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._producer is not None:
            await self._producer.close()
