"""Channel names, Kafka topic names and how topics are created.

A channel follows the guide's ``{category}.{name}`` convention; its topic is the channel
behind ``KAFKA_TOPIC_PREFIX`` (``{prefix}.{category}.{name}``). The category decides the
retention of the topic ``initialize_topics`` creates.
"""

from __future__ import annotations

import logging

from ...exceptions import InvalidTopicError
from ..config.names import topic_name_problem
from ..config.settings import EventBusConfig, TransportConfig
from ..transports.structs import TopicSpec

logger = logging.getLogger("tradecore_eventbus.topics")

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

#: Retention by category (the guide's table; system, saga and DLQ values are this package's
#: choice, documented in the README).
CATEGORY_RETENTION_MS: dict[str, int] = {
    "transport": 7 * DAY_MS,
    "realtime": 6 * HOUR_MS,
    "system": 30 * DAY_MS,
    "saga": 30 * DAY_MS,
    "eventstore": 3650 * DAY_MS,
}
DEFAULT_RETENTION_MS = 7 * DAY_MS
DLQ_RETENTION_MS = 30 * DAY_MS

_warned_categories: set[str] = set()


def category_of(channel: str) -> str:
    return channel.split(".", 1)[0] if "." in channel else ""


def validate_topic_name(name: str) -> str:
    """Raises :class:`InvalidTopicError` (a ``ValueError``) if Kafka would refuse ``name``."""
    if not name:
        raise InvalidTopicError("a channel name must not be empty")
    problem = topic_name_problem(name)
    if problem is not None:
        raise InvalidTopicError(problem)
    return name


def topic_for(channel: str, prefix: str) -> str:
    """The Kafka topic of a channel, with the prefix applied. Validates the result and warns
    (once per category) when the category is not one of the guide's."""
    validate_topic_name(channel)
    category = category_of(channel)
    if category not in CATEGORY_RETENTION_MS and category not in _warned_categories:
        _warned_categories.add(category)
        logger.warning(
            "channel %r does not follow the {category}.{name} convention (known categories: %s)",
            channel,
            ", ".join(CATEGORY_RETENTION_MS),
        )
    prefix = prefix.strip().rstrip(".")
    topic = f"{prefix}.{channel}" if prefix else channel
    return validate_topic_name(topic)


def dlq_channel(channel: str, suffix: str) -> str:
    return f"{channel}{suffix}"


#: Retry tier ``n`` (1-based) of a channel is the channel ``{channel}.retry.{n}`` (decision 105).
RETRY_CHANNEL_INFIX = ".retry."


def retry_channel(channel: str, tier: int) -> str:
    """The channel of retry tier ``tier`` (1-based) of ``channel``."""
    return f"{channel}{RETRY_CHANNEL_INFIX}{tier}"


def retry_topic_specs(
    channel: str,
    delays_ms: tuple[int, ...],
    bus_config: EventBusConfig,
    transport_config: TransportConfig,
) -> list[TopicSpec]:
    """The retry topics of ``channel``, one per delay, with the channel's partition count
    (a key keeps its partition number) and the DLQ's retention (a record waits in one at
    most its tier's delay, which is below that)."""
    tc = bus_config.topic_config(channel)
    partitions = tc.partitions if tc and tc.partitions else transport_config.topic_partitions
    return [
        TopicSpec(
            topic_for(retry_channel(channel, tier), transport_config.topic_prefix),
            partitions,
            transport_config.topic_replication_factor,
            {"retention.ms": str(DLQ_RETENTION_MS)},
        )
        for tier in range(1, len(delays_ms) + 1)
    ]


def retention_ms(channel: str, *, dlq: bool = False) -> int:
    if dlq:
        return DLQ_RETENTION_MS
    return CATEGORY_RETENTION_MS.get(category_of(channel), DEFAULT_RETENTION_MS)


def topic_specs(
    channel: str,
    bus_config: EventBusConfig,
    transport_config: TransportConfig,
    *,
    with_dlq: bool = True,
) -> list[TopicSpec]:
    """The topic of ``channel`` (its DLQ topic, and its retry topics when its topic config
    has ``retry_topic_delays_ms``) as ``initialize_topics`` creates them."""
    tc = bus_config.topic_config(channel)
    partitions = tc.partitions if tc and tc.partitions else transport_config.topic_partitions
    retention = tc.retention_ms if tc and tc.retention_ms else retention_ms(channel)
    rf = transport_config.topic_replication_factor
    prefix = transport_config.topic_prefix
    specs = [
        TopicSpec(topic_for(channel, prefix), partitions, rf, {"retention.ms": str(retention)})
    ]
    if with_dlq and bus_config.enable_dlq:
        dlq = dlq_channel(channel, bus_config.dlq_topic_suffix)
        specs.append(
            TopicSpec(
                topic_for(dlq, prefix),
                partitions,
                rf,
                {"retention.ms": str(retention_ms(dlq, dlq=True))},
            )
        )
    if tc is not None and tc.retry_topic_delays_ms:
        specs.extend(
            retry_topic_specs(channel, tc.retry_topic_delays_ms, bus_config, transport_config)
        )
    return specs
