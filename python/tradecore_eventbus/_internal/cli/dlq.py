"""``dlq list`` / ``dlq replay``: a channel's dead letters, counted by error type, and sent
back to the channel (the library's replay, ``EventBus.replay_dlq``)."""

from __future__ import annotations

import asyncio
import heapq
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..bus.event_bus import EventBus
from ..reliability.dead_letters.record import METADATA_KEY, RAW_VALUE_KEY
from ..reliability.replay import ReplayProgress
from ..transports.poll import poll_batch
from ..wire.topics import dlq_channel
from .broker import existing_topic, require_broker
from .errors import CliError, run
from .libs import (
    BarColumn,
    Console,
    MofNCompleteColumn,
    Progress,
    Table,
    TextColumn,
    TimeElapsedColumn,
    click,
)
from .reader import topic_reader
from .settings import Settings, broker_options, json_option, load
from .values import json_object


@click.group()
def dlq() -> None:
    """A channel's dead letters: list them, replay them."""


@dataclass
class DlqSummary:
    topic: str
    total: int = 0
    by_error_type: Counter[str] = field(default_factory=Counter)
    #: The newest letters as (timestamp, partition, offset, letter), oldest first.
    newest: list[tuple[int, int, int, dict[str, Any]]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "total": self.total,
            "by_error_type": dict(self.by_error_type.most_common()),
            "newest": [letter for *_, letter in self.newest],
        }


def _letter(value: dict[str, Any] | None, partition: int, offset: int) -> dict[str, Any]:
    """What a listing shows of one DLQ record (the event, less its body)."""
    if value is None:
        return {"partition": partition, "offset": offset, "error_type": "(not a dead letter)"}
    meta = value.get(METADATA_KEY)
    meta = meta if isinstance(meta, dict) else {}
    return {
        "partition": partition,
        "offset": offset,
        "event_type": value.get("event_type"),
        "event_id": value.get("event_id"),
        "raw": RAW_VALUE_KEY in value,
        "error_type": meta.get("error_type", "(unknown)"),
        "error_message": meta.get("error_message"),
        "failed_at": meta.get("failed_at"),
        "retry_count": meta.get("retry_count"),
        "consumer_group": meta.get("consumer_group"),
        "original_partition": meta.get("original_partition"),
        "original_offset": meta.get("original_offset"),
    }


