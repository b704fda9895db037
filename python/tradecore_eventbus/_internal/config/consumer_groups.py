"""Worker types and the consumer groups they join (the guide's ``WorkerType``)."""

from __future__ import annotations

import re
from enum import StrEnum

from ...exceptions import InvalidArgumentError


class WorkerType(StrEnum):
    EVENT_PROCESSOR = "event_processor"
    DATA_INTEGRITY = "data_integrity"
    CONNECTION_RECOVERY = "connection_recovery"

    @property
    def consumer_group(self) -> str:
        return WORKER_CONSUMER_GROUPS[self]


WORKER_CONSUMER_GROUPS: dict[WorkerType, str] = {
    WorkerType.EVENT_PROCESSOR: "event-processor-workers",
    WorkerType.DATA_INTEGRITY: "integrity-checker-workers",
    WorkerType.CONNECTION_RECOVERY: "recovery-workers",
}


def group_id(group: str, prefix: str) -> str:
    """The Kafka group id for a logical group: ``{prefix}-{group}`` (prefix applied once)."""
    if not prefix or group == prefix or group.startswith(prefix + "-"):
        return group
    return f"{prefix}-{group}"


#: Kafka checks a ``group.instance.id`` like a topic name.
_INSTANCE_ID_LEGAL = re.compile(r"^[A-Za-z0-9._-]+$")
_INSTANCE_ID_MAX = 249


def static_instance_id(group_id: str, channel: str, consumer: str) -> str:
    """The ``group.instance.id`` of a static stream member: ``{group id}.{channel}.{consumer}``.

    Stable across restarts of a replica that keeps its ``consumer`` name; the channel is part
    of it because each subscription is a member of its own, and one replica subscribing two
    channels in one group must not fence itself. Kafka allows 1 to 249 letters, digits,
    ``.``, ``_`` and ``-``; anything else raises :class:`InvalidArgumentError` naming the
    argument that brought it in.
    """
    for name, value in (("consumer", consumer), ("group", group_id)):
        if not value or not _INSTANCE_ID_LEGAL.match(value):
            raise InvalidArgumentError(
                f"{name} {value!r} cannot be part of a Kafka group.instance.id "
                "(KAFKA_CONSUMER_STATIC_MEMBERSHIP=true): use only letters, digits, "
                "'.', '_' and '-'"
            )
    instance_id = f"{group_id}.{channel}.{consumer}"
    if len(instance_id) > _INSTANCE_ID_MAX:
        raise InvalidArgumentError(
            f"group.instance.id {instance_id[:40]!r}... (group, channel and consumer) is "
            f"{len(instance_id)} characters long; Kafka allows {_INSTANCE_ID_MAX}: "
            "use a shorter consumer name"
        )
    return instance_id
