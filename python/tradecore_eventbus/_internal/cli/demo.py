"""``demo``: the main job of ``python -m tradecore_eventbus.demo``, on the memory transport
or on a broker."""

from __future__ import annotations

from ..demo import run as run_demo
from .errors import run
from .libs import click
from .settings import bootstrap_option, load


@click.command()
@bootstrap_option
@click.option(
    "--orders", type=click.IntRange(min=1), default=100, show_default=True, help="Orders to send."
)
def demo(bootstrap: str | None, orders: int) -> None:
    """Publish and consume pub/sub and stream events, printing what happened.

    In memory (no server needed), or on the broker given by --bootstrap.

    \b
    Example:
      tradecore-eventbus demo --bootstrap 127.0.0.1:19092
    """
    settings = load(bootstrap=bootstrap)
    broker = "memory" if bootstrap is None else "kafka"
    run(run_demo(broker, settings.transport.bootstrap_servers, orders))
