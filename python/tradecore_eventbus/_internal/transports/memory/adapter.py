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

import json
import weakref
from collections.abc import Sequence
from typing import Any

from ....exceptions import (
    ClosedError,
)
from ...config.settings import EventBusConfig, TransportConfig
from ...wire.envelope import event_id_of
from ...wire.topics import topic_for
from ..protocol import (
    ConsumerLike,
    ConsumerSpec,
    ProducerLike,
    TopicSpec,
    TransportAdapter,
)
from .broker import MemoryBroker
from .consumer import MemoryConsumer
from .limits import (
    client_message_max_bytes,
)
from .producer import MemoryProducer
from .records import Bytesish, HeadersArg, MemoryRecord

__all__ = [
    "Bytesish",
    "HeadersArg",
    "MemoryConsumer",
    "MemoryProducer",
    "MemoryRecord",
    "MemoryTransportAdapter",
]


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

    async def close(self, timeout: float | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        if self._producer is not None:
            await self._producer.close(
                self.event_bus_config.close_timeout_seconds if timeout is None else timeout
            )
