"""``topics init`` / ``topics list``: a channel's topics as the bus creates them, and what is
on the broker."""

from __future__ import annotations

import asyncio
import fnmatch
import json
from dataclasses import asdict, dataclass
from typing import Any

from ..transports.kafka.adapter import RedpandaTransportAdapter
from ..wire.topics import topic_specs
from .broker import require_broker
from .errors import run
from .libs import Console, Table, click
from .settings import Settings, broker_options, json_option, load
from .values import duration_ms

#: Topics described at once by ``topics list`` (one admin request each).
DESCRIBE_CONCURRENCY = 8


@click.group()
def topics() -> None:
    """Create a channel's topics, list the broker's topics."""


@dataclass(frozen=True)
class TopicRow:
    topic: str
    partitions: int
    retention_ms: int | None
    dlq: bool
    status: str = ""


async def _init(settings: Settings, channels: tuple[str, ...]) -> list[TopicRow]:
    adapter = settings.kafka_adapter()
    try:
        await require_broker(adapter, settings)
        # The names, partitions, retention and DLQ topics the bus itself creates on first use.
        specs = [s for ch in channels for s in topic_specs(ch, settings.bus, settings.transport)]
        status = await adapter.ensure_topics(specs, settings.timeout)
    finally:
        await adapter.close()
    suffix = settings.bus.dlq_topic_suffix
    return [
        TopicRow(
            s.name,
            s.partitions,
            int(s.configs["retention.ms"]),
            s.name.endswith(suffix),
            status.get(s.name, ""),
        )
        for s in specs
    ]


async def _list(settings: Settings, pattern: str, internal: bool) -> list[TopicRow]:
    adapter = settings.kafka_adapter()
    try:
        await require_broker(adapter, settings)
        found = await adapter.list_topics()
        names = sorted(
            t
            for t in found
            if fnmatch.fnmatchcase(t, pattern) and (internal or not t.startswith("__"))
        )
        configs = await _describe_all(adapter, names)
    finally:
        await adapter.close()
    suffix = settings.bus.dlq_topic_suffix
    return [
        TopicRow(
            name,
            found[name],
            int(retention) if (retention := configs[name].get("retention.ms")) else None,
            name.endswith(suffix),
        )
        for name in names
    ]


async def _describe_all(
    adapter: RedpandaTransportAdapter, names: list[str]
) -> dict[str, dict[str, str]]:
    limit = asyncio.Semaphore(DESCRIBE_CONCURRENCY)

    async def describe(name: str) -> dict[str, str]:
        async with limit:
            return await adapter.describe_topic(name)

    described = await asyncio.gather(*(describe(n) for n in names))
    return dict(zip(names, described, strict=True))


def _print(rows: list[TopicRow], as_json: bool, *, with_status: bool) -> None:
    if as_json:
        click.echo(json.dumps([_row_json(r, with_status) for r in rows], indent=2))
        return
    table = Table("topic", "partitions", "retention", "DLQ")
    if with_status:
        table.add_column("status")
    for r in rows:
        cells = [
            r.topic,
            str(r.partitions),
            duration_ms(r.retention_ms) if r.retention_ms is not None else "broker default",
            "yes" if r.dlq else "",
        ]
        table.add_row(*cells, *([r.status] if with_status else []))
    Console().print(table)


def _row_json(row: TopicRow, with_status: bool) -> dict[str, Any]:
    out = asdict(row)
    if not with_status:
        del out["status"]
    return out


@topics.command("init")
@click.argument("channels", nargs=-1, required=True, metavar="CHANNEL...")
@broker_options
@json_option
def init(
    channels: tuple[str, ...],
    bootstrap: str | None,
    topic_prefix: str | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Create the topics of each CHANNEL and its DLQ topic, as the bus would on first use
    (KAFKA_TOPIC_PARTITIONS partitions, the retention of the channel's category).

    \b
    Example:
      tradecore-eventbus topics init transport.orders realtime.prices
    """
    settings = load(bootstrap=bootstrap, topic_prefix=topic_prefix, timeout=timeout)
    _print(run(_init(settings, channels)), as_json, with_status=True)


@topics.command("list")
@click.argument("pattern", default="*")
@click.option("--internal", is_flag=True, help="Also the broker's own topics (__...).")
@broker_options
@json_option
def list_(
    pattern: str,
    internal: bool,
    bootstrap: str | None,
    topic_prefix: str | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """List the broker's topics matching PATTERN (a glob, default: all) with their
    partitions, retention and whether they are DLQ topics (DLQ_TOPIC_SUFFIX).

    \b
    Example:
      tradecore-eventbus topics list 'transport.*'
    """
    settings = load(bootstrap=bootstrap, topic_prefix=topic_prefix, timeout=timeout)
    _print(run(_list(settings, pattern, internal)), as_json, with_status=False)
