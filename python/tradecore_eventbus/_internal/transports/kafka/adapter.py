"""``RedpandaTransportAdapter``: the Kafka / Redpanda transport, on the Rust core."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tradecore_eventbus import _core

from ....exceptions import ClosedError, EventBusError, TransportTimeoutError
from ...config.consumer_groups import WorkerType
from ...config.settings import EventBusConfig, TransportConfig
from ...reliability.backoff import Backoff
from ...reliability.backoff import sleep as backoff_sleep
from ...wire.envelope import event_id_of
from ..poll import close_within, poll_batch
from ..protocol import (
    ConsumerLike,
    ConsumerSpec,
    ProducerLike,
    TopicSpec,
    TransportAdapter,
)

logger = logging.getLogger("tradecore_eventbus.redpanda")


class RedpandaTransportAdapter(TransportAdapter):
    """Kafka-compatible transport (Apache Kafka, Redpanda) through librdkafka in Rust.

    ``bootstrap_servers`` and ``client_id`` override the transport config (by default
    ``TransportConfig.from_env()``); ``worker_type`` sets the consumer group that
    ``subscribe_stream`` uses when it is given none.
    """

    name = "redpanda"

    def __init__(
        self,
        bootstrap_servers: str | None = None,
        client_id: str | None = None,
        event_bus_config: EventBusConfig | None = None,
        transport_config: TransportConfig | None = None,
        worker_type: WorkerType | None = None,
    ) -> None:
        tc = transport_config if transport_config is not None else TransportConfig.from_env()
        if bootstrap_servers:
            tc = replace(tc, bootstrap_servers=bootstrap_servers)
        if client_id:
            tc = replace(tc, client_id=client_id)
        self.transport_config = tc
        #: Settings this adapter's own arguments gave (they win over ``transport_config``).
        self.own_fields = frozenset(
            name
            for name, value in (("bootstrap_servers", bootstrap_servers), ("client_id", client_id))
            if value
        )
        self.event_bus_config = (
            event_bus_config if event_bus_config is not None else EventBusConfig.from_env()
        )
        self.worker_type = worker_type
        self._producer: _core.Producer | None = None
        self._admin: _core.Admin | None = None
        self._known_topics: set[str] = set()
        self._closed = False

    def __repr__(self) -> str:
        # Never the librdkafka properties themselves: they may hold secrets (decision 50).
        tc = self.transport_config
        protocol = tc.librdkafka_config.get("security.protocol", "plaintext").lower()
        return (
            f"RedpandaTransportAdapter(bootstrap_servers={tc.bootstrap_servers!r}, "
            f"client_id={tc.client_id!r}, security_protocol={protocol!r}, closed={self._closed})"
        )

    @property
    def default_consumer_group(self) -> str | None:
        return self.worker_type.consumer_group if self.worker_type is not None else None

    def _admin_client(self) -> _core.Admin:
        if self._admin is None:
            tc = self.transport_config
            self._admin = _core.Admin(
                tc.bootstrap_servers, client_id=f"{tc.client_id}-admin", config=tc.librdkafka_config
            )
        return self._admin

    async def start(self) -> None:
        if self._closed:
            raise ClosedError("the transport adapter is closed")
        if self._producer is None:
            tc = self.transport_config
            self._producer = _core.Producer(
                tc.bootstrap_servers,
                client_id=tc.client_id,
                acks=tc.producer_acks,
                compression_type=tc.producer_compression_type,
                linger_ms=tc.producer_linger_ms,
                batch_size=tc.producer_batch_size,
                enable_idempotence=tc.producer_enable_idempotence,
                delivery_timeout_ms=tc.producer_delivery_timeout_ms,
                config=tc.librdkafka_config,
            )

    def producer(self) -> ProducerLike:
        if self._closed:
            raise ClosedError("the transport adapter is closed")
        if self._producer is None:
            raise ClosedError("the transport adapter was not started")
        return self._producer

    def new_consumer(self, spec: ConsumerSpec) -> ConsumerLike:
        tc = self.transport_config
        return _core.Consumer(
            tc.bootstrap_servers,
            spec.group_id,
            client_id=spec.client_id,
            auto_offset_reset=spec.auto_offset_reset,
            enable_commit=spec.enable_commit,
            commit_batch_size=tc.commit_batch_size,
            commit_interval_ms=tc.commit_interval_ms,
            session_timeout_ms=tc.consumer_session_timeout_ms,
            heartbeat_interval_ms=tc.consumer_heartbeat_interval_ms,
            max_poll_records=spec.max_poll_records,
            partition_assignment_strategy=tc.consumer_partition_assignment_strategy,
            group_instance_id=spec.group_instance_id,
            config=tc.librdkafka_config,
        )

    async def ensure_topics(
        self, specs: Sequence[TopicSpec], timeout: float | None = None
    ) -> dict[str, str]:
        missing = [s for s in specs if s.name not in self._known_topics]
        result = {s.name: "exists" for s in specs if s.name in self._known_topics}
        if missing:
            if timeout is None:
                # Topic creation runs on a channel's first publish: one attempt's time.
                timeout = self.transport_config.producer_delivery_timeout_ms / 1000.0
            created = await self._admin_client().create_topics(
                [(s.name, s.partitions, s.replication_factor, dict(s.configs)) for s in missing],
                timeout,
            )
            result.update(created)
            self._known_topics.update(created)
        return result

    async def initialize_topics(
        self, enable_auto_create: bool = True, channels: Sequence[str] | None = None
    ) -> dict[str, str]:
        result = await super().initialize_topics(enable_auto_create, channels)
        created = [name for name, state in result.items() if state == "created"]
        if created:
            await self._until_listed(created)
        return result

    async def _until_listed(self, names: Sequence[str]) -> None:
        """Waits until the brokers' metadata shows topics just created. CreateTopics answers
        once the controller committed them; a broker learns of them from the metadata log a
        little later (long after under load), and until then `list_topics`,
        `describe_topic` and the CLI would say they do not exist. Bounded by one publish
        attempt's time, polled on the publish retry schedule (its caps, no jitter)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.transport_config.producer_delivery_timeout_ms / 1000.0
        backoff = Backoff(self.event_bus_config.publish_retry, jitter=False)
        while True:
            listed = await self.list_topics()
            unseen = [n for n in names if n not in listed]
            if not unseen:
                return
            delay = backoff.next_delay_s()
            if loop.time() + delay > deadline:
                raise TransportTimeoutError(
                    f"topics created but not yet in the brokers' metadata after "
                    f"KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS: {', '.join(unseen)}"
                )
            await backoff_sleep(delay)

    async def find_event_ids(
        self, topic: str, event_ids: set[str], since_ms: int, timeout: float = 30.0
    ) -> set[str]:
        tc = self.transport_config
        reader = _core.Consumer(
            tc.bootstrap_servers,
            f"{tc.consumer_group_id_prefix}-reader-{uuid.uuid4().hex[:12]}",
            client_id=f"{tc.client_id}-reader",
            enable_commit=False,
            config=tc.librdkafka_config,
        )
        found: set[str] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            # Right after a broker comes back its partitions may briefly have no leader:
            # retried on the publish schedule (its caps) within the lookup's time.
            backoff = Backoff(self.event_bus_config.publish_retry, jitter=False)
            while True:
                try:
                    plan = await reader.assign_from_time(topic, since_ms, timeout)
                    break
                except EventBusError as exc:
                    delay = backoff.next_delay_s()
                    if not exc.retriable or loop.time() + delay > deadline:
                        raise
                    await backoff_sleep(delay)
            remaining = {p: end for p, start, end in plan if start < end}
            while remaining and loop.time() < deadline:
                for record in await poll_batch(reader, 500, min(1.0, deadline - loop.time())):
                    event_id = event_id_of(record.headers, record.value)
                    if event_id is not None and event_id in event_ids:
                        found.add(event_id)
                    end = remaining.get(record.partition)
                    if end is not None and record.offset + 1 >= end:
                        del remaining[record.partition]
            if remaining:
                raise TransportTimeoutError(
                    f"reading {topic} back took longer than {timeout}s "
                    f"({len(remaining)} partition(s) not read to the end)"
                )
        finally:
            await close_within(
                reader, self.event_bus_config.close_timeout_seconds, f"reader of {topic}"
            )
        return found

    async def describe_topic(self, topic: str) -> dict[str, str]:
        return await self._admin_client().describe_topic(topic)

    async def list_topics(self) -> dict[str, int]:
        return await self._admin_client().list_topics()

    async def ping(self, timeout: float) -> bool:
        try:
            return await self._admin_client().ping(timeout) > 0
        except EventBusError as exc:
            logger.warning("ping failed: %s", exc)
            return False

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = dict(self._producer.stats()) if self._producer is not None else {}
        stats["producer_started"] = self._producer is not None and not self._closed
        # The producer's or the admin client's: whichever met the refusal first.
        if not stats.get("authentication_error") and self._admin is not None:
            stats["authentication_error"] = self._admin.stats()["authentication_error"]
        return stats

    async def close(self, timeout: float | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        if self._producer is not None:
            await self._producer.close(
                self.event_bus_config.close_timeout_seconds if timeout is None else timeout
            )
