"""Configuration: ``EventBusConfig`` (behaviour of the bus) and ``TransportConfig`` (Kafka).

``from_env()`` reads every variable of the guide's Configuration Reference with the guide's
defaults, plus the few this package adds (all listed in the README's configuration table).
A value that cannot be used raises :class:`ConfigError` naming the variable; a config built
in Python is checked by the same rules in ``__post_init__``, naming the field (decision 45).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Literal, TypeVar

from ...exceptions import ConfigError
from ..reliability.retry import RetryConfig
from .checks import (
    INT16_MAX,
    INT32_MAX,
    MAX_MS,
    MAX_SECONDS,
    FloatRange,
    IntRange,
    Rules,
    check_fields,
    check_librdkafka_config,
    check_retry_delays,
    check_spool_dir,
    check_type,
    parse_bootstrap_servers,
    parse_debug_contexts,
)
from .names import topic_name_problem
from .security import masked, security_from_env
from .state_dir import default_spool_dir

T = TypeVar("T")
Env = Mapping[str, str]

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def _read(env: Env, name: str, default: T, parse: Callable[[str], T], what: str) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw.strip())
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{name}={raw!r} is not {what}: {exc}") from None


def _bool(value: str) -> bool:
    v = value.lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError("expected true/false")


COUNT = IntRange(1, INT32_MAX)
SECONDS = FloatRange(0.0, MAX_SECONDS)
#: A period (a zero one would spin).
POSITIVE_SECONDS = FloatRange(0.001, MAX_SECONDS)
POSITIVE_MS = IntRange(1, MAX_MS)
DELAY_MS = IntRange(0, MAX_MS)
#: librdkafka's ranges (CONFIGURATION.md) of the properties these settings become.
LINGER_MS = IntRange(0, 900_000)  # linger.ms
BATCH_BYTES = IntRange(1, INT32_MAX)  # batch.size
DELIVERY_TIMEOUT_MS = IntRange(1, INT32_MAX)  # message.timeout.ms (0 = forever: refused)
GROUP_TIMEOUT_MS = IntRange(1, 3_600_000)  # session.timeout.ms, heartbeat.interval.ms
COMMIT_INTERVAL_MS = IntRange(1, 86_400_000)  # auto.commit.interval.ms
REPLICATION_FACTOR = IntRange(1, INT16_MAX)  # Kafka's replication factor is an int16


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        v = value.lower()
        if v not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return v

    return parse


TopicType = Literal["stream", "pubsub"]


@dataclass(frozen=True)
class CircuitBreakerConfig:
    failure_threshold: int = 5
    success_threshold: int = 3
    timeout_seconds: float = 30.0
    half_open_calls: int = 3

    def __post_init__(self) -> None:
        check_fields(self, _BREAKER_RULES)


_BREAKER_RULES: Rules = {
    "failure_threshold": (COUNT, None),
    "success_threshold": (COUNT, None),
    "timeout_seconds": (SECONDS, None),
    "half_open_calls": (COUNT, None),
}


@dataclass(frozen=True)
class TopicConfig:
    """Per-topic overrides registered with :meth:`EventBusConfig.add_topic_config`."""

    topic_name: str
    topic_type: TopicType = "stream"
    retry_config: RetryConfig | None = None
    partitions: int | None = None
    retention_ms: int | None = None
    #: Opt-in retry topics (decision 105): after the in-place attempts a failing event goes
    #: to ``{channel}.retry.1``, due this many ms later, then ``.retry.2``, ...; None: off.
    retry_topic_delays_ms: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.retry_topic_delays_ms is not None:
            delays = check_retry_delays(
                self.retry_topic_delays_ms, f"retry_topic_delays_ms of {self.topic_name!r}"
            )
            object.__setattr__(self, "retry_topic_delays_ms", delays)


@dataclass
class EventBusConfig:
    enable_event_bus: bool = True
    enable_dlq: bool = True
    dlq_topic_suffix: str = ".dlq"
    validate_on_publish: bool = True
    #: Reject event types that have no registered model (default: let them pass).
    strict_validation: bool = False
    circuit_breaker: CircuitBreakerConfig = field(default_factory=CircuitBreakerConfig)
    #: Breaker of channels marked critical: trips sooner, recovers sooner.
    critical_circuit_breaker: CircuitBreakerConfig = field(
        default_factory=lambda: CircuitBreakerConfig(failure_threshold=3, timeout_seconds=15.0)
    )
    publish_retry: RetryConfig = field(default_factory=RetryConfig)
    #: Publish attempts on critical channels (more than ``publish_retry.max_attempts``).
    critical_publish_max_attempts: int = 10
    #: Handler retries before an event goes to the DLQ.
    handler_retry: RetryConfig = field(
        default_factory=lambda: RetryConfig(max_attempts=3, initial_delay_ms=100, max_delay_ms=2000)
    )
    sub_batch_size: int = 10
    sub_block_ms: int = 10_000
    #: How long a subscribe call may wait for its consumer to join the group and be live.
    consumer_poll_timeout_ms: int = 15_000
    #: Partitions of one subscription handled concurrently (each one in order).
    max_concurrent_partitions: int = 8
    close_timeout_seconds: float = 30.0
    #: Where events that could reach neither their topic nor the DLQ are kept until replayed.
    #: Default: the per-user state directory, ``$XDG_STATE_HOME/tradecore-eventbus/spool``
    #: (``~/.local/state/...`` without it), read when the config is made.
    spool_dir: str = field(default_factory=default_spool_dir)
    #: How long a publish waits for a ping before deciding the broker is still away (only
    #: while its topic has events in the spool).
    spool_ping_timeout_seconds: float = 1.0
    #: How often registered observers get each subscription's commits and lag (sampled
    #: only while an observer besides the built-in counters is registered).
    observer_sample_interval_seconds: float = 10.0
    #: Every bus traces with OpenTelemetry (an ``OpenTelemetryTracing`` on the global tracer
    #: provider and propagator, unless an observer given to it traces already; decision 85).
    tracing: bool = False
    topic_configs: dict[str, TopicConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, variable in _EVENT_BUS_BOOLS.items():
            check_type(self, name, bool, variable)
        check_type(self, "circuit_breaker", CircuitBreakerConfig)
        check_type(self, "critical_circuit_breaker", CircuitBreakerConfig)
        check_type(self, "publish_retry", RetryConfig)
        check_type(self, "handler_retry", RetryConfig)
        check_type(self, "dlq_topic_suffix", str, "DLQ_TOPIC_SUFFIX")
        check_type(self, "spool_dir", str, "EVENT_BUS_SPOOL_DIR")
        check_fields(self, _EVENT_BUS_RULES)
        try:
            _dlq_suffix(self.dlq_topic_suffix)
        except ValueError as exc:
            raise ConfigError(
                f"EventBusConfig.dlq_topic_suffix (DLQ_TOPIC_SUFFIX)={self.dlq_topic_suffix!r}: "
                f"{exc}"
            ) from None

    @classmethod
    def from_env(cls, env: Env | None = None) -> EventBusConfig:
        e: Env = os.environ if env is None else env
        cb = _breaker_from_env(e, "EVENT_BUS_CIRCUIT_BREAKER", CircuitBreakerConfig())
        critical = _breaker_from_env(
            e,
            "EVENT_BUS_CRITICAL_CIRCUIT_BREAKER",
            CircuitBreakerConfig(failure_threshold=3, timeout_seconds=15.0),
            shared=cb,
        )
        retry = _retry_from_env(e, "EVENT_BUS_PUBLISH_RETRY", RetryConfig())
        handler_retry = _retry_from_env(
            e,
            "EVENT_BUS_HANDLER_RETRY",
            RetryConfig(max_attempts=3, initial_delay_ms=100, max_delay_ms=2000),
            shared=retry,
        )
        config = cls(
            enable_event_bus=_read(e, "ENABLE_EVENT_BUS", True, _bool, "true or false"),
            enable_dlq=_read(e, "ENABLE_DLQ", True, _bool, "true or false"),
            dlq_topic_suffix=_read(
                e, "DLQ_TOPIC_SUFFIX", ".dlq", _dlq_suffix, "a topic name suffix"
            ),
            validate_on_publish=_read(
                e, "EVENT_BUS_VALIDATE_ON_PUBLISH", True, _bool, "true or false"
            ),
            strict_validation=_read(
                e, "EVENT_BUS_STRICT_VALIDATION", False, _bool, "true or false"
            ),
            circuit_breaker=cb,
            critical_circuit_breaker=critical,
            publish_retry=retry,
            critical_publish_max_attempts=_read(
                e,
                "EVENT_BUS_CRITICAL_PUBLISH_RETRY_MAX_ATTEMPTS",
                max(10, retry.max_attempts),
                COUNT.parse,
                "a count",
            ),
            handler_retry=handler_retry,
            sub_batch_size=_read(e, "EVENT_BUS_SUB_BATCH_SIZE", 10, COUNT.parse, "a count"),
            sub_block_ms=_read(
                e, "EVENT_BUS_SUB_BLOCK_MS", 10_000, POSITIVE_MS.parse, "a duration in ms"
            ),
            consumer_poll_timeout_ms=_read(
                e,
                "EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS",
                15_000,
                POSITIVE_MS.parse,
                "a duration in ms",
            ),
            max_concurrent_partitions=_read(
                e, "EVENT_BUS_MAX_CONCURRENT_PARTITIONS", 8, COUNT.parse, "a count"
            ),
            close_timeout_seconds=_read(
                e,
                "EVENT_BUS_CLOSE_TIMEOUT_SECONDS",
                30.0,
                SECONDS.parse,
                "a number of seconds >= 0",
            ),
            spool_dir=_read(e, "EVENT_BUS_SPOOL_DIR", default_spool_dir(e), str, "a directory"),
            observer_sample_interval_seconds=_read(
                e,
                "EVENT_BUS_OBSERVER_SAMPLE_INTERVAL_SECONDS",
                10.0,
                POSITIVE_SECONDS.parse,
                "a number of seconds > 0",
            ),
            tracing=_read(e, "EVENT_BUS_TRACING", False, _bool, "true or false"),
        )
        check_spool_dir(config.spool_dir, "EVENT_BUS_SPOOL_DIR")
        no_retry_topics: dict[str, tuple[int, ...]] = {}
        retry_topics = _read(
            e, "EVENT_BUS_RETRY_TOPICS", no_retry_topics, _retry_topics, "channel=delays;..."
        )
        for channel, delays in retry_topics.items():
            config.add_topic_config(channel, retry_topic_delays_ms=delays)
        if config.critical_publish_max_attempts < retry.max_attempts:
            raise ConfigError(
                "EVENT_BUS_CRITICAL_PUBLISH_RETRY_MAX_ATTEMPTS must not be below "
                "EVENT_BUS_PUBLISH_RETRY_MAX_ATTEMPTS: critical channels get more attempts"
            )
        return config

    def add_topic_config(
        self,
        topic_name: str,
        topic_type: TopicType = "stream",
        retry_config: RetryConfig | None = None,
        *,
        partitions: int | None = None,
        retention_ms: int | None = None,
        retry_topic_delays_ms: Sequence[int] | None = None,
    ) -> TopicConfig:
        """Registers per-topic settings (retry policy, partitions, retention, and the
        opt-in retry topics of its stream subscriptions: one delay in ms per tier)."""
        if topic_type not in ("stream", "pubsub"):
            raise ConfigError(f"topic_type must be 'stream' or 'pubsub', not {topic_type!r}")
        if partitions is not None and partitions < 1:
            raise ConfigError(f"partitions of {topic_name!r} must be at least 1")
        delays = (
            None
            if retry_topic_delays_ms is None
            else check_retry_delays(retry_topic_delays_ms, "retry_topic_delays_ms")
        )
        tc = TopicConfig(topic_name, topic_type, retry_config, partitions, retention_ms, delays)
        self.topic_configs[topic_name] = tc
        return tc

    def topic_config(self, channel: str) -> TopicConfig | None:
        return self.topic_configs.get(channel)

    def retry_topic_delays_for(self, channel: str) -> tuple[int, ...] | None:
        """The retry tiers ``add_topic_config`` gave ``channel`` (None: no retry topics)."""
        tc = self.topic_configs.get(channel)
        return None if tc is None else tc.retry_topic_delays_ms

    def handler_retry_for(self, channel: str) -> RetryConfig:
        """How a failing handler of ``channel`` is retried before the DLQ: the channel's
        ``add_topic_config`` retry policy if it has one, else the handler default."""
        tc = self.topic_configs.get(channel)
        if tc is not None and tc.retry_config is not None:
            return tc.retry_config
        return self.handler_retry

    def retry_for(self, channel: str, critical: bool) -> RetryConfig:
        """The publish retry policy of a channel: its own, else the default (more attempts
        when critical)."""
        tc = self.topic_configs.get(channel)
        if tc is not None and tc.retry_config is not None:
            return tc.retry_config
        if critical:
            return replace(self.publish_retry, max_attempts=self.critical_publish_max_attempts)
        return self.publish_retry


_EVENT_BUS_BOOLS = {
    "enable_event_bus": "ENABLE_EVENT_BUS",
    "enable_dlq": "ENABLE_DLQ",
    "validate_on_publish": "EVENT_BUS_VALIDATE_ON_PUBLISH",
    "strict_validation": "EVENT_BUS_STRICT_VALIDATION",
    "tracing": "EVENT_BUS_TRACING",
}
_EVENT_BUS_RULES: Rules = {
    "critical_publish_max_attempts": (COUNT, "EVENT_BUS_CRITICAL_PUBLISH_RETRY_MAX_ATTEMPTS"),
    "sub_batch_size": (COUNT, "EVENT_BUS_SUB_BATCH_SIZE"),
    "sub_block_ms": (POSITIVE_MS, "EVENT_BUS_SUB_BLOCK_MS"),
    "consumer_poll_timeout_ms": (POSITIVE_MS, "EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS"),
    "max_concurrent_partitions": (COUNT, "EVENT_BUS_MAX_CONCURRENT_PARTITIONS"),
    "close_timeout_seconds": (SECONDS, "EVENT_BUS_CLOSE_TIMEOUT_SECONDS"),
    "spool_ping_timeout_seconds": (SECONDS, None),
    "observer_sample_interval_seconds": (
        POSITIVE_SECONDS,
        "EVENT_BUS_OBSERVER_SAMPLE_INTERVAL_SECONDS",
    ),
}


def _breaker_from_env(
    e: Env, prefix: str, default: CircuitBreakerConfig, shared: CircuitBreakerConfig | None = None
) -> CircuitBreakerConfig:
    """A breaker's settings from ``{prefix}_FAILURE_THRESHOLD`` and ``_TIMEOUT_SECONDS`` (and,
    without ``shared``, ``_SUCCESS_THRESHOLD`` and ``_HALF_OPEN_CALLS``; with it, those two
    are ``shared``'s: critical breakers recover like the others)."""
    seconds = "a number of seconds >= 0"
    return CircuitBreakerConfig(
        failure_threshold=_read(
            e, f"{prefix}_FAILURE_THRESHOLD", default.failure_threshold, COUNT.parse, "a count"
        ),
        success_threshold=shared.success_threshold
        if shared is not None
        else _read(
            e, f"{prefix}_SUCCESS_THRESHOLD", default.success_threshold, COUNT.parse, "a count"
        ),
        timeout_seconds=_read(
            e, f"{prefix}_TIMEOUT_SECONDS", default.timeout_seconds, SECONDS.parse, seconds
        ),
        half_open_calls=shared.half_open_calls
        if shared is not None
        else _read(e, f"{prefix}_HALF_OPEN_CALLS", default.half_open_calls, COUNT.parse, "a count"),
    )


