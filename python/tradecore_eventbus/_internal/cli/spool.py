"""``spool list`` / ``spool replay`` / ``spool dead``: the local spool of events that could
reach neither their topic nor the DLQ (decision 53), and the entries moved aside (``dead/``)
because the broker refused them for good."""

from __future__ import annotations

import base64
import json
from typing import Any

from ..bus.event_bus import EventBus
from ..reliability.spool.files import Spool, SpoolEntry
from .broker import require_broker
from .errors import run
from .libs import Console, Table, click
from .settings import Settings, broker_options, json_option, load, spool_dir_option
from .values import time_ms


@click.group()
def spool() -> None:
    """The local spool: list pending entries, replay them, list the dead ones."""


def _pending(entry: SpoolEntry) -> dict[str, Any]:
    return {
        "name": entry.name,
        "topic": entry.topic,
        "channel": entry.channel,
        "event_id": entry.event_id,
        "destination": entry.destination,
        "size": len(base64.b64decode(entry.value)),
        "spooled_at_ms": entry.spooled_at_ms,
        "possibly_persisted": entry.possibly_persisted,
        "reason": entry.reason,
    }


def _header(console: Console, what: str, directory: str, n: int) -> None:
    console.print(f"[bold]{n}[/] {what} in [cyan]{directory}[/]")


@spool.command("list")
@spool_dir_option
@json_option
def list_(spool_dir: str | None, as_json: bool) -> None:
    """List the events waiting in the spool, oldest first.

    \b
    Example:
      tradecore-eventbus spool list --spool-dir /var/lib/app/spool
    """
    settings = load(spool_dir=spool_dir)
    rows = [_pending(e) for e in Spool(settings.bus.spool_dir).entries()]
    if as_json:
        click.echo(json.dumps({"directory": settings.bus.spool_dir, "entries": rows}, indent=2))
        return
    console = Console()
    _header(console, "pending entr(ies)", settings.bus.spool_dir, len(rows))
    if rows:
        table = Table("spooled at", "channel", "topic", "to", "event_id", "bytes", "reason")
        for r in rows:
            table.add_row(
                time_ms(r["spooled_at_ms"]),
                r["channel"],
                r["topic"],
                r["destination"],
                r["event_id"],
                str(r["size"]),
                r["reason"],
            )
        console.print(table)


@spool.command("dead")
@spool_dir_option
@json_option
def dead(spool_dir: str | None, as_json: bool) -> None:
    """List the entries the broker refused for good (the spool's dead/ directory).

    Send them again with `spool replay --dead` once the cause is fixed.

    \b
    Example:
      tradecore-eventbus spool dead --json
    """
    settings = load(spool_dir=spool_dir)
    rows = [d.as_dict() for d in Spool(settings.bus.spool_dir).dead_entries()]
    if as_json:
        click.echo(json.dumps({"directory": settings.bus.spool_dir, "entries": rows}, indent=2))
        return
    console = Console()
    _header(console, "dead entr(ies)", settings.bus.spool_dir, len(rows))
    if rows:
        table = Table("name", "dead at", "channel", "to", "event_id", "bytes", "error")
        for r in rows:
            table.add_row(
                r["name"],
                time_ms(r["dead_at_ms"]),
                r["channel"],
                r["destination"],
                r["event_id"],
                str(r["size"]),
                f"{r['error_type']}: {r['error']}",
            )
        console.print(table)


async def _replay(settings: Settings, dead: bool, names: tuple[str, ...]) -> dict[str, int]:
    adapter = settings.kafka_adapter()
    bus = EventBus(adapter, event_bus_config=settings.bus, transport_config=settings.transport)
    try:
        await require_broker(adapter, settings)
        if dead:
            return await bus.replay_dead_spool(list(names) or None)
        return await bus.replay_spool()
    finally:
        await bus.close(settings.bus.close_timeout_seconds)


@spool.command("replay")
@click.option(
    "--dead",
    is_flag=True,
    help="Send the dead entries again (all, or those named with --name) after fixing the "
    "cause; they go back to their place in the spool, which is then drained.",
)
@click.option("--name", "names", multiple=True, help="A dead entry's name (with --dead).")
@spool_dir_option
@broker_options
@json_option
def replay(
    dead: bool,
    names: tuple[str, ...],
    spool_dir: str | None,
    bootstrap: str | None,
    topic_prefix: str | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Publish the spooled events to the broker now, in order; exit code 1 if some remain.

    \b
    Example:
      tradecore-eventbus spool replay --bootstrap 127.0.0.1:19092
    """
    if names and not dead:
        raise click.UsageError("--name needs --dead")
    settings = load(
        bootstrap=bootstrap, topic_prefix=topic_prefix, spool_dir=spool_dir, timeout=timeout
    )
    counts = run(_replay(settings, dead, names))
    if as_json:
        click.echo(json.dumps(counts))
    else:
        console = Console()
        table = Table(*counts)
        table.add_row(*(str(v) for v in counts.values()))
        console.print(f"spool [cyan]{settings.bus.spool_dir}[/] replayed:")
        console.print(table)
    if counts["remaining"]:
        raise click.exceptions.Exit(1)