async def _list(settings: Settings, channel: str, newest: int) -> DlqSummary:
    adapter = settings.kafka_adapter()
    topic = adapter.topic_for(dlq_channel(channel, settings.bus.dlq_topic_suffix))
    try:
        await require_broker(adapter, settings)
        await existing_topic(adapter, topic, channel, settings)
    finally:
        await adapter.close()
    summary = DlqSummary(topic)
    heap: list[tuple[int, int, int, dict[str, Any]]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.timeout
    async with topic_reader(settings, topic, since_ms=0, purpose="dlq-list") as reader:
        batch = settings.transport.consumer_max_poll_records
        # Up to the end offsets of when the reading began: letters written meanwhile are
        # for the next listing.
        while reader.behind and loop.time() < deadline:
            for record in await poll_batch(reader.consumer, batch, deadline - loop.time()):
                reader.passed(record)
                letter = _letter(json_object(record.value), record.partition, record.offset)
                summary.total += 1
                summary.by_error_type[str(letter["error_type"])] += 1
                item = (record.timestamp or 0, record.partition, record.offset, letter)
                if len(heap) < newest:
                    heapq.heappush(heap, item)
                elif newest:
                    heapq.heappushpop(heap, item)
        if reader.behind:
            raise _timeout(topic, settings, len(reader.behind))
    summary.newest = sorted(heap, key=lambda t: t[:3])
    return summary


def _timeout(topic: str, settings: Settings, partitions: int) -> CliError:
    return CliError(
        f"reading {topic} took longer than {settings.timeout:g}s ({partitions} partition(s) "
        "not read to the end; --timeout)"
    )


def _print_summary(summary: DlqSummary) -> None:
    console = Console()
    console.print(f"[bold]{summary.topic}[/]: {summary.total} dead letter(s)")
    if not summary.total:
        return
    counts = Table("error_type", "count")
    for error_type, n in summary.by_error_type.most_common():
        counts.add_row(error_type, str(n))
    console.print(counts)
    newest = Table(
        "failed at", "error_type", "event_type", "event_id", "original", "error", title="newest"
    )
    for *_, letter in reversed(summary.newest):
        newest.add_row(
            _when(letter.get("failed_at")),
            str(letter["error_type"]),
            str(letter.get("event_type") or ("(raw bytes)" if letter.get("raw") else "-")),
            str(letter.get("event_id") or "-"),
            f"p{letter.get('original_partition')}@{letter.get('original_offset')}",
            _short(letter.get("error_message")),
        )
    console.print(newest)


def _when(failed_at: object) -> str:
    """``2026-12-07T03:04:57.441623Z`` -> ``2026-12-07 03:04:57``."""
    return str(failed_at)[:19].replace("T", " ") if failed_at else "-"


def _short(text: object, width: int = 60) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= width else s[: width - 1] + "…"


@dlq.command("list")
@click.argument("channel")
@click.option(
    "--newest",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="How many of the newest dead letters to show.",
)
@broker_options
@json_option
def list_(
    channel: str,
    newest: int,
    bootstrap: str | None,
    topic_prefix: str | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Count CHANNEL's dead letters by error_type and show the newest few.

    \b
    Example:
      tradecore-eventbus dlq list transport.orders --newest 3
    """
    settings = load(bootstrap=bootstrap, topic_prefix=topic_prefix, timeout=timeout)
    summary = run(_list(settings, channel, newest))
    if as_json:
        click.echo(json.dumps(summary.as_json(), indent=2, default=str))
    else:
        _print_summary(summary)


# ------------------------------------------------------------------ replay


def replay_group(group: str, error_types: tuple[str, ...]) -> str:
    """A filtered replay keeps its progress in a group of its own: the letters it passes
    over must stay replayable by a later, unfiltered replay (decision 81)."""
    if not error_types:
        return group
    return f"{group}-only-{'-'.join(sorted(set(error_types)))}"


async def _replay(
    settings: Settings,
    channel: str,
    *,
    group: str,
    error_types: tuple[str, ...],
    dry_run: bool,
    limit: int | None,
    idle: float,
    console: Console,
) -> dict[str, int]:
    adapter = settings.kafka_adapter()
    bus = EventBus(adapter, event_bus_config=settings.bus, transport_config=settings.transport)
    try:
        await require_broker(adapter, settings)
        await existing_topic(
            adapter,
            adapter.topic_for(dlq_channel(channel, settings.bus.dlq_topic_suffix)),
            channel,
            settings,
        )
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            verb = "checking" if dry_run else "replaying"
            task = progress.add_task(f"{verb} {channel}", total=None, counts="")

            def advance(step: ReplayProgress) -> None:
                read = step.counts["read"]
                total = read + step.remaining if step.remaining is not None else None
                progress.update(
                    task, completed=read, total=total, counts=_counts_text(step, dry_run)
                )

            counts = await bus.replay_dlq(
                channel,
                max_events=limit,
                idle_timeout=idle,
                group=replay_group(group, error_types),
                error_types=list(error_types) if error_types else None,
                dry_run=dry_run,
                progress=advance,
                stop_at_end=True,
            )
            progress.update(task, completed=counts["read"], total=counts["read"])
        return counts
    finally:
        await bus.close(settings.bus.close_timeout_seconds)


def _counts_text(step: ReplayProgress, dry_run: bool) -> str:
    c = step.counts
    sent = "would republish" if dry_run else "republished"
    return f"{sent} {c['republished']} skipped {c['skipped']} filtered {c['filtered']}"


@dlq.command("replay")
@click.argument("channel")
@click.option("--dry-run", is_flag=True, help="Read and count; publish and commit nothing.")
@click.option(
    "--error-type",
    "error_types",
    multiple=True,
    metavar="TYPE",
    help="Only dead letters of this error_type (repeat for several).",
)
@click.option("--max", "limit", type=click.IntRange(min=1), help="Read at most N dead letters.")
@click.option(
    "--group",
    default="dlq-replay",
    show_default=True,
    help="Consumer group keeping the replay's progress (with --error-type: GROUP-only-TYPE).",
)
@click.option(
    "--idle",
    type=click.FloatRange(min=0.0, min_open=True),
    metavar="SECONDS",
    help="Stop when no dead letter came for SECONDS (default: EVENT_BUS_SUB_BLOCK_MS); "
    "a replay also stops once it has read the DLQ to its end.",
)
@broker_options
@json_option
def replay(
    channel: str,
    dry_run: bool,
    error_types: tuple[str, ...],
    limit: int | None,
    group: str,
    idle: float | None,
    bootstrap: str | None,
    topic_prefix: str | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Send CHANNEL's dead letters back to CHANNEL (same event_id and key), with a progress
    bar and a count summary. Progress is committed in --group: a letter is replayed once.

    \b
    Example:
      tradecore-eventbus dlq replay transport.orders --error-type ValueError --dry-run
    """
    settings = load(bootstrap=bootstrap, topic_prefix=topic_prefix, timeout=timeout)
    console = Console(stderr=as_json)
    wait = idle if idle is not None else settings.bus.sub_block_ms / 1000.0
    counts = run(
        _replay(
            settings,
            channel,
            group=group,
            error_types=error_types,
            dry_run=dry_run,
            limit=limit,
            idle=wait,
            console=console,
        )
    )
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, **counts}))
        return
    table = Table("read", "would republish" if dry_run else "republished", "skipped", "filtered")
    table.add_column("failed")
    table.add_row(
        *(str(counts[k]) for k in ("read", "republished", "skipped", "filtered", "failed"))
    )
    console.print(table)
    if dry_run:
        console.print("[yellow]dry run: nothing was published or committed[/]")
    if counts["failed"]:
        raise click.exceptions.Exit(1)
