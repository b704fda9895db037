"""The independent checker: a plain confluent-kafka consumer reads the whole topic from the
beginning (no group, no commits, nothing of this package), and the history of publish calls
is compared with what it found, as Jepsen's lost-write / duplicate / unseen checkers do.

- lost: acknowledged (or spooled, once the spool drained) but not in the topic;
- duplicates: extra stored copies of one event id;
- order violations: within one key, an event stored at an offset not after the key's
  earlier events (a key's publishes are sequential, so its order is the order in which its
  calls returned), or on another partition;
- offset mismatches: an acknowledgement that names a (partition, offset) where the checker
  finds another event;
- unexpected: stored events nobody published, or published ones whose call said they were
  not sent (refused)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from tests.chaos.workload import ACKED, DEAD_LETTERED, REFUSED, SPOOLED, UNCLASSIFIED, History


@dataclass(frozen=True)
class Stored:
    event_id: str
    key: str | None
    seq: int | None
    partition: int
    offset: int


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Stored]:
    """Every record of ``topic`` up to its current high watermarks (call it once nothing
    publishes any more). Blocking: run it in a thread."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            # assign() needs no group; the id is required by the client and never joins.
            "group.id": f"chaos-checker-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
        }
    )
    deadline = time.monotonic() + timeout
    try:
        partitions = _partitions(consumer, topic, deadline)
        ends = {p: _high_watermark(consumer, topic, p, deadline) for p in partitions}
        remaining = {p: end for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in remaining])
        out: list[Stored] = []
        while remaining:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"checker: {topic} not read to its end within {timeout}s "
                    f"(left: { {p: e for p, e in remaining.items()} })"
                )
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is not None:
                    # Transient errors (a leader moving) clear up by themselves.
                    if not msg.error().fatal():
                        continue
                    raise AssertionError(f"checker: reading {topic} failed: {msg.error()}")
                p, o = msg.partition(), msg.offset()
                if p not in remaining:
                    continue
                out.append(_stored(msg.value(), msg.key(), p, o))
                if o + 1 >= remaining[p]:
                    del remaining[p]
        return out
    finally:
        consumer.close()


def _partitions(consumer: Consumer, topic: str, deadline: float) -> list[int]:
    while True:
        md = consumer.list_topics(topic, timeout=5)
        t = md.topics.get(topic)
        if t is not None and t.error is None and t.partitions:
            return sorted(t.partitions)
        if time.monotonic() >= deadline:
            raise AssertionError(f"checker: no metadata for {topic}: {t and t.error}")
        time.sleep(0.2)


def _high_watermark(consumer: Consumer, topic: str, partition: int, deadline: float) -> int:
    # Right after a broker came back a partition may have no leader for a moment.
    while True:
        try:
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=5, cached=False
            )
            return int(high)
        except KafkaException:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _stored(value: bytes | None, key: bytes | None, partition: int, offset: int) -> Stored:
    body = json.loads(value or b"null")
    if not isinstance(body, dict):
        return Stored("", None, None, partition, offset)
    seq = body.get("seq")
    return Stored(
        str(body.get("event_id", "")),
        key.decode() if key is not None else None,
        int(seq) if isinstance(seq, int) else None,
        partition,
        offset,
    )


