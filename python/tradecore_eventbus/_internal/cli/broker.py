"""Reaching the broker: a command that needs it says so in one line when it does not answer,
instead of waiting in librdkafka's reconnect loop."""

from __future__ import annotations

from ..reliability.backoff import Backoff, sleep
from ..transports.protocol import TransportAdapter
from .errors import CliError
from .settings import Settings


async def require_broker(adapter: TransportAdapter, settings: Settings) -> None:
    if not await adapter.ping(settings.timeout):
        raise CliError(
            f"the broker at {settings.transport.bootstrap_servers} did not answer within "
            f"{settings.timeout:g}s (--bootstrap or REDPANDA_BOOTSTRAP_SERVERS; "
            "--timeout or EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS)"
        )


async def existing_topic(
    adapter: TransportAdapter, topic: str, channel: str, settings: Settings
) -> None:
    """Raises a one-line error when ``topic`` (of ``channel``) does not exist.

    A topic created a moment ago may not be in the broker's metadata yet: it is looked for
    again on the publish retry schedule (``EVENT_BUS_PUBLISH_RETRY_*``) before the error."""
    backoff = Backoff(settings.bus.publish_retry, jitter=False)
    while topic not in await adapter.list_topics():
        if backoff.exhausted:
            raise CliError(
                f"topic {topic!r} (channel {channel!r}) does not exist; "
                f"`tradecore-eventbus topics init {channel}` creates it"
            )
        await sleep(backoff.next_delay_s())
