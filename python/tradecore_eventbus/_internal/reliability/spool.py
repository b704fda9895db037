"""The local durable spool: events that reached neither their topic nor the DLQ wait here,
one file each, until they are republished.

Each entry is written to a temporary file, fsynced and renamed, so a crash leaves either the
whole entry or nothing. Entries are drained in the order they were spooled. A drain holds an
exclusive lock on the directory, so two processes sharing a spool never send an entry twice.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..transports.structs import OutgoingRecord


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(data: str | None) -> bytes | None:
    return None if data is None else base64.b64decode(data)


@dataclass(frozen=True)
class SpoolEntry:
    """One event waiting to be sent to ``topic``."""

    topic: str
    channel: str
    event_id: str
    key: str | None
    value: str
    headers: list[tuple[str, str | None]]
    reason: str
    #: The failed delivery may have been written anyway: check the topic before resending.
    possibly_persisted: bool
    spooled_at_ms: int
    #: "topic": the event's own topic (the broker was unreachable); "dlq": its DLQ topic.
    destination: str = "topic"
    name: str = field(default="", compare=False)

    @classmethod
    def create(
        cls,
        topic: str,
        channel: str,
        event_id: str,
        record: OutgoingRecord,
        *,
        reason: str,
        possibly_persisted: bool,
        destination: str = "topic",
    ) -> SpoolEntry:
        key, value, headers = record
        return cls(
            topic=topic,
            channel=channel,
            event_id=event_id,
            key=_b64(key),
            value=_b64(value) or "",
            headers=[(k, _b64(v)) for k, v in headers],
            reason=reason,
            possibly_persisted=possibly_persisted,
            spooled_at_ms=int(time.time() * 1000),
            destination=destination,
        )

    def record(self) -> OutgoingRecord:
        return (
            _unb64(self.key),
            _unb64(self.value) or b"",
            [(k, _unb64(v)) for k, v in self.headers],
        )


class Spool:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._seq = 0
        # Topics with pending entries, so that the publish path does not list the directory
        # on every call. Loaded lazily; refreshed by every drain.
        self._pending: dict[str, int] | None = None

    def _pending_topics(self) -> dict[str, int]:
        if self._pending is None:
            self._pending = {}
            for e in self.entries():
                self._pending[e.topic] = self._pending.get(e.topic, 0) + 1
        return self._pending

    def refresh(self) -> None:
        self._pending = None

    def _ensure_dir(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def put(self, entries: Sequence[SpoolEntry]) -> None:
        """Writes entries durably, in order."""
        if not entries:
            return
        self._ensure_dir()
        for entry in entries:
            self._seq += 1
            # Time first so that a directory listing sorts in spool order across restarts.
            name = f"{time.time_ns():020d}-{self._seq:08d}-{uuid.uuid4().hex[:8]}.json"
            data = json.dumps({k: v for k, v in asdict(entry).items() if k != "name"}).encode()
            tmp = self.directory / f".{name}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.directory / name)
            pending = self._pending_topics()
            pending[entry.topic] = pending.get(entry.topic, 0) + 1
        self._sync_dir()

    def update(self, entry: SpoolEntry) -> None:
        """Rewrites an entry in place (keeping its position)."""
        data = json.dumps({k: v for k, v in asdict(entry).items() if k != "name"}).encode()
        tmp = self.directory / f".{entry.name}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.directory / entry.name)

    def _sync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self, topic: str | None = None) -> list[SpoolEntry]:
        """Pending entries in spool order (optionally of one topic)."""
        if not self.directory.is_dir():
            return []
        out: list[SpoolEntry] = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                raw: dict[str, Any] = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue  # removed meanwhile, or a partial file from another writer
            raw["headers"] = [tuple(h) for h in raw["headers"]]
            entry = SpoolEntry(**raw, name=path.name)
            if topic is None or entry.topic == topic:
                out.append(entry)
        return out

    def has_pending(self, topic: str | None = None) -> bool:
        pending = self._pending_topics()
        if topic is None:
            return any(pending.values())
        return pending.get(topic, 0) > 0

    def remove(self, entries: Sequence[SpoolEntry]) -> None:
        pending = self._pending_topics()
        for entry in entries:
            with suppress(FileNotFoundError):
                (self.directory / entry.name).unlink()
            pending[entry.topic] = max(0, pending.get(entry.topic, 0) - 1)
        if entries:
            self._sync_dir()

    def count(self) -> int:
        return sum(self._pending_topics().values())

    def oldest_age_s(self) -> float | None:
        entries = self.entries()
        if not entries:
            return None
        return max(0.0, time.time() - entries[0].spooled_at_ms / 1000.0)

    @contextmanager
    def drain_lock(self) -> Iterator[bool]:
        """Yields whether this process got the exclusive right to drain (non-blocking)."""
        self._ensure_dir()
        fd = os.open(self.directory / ".drain.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
