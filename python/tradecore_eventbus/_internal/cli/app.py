"""The ``tradecore-eventbus`` command group: each command lives in a module of its own."""

from __future__ import annotations

import logging
import sys

from .bench import bench
from .demo import demo
from .dlq import dlq
from .health import health
from .libs import click
from .spool import spool
from .tail import tail
from .topics import topics


def _logging(verbose: int) -> None:
    """Quiet by default: the library's (and librdkafka's) warnings would otherwise reach
    stderr through logging's last-resort handler, around the command's one-line error."""
    if verbose:
        level = logging.DEBUG if verbose > 1 else logging.INFO
        logging.basicConfig(
            level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    else:
        logging.getLogger().addHandler(logging.NullHandler())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Log to stderr (-v: INFO, -vv: DEBUG).")
@click.version_option(package_name="tradecore-eventbus", prog_name="tradecore-eventbus")
def cli(verbose: int) -> None:
    """Operate a tradecore-eventbus deployment: topics, dead letters, the spool, health.

    Settings come from the library's environment variables (REDPANDA_BOOTSTRAP_SERVERS,
    KAFKA_TOPIC_PREFIX, EVENT_BUS_SPOOL_DIR, ...); flags override them.
    """
    _logging(verbose)


for command in (demo, health, topics, tail, dlq, spool, bench):
    cli.add_command(command)
