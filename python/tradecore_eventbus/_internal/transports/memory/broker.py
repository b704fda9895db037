"""``MemoryBroker``: an in-process Kafka cluster for the in-memory transport.

It keeps what a Kafka broker keeps and nothing more: topics made of partitions, each an
append-only log of records with offsets; a partitioner identical to Kafka's Java client, so
a key lands on the same partition number as it would on Kafka; and consumer groups with
members, a range assignment of the partitions and committed offsets.

Groups model what a restart meets on Kafka (decision 42): a member that goes away without
leaving (a crashed process, or a static member that closed) keeps its partitions until its
session times out, and members that join meanwhile get their partitions only then; a static
member (``group.instance.id``) that comes back takes its partitions at once, without a
rebalance; and a second live member with the same instance id fences the first
(``FencedInstanceError``), as Kafka's coordinator does.

The broker is plain synchronous data. It tells group members about rebalances and appends
through the :class:`GroupMember` callbacks; the consumer (``memory_adapter.MemoryConsumer``)
turns those into asyncio wake-ups. Everything runs on one thread (the event loop's): the
broker takes no locks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ....exceptions import (
    FencedInstanceError,
    InvalidArgumentError,
    TransportTimeoutError,
    UnknownTopicError,
)
from ...wire.topics import validate_topic_name
from ..structs import Header, TopicPartition

_MASK_32 = 0xFFFFFFFF


def _to_int32(value: int) -> int:
    """Java's wrap-around of an ``int``: the low 32 bits, as a signed number."""
    value &= _MASK_32
    return value - (1 << 32) if value & 0x80000000 else value


def murmur2(data: bytes) -> int:
    """Kafka's ``org.apache.kafka.common.utils.Utils.murmur2``: a signed 32-bit hash.

    A transcription of the Java code with its 32-bit wrap-around made explicit (``& MASK``
    after each multiplication, unsigned shifts on the masked value), so that every key maps to
    the partition the Java client (and librdkafka's ``murmur2_random``) would choose.
    """
    length = len(data)
    m = 0x5BD1E995
    r = 24
    h = (0x9747B28C ^ length) & _MASK_32
    full = length - length % 4
    for i in range(0, full, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * m) & _MASK_32
        k ^= k >> r
        k = (k * m) & _MASK_32
        h = (h * m) & _MASK_32
        h ^= k
    # The Java switch falls through: 3 trailing bytes also apply the cases for 2 and 1.
    rest = length % 4
    if rest == 3:
        h ^= data[full + 2] << 16
    if rest >= 2:
        h ^= data[full + 1] << 8
    if rest >= 1:
        h ^= data[full]
        h = (h * m) & _MASK_32
    h ^= h >> 13
    h = (h * m) & _MASK_32
    h ^= h >> 15
    return _to_int32(h)


