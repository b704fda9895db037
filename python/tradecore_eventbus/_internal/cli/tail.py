"""``tail CHANNEL``: a channel's events as they arrive (or from the beginning), pretty-printed,
until Ctrl-C, ``--max`` events or ``--idle`` seconds without one."""

from __future__ import annotations

import asyncio
from typing import Any

from ..transports.poll import poll_batch
from ..transports.protocol import RecordLike
from .broker import existing_topic, require_broker
from .errors import Interrupted, run
from .libs import JSON, Console, click
from .reader import topic_reader
from .settings import Settings, broker_options, load
from .values import json_object, time_ms


def _show(console: Console, record: RecordLike, event: dict[str, Any] | None) -> None:
    head = (
        f"[bold cyan]{time_ms(record.timestamp)}[/] [dim]{record.topic} "
        f"p{record.partition}@{record.offset}[/]"
    )
    if event is None:
        console.print(f"{head} [yellow](not a JSON object, {len(record.value or b'')} bytes)[/]")
        return
    console.print(
        f"{head} [bold green]{event.get('event_type', '?')}[/] [dim]{event.get('event_id', '')}[/]"
    )
    console.print(JSON.from_data(event, default=str))


async def _tail(
    settings: Settings,
    channel: str,
    *,
    from_beginning: bool,
    event_types: frozenset[str],
    limit: int | None,
    idle: float | None,
    console: Console,
    shown: list[int],
) -> None:
    adapter = settings.kafka_adapter()
    topic = adapter.topic_for(channel)
    try:
        await require_broker(adapter, settings)
        await existing_topic(adapter, topic, channel, settings)
    finally:
        await adapter.close()
    since = 0 if from_beginning else None
    async with topic_reader(settings, topic, since_ms=since, purpose="tail") as reader:
        console.print(
            f"[dim]tailing {topic} ({len(reader.ends)} partitions) "
            f"{'from the beginning' if from_beginning else 'from now'}; Ctrl-C stops[/]"
        )
        loop = asyncio.get_running_loop()
        # Without --idle, each wait is one fetch wait (EVENT_BUS_SUB_BLOCK_MS) and then again.
        wait = idle if idle is not None else settings.bus.sub_block_ms / 1000.0
        batch = settings.transport.consumer_max_poll_records
        quiet_since = loop.time()
        while limit is None or shown[0] < limit:
            records = await poll_batch(reader.consumer, batch, wait)
            if not records:
                if idle is not None and loop.time() - quiet_since >= idle:
                    return
                continue
            quiet_since = loop.time()
            for record in records:
                event = json_object(record.value)
                if event_types and (event is None or event.get("event_type") not in event_types):
                    continue
                _show(console, record, event)
                shown[0] += 1
                if limit is not None and shown[0] >= limit:
                    return


@click.command()
@click.argument("channel")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest event kept.")
@click.option(
    "--event-type",
    "event_types",
    multiple=True,
    metavar="TYPE",
    help="Only events of this event_type (repeat for several).",
)
@click.option("--max", "limit", type=click.IntRange(min=1), help="Stop after N events.")
@click.option(
    "--idle",
    type=click.FloatRange(min=0.0, min_open=True),
    metavar="SECONDS",
    help="Stop after SECONDS without an event.",
)
@broker_options
def tail(
    channel: str,
    from_beginning: bool,
    event_types: tuple[str, ...],
    limit: int | None,
    idle: float | None,
    bootstrap: str | None,
    topic_prefix: str | None,
    timeout: float | None,
) -> None:
    """Print CHANNEL's events as they arrive (from now, or --from-beginning), until Ctrl-C.

    Reads without joining a consumer group: subscribers' offsets never move.

    \b
    Example:
      tradecore-eventbus tail transport.orders --from-beginning --event-type OrderPlaced
    """
    settings = load(bootstrap=bootstrap, topic_prefix=topic_prefix, timeout=timeout)
    console = Console()
    shown = [0]
    try:
        run(
            _tail(
                settings,
                channel,
                from_beginning=from_beginning,
                event_types=frozenset(event_types),
                limit=limit,
                idle=idle,
                console=console,
                shown=shown,
            ),
            interrupt_ends=True,
        )
    except Interrupted:
        console.print()  # after the terminal's "^C"
    console.print(f"[dim]{shown[0]} event(s) shown[/]")
