"""``MemoryFaults``: broker faults on the memory transport, named as a test describes them.

Thin: each method sets one of the :class:`MemoryBroker` fault hooks, so a test written with
these helpers meets exactly what the package's own reliability tests meet.
"""

from __future__ import annotations

from ...exceptions import InvalidArgumentError, KafkaError
from ..bus.arguments import check_name, check_positive_int, check_seconds
from ..bus.event_bus import EventBus
from ..transports.memory.adapter import MemoryTransportAdapter
from ..transports.memory.broker import MemoryBroker


def default_refusal() -> KafkaError:
    """What ``fail_next_publish`` refuses with by default: a refusal Kafka would send
    (not retriable), so the event goes to the DLQ as on a real cluster."""
    return KafkaError(
        "produce failed: Broker: Topic authorization failed (TopicAuthorizationFailed): "
        "injected by MemoryFaults.fail_next_publish",
        code=29,
        code_name="TopicAuthorizationFailed",
        retriable=False,
    )


class MemoryFaults:
    """Faults of the in-memory broker under ``bus`` (an ``EventBus`` on a
    ``MemoryTransportAdapter``; every adapter sharing that broker sees them)."""

    def __init__(self, bus: EventBus) -> None:
        adapter = getattr(bus, "adapter", None)
        if not isinstance(adapter, MemoryTransportAdapter):
            raise InvalidArgumentError(
                "bus must be an EventBus on the memory transport (MemoryTransportAdapter), "
                f"got {type(adapter if adapter is not None else bus).__name__}"
            )
        self._bus = bus
        self.broker: MemoryBroker = adapter.broker

    def broker_down(self) -> None:
        """The broker stops answering: publishes fail as unreachable (retried, then
        ``PublishError(dlq="spool")``: the events wait in the spool) and pings answer False,
        so ``health_check()`` is unhealthy."""
        self.broker.available = False

    def broker_up(self) -> None:
        """The broker answers again; the spool drains (``await bus.replay_spool()`` does it
        at once, the next publish to a spooled topic first)."""
        self.broker.available = True

    def fail_next_publish(
        self, channel: str, error: Exception | None = None, count: int = 1
    ) -> None:
        """The next ``count`` records sent to ``channel``'s topic fail with ``error``
        (default: a non-retriable refusal, so the event is dead-lettered: ``PublishError(
        dlq="dlq")``). Its DLQ topic is not affected. A retriable ``error`` is retried by the
        bus like a transient fault: with ``count`` below the publish attempts, the publish
        succeeds."""
        check_name(channel, "channel")
        check_positive_int(count, "count")
        if error is not None and not isinstance(error, Exception):
            raise InvalidArgumentError(
                f"error must be an Exception instance or None, got {type(error).__name__}"
            )
        topic = self._bus.adapter.topic_for(channel)
        failures = self.broker.injected_topic_failures.setdefault(topic, [])
        failures.extend(error if error is not None else default_refusal() for _ in range(count))

    async def slow_partition(self, channel: str, partition: int, delay_seconds: float) -> None:
        """Records appended from now on to ``partition`` of ``channel``'s topic reach
        consumers ``delay_seconds`` late (in order; publishing is not slowed), as behind a
        slow partition leader: the other partitions' events are handled meanwhile.
        ``delay_seconds=0`` ends it. Creates the channel's topics if needed, as the bus
        would (``PublishResult.partition`` tells where a key's events go)."""
        check_name(channel, "channel")
        if isinstance(partition, bool) or not isinstance(partition, int):
            raise InvalidArgumentError(f"partition must be an int, got {type(partition).__name__}")
        check_seconds(delay_seconds, "delay_seconds")
        await self._bus.start()
        await self._bus.topics.ensure_channel(channel)
        topic = self._bus.adapter.topic_for(channel)
        self.broker.set_partition_delay(topic, partition, float(delay_seconds))

    def clear(self) -> None:
        """Ends every fault this helper can set: the broker is up, no failure is pending,
        no partition is slow."""
        self.broker.available = True
        self.broker.injected_topic_failures.clear()
        for topic, partition in self.broker.delayed_partitions():
            self.broker.set_partition_delay(topic, partition, 0.0)
