"""Type stubs of the Rust core (``rust/py``)."""

from collections.abc import Awaitable, Iterator, Mapping, Sequence
from typing import Any, Self, TypedDict, final, overload

# PyO3 classes cannot be subclassed (@final) and are built by ``__new__``: stubtest checks
# both (``make lint``).

__all__ = [
    "Admin",
    "BreakerPermit",
    "CircuitBreaker",
    "Consumer",
    "Deliveries",
    "EncodedBatch",
    "ManualClock",
    "OffsetTracker",
    "Producer",
    "PublishResult",
    "Record",
    "__version__",
    "backoff_cap_ms",
    "before_exit",
    "encode_events",
    "is_secret_setting",
    "librdkafka_version",
    "publish_results",
    "redact",
]

__version__: str

_Headers = Sequence[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None]
_RecordTuple = (
    tuple[bytes | str | None, bytes | str | None]
    | tuple[bytes | str | None, bytes | str | None, _Headers | None]
)

def librdkafka_version() -> str: ...
def redact(text: str) -> str:
    """``text`` with every secret a client of this process was configured with replaced by
    ``***``."""

def is_secret_setting(key: str) -> bool:
    """Whether a librdkafka property holds a secret (masked wherever it is shown)."""

def before_exit(timeout: float) -> None:
    """Registered with atexit: keeps the core's threads out of Python from then on, waiting
    at most ``timeout`` seconds for those inside to leave."""

@final
class Record:
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> int | None: ...
    @property
    def headers(self) -> list[tuple[str, bytes | None]]: ...
    @property
    def event(self) -> dict[str, Any] | None: ...
    def header(self, name: str) -> bytes | None: ...

@final
class Producer:
    def __new__(
        cls,
        bootstrap_servers: str,
        *,
        client_id: str = "tradecore",
        acks: str = "all",
        compression_type: str = "lz4",
        linger_ms: int = 10,
        batch_size: int = 16384,
        enable_idempotence: bool = True,
        delivery_timeout_ms: int = 30000,
        config: Mapping[str, str | int | float | bool] | None = None,
    ) -> Self: ...
    def send(
        self,
        topic: str,
        value: bytes | str | None,
        key: bytes | str | None = None,
        headers: _Headers | None = None,
        partition: int | None = None,
    ) -> Awaitable[tuple[int, int]]: ...
    def send_batch(
        self, topic: str, records: Sequence[_RecordTuple], *, immediate: bool = False
    ) -> Awaitable[list[tuple[int, int]]]: ...
    def send_encoded(
        self,
        topic: str,
        batch: EncodedBatch,
        indices: Sequence[int] | None = None,
        *,
        immediate: bool = False,
    ) -> Awaitable[Deliveries]: ...
    def flush(self, timeout: float = 30.0) -> Awaitable[None]: ...
    def close(self, timeout: float = 30.0) -> Awaitable[None]: ...
    @property
    def closed(self) -> bool: ...
    def in_flight(self) -> int: ...
    def stats(self) -> dict[str, int | str | bool | None]: ...

@final
class Consumer:
    def __new__(
        cls,
        bootstrap_servers: str,
        group_id: str,
        *,
        client_id: str = "tradecore",
        auto_offset_reset: str = "earliest",
        enable_commit: bool = True,
        commit_batch_size: int = 100,
        commit_interval_ms: int = 5000,
        session_timeout_ms: int = 45000,
        heartbeat_interval_ms: int = 3000,
        max_poll_records: int = 500,
        partition_assignment_strategy: str = "cooperative-sticky",
        group_instance_id: str | None = None,
        config: Mapping[str, str | int | float | bool] | None = None,
    ) -> Self: ...
    def subscribe(self, topics: Sequence[str]) -> None: ...
    def wait_assigned(self, timeout: float) -> Awaitable[None]: ...
    def take(
        self, max_records: int | None = None, *, decode_events: bool = False
    ) -> list[Record]: ...
    def wait(self, timeout: float) -> Awaitable[bool]: ...
    def mark_processed(self, records: Sequence[Record]) -> int: ...
    def commit(self) -> Awaitable[None]: ...
    def assign_from_time(
        self, topic: str, since_ms: int, timeout: float = 10.0
    ) -> Awaitable[list[tuple[int, int, int]]]: ...
    def pause(self, partitions: Sequence[tuple[str, int]] | None = None) -> None: ...
    def resume(self, partitions: Sequence[tuple[str, int]] | None = None) -> None: ...
    def assignment(self) -> list[tuple[str, int]]: ...
    def lag(self) -> list[tuple[str, int, int]]:
        """(topic, partition, lag) per assigned partition whose lag is known: records behind
        the next one this consumer hands out, from librdkafka's cached high watermark (no
        request to the broker). Partitions not fetched from yet are left out."""

    def close(self) -> Awaitable[None]: ...
    @property
    def closed(self) -> bool: ...
    @property
    def assigned(self) -> bool: ...
    def stats(self) -> dict[str, int | str | bool | None]: ...