def partition_leaders(bootstrap: str, topic: str) -> dict[int, tuple[int, list[int]]]:
    """partition -> (leader's port, ISR as ports), from cluster metadata (-1: no leader)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics(topic, timeout=5)
    ports = {b.id: b.port for b in md.brokers.values()}
    t = md.topics[topic]
    if t.error is not None:
        raise KafkaException(t.error)
    return {
        p.id: (ports.get(p.leader, -1), [ports.get(r, -1) for r in p.isrs])
        for p in t.partitions.values()
    }


@dataclass
class Verdict:
    events: int = 0
    acked: int = 0
    spooled: int = 0
    dead_lettered: int = 0
    refused_calls: int = 0
    unclassified: list[str] = field(default_factory=list)
    lost_acked: list[str] = field(default_factory=list)
    lost_spooled: list[str] = field(default_factory=list)
    lost_dead_lettered: list[str] = field(default_factory=list)
    duplicates: int = 0
    duplicated_ids: list[str] = field(default_factory=list)
    duplicate_details: list[str] = field(default_factory=list)
    order_violations: list[str] = field(default_factory=list)
    offset_mismatches: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return len(self.lost_acked) + len(self.lost_spooled) + len(self.lost_dead_lettered)

    def problems(self) -> list[str]:
        out = []
        for name in (
            "lost_acked",
            "lost_spooled",
            "lost_dead_lettered",
            "duplicate_details",
            "order_violations",
            "offset_mismatches",
            "unexpected",
            "unclassified",
        ):
            items = getattr(self, name)
            if items:
                out.append(f"{name}: {len(items)} (first: {items[:5]})")
        return out


def check(history: History, stored: Iterable[Stored], dlq: Iterable[Stored] = ()) -> Verdict:
    stored = list(stored)
    final = history.final()
    copies = Counter(s.event_id for s in stored)
    in_dlq = {s.event_id for s in dlq}
    outcomes = Counter(c.outcome for c in final.values())
    v = Verdict(
        events=len(final),
        acked=outcomes[ACKED],
        spooled=outcomes[SPOOLED],
        dead_lettered=outcomes[DEAD_LETTERED],
        refused_calls=sum(1 for c in history.calls if c.outcome == REFUSED),
    )
    v.unclassified = [
        f"{c.event_id}: {c.error}" for c in final.values() if c.outcome == UNCLASSIFIED
    ]
    v.lost_acked = [e for e, c in final.items() if c.outcome == ACKED and not copies[e]]
    v.lost_spooled = [e for e, c in final.items() if c.outcome == SPOOLED and not copies[e]]
    v.lost_dead_lettered = [
        e for e, c in final.items() if c.outcome == DEAD_LETTERED and e not in in_dlq
    ]
    v.duplicated_ids = sorted(e for e, n in copies.items() if n > 1)
    # How each duplicate came about: its publish calls (outcome, error) and where its copies
    # are stored, so that a failed run says which path sent it twice.
    calls_of: dict[str, list[str]] = {}
    for c in history.calls:
        if c.event_id in copies and copies[c.event_id] > 1:
            calls_of.setdefault(c.event_id, []).append(
                f"{c.outcome}" + (f" ({c.error})" if c.error else "")
            )
    v.duplicate_details = [
        f"{e}: calls {calls_of.get(e, [])}, stored at "
        f"{[f'p{s.partition}@{s.offset}' for s in stored if s.event_id == e]}"
        for e in v.duplicated_ids
    ]
    v.duplicates = sum(n - 1 for n in copies.values() if n > 1)
    v.unexpected = [
        f"{s.event_id}@{s.partition}:{s.offset}"
        for s in stored
        if s.event_id not in final or final[s.event_id].outcome == REFUSED
    ]

    first_copy: dict[str, Stored] = {}
    for s in stored:
        if s.event_id not in first_copy or s.offset < first_copy[s.event_id].offset:
            first_copy[s.event_id] = s
    at = {(s.partition, s.offset): s.event_id for s in stored}
    for e, c in final.items():
        if c.outcome == ACKED and at.get((c.partition, c.offset)) not in (None, e):
            v.offset_mismatches.append(f"{e} acked at {c.partition}:{c.offset}")

    by_key: dict[str, list[tuple[int, Stored]]] = defaultdict(list)
    for e, c in final.items():
        if e in first_copy:
            by_key[c.key].append((c.seq, first_copy[e]))
    for key, events in by_key.items():
        events.sort()
        partition = events[0][1].partition
        highest = -1
        for seq, s in events:
            if s.partition != partition:
                v.order_violations.append(
                    f"{key}#{seq} on partition {s.partition}, not {partition}"
                )
            elif s.offset <= highest:
                v.order_violations.append(f"{key}#{seq} at offset {s.offset} after {highest}")
            highest = max(highest, s.offset)
    return v


@dataclass
class Consumption:
    """Stored events against what handlers were given (at-least-once)."""

    unhandled: list[str]
    redelivered: int
    handled: int


def check_consumption(stored: Iterable[Stored], handled: Counter[str]) -> Consumption:
    ids = {s.event_id for s in stored}
    return Consumption(
        unhandled=sorted(e for e in ids if not handled[e]),
        redelivered=sum(n - 1 for e, n in handled.items() if n > 1),
        handled=sum(handled.values()),
    )


async def read_and_check(
    bootstrap: str, topic: str, history: History, dlq_suffix: str = ".dlq"
) -> tuple[list[Stored], Verdict]:
    """Reads the topic (and its DLQ topic, when some publish said it dead-lettered events)
    in a thread and checks the history against it."""
    stored = await asyncio.to_thread(read_topic, bootstrap, topic)
    dlq: list[Stored] = []
    if any(c.outcome == DEAD_LETTERED for c in history.final().values()):
        dlq = await asyncio.to_thread(read_topic, bootstrap, topic + dlq_suffix)
    return stored, check(history, stored, dlq)