def _retry_from_env(
    e: Env, prefix: str, default: RetryConfig, shared: RetryConfig | None = None
) -> RetryConfig:
    """A retry policy from ``{prefix}_MAX_ATTEMPTS``, ``_INITIAL_DELAY_MS``, ``_MAX_DELAY_MS``
    and (without ``shared``; with it, ``shared``'s) ``_BACKOFF_FACTOR``."""
    return RetryConfig(
        max_attempts=_read(
            e, f"{prefix}_MAX_ATTEMPTS", default.max_attempts, COUNT.parse, "a count"
        ),
        initial_delay_ms=_read(
            e, f"{prefix}_INITIAL_DELAY_MS", default.initial_delay_ms, DELAY_MS.parse, "a delay"
        ),
        max_delay_ms=_read(
            e, f"{prefix}_MAX_DELAY_MS", default.max_delay_ms, DELAY_MS.parse, "a delay"
        ),
        backoff_factor=shared.backoff_factor
        if shared is not None
        else _read(
            e,
            f"{prefix}_BACKOFF_FACTOR",
            default.backoff_factor,
            FloatRange(1.0, 1e6).parse,
            "a number >= 1.0",
        ),
    )


def _retry_topics(value: str) -> dict[str, tuple[int, ...]]:
    """``EVENT_BUS_RETRY_TOPICS``: the channels with retry topics and their delays in ms,
    e.g. ``transport.mail=1000,5000,30000;transport.sms=500`` (decision 105)."""
    out: dict[str, tuple[int, ...]] = {}
    for entry in filter(None, (part.strip() for part in value.split(";"))):
        channel, sep, delays = (x.strip() for x in entry.partition("="))
        if not sep or not channel or not delays:
            raise ValueError(f"{entry!r} is not channel=delay,delay,...")
        problem = topic_name_problem(channel)
        if problem is not None:
            raise ValueError(f"channel {channel!r}: {problem}")
        if channel in out:
            raise ValueError(f"channel {channel!r} is named twice")
        try:
            parsed = [int(d) for d in delays.split(",")]
        except ValueError:
            raise ValueError(f"{channel}: delays must be integers (ms), got {delays!r}") from None
        try:
            out[channel] = check_retry_delays(parsed, channel)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return out