@final
class Admin:
    def __new__(
        cls,
        bootstrap_servers: str,
        *,
        client_id: str = "tradecore-admin",
        config: Mapping[str, str | int | float | bool] | None = None,
    ) -> Self: ...
    def create_topics(
        self,
        topics: Sequence[tuple[str, int, int, Mapping[str, str] | None]],
        timeout: float = 30.0,
    ) -> Awaitable[dict[str, str]]: ...
    def describe_topic(self, topic: str, timeout: float = 10.0) -> Awaitable[dict[str, str]]: ...
    def list_topics(self, timeout: float = 10.0) -> Awaitable[dict[str, int]]: ...
    def ping(self, timeout: float = 5.0) -> Awaitable[int]: ...
    def stats(self) -> dict[str, int | str | None]: ...

@final
class OffsetTracker:
    """At-least-once bookkeeping: the committable offset of a partition is the one after its
    longest processed prefix."""

    def __new__(cls) -> Self: ...
    def assign(self, topic: str, partition: int) -> None: ...
    def revoke(self, topic: str, partition: int) -> int | None: ...
    def delivered(self, topic: str, partition: int, offset: int) -> None: ...
    def processed(self, items: Sequence[tuple[str, int, int]]) -> int: ...
    def take_dirty(self) -> list[tuple[str, int, int]]: ...
    def committable(self) -> list[tuple[str, int, int]]: ...
    def marked_since_commit(self) -> int: ...
    def reset_marked_since_commit(self) -> None: ...

@final
class ManualClock:
    """A clock that only moves when told to (for tests of breaker transitions)."""

    def __new__(cls) -> Self: ...
    def advance(self, seconds: float) -> None: ...

@final
class BreakerPermit:
    def success(self) -> None: ...
    def failure(self) -> None: ...
    def release(self) -> None: ...
    def __enter__(self) -> BreakerPermit: ...
    def __exit__(self, *args: object) -> bool: ...

class _BreakerStats(TypedDict):
    state: str
    failure_count: int
    consecutive_successes: int
    total_failures: int
    total_success: int
    #: Seconds since the epoch.
    last_failure_time: float | None
    half_open_in_flight: int
    #: Seconds until an OPEN breaker lets a trial call through.
    retry_after: float | None

@final
class CircuitBreaker:
    def __new__(
        cls,
        name: str,
        *,
        failure_threshold: int = 5,
        success_threshold: int = 3,
        timeout_seconds: float = 30.0,
        half_open_calls: int = 3,
        clock: ManualClock | None = None,
    ) -> Self: ...
    @property
    def state(self) -> str: ...
    def acquire(self) -> BreakerPermit: ...
    def stats(self) -> _BreakerStats: ...

def backoff_cap_ms(
    retry: int, initial_delay_ms: float, max_delay_ms: float, backoff_factor: float
) -> float: ...

@final
class EncodedBatch:
    """Events enriched and encoded by `encode_events`, held in Rust."""

    def __len__(self) -> int: ...
    def event_id(self, i: int) -> str: ...
    def event_type(self, i: int) -> str: ...
    def record(self, i: int) -> tuple[bytes | None, bytes, list[tuple[str, bytes | None]]]: ...
    def event(self, i: int) -> dict[str, object]: ...

@final
class PublishResult:
    """What one published event became; `event` is read from its batch on access."""

    @property
    def channel(self) -> str: ...
    @property
    def topic(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> str | None: ...
    @property
    def event(self) -> dict[str, object]: ...
    def __hash__(self) -> int: ...

@final
class Deliveries(Sequence[tuple[int, int]]):
    """(partition, offset) per event of a sent batch, kept as Rust data."""

    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, index: int, /) -> tuple[int, int]: ...
    @overload
    def __getitem__(self, index: slice, /) -> list[tuple[int, int]]: ...
    def __iter__(self) -> Iterator[tuple[int, int]]: ...
    def __eq__(self, other: object, /) -> bool: ...

def publish_results(
    channel: str,
    topic: str,
    keys: str | list[str | None] | None,
    source: object,
    deliveries: Sequence[tuple[int, int]],
    indices: list[int] | None = None,
) -> list[PublishResult]: ...
def encode_events(
    events: Sequence[object],
    keys: str | Sequence[str | None] | None,
    default: object,
    *,
    event_headers: bool = False,
    extra_headers: Sequence[Mapping[str, str | bytes] | None] | None = None,
) -> tuple[EncodedBatch, list[tuple[int, str, tuple[str | int, ...]]]]: ...
