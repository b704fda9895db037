"""``bench``: a publish and consume throughput run of the bus itself, in memory or on a
broker. The repository's comparative harness (``benches/``, against aiokafka,
confluent-kafka and plain Rust) is not in the wheel; this measures an installation as it is
deployed (decision 80)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from ..bus.event_bus import EventBus
from .broker import require_broker
from .errors import CliError, run
from .libs import Console, Table, click
from .settings import Settings, bootstrap_option, json_option, load, timeout_option


@dataclass(frozen=True)
class Round:
    events: int
    #: From the first publish to the last acknowledgement.
    publish_s: float
    #: From the first publish to the last event handled by the subscriber.
    end_to_end_s: float

    @property
    def publish_rate(self) -> float:
        return self.events / self.publish_s

    @property
    def end_to_end_rate(self) -> float:
        return self.events / self.end_to_end_s


async def _round(settings: Settings, memory: bool, events: int, batch: int, size: int) -> Round:
    bus = EventBus(
        settings.adapter(memory), event_bus_config=settings.bus, transport_config=settings.transport
    )
    channel = f"transport.cli-bench-{uuid.uuid4().hex[:10]}"
    handled = 0
    done = asyncio.Event()

    async def count(_event: dict[str, Any]) -> None:
        nonlocal handled
        handled += 1
        if handled == events:
            done.set()

    try:
        if not memory:
            await require_broker(bus.adapter, settings)
        await bus.start()
        # Topic creation and the group join stay out of the measured time.
        await bus.topics.ensure_channel(channel, timeout=settings.timeout)
        await bus.subscribe_stream(channel, count, group=f"cli-bench-{uuid.uuid4().hex[:8]}")
        body = "x" * size
        payloads = [{"event_type": "BenchTick", "seq": i, "body": body} for i in range(events)]
        start = time.perf_counter()
        for i in range(0, events, batch):
            await bus.publish_batch(channel, payloads[i : i + batch])
        published = time.perf_counter()
        # Waits while events keep arriving; fails after --timeout without one.
        seen = -1
        while not done.is_set():
            if handled == seen:
                raise CliError(
                    f"the subscriber handled {handled} of {events} events and then none "
                    f"for {settings.timeout:g}s (--timeout)"
                )
            seen = handled
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), settings.timeout)
        finished = time.perf_counter()
    finally:
        await bus.close(settings.bus.close_timeout_seconds)
    return Round(events, published - start, finished - start)


async def _bench(
    settings: Settings, memory: bool, rounds: int, events: int, batch: int, size: int
) -> list[Round]:
    return [await _round(settings, memory, events, batch, size) for _ in range(rounds)]


@click.command()
@bootstrap_option
@timeout_option
@click.option("--events", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Events per publish_batch call.",
)
@click.option(
    "--size", type=click.IntRange(min=0), default=100, show_default=True, help="Body bytes."
)
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True)
@json_option
def bench(
    bootstrap: str | None,
    timeout: float | None,
    events: int,
    batch: int,
    size: int,
    rounds: int,
    as_json: bool,
) -> None:
    """Measure publish and end-to-end throughput (events/s) of the bus: publish_batch to
    a new channel with one stream subscriber, in memory or on --bootstrap; each round and
    the median.

    \b
    Example:
      tradecore-eventbus bench --bootstrap 127.0.0.1:19092 --events 50000
    """
    settings = load(bootstrap=bootstrap, timeout=timeout)
    memory = bootstrap is None
    results = run(_bench(settings, memory, rounds, events, batch, size))
    transport = "memory" if memory else settings.transport.bootstrap_servers
    median_publish = statistics.median(r.publish_rate for r in results)
    median_e2e = statistics.median(r.end_to_end_rate for r in results)
    if as_json:
        out = {
            "transport": transport,
            "rounds": [
                {**asdict(r), "publish_rate": r.publish_rate, "end_to_end_rate": r.end_to_end_rate}
                for r in results
            ],
            "median_publish_rate": median_publish,
            "median_end_to_end_rate": median_e2e,
        }
        click.echo(json.dumps(out, indent=2))
        return
    table = Table(
        "round", "events", "publish events/s", "end-to-end events/s", title=f"bench: {transport}"
    )
    for n, r in enumerate(results, 1):
        table.add_row(str(n), str(r.events), f"{r.publish_rate:,.0f}", f"{r.end_to_end_rate:,.0f}")
    table.add_row("median", "", f"{median_publish:,.0f}", f"{median_e2e:,.0f}", style="bold")
    Console().print(table)
