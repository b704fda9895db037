"""``health``: ``EventBus.health_check()`` of a bus built from the settings, as JSON."""

from __future__ import annotations

import json

from ..bus.event_bus import EventBus
from ..bus.health import HealthReport
from .errors import run
from .libs import click
from .settings import Settings, broker_options, load, spool_dir_option


async def _health(settings: Settings) -> HealthReport:
    adapter = settings.kafka_adapter()
    bus = EventBus(adapter, event_bus_config=settings.bus, transport_config=settings.transport)
    try:
        # Not started: starting would also drain the spool, which is `spool replay`'s job.
        # Health is the broker's answer (the ping), the breakers and the spool.
        return await bus.health_check(settings.timeout)
    finally:
        await bus.close(settings.bus.close_timeout_seconds)


@click.command()
@broker_options
@spool_dir_option
def health(
    bootstrap: str | None, topic_prefix: str | None, timeout: float | None, spool_dir: str | None
) -> None:
    """Print the bus's health_check() as JSON; exit code 1 when it is unhealthy.

    Unhealthy: the broker did not answer within --timeout, or a breaker is open.

    \b
    Example:
      tradecore-eventbus health --bootstrap 127.0.0.1:19092 --timeout 5
    """
    settings = load(
        bootstrap=bootstrap, topic_prefix=topic_prefix, spool_dir=spool_dir, timeout=timeout
    )
    report = run(_health(settings))
    click.echo(json.dumps(report, indent=2, sort_keys=True, default=str))
    if not report.get("healthy"):
        raise click.exceptions.Exit(1)
