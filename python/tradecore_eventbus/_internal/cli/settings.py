"""Settings of a command: the library's environment variables (``EventBusConfig.from_env``,
``TransportConfig.from_env``), overridden by the command's flags. A value that cannot be
used is one line naming the flag or the variable (a ``ConfigError`` from the library)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from ...exceptions import ConfigError
from ..config.checks import check_spool_dir
from ..config.settings import EventBusConfig, TransportConfig
from ..transports.kafka.adapter import RedpandaTransportAdapter
from ..transports.memory.adapter import MemoryTransportAdapter
from ..transports.protocol import TransportAdapter
from .errors import CliError
from .libs import click

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Settings:
    bus: EventBusConfig
    transport: TransportConfig
    #: How long a command waits for the broker to answer (``--timeout``, else
    #: ``EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS``: how long a subscribe waits for the cluster).
    timeout: float

    def kafka_adapter(self) -> RedpandaTransportAdapter:
        return RedpandaTransportAdapter(event_bus_config=self.bus, transport_config=self.transport)

    def memory_adapter(self) -> MemoryTransportAdapter:
        return MemoryTransportAdapter(self.bus, self.transport)

    def adapter(self, memory: bool) -> TransportAdapter:
        return self.memory_adapter() if memory else self.kafka_adapter()


def load(
    *,
    bootstrap: str | None = None,
    topic_prefix: str | None = None,
    spool_dir: str | None = None,
    timeout: float | None = None,
) -> Settings:
    """The settings from the environment, with the flags that were given applied (each
    checked by the library's own rules, and named in the error)."""
    try:
        bus = EventBusConfig.from_env()
        transport = TransportConfig.from_env()
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if bootstrap is not None:
        transport = _with_flag(transport, "--bootstrap", "bootstrap_servers", bootstrap)
    if topic_prefix is not None:
        transport = _with_flag(transport, "--topic-prefix", "topic_prefix", topic_prefix)
    if spool_dir is not None:
        try:
            check_spool_dir(spool_dir, "--spool-dir")
        except ConfigError as exc:
            raise CliError(str(exc)) from None
        bus = replace(bus, spool_dir=spool_dir)
    wait = bus.consumer_poll_timeout_ms / 1000.0 if timeout is None else timeout
    return Settings(bus, transport, wait)


def _with_flag(transport: TransportConfig, flag: str, name: str, value: str) -> TransportConfig:
    try:
        return replace(transport, **{name: value})  # type: ignore[arg-type]
    except ConfigError as exc:
        # The library names the field and its variable; the flag is what was typed.
        raise CliError(f"{flag}: {exc}") from None


# ---------------------------------------------------------------- shared options


def bootstrap_option(function: F) -> F:
    return click.option(
        "--bootstrap",
        metavar="HOST:PORT[,...]",
        help="Kafka bootstrap servers (default: REDPANDA_BOOTSTRAP_SERVERS, localhost:19092).",
    )(function)


def topic_prefix_option(function: F) -> F:
    return click.option(
        "--topic-prefix",
        metavar="PREFIX",
        help="Prefix of the channels' topics (default: KAFKA_TOPIC_PREFIX, none).",
    )(function)


def timeout_option(function: F) -> F:
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0.0, min_open=True),
        metavar="SECONDS",
        help="How long to wait for the broker to answer "
        "(default: EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS, 15 s).",
    )(function)


def broker_options(function: F) -> F:
    """``--bootstrap``, ``--topic-prefix`` and ``--timeout``."""
    return bootstrap_option(topic_prefix_option(timeout_option(function)))


def spool_dir_option(function: F) -> F:
    return click.option(
        "--spool-dir",
        metavar="DIR",
        help="The spool directory (default: EVENT_BUS_SPOOL_DIR, else "
        "$XDG_STATE_HOME/tradecore-eventbus/spool).",
    )(function)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")(
        function
    )
