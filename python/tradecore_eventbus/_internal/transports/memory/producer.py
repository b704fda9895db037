"""The memory transport's producer: appends to the broker, refusing what Kafka would."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ....exceptions import (
    BatchDeliveryError,
    ClosedError,
    EventBusError,
    KafkaError,
    TransportTimeoutError,
)
from ..protocol import (
    OutgoingRecord,
)
from ..structs import Header
from .broker import MemoryBroker
from .limits import (
    BATCH_OVERHEAD,
    BROKER_MESSAGE_MAX_BYTES,
    CLIENT_MESSAGE_MAX_BYTES,
    record_wire_size,
    size_error,
)
from .records import Bytesish, HeadersArg, as_bytes, as_headers, checked_seconds


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
        key_bytes, value_bytes = as_bytes(key, "key"), as_bytes(value, "value")
        header_list = as_headers(headers)
        refused = self._refusal(key_bytes, value_bytes, header_list, self._broker_limit(topic))
        if refused is not None:
            self._failed += 1
            raise refused
        return self._append(topic, key_bytes, value_bytes, header_list, partition)

    async def send_batch(
        self, topic: str, records: Sequence[OutgoingRecord], *, immediate: bool = False
    ) -> list[tuple[int, int]]:
        """Sends (key, value, headers) records; returns their (partition, offset) in order.
        ``immediate`` changes nothing here: records are appended at once, nothing lingers.
        Like the Rust producer, a partly failed batch raises :class:`BatchDeliveryError`
        with one result per record (faults are injected through the broker)."""
        results: list[tuple[int, int] | EventBusError] = []
        broker_limit = self._broker_limit(topic)
        for raw_key, raw_value, raw_headers in records:
            # Like the Rust producer: bytes or str (as UTF-8) or None, else TypeError.
            key, value = as_bytes(raw_key, "key"), as_bytes(raw_value, "value")
            headers = as_headers(raw_headers)
            refused = self._refusal(key, value, headers, broker_limit)
            failure = refused if refused is not None else self._broker.check_append()
            if failure is None:
                failure = self._broker.check_topic_append(topic)
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
        checked_seconds(timeout, "timeout")  # nothing is ever pending

    async def close(self, timeout: float = 30.0) -> None:
        checked_seconds(timeout, "timeout")
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
