"""The interface between the EventBus and a transport.

An adapter gives the bus Kafka's primitives and nothing more: a producer that sends batches
of records to a topic and resolves when the broker acknowledged them, group consumers with
offsets and commits, and topic administration. The EventBus owns everything above that
(enrichment, validation, the consumer loop, ordering, retry, DLQ), so both adapters
(``RedpandaTransportAdapter`` on the Rust core, ``MemoryTransportAdapter`` in process)
behave the same by construction.

The producer/consumer shapes are those of ``tradecore_eventbus._core.Producer`` and
``Consumer``; the in-memory adapter implements the same protocols.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tradecore_eventbus import _core

from ..wire.topics import topic_for, topic_specs
from .structs import ConsumerSpec, HeaderList, Mode, OutgoingRecord, TopicSpec

if TYPE_CHECKING:
    from ..config.settings import EventBusConfig, TransportConfig

__all__ = [
    "ConsumerLike",
    "ConsumerSpec",
    "HeaderList",
    "Mode",
    "OutgoingRecord",
    "ProducerLike",
    "RecordLike",
    "TopicSpec",
    "TransportAdapter",
]


class RecordLike(Protocol):
    """One consumed record (``_core.Record`` or the in-memory equivalent)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> int | None: ...
    @property
    def headers(self) -> list[tuple[str, bytes | None]]: ...
    @property
    def event(self) -> dict[str, Any] | None:
        """The value already decoded as an event, or None (then decode ``value``)."""

    def header(self, name: str) -> bytes | None: ...


class ProducerLike(Protocol):
    """What a transport's producer provides. ``send_batch`` resolves to (partition, offset)
    per record, in order, once the broker acknowledged all of them; when any failed it
    raises ``BatchDeliveryError`` whose ``results`` hold, per record, the delivery or the
    error. The error contract decides DLQ versus spool (``publishing/pipeline.py``): set
    ``retriable=True`` on outages (retried, then spooled if the broker stays unreachable:
    ``BrokerUnavailableError``, ``TransportTimeoutError``, ``QueueFullError``), leave it
    False on refusals (dead-lettered), and set ``possibly_persisted=True`` on a delivery
    that may have been written (never resent blindly; looked up first). ``immediate``: the
    records are a complete batch, sent without waiting for the client's linger time
    (a transport without one ignores it)."""

    def send_batch(
        self, topic: str, records: Sequence[OutgoingRecord], *, immediate: bool = False
    ) -> Awaitable[list[tuple[int, int]]]: ...
    def flush(self, timeout: float = 30.0) -> Awaitable[None]: ...
    def close(self, timeout: float = 30.0) -> Awaitable[None]: ...
    def in_flight(self) -> int: ...
    def stats(self) -> Mapping[str, Any]: ...


@runtime_checkable
class EncodedSender(Protocol):
    """The fast path a producer may offer: sending a batch the Rust encoder made
    (``_core.EncodedBatch``) without turning it into Python records first. A transport
    declares it by implementing ``send_encoded`` (checked by type, ``isinstance``);
    without it, batches go through ``send_batch``."""

    def send_encoded(
        self,
        topic: str,
        batch: _core.EncodedBatch,
        indices: Sequence[int] | None = None,
        *,
        immediate: bool = False,
    ) -> Awaitable[Sequence[tuple[int, int]]]: ...


class ConsumerLike(Protocol):
    def subscribe(self, topics: Sequence[str]) -> None: ...
    def wait_assigned(self, timeout: float) -> Awaitable[None]: ...
    def take(
        self, max_records: int | None = None, *, decode_events: bool = False
    ) -> Sequence[RecordLike]: ...
    def wait(self, timeout: float) -> Awaitable[bool]: ...
    def mark_processed(self, records: Sequence[Any]) -> int: ...
    def commit(self) -> Awaitable[None]: ...
    def pause(self, partitions: Sequence[tuple[str, int]] | None = None) -> None: ...
    def resume(self, partitions: Sequence[tuple[str, int]] | None = None) -> None: ...
    def assignment(self) -> list[tuple[str, int]]: ...
    def close(self) -> Awaitable[None]: ...
    @property
    def closed(self) -> bool: ...
    @property
    def assigned(self) -> bool:
        """Whether the group has assigned partitions (possibly none) since ``subscribe``."""

    def lag(self) -> list[tuple[str, int, int]]:
        """(topic, partition, records not yet fetched) per assigned partition whose end
        offset is known, from what the client already knows (no request to the broker)."""
        ...

    def stats(self) -> Mapping[str, Any]: ...


