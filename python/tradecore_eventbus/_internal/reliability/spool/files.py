"""The local durable spool: events that reached neither their topic nor the DLQ wait here,
one file each, until they are republished.

Each entry is written to a temporary file, fsynced and renamed, so a crash leaves either the
whole entry or nothing. Entries are drained in the order they were spooled. A drain holds an
exclusive lock on the directory, so two processes sharing a spool never send an entry twice.

An entry the broker refuses for good (too large, not authorized, ...) is moved aside into
``dead/`` beside the pending entries, with the refusal, so that it never blocks the entries
spooled after it; nothing is lost. ``dead_entries``, ``revive`` and ``purge_dead`` are what an
operator (or a CLI) needs to look at them, send them again or drop them (decision 53).
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

from ...transports.structs import OutgoingRecord


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

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "name"}

    @classmethod
    def from_json(cls, raw: dict[str, Any], name: str) -> SpoolEntry:
        fields = {k: raw[k] for k in _ENTRY_FIELDS if k in raw}
        fields["headers"] = [tuple(h) for h in fields.get("headers", [])]
        return cls(**fields, name=name)


_ENTRY_FIELDS = (
    "topic",
    "channel",
    "event_id",
    "key",
    "value",
    "headers",
    "reason",
    "possibly_persisted",
    "spooled_at_ms",
    "destination",
)


@dataclass(frozen=True)
class DeadEntry:
    """A spooled event the broker refused for good, kept in ``dead/`` for an operator."""

    entry: SpoolEntry
    #: The refusal: exception class, message, Kafka error code name (if any), and when.
    error_type: str
    error: str
    code_name: str | None
    dead_at_ms: int

    @property
    def name(self) -> str:
        return self.entry.name

    def as_dict(self) -> dict[str, Any]:
        """What a listing shows (the value stays base64, as in the file)."""
        return {
            "name": self.name,
            "topic": self.entry.topic,
            "channel": self.entry.channel,
            "event_id": self.entry.event_id,
            "destination": self.entry.destination,
            "size": len(_unb64(self.entry.value) or b""),
            "spooled_at_ms": self.entry.spooled_at_ms,
            "dead_at_ms": self.dead_at_ms,
            "error_type": self.error_type,
            "error": self.error,
            "code_name": self.code_name,
        }


class Spool:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        #: Entries the broker refused for good.
        self.dead_directory = self.directory / "dead"
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
            name = self._new_name()
            _write_durably(self.directory, name, json.dumps(entry.as_json()).encode())
            pending = self._pending_topics()
            pending[entry.topic] = pending.get(entry.topic, 0) + 1
        self._sync_dir()

    def update(self, entry: SpoolEntry) -> None:
        """Rewrites an entry in place (keeping its position)."""
        _write_durably(self.directory, entry.name, json.dumps(entry.as_json()).encode())

    def _sync_dir(self) -> None:
        _sync_dir(self.directory)

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
            entry = SpoolEntry.from_json(raw, path.name)
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

    # --- entries refused for good -------------------------------------------------------------

    def bury(self, entry: SpoolEntry, error: BaseException) -> None:
        """Moves a pending entry (or one that never was: ``entry.name`` empty) into
        ``dead/`` with the refusal; the file is written durably before the pending one goes."""
        self.dead_directory.mkdir(parents=True, exist_ok=True)
        name = entry.name or self._new_name()
        record = {
            **entry.as_json(),
            "error_type": type(error).__name__,
            "error": str(error),
            "code_name": getattr(error, "code_name", None),
            "dead_at_ms": int(time.time() * 1000),
        }
        _write_durably(self.dead_directory, name, json.dumps(record).encode())
        _sync_dir(self.dead_directory)
        if entry.name:
            self.remove([entry])

    def dead_entries(self) -> list[DeadEntry]:
        """Entries the broker refused for good, oldest first."""
        if not self.dead_directory.is_dir():
            return []
        out: list[DeadEntry] = []
        for path in sorted(self.dead_directory.glob("*.json")):
            try:
                raw: dict[str, Any] = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue  # removed meanwhile
            out.append(
                DeadEntry(
                    entry=SpoolEntry.from_json(raw, path.name),
                    error_type=str(raw.get("error_type", "")),
                    error=str(raw.get("error", "")),
                    code_name=raw.get("code_name"),
                    dead_at_ms=int(raw.get("dead_at_ms", 0)),
                )
            )
        return out

    def dead_count(self) -> int:
        if not self.dead_directory.is_dir():
            return 0
        with os.scandir(self.dead_directory) as it:
            return sum(1 for e in it if e.name.endswith(".json") and not e.name.startswith("."))

    def revive(self, names: Sequence[str] | None = None) -> int:
        """Moves dead entries (all, or those named) back among the pending ones, at their
        original place in the spool order, for the next drain. Returns how many moved."""
        wanted = None if names is None else set(names)
        moved = 0
        for dead in self.dead_entries():
            if wanted is not None and dead.name not in wanted:
                continue
            self._ensure_dir()
            _write_durably(self.directory, dead.name, json.dumps(dead.entry.as_json()).encode())
            self._sync_dir()
            with suppress(FileNotFoundError):
                (self.dead_directory / dead.name).unlink()
            moved += 1
        if moved:
            _sync_dir(self.dead_directory)
            self.refresh()
        return moved

    def purge_dead(self, names: Sequence[str]) -> int:
        """Deletes the named dead entries for good. Returns how many there were."""
        removed = 0
        for name in names:
            if "/" in name or name.startswith("."):
                continue  # only entry names, never a path
            with suppress(FileNotFoundError):
                (self.dead_directory / name).unlink()
                removed += 1
        if removed:
            _sync_dir(self.dead_directory)
        return removed

    def _new_name(self) -> str:
        self._seq += 1
        # Time first so that a directory listing sorts in spool order across restarts.
        return f"{time.time_ns():020d}-{self._seq:08d}-{uuid.uuid4().hex[:8]}.json"

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


def _write_durably(directory: Path, name: str, data: bytes) -> None:
    """Writes ``directory/name`` so that a crash leaves the whole file or none of it."""
    tmp = directory / f".{name}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / name)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