def _dlq_suffix(value: str) -> str:
    if not value or any(not (c.isalnum() or c in "._-") for c in value):
        raise ValueError("only letters, digits, '.', '_' and '-' are allowed")
    return value


@dataclass
class TransportConfig:
    bootstrap_servers: str = "localhost:19092"
    client_id: str = "tradecore"
    topic_prefix: str = ""
    producer_acks: str = "all"
    producer_compression_type: str = "lz4"
    producer_linger_ms: int = 10
    producer_batch_size: int = 16384
    #: librdkafka ``message.timeout.ms``: how long one publish attempt may wait for the broker.
    producer_delivery_timeout_ms: int = 30_000
    producer_enable_idempotence: bool = True
    #: Records carry ``event_type``, ``event_id`` and ``content-type`` headers besides the
    #: JSON value (which holds the same), so consumers can route without parsing. On by
    #: default (decision 96); off sends the JSON value alone.
    producer_event_headers: bool = True
    consumer_group_id_prefix: str = "tradecore"
    consumer_session_timeout_ms: int = 45_000
    consumer_heartbeat_interval_ms: int = 3_000
    consumer_max_poll_records: int = 500
    consumer_auto_offset_reset: str = "earliest"
    consumer_partition_assignment_strategy: str = "sticky"
    #: Static membership (KIP-345): each stream consumer joins with a ``group.instance.id``
    #: derived from its group, channel and ``consumer`` name, so a restarted replica takes
    #: its partitions back without a rebalance (see decision 42).
    consumer_static_membership: bool = False
    commit_interval_ms: int = 5_000
    commit_batch_size: int = 100
    topic_partitions: int = 6
    topic_replication_factor: int = 1
    #: Any other librdkafka property (TLS, SASL, tuning), applied to every client. Secrets
    #: among them (``sasl.password``, ...) are masked in ``repr()``.
    librdkafka_config: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, (variable, kind) in _TRANSPORT_TYPES.items():
            check_type(self, name, kind, variable)
        check_fields(self, _TRANSPORT_RULES)
        _check_parsed(self, "bootstrap_servers", parse_bootstrap_servers)
        _check_parsed(self, "client_id", _nonempty)
        _check_parsed(self, "topic_prefix", _topic_prefix)
        for name, choices in _TRANSPORT_CHOICES.items():
            _check_parsed(self, name, _choice(*choices))
        check_librdkafka_config(self.librdkafka_config, "TransportConfig.librdkafka_config")
        if self.producer_enable_idempotence and self.producer_acks not in ("all", "-1"):
            raise ConfigError(
                f"KAFKA_PRODUCER_ACKS={self.producer_acks} needs "
                "KAFKA_PRODUCER_ENABLE_IDEMPOTENCE=false (idempotent producers use acks=all)"
            )
        if self.consumer_heartbeat_interval_ms >= self.consumer_session_timeout_ms:
            raise ConfigError(
                "KAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS must be lower than "
                "KAFKA_CONSUMER_SESSION_TIMEOUT_MS"
            )
        # librdkafka's own cross-checks, caught here with the variables' names.
        if self.producer_delivery_timeout_ms <= self.producer_linger_ms:
            raise ConfigError(
                "KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS must be greater than KAFKA_PRODUCER_LINGER_MS "
                f"({self.producer_delivery_timeout_ms} <= {self.producer_linger_ms})"
            )
        max_poll_interval = int(self.librdkafka_config.get("max.poll.interval.ms", "300000"))
        if self.consumer_session_timeout_ms > max_poll_interval:
            raise ConfigError(
                f"KAFKA_CONSUMER_SESSION_TIMEOUT_MS={self.consumer_session_timeout_ms} is above "
                f"librdkafka's max.poll.interval.ms ({max_poll_interval}); raise that too"
            )

    def __repr__(self) -> str:
        # Written out so that secrets never reach a log line or a traceback (decision 50).
        shown = {
            f.name: masked(self.librdkafka_config)
            if f.name == "librdkafka_config"
            else getattr(self, f.name)
            for f in fields(self)
        }
        return f"TransportConfig({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @classmethod
    def from_env(cls, env: Env | None = None) -> TransportConfig:
        e: Env = os.environ if env is None else env
        extra = security_from_env(e)
        # librdkafka's debug output (decision 89): its `debug` property, off unless asked for.
        debug = _read(e, "KAFKA_DEBUG", "", parse_debug_contexts, "a list of debug contexts")
        if debug:
            extra["debug"] = debug
        cfg = cls(
            bootstrap_servers=_read(
                e,
                "REDPANDA_BOOTSTRAP_SERVERS",
                "localhost:19092",
                parse_bootstrap_servers,
                "a host:port list",
            ),
            client_id=_read(e, "REDPANDA_CLIENT_ID", "tradecore", _nonempty, "a client id"),
            topic_prefix=_read(e, "KAFKA_TOPIC_PREFIX", "", _topic_prefix, "a topic name prefix"),
            producer_acks=_read(
                e, "KAFKA_PRODUCER_ACKS", "all", _choice("all", "-1", "1", "0"), "all, 1 or 0"
            ),
            producer_compression_type=_read(
                e,
                "KAFKA_PRODUCER_COMPRESSION_TYPE",
                "lz4",
                _choice("none", "gzip", "snappy", "lz4", "zstd"),
                "a compression type",
            ),
            producer_linger_ms=_read(
                e, "KAFKA_PRODUCER_LINGER_MS", 10, LINGER_MS.parse, "a linger.ms"
            ),
            producer_batch_size=_read(
                e, "KAFKA_PRODUCER_BATCH_SIZE", 16384, BATCH_BYTES.parse, "a batch.size"
            ),
            producer_delivery_timeout_ms=_read(
                e,
                "KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS",
                30_000,
                DELIVERY_TIMEOUT_MS.parse,
                "a message.timeout.ms",
            ),
            producer_enable_idempotence=_read(
                e, "KAFKA_PRODUCER_ENABLE_IDEMPOTENCE", True, _bool, "true or false"
            ),
            producer_event_headers=_read(
                e, "KAFKA_PRODUCER_EVENT_HEADERS", True, _bool, "true or false"
            ),
            consumer_group_id_prefix=e.get("KAFKA_CONSUMER_GROUP_ID_PREFIX", "tradecore").strip(),
            consumer_session_timeout_ms=_read(
                e,
                "KAFKA_CONSUMER_SESSION_TIMEOUT_MS",
                45_000,
                GROUP_TIMEOUT_MS.parse,
                "a session.timeout.ms",
            ),
            consumer_heartbeat_interval_ms=_read(
                e,
                "KAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS",
                3_000,
                GROUP_TIMEOUT_MS.parse,
                "a heartbeat.interval.ms",
            ),
            consumer_max_poll_records=_read(
                e, "KAFKA_CONSUMER_MAX_POLL_RECORDS", 500, COUNT.parse, "a count"
            ),
            consumer_auto_offset_reset=_read(
                e,
                "KAFKA_CONSUMER_AUTO_OFFSET_RESET",
                "earliest",
                _choice("earliest", "latest"),
                "earliest or latest",
            ),
            consumer_partition_assignment_strategy=_read(
                e,
                "KAFKA_CONSUMER_PARTITION_ASSIGNMENT_STRATEGY",
                "sticky",
                _choice("sticky", "cooperative-sticky", "range", "roundrobin"),
                "sticky, cooperative-sticky, range or roundrobin",
            ),
            consumer_static_membership=_read(
                e, "KAFKA_CONSUMER_STATIC_MEMBERSHIP", False, _bool, "true or false"
            ),
            commit_interval_ms=_read(
                e,
                "KAFKA_COMMIT_INTERVAL_MS",
                5_000,
                COMMIT_INTERVAL_MS.parse,
                "an auto.commit.interval.ms",
            ),
            commit_batch_size=_read(e, "KAFKA_COMMIT_BATCH_SIZE", 100, COUNT.parse, "a count"),
            topic_partitions=_read(e, "KAFKA_TOPIC_PARTITIONS", 6, COUNT.parse, "a count"),
            topic_replication_factor=_read(
                e,
                "KAFKA_TOPIC_REPLICATION_FACTOR",
                1,
                REPLICATION_FACTOR.parse,
                "a replication factor",
            ),
            librdkafka_config=extra,
        )
        return cfg