class TransportAdapter(ABC):
    """Base of the transports an ``EventBus`` runs on."""

    #: Used in health reports.
    name: str = "transport"
    event_bus_config: EventBusConfig
    transport_config: TransportConfig
    #: ``TransportConfig`` fields the adapter's own constructor arguments set; an
    #: ``EventBus(transport_config=...)`` is not compared on them (``bus/configs.py``).
    own_fields: frozenset[str] = frozenset()

    @property
    def default_consumer_group(self) -> str | None:
        """The group ``subscribe_stream`` uses when given none (from the worker type)."""
        return None

    def topic_for(self, channel: str) -> str:
        """The Kafka topic of a channel (``KAFKA_TOPIC_PREFIX`` applied, name validated)."""
        return topic_for(channel, self.transport_config.topic_prefix)

    async def initialize_topics(
        self, enable_auto_create: bool = True, channels: Sequence[str] | None = None
    ) -> dict[str, str]:
        """Creates the topics of the channels registered with ``add_topic_config`` (and of
        ``channels``), with the retention of their category, and their DLQ topics.

        With ``enable_auto_create=False`` nothing is created: the result tells which exist
        ("exists") and which do not ("missing").
        """
        names = list(dict.fromkeys([*self.event_bus_config.topic_configs, *(channels or [])]))
        specs = [
            s for ch in names for s in topic_specs(ch, self.event_bus_config, self.transport_config)
        ]
        if enable_auto_create:
            return await self.ensure_topics(specs)
        existing = await self.list_topics()
        return {s.name: ("exists" if s.name in existing else "missing") for s in specs}

    def stats(self) -> dict[str, Any]:
        """Producer counters for health reports."""
        return {}

    @abstractmethod
    async def start(self) -> None:
        """Creates the producer; idempotent. Called by the bus on first use."""

    @abstractmethod
    def producer(self) -> ProducerLike:
        """The started producer."""

    @abstractmethod
    def new_consumer(self, spec: ConsumerSpec) -> ConsumerLike:
        """A consumer for one subscription (not yet subscribed)."""

    @abstractmethod
    async def ensure_topics(
        self, specs: Sequence[TopicSpec], timeout: float | None = None
    ) -> dict[str, str]:
        """Creates the topics that do not exist: {name: "created" | "exists"}, waiting at
        most ``timeout`` seconds (default: ``KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS``)."""

    @abstractmethod
    async def list_topics(self) -> dict[str, int]:
        """{topic: partition count}."""

    @abstractmethod
    async def describe_topic(self, topic: str) -> dict[str, str]:
        """The topic's settings that differ from the broker's defaults (e.g. retention.ms)."""

    @abstractmethod
    async def find_event_ids(
        self, topic: str, event_ids: set[str], since_ms: int, timeout: float = 30.0
    ) -> set[str]:
        """Which of ``event_ids`` are in ``topic`` (by their ``event_id`` header), looking at
        records written at or after ``since_ms``. Used to tell whether a delivery that timed
        out was written after all, before sending it again."""

    @abstractmethod
    async def ping(self, timeout: float) -> bool:
        """Whether the broker answers within ``timeout`` seconds. Never raises."""

    @abstractmethod
    async def close(self, timeout: float | None = None) -> None:
        """Flushes and releases the producer, waiting at most ``timeout`` seconds for what is
        in flight (default: ``EVENT_BUS_CLOSE_TIMEOUT_SECONDS``); idempotent."""
