"""What the scenarios do to the bus, through its public API only, and what they remember of it:
keyed publishers that record the outcome of every publish call (the history a Jepsen
checker compares with what the topic holds), and handlers that record what they handled."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.infra import pause

from tradecore_eventbus import (
    CircuitBreakerOpenError,
    EventBus,
    EventBusConfig,
    PublishError,
    RedpandaTransportAdapter,
    TransportConfig,
)

EVENT_TYPE = "ChaosEvent"

#: Outcomes of one publish call, as the README defines them.
ACKED = "acked"  # returned a PublishResult: the broker acknowledged it
SPOOLED = "spooled"  # PublishError(dlq="spool"): kept locally, published when the broker is back
DEAD_LETTERED = "dead-lettered"  # PublishError(dlq="dlq"): in the channel's DLQ topic
FAILED = "failed"  # PublishError(dlq=None): nothing kept it (only with ENABLE_DLQ=false)
REFUSED = "refused"  # CircuitBreakerOpenError: refused at once, nothing sent
#: Any other exception breaks the contract "success, or an exception that says where it went".
UNCLASSIFIED = "unclassified"


@dataclass
class PublishCall:
    event_id: str
    key: str
    #: The event's position among its key's events: the key's publishes are sequential, so
    #: this is also the order in which their calls returned.
    seq: int
    outcome: str
    returned_at: float
    partition: int | None = None
    offset: int | None = None
    error: str | None = None


@dataclass
class History:
    calls: list[PublishCall] = field(default_factory=list)
    acked: int = 0
    #: Monotonic time of the last acknowledgement (progress after a fault).
    last_ack_at: float = 0.0
    #: Where each acknowledged event went (event_id -> partition), to follow one partition.
    partition_of: dict[str, int] = field(default_factory=dict)

    def record(self, call: PublishCall) -> None:
        self.calls.append(call)
        if call.outcome == ACKED:
            self.acked += 1
            self.last_ack_at = call.returned_at
            assert call.partition is not None
            self.partition_of[call.event_id] = call.partition

    def final(self) -> dict[str, PublishCall]:
        """The last call of each event (a refused event is published again with its id)."""
        return {c.event_id: c for c in self.calls}

    def outcomes(self) -> Counter[str]:
        return Counter(c.outcome for c in self.final().values())


def transport_config(bootstrap: str, **overrides: Any) -> TransportConfig:
    """The package defaults (acks=all, idempotence on, cooperative-sticky, ...) except where a
    scenario says otherwise."""
    return TransportConfig(
        bootstrap_servers=bootstrap,
        client_id="chaos",
        consumer_group_id_prefix="chaos",
        **overrides,
    )


def make_bus(
    tc: TransportConfig, spool_dir: Path, **bus_overrides: Any
) -> tuple[EventBus, EventBusConfig]:
    config = EventBusConfig(spool_dir=str(spool_dir), **bus_overrides)
    adapter = RedpandaTransportAdapter(event_bus_config=config, transport_config=tc)
    return EventBus(adapter, spool_dir=str(spool_dir)), config


class KeyedPublishers:
    """One task per key, each publishing its key's events one after another (so that the
    order of a key's publishes is defined), paced to ``rate`` events/s over all keys.

    A refused call (breaker open) is what a careful client retries: the same event, with
    the same id, after ``retry_after``. Every other outcome moves on to the next event."""

    def __init__(
        self,
        bus: EventBus,
        channel: str,
        keys: Sequence[str],
        rate: float,
        history: History,
    ) -> None:
        self.bus = bus
        self.channel = channel
        self.keys = list(keys)
        self.period = len(self.keys) / rate
        self.history = history
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self._publish_key(key), name=f"chaos-publisher-{key}")
            for key in self.keys
        ]

    async def stop(self, timeout: float) -> None:
        """Stops starting new publishes and waits for the calls in flight to return."""
        self.stopping.set()
        done, pending = await asyncio.wait(self.tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()  # a publisher bug must not pass unnoticed
        assert not pending, f"{len(pending)} publish call(s) still running after {timeout:.0f}s"

    async def _publish_key(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        seq = 0
        next_at = loop.time()
        while not self.stopping.is_set():
            event_id = str(uuid.uuid4())
            event = {"event_type": EVENT_TYPE, "event_id": event_id, "key": key, "seq": seq}
            while True:
                call = PublishCall(event_id, key, seq, UNCLASSIFIED, 0.0)
                retry_after: float | None = None
                try:
                    result = await self.bus.publish_stream(self.channel, event, partition_key=key)
                except PublishError as exc:
                    call.outcome = {"spool": SPOOLED, "dlq": DEAD_LETTERED}.get(
                        exc.dlq or "", FAILED
                    )
                    call.error = f"{type(exc.cause).__name__}: {exc}"
                except CircuitBreakerOpenError as exc:
                    call.outcome = REFUSED
                    call.error = str(exc)
                    retry_after = exc.retry_after
                except Exception as exc:
                    call.error = f"{type(exc).__name__}: {exc}"
                else:
                    call.outcome = ACKED
                    call.partition, call.offset = result.partition, result.offset
                call.returned_at = time.monotonic()
                self.history.record(call)
                if retry_after is None:
                    break
                # The breaker says when it lets a trial call through; a client that retries
                # earlier is only refused again.
                if await pause(self.stopping, max(retry_after, 0.05)):
                    break
            seq += 1
            next_at = max(next_at + self.period, loop.time())
            await pause(self.stopping, next_at - loop.time())


@dataclass
class Handled:
    """What handlers were given: (member, event_id, monotonic time), in order."""

    entries: list[tuple[str, str, float]] = field(default_factory=list)

    def handler(self, member: str) -> Any:
        async def handle(event: dict[str, Any]) -> None:
            self.entries.append((member, event["event_id"], time.monotonic()))

        return handle

    def ids(self) -> Counter[str]:
        return Counter(event_id for _, event_id, _ in self.entries)

    def since(self, t: float) -> int:
        return sum(1 for _, _, at in self.entries if at >= t)


async def drain_spool(bus: EventBus, timeout: float) -> dict[str, int]:
    """Publishes what the spool kept, through the public API, until nothing is left (the
    background drainer may be at it too: the spool's lock keeps them from sending twice)."""
    total = {"sent": 0, "already_delivered": 0, "remaining": 0}
    deadline = time.monotonic() + timeout
    while True:
        report = await bus.replay_spool()
        total["sent"] += report["sent"]
        total["already_delivered"] += report["already_delivered"]
        total["remaining"] = report["remaining"]
        if not report["remaining"]:
            return total
        assert time.monotonic() < deadline, f"the spool still holds {report['remaining']} event(s)"
        await asyncio.sleep(0.2)  # between two drain attempts; the deadline bounds the loop