_TRANSPORT_TYPES: dict[str, tuple[str, type]] = {
    "bootstrap_servers": ("REDPANDA_BOOTSTRAP_SERVERS", str),
    "client_id": ("REDPANDA_CLIENT_ID", str),
    "topic_prefix": ("KAFKA_TOPIC_PREFIX", str),
    "producer_acks": ("KAFKA_PRODUCER_ACKS", str),
    "producer_compression_type": ("KAFKA_PRODUCER_COMPRESSION_TYPE", str),
    "producer_enable_idempotence": ("KAFKA_PRODUCER_ENABLE_IDEMPOTENCE", bool),
    "producer_event_headers": ("KAFKA_PRODUCER_EVENT_HEADERS", bool),
    "consumer_group_id_prefix": ("KAFKA_CONSUMER_GROUP_ID_PREFIX", str),
    "consumer_auto_offset_reset": ("KAFKA_CONSUMER_AUTO_OFFSET_RESET", str),
    "consumer_partition_assignment_strategy": (
        "KAFKA_CONSUMER_PARTITION_ASSIGNMENT_STRATEGY",
        str,
    ),
    "librdkafka_config": ("", dict),
}
_TRANSPORT_RULES: Rules = {
    "producer_linger_ms": (LINGER_MS, "KAFKA_PRODUCER_LINGER_MS"),
    "producer_batch_size": (BATCH_BYTES, "KAFKA_PRODUCER_BATCH_SIZE"),
    "producer_delivery_timeout_ms": (DELIVERY_TIMEOUT_MS, "KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS"),
    "consumer_session_timeout_ms": (GROUP_TIMEOUT_MS, "KAFKA_CONSUMER_SESSION_TIMEOUT_MS"),
    "consumer_heartbeat_interval_ms": (GROUP_TIMEOUT_MS, "KAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS"),
    "consumer_max_poll_records": (COUNT, "KAFKA_CONSUMER_MAX_POLL_RECORDS"),
    "commit_interval_ms": (COMMIT_INTERVAL_MS, "KAFKA_COMMIT_INTERVAL_MS"),
    "commit_batch_size": (COUNT, "KAFKA_COMMIT_BATCH_SIZE"),
    "topic_partitions": (COUNT, "KAFKA_TOPIC_PARTITIONS"),
    "topic_replication_factor": (REPLICATION_FACTOR, "KAFKA_TOPIC_REPLICATION_FACTOR"),
}
_TRANSPORT_CHOICES = {
    "producer_acks": ("all", "-1", "1", "0"),
    "producer_compression_type": ("none", "gzip", "snappy", "lz4", "zstd"),
    "consumer_auto_offset_reset": ("earliest", "latest"),
    "consumer_partition_assignment_strategy": (
        "sticky",
        "cooperative-sticky",
        "range",
        "roundrobin",
    ),
}


def _check_parsed(obj: TransportConfig, name: str, parse: Callable[[str], str]) -> None:
    value = getattr(obj, name)
    try:
        parse(value)
    except ValueError as exc:
        variable = _TRANSPORT_TYPES[name][0]
        raise ConfigError(
            f"TransportConfig.{name} ({variable})={value!r} is not valid: {exc}"
        ) from None


def _topic_prefix(value: str) -> str:
    """Empty, or a topic name of its own (``{prefix}.{channel}`` must be one)."""
    if value:
        problem = topic_name_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


def _nonempty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value
