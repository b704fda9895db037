"""Worker types and the consumer groups they join (the guide's ``WorkerType``)."""

from __future__ import annotations

from enum import StrEnum


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
