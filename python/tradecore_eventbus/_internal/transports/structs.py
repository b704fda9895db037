"""Named record types shared by the bus and its transports (like aiokafka's ``structs``):
what goes to a producer, what a consumer is asked for, what a topic is created with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

#: (name, value) of one record header.
Header = tuple[str, bytes | None]
HeaderList = list[Header]
#: (key, value, headers) as handed to ``ProducerLike.send_batch``.
OutgoingRecord = tuple[bytes | None, bytes, HeaderList]
#: (topic, partition).
TopicPartition = tuple[str, int]
#: (partition, offset) of an acknowledged record.
Delivery = tuple[int, int]

Mode = Literal["pubsub", "stream"]


@dataclass(frozen=True)
class ConsumerSpec:
    """What the bus asks of a consumer; the adapter adds its transport settings."""

    topic: str
    group_id: str
    mode: Mode
    #: Where a group without committed offsets starts: "earliest" or "latest".
    auto_offset_reset: str
    #: At-least-once commits (streams); pub/sub consumers never commit.
    enable_commit: bool
    max_poll_records: int
    client_id: str = "tradecore"
    #: ``group.instance.id`` of a static member (KIP-345); None for a dynamic member.
    group_instance_id: str | None = None


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)
