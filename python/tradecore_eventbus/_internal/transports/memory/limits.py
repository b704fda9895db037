"""Kafka's size limits, as the in-memory transport enforces them (decision 54).

The Kafka transport refuses a record before sending it when its wire size is larger than
librdkafka's ``message.max.bytes`` (default 1,000,000; set it through
``TransportConfig.librdkafka_config``, which both transports read). The broker refuses a
record batch larger than the topic's ``max.message.bytes`` (broker default 1,048,588). The
memory transport applies both, with the same error: ``KafkaError`` code 10
``MessageSizeTooLarge``, not retriable, not possibly persisted (inside a
``BatchDeliveryError`` for a batch), so that a publish fails the same way on both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ....exceptions import ConfigError, KafkaError
from ..structs import Header

#: librdkafka's default ``message.max.bytes`` (the producer's own limit).
CLIENT_MESSAGE_MAX_BYTES = 1_000_000
#: Kafka's default broker ``message.max.bytes`` (a topic's ``max.message.bytes``).
BROKER_MESSAGE_MAX_BYTES = 1_048_588
#: librdkafka's RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD: the varints and attributes of a record.
RECORD_OVERHEAD = 36
#: A v2 record batch header, which the broker counts against ``max.message.bytes``.
BATCH_OVERHEAD = 61

MESSAGE_SIZE_TOO_LARGE = 10


def _zigzag_varint_size(n: int) -> int:
    z = (n << 1) ^ (n >> 63)
    size = 1
    while z >= 0x80:
        z >>= 7
        size += 1
    return size


def record_wire_size(key: bytes | None, value: bytes | None, headers: Sequence[Header]) -> int:
    """The size librdkafka compares with ``message.max.bytes`` (``rd_kafka_msg_new0``)."""
    size = RECORD_OVERHEAD + len(key or b"") + len(value or b"")
    for name, header in headers:
        name_size = len(name.encode())
        value_size = len(header or b"")
        size += name_size + _zigzag_varint_size(name_size)
        size += value_size + _zigzag_varint_size(value_size)
    return size


def client_message_max_bytes(librdkafka_config: Mapping[str, str]) -> int:
    """``message.max.bytes`` as librdkafka reads it (1000 .. 1,000,000,000)."""
    raw = librdkafka_config.get("message.max.bytes")
    if raw is None:
        return CLIENT_MESSAGE_MAX_BYTES
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"message.max.bytes must be an integer, got {raw!r}") from None
    if not 1000 <= value <= 1_000_000_000:
        raise ConfigError(f"message.max.bytes must be between 1000 and 1000000000, got {value}")
    return value


def size_error(size: int, limit: int, *, by_broker: bool) -> KafkaError:
    """The error the Kafka transport raises for a record over the limit."""
    if by_broker:
        where = f"the topic's max.message.bytes is {limit} and the record batch is {size} bytes"
    else:
        where = (
            f"refused before sending: the record is {size} bytes on the wire, more than "
            f"message.max.bytes ({limit})"
        )
    return KafkaError(
        "produce failed: MessageSizeTooLarge (Broker: Message size too large) "
        f"(MessageSizeTooLarge): {where}",
        code=MESSAGE_SIZE_TOO_LARGE,
        code_name="MessageSizeTooLarge",
        retriable=False,
        possibly_persisted=False,
    )
