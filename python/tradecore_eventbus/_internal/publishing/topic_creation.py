"""Creating a channel's topics (and its DLQ topic) on first use, once per channel."""

from __future__ import annotations

import asyncio
import functools
import logging

from ...exceptions import AuthenticationError, EventBusError, TransportTimeoutError
from ..config.settings import EventBusConfig, TransportConfig
from ..transports.protocol import TransportAdapter
from ..wire.topics import topic_specs

logger = logging.getLogger("tradecore_eventbus.publisher")


class ChannelTopics:
    def __init__(
        self, adapter: TransportAdapter, config: EventBusConfig, transport_config: TransportConfig
    ) -> None:
        self.adapter = adapter
        self.config = config
        self.transport_config = transport_config
        self._ensured: set[str] = set()
        # Topic creations under way, shared by every send that needs the channel meanwhile.
        self._ensuring: dict[str, asyncio.Future[None]] = {}

    def ensured(self, channel: str) -> bool:
        return channel in self._ensured

    @property
    def attempt_timeout_s(self) -> float:
        """How long one publish attempt may wait for the broker: the producer's delivery
        timeout (``KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS``)."""
        return self.transport_config.producer_delivery_timeout_ms / 1000.0

    async def ensure_channel(
        self, channel: str, *, required: bool = True, timeout: float | None = None
    ) -> None:
        """Creates the channel's topic (and DLQ topic) as ``initialize_topics`` would, once,
        waiting at most ``timeout`` seconds (default: one publish attempt's time); past it,
        ``TransportTimeoutError``.

        With ``required=False`` a failure is logged and tried again on the next call."""
        if channel in self._ensured:
            return
        wait = self.attempt_timeout_s if timeout is None else timeout
        # Sends that arrive while the topics are being created wait for that one creation,
        # and resume in the order they arrived: two sends started in one turn (single
        # publishes coalesced into two batches, say) then reach the producer in call order,
        # where each creating the topics itself let the second overtake the first.
        creating = self._ensuring.get(channel)
        if creating is None:
            creating = asyncio.ensure_future(self._create_topics(channel, wait))
            self._ensuring[channel] = creating
            creating.add_done_callback(functools.partial(self._created, channel))
        try:
            # Shielded: one caller cancelled must not cancel the creation the others await.
            # Each caller waits at most its own timeout (the creation is bounded by the
            # timeout of the caller that started it).
            try:
                await asyncio.wait_for(asyncio.shield(creating), wait)
            except TimeoutError:
                raise TransportTimeoutError(
                    f"creating the topics of {channel} took longer than {wait:g}s "
                    f"(bootstrap servers {self.transport_config.bootstrap_servers})"
                ) from None
        except AuthenticationError:
            raise  # the send would be refused the same way: say so now (decision 47)
        except EventBusError as exc:
            if required:
                raise
            logger.warning("could not create the topics of %s yet: %s", channel, exc)

    def _created(self, channel: str, creating: asyncio.Future[None]) -> None:
        del self._ensuring[channel]
        # Retrieved here too: if every caller was cancelled, nobody else reads the error.
        if not creating.cancelled():
            creating.exception()

    async def _create_topics(self, channel: str, timeout: float) -> None:
        await self.adapter.ensure_topics(
            topic_specs(channel, self.config, self.transport_config), timeout
        )
        self._ensured.add(channel)