def partition_for_key(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner for keyed records: ``toPositive(murmur2(key)) % n``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One record of a partition's log."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]
    #: Log-append time, milliseconds since the epoch.
    timestamp: int


class GroupMember(Protocol):
    """What the broker calls on a consumer that joined a group.

    During a rebalance every member first gets ``partitions_revoked`` for what it loses (so
    it can commit what it processed), and only then do members get ``partitions_assigned``
    for what they gain, so a new owner always reads the previous owner's last commit.
    """

    def partitions_revoked(self, partitions: Sequence[TopicPartition]) -> None: ...

    def partitions_assigned(self, partitions: Sequence[TopicPartition]) -> None: ...

    def records_appended(self, topic: str, partition: int) -> None: ...

    def fenced(self, error: FencedInstanceError) -> None:
        """Another member joined with this member's group.instance.id and took its place."""


@dataclass
class _Topic:
    partitions: list[list[StoredRecord]]
    #: (partition, offset) of every record in append order across partitions.
    order: list[tuple[int, int]] = field(default_factory=list)
    #: Next partition for a record without key (round robin).
    next_unkeyed: int = 0
    #: Topic settings given at creation (retention.ms, ...); kept for inspection only.
    configs: dict[str, str] = field(default_factory=dict)


@dataclass
class _Group:
    #: Members in join order (the order the range assignment hands out partitions in), with
    #: the topics each one subscribed to.
    members: dict[GroupMember, tuple[str, ...]] = field(default_factory=dict)
    assignment: dict[GroupMember, set[TopicPartition]] = field(default_factory=dict)
    #: Who owns each partition now, to wake exactly that member on an append.
    owners: dict[TopicPartition, GroupMember] = field(default_factory=dict)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    #: group.instance.id of the static members.
    instance_ids: dict[GroupMember, str] = field(default_factory=dict)
    #: Members gone without leaving, with the timer that ends their session: until then
    #: they keep their partitions, and the next rebalance waits for them (Kafka's coordinator
    #: waits for every known member before it completes a join).
    departed: dict[GroupMember, asyncio.TimerHandle] = field(default_factory=dict)


class MemoryBroker:
    """Topics, partition logs and consumer groups of one in-process cluster.

    Share one broker between several adapters to simulate several processes on one cluster.
    ``default_partitions`` is the partition count of topics created implicitly (Kafka's
    ``num.partitions``).
    """

    def __init__(self, default_partitions: int = 6) -> None:
        if default_partitions < 1:
            raise InvalidArgumentError("default_partitions must be at least 1")
        self.default_partitions = default_partitions
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[str, _Group] = {}
        #: Fault injection for tests: while False, every append fails like a broker that does
        #: not answer (MessageTimedOut) and pings fail.
        self.available = True
        #: Fault injection: the next appends fail with these errors, one each, in order.
        self.injected_failures: list[Exception] = []
        #: Fault injection: the next N appends are written but reported as timed out (the
        #: acknowledgement was lost: possibly persisted).
        self.lost_acks = 0
        #: Fault injection: the next appends to a topic fail with these errors, one each, in
        #: order (only that topic: its DLQ topic still takes the dead letters).
        self.injected_topic_failures: dict[str, list[Exception]] = {}
        #: Fault injection: records of these partitions reach consumers this many seconds
        #: after they were appended (a slow partition); see :meth:`set_partition_delay`.
        self._delays: dict[TopicPartition, float] = {}
        #: Per delayed partition: the end of what consumers may read so far.
        self._visible_end: dict[TopicPartition, int] = {}

    def check_append(self) -> Exception | None:
        """The error the next append must fail with (fault injection), if any."""
        if not self.available:
            return TransportTimeoutError(
                "produce failed: Local: Message timed out (MessageTimedOut): the in-memory "
                "broker is down",
                code=-192,
                code_name="MessageTimedOut",
                possibly_persisted=False,
            )
        if self.injected_failures:
            return self.injected_failures.pop(0)
        return None

    def check_topic_append(self, topic: str) -> Exception | None:
        """The error the next append to ``topic`` must fail with (fault injection), if any."""
        queue = self.injected_topic_failures.get(topic)
        if not queue:
            return None
        error = queue.pop(0)
        if not queue:
            del self.injected_topic_failures[topic]
        return error

    def set_partition_delay(self, topic: str, partition: int, delay_s: float) -> None:
        """Fault injection: records appended to the partition from now on reach consumers
        ``delay_s`` seconds late (in order; a producer's acknowledgement is not delayed), as
        behind a slow partition leader. ``0`` ends it: what was held back is readable at
        once. Call from the event loop (the release is a timer on it)."""
        n = len(self._topic(topic).partitions)
        if not 0 <= partition < n:
            raise InvalidArgumentError(
                f"partition must be between 0 and {n - 1} for topic {topic!r}, not {partition}"
            )
        tp = (topic, partition)
        if delay_s > 0:
            self._visible_end.setdefault(tp, self.end_offset(topic, partition))
            self._delays[tp] = delay_s
            return
        self._delays.pop(tp, None)
        if self._visible_end.pop(tp, None) is not None:
            self._notify_owners(topic, partition)

    def delayed_partitions(self) -> list[TopicPartition]:
        return sorted(self._delays)

    def _release(self, tp: TopicPartition, end: int) -> None:
        visible = self._visible_end.get(tp)
        if visible is None or visible >= end:
            return  # the delay was ended meanwhile, or a later release came first
        self._visible_end[tp] = end
        self._notify_owners(*tp)

    def readable_end(self, topic: str, partition: int) -> int:
        """The end of what consumers can read of the partition: its end offset, less what a
        slow-partition delay still holds back."""
        visible = self._visible_end.get((topic, partition))
        return self.end_offset(topic, partition) if visible is None else visible

    def take_lost_ack(self) -> bool:
        """Whether the append about to succeed must be reported as failed anyway."""
        if self.lost_acks > 0:
            self.lost_acks -= 1
            return True
        return False

    # --- topics -----------------------------------------------------------------------------

    def create_topic(
        self, name: str, partitions: int | None = None, configs: Mapping[str, str] | None = None
    ) -> bool:
        """Creates a topic; returns False (and changes nothing) if it already exists."""
        validate_topic_name(name)
        count = self.default_partitions if partitions is None else partitions
        if count < 1:
            raise InvalidArgumentError(f"topic {name!r} needs at least 1 partition, not {count}")
        if name in self._topics:
            return False
        self._topics[name] = _Topic([[] for _ in range(count)], configs=dict(configs or {}))
        return True

    def topic_configs(self, name: str) -> dict[str, str]:
        return dict(self._topic(name).configs)

    def has_topic(self, name: str) -> bool:
        return name in self._topics

    def topics(self) -> dict[str, int]:
        """{topic: partition count}."""
        return {name: len(t.partitions) for name, t in self._topics.items()}

    def partition_count(self, topic: str) -> int:
        return len(self._topic(topic).partitions)

    def _topic(self, name: str) -> _Topic:
        try:
            return self._topics[name]
        except KeyError:
            raise UnknownTopicError(f"topic {name!r} does not exist") from None

    def append(
        self,
        topic: str,
        partition: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header] = (),
    ) -> tuple[int, int]:
        """Appends a record and returns its (partition, offset). Without an explicit
        partition, a keyed record goes where Kafka's partitioner puts it and a record without
        key to the next partition in turn."""
        t = self._topic(topic)
        n = len(t.partitions)
        if partition is None:
            if key is not None:
                partition = partition_for_key(key, n)
            else:
                partition = t.next_unkeyed % n
                t.next_unkeyed += 1
        elif not 0 <= partition < n:
            raise UnknownTopicError(f"topic {topic!r} has no partition {partition} (it has {n})")
        log = t.partitions[partition]
        offset = len(log)
        log.append(
            StoredRecord(partition, offset, key, value, tuple(headers), time.time_ns() // 1_000_000)
        )
        t.order.append((partition, offset))
        delay = self._delays.get((topic, partition))
        if delay is not None:
            asyncio.get_running_loop().call_later(
                delay, self._release, (topic, partition), offset + 1
            )
        else:
            self._notify_owners(topic, partition)
        return partition, offset

    def _notify_owners(self, topic: str, partition: int) -> None:
        for group in self._groups.values():
            owner = group.owners.get((topic, partition))
            if owner is not None:
                owner.records_appended(topic, partition)

    def read(self, topic: str, partition: int, offset: int, max_records: int) -> list[StoredRecord]:
        """Up to ``max_records`` records of a partition from ``offset`` on (those a
        slow-partition delay still holds back excluded)."""
        log = self._topic(topic).partitions[partition]
        end = min(offset + max_records, self.readable_end(topic, partition))
        return log[offset:end]

    def end_offset(self, topic: str, partition: int) -> int:
        """The offset the next record of the partition will get (Kafka's high watermark)."""
        return len(self._topic(topic).partitions[partition])

    def published(self, topic: str) -> list[StoredRecord]:
        """Every record of a topic in the order they were appended; [] for an unknown one."""
        t = self._topics.get(topic)
        if t is None:
            return []
        return [t.partitions[p][o] for p, o in t.order]

    # --- consumer groups --------------------------------------------------------------------

    def join_group(
        self,
        group_id: str,
        member: GroupMember,
        topics: Sequence[str],
        instance_id: str | None = None,
    ) -> None:
        """Adds ``member`` to the group (or replaces its subscription) and rebalances, once
        every departed member's session has ended. A static member (``instance_id``) whose
        id is already in the group takes that member's place and partitions at once; if that
        member is still live, it is fenced."""
        for name in topics:
            self._topic(name)
        group = self._groups.setdefault(group_id, _Group())
        wanted = tuple(dict.fromkeys(topics))
        if instance_id is not None:
            previous = next((m for m, i in group.instance_ids.items() if i == instance_id), None)
            if previous is not None and previous is not member:
                self._replace(group_id, group, previous, member, wanted, instance_id)
                return
            group.instance_ids[member] = instance_id
        group.members[member] = wanted
        self._rebalance_when_complete(group)

    def _replace(
        self,
        group_id: str,
        group: _Group,
        old: GroupMember,
        new: GroupMember,
        topics: tuple[str, ...],
        instance_id: str,
    ) -> None:
        timer = group.departed.pop(old, None)
        if timer is not None:
            timer.cancel()
        else:
            old.fenced(
                FencedInstanceError(
                    f"consume failed: fatal Broker: Static consumer fenced by other consumer "
                    f"with same group.instance.id (FencedInstanceId): {instance_id!r} in "
                    f"group {group_id!r}",
                    code=82,
                    code_name="FencedInstanceId",
                    fatal=True,
                )
            )
        subscription_changed = group.members[old] != topics
        # The newcomer takes the old member's place (join order) and partitions.
        group.members = {(new if m is old else m): ts for m, ts in group.members.items()}
        group.members[new] = topics
        del group.instance_ids[old]
        group.instance_ids[new] = instance_id
        partitions = group.assignment.pop(old, set())
        group.assignment[new] = partitions
        group.owners = {tp: (new if m is old else m) for tp, m in group.owners.items()}
        if subscription_changed:
            self._rebalance_when_complete(group)
        else:
            new.partitions_assigned(sorted(partitions))
            self._rebalance_when_complete(group, only_if_waiting=True)

    def leave_group(self, group_id: str, member: GroupMember) -> None:
        """Removes ``member`` (its partitions are revoked first) and rebalances the rest."""
        group = self._groups.get(group_id)
        if group is None or member not in group.members:
            return
        del group.members[member]
        group.instance_ids.pop(member, None)
        lost = group.assignment.pop(member, set())
        if lost:
            member.partitions_revoked(sorted(lost))
        group.owners = {tp: m for tp, m in group.owners.items() if m is not member}
        self._rebalance_when_complete(group)

    def depart(self, group_id: str, member: GroupMember, session_timeout_s: float) -> None:
        """``member`` is gone without leaving (its process died, or it is a static member that
        closed): it keeps its partitions, unprocessed, until its session ends after
        ``session_timeout_s`` (or its instance id rejoins). Call from the event loop."""
        group = self._groups.get(group_id)
        if group is None or member not in group.members or member in group.departed:
            return
        loop = asyncio.get_running_loop()
        group.departed[member] = loop.call_later(
            session_timeout_s, self._session_ended, group_id, member
        )

    def _session_ended(self, group_id: str, member: GroupMember) -> None:
        group = self._groups[group_id]
        if group.departed.pop(member, None) is None:
            return
        del group.members[member]
        group.instance_ids.pop(member, None)
        # Lost, not revoked: a dead member commits nothing.
        group.assignment.pop(member, None)
        group.owners = {tp: m for tp, m in group.owners.items() if m is not member}
        self._rebalance_when_complete(group)

    def _rebalance_when_complete(self, group: _Group, *, only_if_waiting: bool = False) -> None:
        """Rebalances unless departed members still hold partitions: then the join completes
        when their sessions end (``_session_ended`` comes back here)."""
        if group.departed:
            return
        waiting = any(m not in group.assignment for m in group.members)
        if only_if_waiting and not waiting:
            return
        self._rebalance(group)

    def committed(self, group_id: str, tp: TopicPartition) -> int | None:
        """The group's committed offset of a partition (the next offset to read), if any."""
        group = self._groups.get(group_id)
        return None if group is None else group.committed.get(tp)

    def commit(self, group_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        self._groups.setdefault(group_id, _Group()).committed.update(offsets)

    def group_members(self, group_id: str) -> int:
        group = self._groups.get(group_id)
        return 0 if group is None else len(group.members)

    def _rebalance(self, group: _Group) -> None:
        new = self._range_assignment(group)
        old = group.assignment
        # Revoke everywhere before assigning anywhere: the previous owners commit what they
        # processed, then the new owners look the committed offsets up.
        for member, parts in old.items():
            lost = parts - new.get(member, set())
            if lost:
                member.partitions_revoked(sorted(lost))
        group.assignment = new
        group.owners = {tp: member for member, parts in new.items() for tp in parts}
        for member, parts in new.items():
            gained = parts - old.get(member, set())
            # A member that just joined hears back even when it got nothing: that is how it
            # learns its (empty) assignment is final.
            if gained or member not in old:
                member.partitions_assigned(sorted(gained))

    def _range_assignment(self, group: _Group) -> dict[GroupMember, set[TopicPartition]]:
        """Kafka's range assignor: per topic, its subscribers in join order each get a
        consecutive block of partitions, the first ones one more when it does not divide."""
        out: dict[GroupMember, set[TopicPartition]] = {m: set() for m in group.members}
        topics = dict.fromkeys(t for ts in group.members.values() for t in ts)
        for topic in topics:
            subscribers = [m for m, ts in group.members.items() if topic in ts]
            share, extra = divmod(self.partition_count(topic), len(subscribers))
            start = 0
            for i, member in enumerate(subscribers):
                count = share + (1 if i < extra else 0)
                out[member].update((topic, p) for p in range(start, start + count))
                start += count
        return out
