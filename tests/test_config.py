"""Configuration from the environment: every variable of the guide, its default, its errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tradecore_eventbus import ConfigError, EventBusConfig, RetryConfig, TransportConfig

GUIDE_EVENT_BUS_ENV = {
    "ENABLE_EVENT_BUS": "true",
    "ENABLE_DLQ": "true",
    "DLQ_TOPIC_SUFFIX": ".dlq",
    "EVENT_BUS_VALIDATE_ON_PUBLISH": "true",
    "EVENT_BUS_CIRCUIT_BREAKER_FAILURE_THRESHOLD": "5",
    "EVENT_BUS_CIRCUIT_BREAKER_SUCCESS_THRESHOLD": "3",
    "EVENT_BUS_CIRCUIT_BREAKER_TIMEOUT_SECONDS": "30",
    "EVENT_BUS_CIRCUIT_BREAKER_HALF_OPEN_CALLS": "3",
    "EVENT_BUS_PUBLISH_RETRY_MAX_ATTEMPTS": "5",
    "EVENT_BUS_PUBLISH_RETRY_INITIAL_DELAY_MS": "200",
    "EVENT_BUS_PUBLISH_RETRY_MAX_DELAY_MS": "5000",
    "EVENT_BUS_PUBLISH_RETRY_BACKOFF_FACTOR": "2.0",
    "EVENT_BUS_SUB_BATCH_SIZE": "10",
    "EVENT_BUS_SUB_BLOCK_MS": "10000",
    "EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS": "15000",
}

GUIDE_TRANSPORT_ENV = {
    "REDPANDA_BOOTSTRAP_SERVERS": "localhost:19092",
    "REDPANDA_CLIENT_ID": "tradecore",
    "KAFKA_TOPIC_PREFIX": "",
    "KAFKA_PRODUCER_ACKS": "all",
    "KAFKA_PRODUCER_COMPRESSION_TYPE": "lz4",
    "KAFKA_PRODUCER_LINGER_MS": "10",
    "KAFKA_PRODUCER_BATCH_SIZE": "16384",
    "KAFKA_CONSUMER_GROUP_ID_PREFIX": "tradecore",
    "KAFKA_CONSUMER_SESSION_TIMEOUT_MS": "45000",
    "KAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS": "3000",
    "KAFKA_CONSUMER_MAX_POLL_RECORDS": "500",
    "KAFKA_CONSUMER_AUTO_OFFSET_RESET": "earliest",
    "KAFKA_CONSUMER_PARTITION_ASSIGNMENT_STRATEGY": "sticky",
    "KAFKA_COMMIT_INTERVAL_MS": "5000",
    "KAFKA_COMMIT_BATCH_SIZE": "100",
}


def test_the_guides_values_are_the_defaults() -> None:
    assert EventBusConfig.from_env(GUIDE_EVENT_BUS_ENV) == EventBusConfig.from_env({})
    assert TransportConfig.from_env(GUIDE_TRANSPORT_ENV) == TransportConfig.from_env({})
    bus = EventBusConfig.from_env({})
    assert bus.enable_dlq is True
    assert bus.dlq_topic_suffix == ".dlq"
    assert bus.circuit_breaker.failure_threshold == 5
    assert bus.circuit_breaker.timeout_seconds == 30
    assert bus.publish_retry == RetryConfig(5, 200, 5000, 2.0)
    assert bus.sub_batch_size == 10
    assert bus.sub_block_ms == 10_000
    tc = TransportConfig.from_env({})
    assert tc.bootstrap_servers == "localhost:19092"
    assert tc.producer_delivery_timeout_ms == 30_000
    assert tc.commit_batch_size == 100
    assert tc.consumer_static_membership is False, "static membership is opt-in"


def test_every_variable_is_read() -> None:
    bus = EventBusConfig.from_env(
        {
            "ENABLE_EVENT_BUS": "false",
            "ENABLE_DLQ": "no",
            "DLQ_TOPIC_SUFFIX": ".dead",
            "EVENT_BUS_VALIDATE_ON_PUBLISH": "0",
            "EVENT_BUS_CIRCUIT_BREAKER_FAILURE_THRESHOLD": "7",
            "EVENT_BUS_CIRCUIT_BREAKER_SUCCESS_THRESHOLD": "2",
            "EVENT_BUS_CIRCUIT_BREAKER_TIMEOUT_SECONDS": "12.5",
            "EVENT_BUS_CIRCUIT_BREAKER_HALF_OPEN_CALLS": "4",
            "EVENT_BUS_PUBLISH_RETRY_MAX_ATTEMPTS": "8",
            "EVENT_BUS_PUBLISH_RETRY_INITIAL_DELAY_MS": "50",
            "EVENT_BUS_PUBLISH_RETRY_MAX_DELAY_MS": "900",
            "EVENT_BUS_PUBLISH_RETRY_BACKOFF_FACTOR": "1.5",
            "EVENT_BUS_SUB_BATCH_SIZE": "25",
            "EVENT_BUS_SUB_BLOCK_MS": "250",
            "EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS": "2000",
        }
    )
    assert bus.enable_event_bus is False
    assert bus.enable_dlq is False
    assert bus.dlq_topic_suffix == ".dead"
    assert bus.validate_on_publish is False
    assert bus.circuit_breaker.failure_threshold == 7
    assert bus.circuit_breaker.success_threshold == 2
    assert bus.circuit_breaker.timeout_seconds == 12.5
    assert bus.circuit_breaker.half_open_calls == 4
    assert bus.publish_retry == RetryConfig(8, 50, 900, 1.5)
    assert bus.critical_publish_max_attempts == 10
    assert (bus.sub_batch_size, bus.sub_block_ms, bus.consumer_poll_timeout_ms) == (25, 250, 2000)

    tc = TransportConfig.from_env(
        {
            "REDPANDA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
            "REDPANDA_CLIENT_ID": "svc",
            "KAFKA_TOPIC_PREFIX": "prod",
            "KAFKA_PRODUCER_ACKS": "1",
            "KAFKA_PRODUCER_ENABLE_IDEMPOTENCE": "false",
            "KAFKA_PRODUCER_COMPRESSION_TYPE": "zstd",
            "KAFKA_PRODUCER_LINGER_MS": "0",
            "KAFKA_PRODUCER_BATCH_SIZE": "65536",
            "KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS": "5000",
            "KAFKA_CONSUMER_GROUP_ID_PREFIX": "acme",
            "KAFKA_CONSUMER_SESSION_TIMEOUT_MS": "30000",
            "KAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS": "1000",
            "KAFKA_CONSUMER_MAX_POLL_RECORDS": "100",
            "KAFKA_CONSUMER_AUTO_OFFSET_RESET": "latest",
            "KAFKA_CONSUMER_PARTITION_ASSIGNMENT_STRATEGY": "range",
            "KAFKA_CONSUMER_STATIC_MEMBERSHIP": "true",
            "KAFKA_COMMIT_INTERVAL_MS": "1000",
            "KAFKA_COMMIT_BATCH_SIZE": "10",
            "KAFKA_TOPIC_PARTITIONS": "12",
            "KAFKA_TOPIC_REPLICATION_FACTOR": "3",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "u",
            "KAFKA_SASL_PASSWORD": "p",
        }
    )
    assert tc.bootstrap_servers == "k1:9092,k2:9092"
    assert tc.client_id == "svc"
    assert tc.topic_prefix == "prod"
    assert (tc.producer_acks, tc.producer_enable_idempotence) == ("1", False)
    assert tc.producer_compression_type == "zstd"
    assert (tc.producer_linger_ms, tc.producer_batch_size) == (0, 65536)
    assert tc.producer_delivery_timeout_ms == 5000
    assert tc.consumer_group_id_prefix == "acme"
    assert (tc.consumer_session_timeout_ms, tc.consumer_heartbeat_interval_ms) == (30000, 1000)
    assert tc.consumer_max_poll_records == 100
    assert tc.consumer_auto_offset_reset == "latest"
    assert tc.consumer_partition_assignment_strategy == "range"
    assert tc.consumer_static_membership is True
    assert (tc.commit_interval_ms, tc.commit_batch_size) == (1000, 10)
    assert (tc.topic_partitions, tc.topic_replication_factor) == (12, 3)
    assert tc.librdkafka_config == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "u",
        "sasl.password": "p",
    }


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ENABLE_DLQ", "maybe"),
        ("EVENT_BUS_CIRCUIT_BREAKER_FAILURE_THRESHOLD", "0"),
        ("EVENT_BUS_CIRCUIT_BREAKER_TIMEOUT_SECONDS", "soon"),
        ("EVENT_BUS_PUBLISH_RETRY_BACKOFF_FACTOR", "0.5"),
        ("EVENT_BUS_SUB_BATCH_SIZE", "-1"),
        ("DLQ_TOPIC_SUFFIX", "/dlq"),
    ],
)
def test_an_invalid_event_bus_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable) as info:
        EventBusConfig.from_env({variable: value})
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KAFKA_PRODUCER_ACKS", "most"),
        ("KAFKA_PRODUCER_COMPRESSION_TYPE", "brotli"),
        ("KAFKA_PRODUCER_LINGER_MS", "-5"),
        ("KAFKA_CONSUMER_AUTO_OFFSET_RESET", "middle"),
        ("KAFKA_CONSUMER_STATIC_MEMBERSHIP", "sometimes"),
        ("KAFKA_CONSUMER_PARTITION_ASSIGNMENT_STRATEGY", "random"),
        ("KAFKA_COMMIT_BATCH_SIZE", "0"),
        ("KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS", "x"),
    ],
)
def test_an_invalid_transport_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        TransportConfig.from_env({variable: value})


def test_an_empty_variable_means_unset() -> None:
    assert TransportConfig.from_env({"REDPANDA_BOOTSTRAP_SERVERS": " "}).bootstrap_servers == (
        "localhost:19092"
    )


def test_acks_below_all_needs_idempotence_off() -> None:
    with pytest.raises(ConfigError, match="KAFKA_PRODUCER_ENABLE_IDEMPOTENCE"):
        TransportConfig.from_env({"KAFKA_PRODUCER_ACKS": "1"})


def test_add_topic_config_overrides_retry_per_topic() -> None:
    config = EventBusConfig.from_env({})
    custom = RetryConfig(
        max_attempts=10, initial_delay_ms=50, max_delay_ms=30000, backoff_factor=1.5
    )
    config.add_topic_config(topic_name="critical-events", topic_type="stream", retry_config=custom)
    assert config.retry_for("critical-events", critical=False) is custom
    assert config.retry_for("other", critical=False) == config.publish_retry
    assert config.retry_for("other", critical=True).max_attempts == 10
    with pytest.raises(ConfigError):
        config.add_topic_config("x", "queue")  # type: ignore[arg-type]


def test_retry_config_rejects_nonsense() -> None:
    with pytest.raises(ConfigError):
        RetryConfig(max_attempts=0)
    with pytest.raises(ConfigError):
        RetryConfig(backoff_factor=0.5)


# ---------------------------------------------------------------- ranges, types, addresses

BAD_ENV = [
    # librdkafka's ranges (C ints): these raised OverflowError at first use before.
    ("KAFKA_PRODUCER_LINGER_MS", "100000000000", TransportConfig),
    ("KAFKA_PRODUCER_LINGER_MS", "900001", TransportConfig),
    ("KAFKA_PRODUCER_BATCH_SIZE", "2147483648", TransportConfig),
    ("KAFKA_PRODUCER_BATCH_SIZE", "0", TransportConfig),
    ("KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS", "99999999999999999999", TransportConfig),
    ("KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS", "0", TransportConfig),
    ("KAFKA_CONSUMER_MAX_POLL_RECORDS", "18446744073709551616", TransportConfig),
    ("KAFKA_CONSUMER_MAX_POLL_RECORDS", "0", TransportConfig),
    ("KAFKA_CONSUMER_SESSION_TIMEOUT_MS", "3600001", TransportConfig),
    ("KAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS", "-1", TransportConfig),
    ("KAFKA_COMMIT_INTERVAL_MS", "86400001", TransportConfig),
    ("KAFKA_COMMIT_BATCH_SIZE", "1e3", TransportConfig),
    ("KAFKA_TOPIC_PARTITIONS", "2147483648", TransportConfig),
    ("KAFKA_TOPIC_REPLICATION_FACTOR", "32768", TransportConfig),
    ("KAFKA_PRODUCER_ENABLE_IDEMPOTENCE", "perhaps", TransportConfig),
    # Broker addresses.
    ("REDPANDA_BOOTSTRAP_SERVERS", "localhost:notaport", TransportConfig),
    ("REDPANDA_BOOTSTRAP_SERVERS", "localhost", TransportConfig),
    ("REDPANDA_BOOTSTRAP_SERVERS", "localhost:0", TransportConfig),
    ("REDPANDA_BOOTSTRAP_SERVERS", "localhost:65536", TransportConfig),
    ("REDPANDA_BOOTSTRAP_SERVERS", "k1:9092,,k2:9092", TransportConfig),
    ("REDPANDA_BOOTSTRAP_SERVERS", "::1:9092", TransportConfig),
    ("REDPANDA_BOOTSTRAP_SERVERS", "[::zz]:9092", TransportConfig),
    ("REDPANDA_BOOTSTRAP_SERVERS", "[::1]", TransportConfig),
    ("REDPANDA_BOOTSTRAP_SERVERS", "bad host:9092", TransportConfig),
    ("REDPANDA_BOOTSTRAP_SERVERS", "gopher://k1:9092", TransportConfig),
    # Names and security.
    ("KAFKA_TOPIC_PREFIX", "prod/eu", TransportConfig),
    ("KAFKA_TOPIC_PREFIX", "x" * 250, TransportConfig),
    ("KAFKA_TOPIC_PREFIX", "..", TransportConfig),
    ("KAFKA_SECURITY_PROTOCOL", "TLS", TransportConfig),
    ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-1", TransportConfig),
    # The bus's own numbers: inf, NaN and durations past int32 milliseconds.
    ("EVENT_BUS_CIRCUIT_BREAKER_TIMEOUT_SECONDS", "inf", EventBusConfig),
    ("EVENT_BUS_CIRCUIT_BREAKER_TIMEOUT_SECONDS", "nan", EventBusConfig),
    ("EVENT_BUS_CIRCUIT_BREAKER_TIMEOUT_SECONDS", "1e300", EventBusConfig),
    ("EVENT_BUS_CRITICAL_CIRCUIT_BREAKER_TIMEOUT_SECONDS", "-1", EventBusConfig),
    ("EVENT_BUS_CLOSE_TIMEOUT_SECONDS", "inf", EventBusConfig),
    ("EVENT_BUS_CLOSE_TIMEOUT_SECONDS", "-inf", EventBusConfig),
    ("EVENT_BUS_CIRCUIT_BREAKER_FAILURE_THRESHOLD", "4294967296", EventBusConfig),
    ("EVENT_BUS_CIRCUIT_BREAKER_HALF_OPEN_CALLS", "0", EventBusConfig),
    ("EVENT_BUS_PUBLISH_RETRY_MAX_ATTEMPTS", "99999999999", EventBusConfig),
    ("EVENT_BUS_PUBLISH_RETRY_INITIAL_DELAY_MS", "-1", EventBusConfig),
    ("EVENT_BUS_PUBLISH_RETRY_MAX_DELAY_MS", "2147483648", EventBusConfig),
    ("EVENT_BUS_PUBLISH_RETRY_BACKOFF_FACTOR", "inf", EventBusConfig),
    ("EVENT_BUS_PUBLISH_RETRY_BACKOFF_FACTOR", "nan", EventBusConfig),
    ("EVENT_BUS_HANDLER_RETRY_MAX_ATTEMPTS", "0", EventBusConfig),
    ("EVENT_BUS_HANDLER_RETRY_MAX_DELAY_MS", "1.5", EventBusConfig),
    ("EVENT_BUS_SUB_BLOCK_MS", "2147483648", EventBusConfig),
    ("EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS", "0", EventBusConfig),
    ("EVENT_BUS_MAX_CONCURRENT_PARTITIONS", "0", EventBusConfig),
    ("EVENT_BUS_STRICT_VALIDATION", "2", EventBusConfig),
]


@pytest.mark.parametrize(
    ("variable", "value", "config"), BAD_ENV, ids=[f"{v}={x[:20]}" for v, x, _ in BAD_ENV]
)
def test_a_value_out_of_range_names_the_variable(
    variable: str, value: str, config: type[EventBusConfig] | type[TransportConfig]
) -> None:
    with pytest.raises(ConfigError, match=variable):
        config.from_env({variable: value})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("k1:9092", "k1:9092"),
        (" k1:9092 , 10.0.0.2:9093 ", "k1:9092,10.0.0.2:9093"),
        ("[::1]:9092,[fe80::1]:1", "[::1]:9092,[fe80::1]:1"),
        ("SASL_SSL://broker.example.com:9094", "SASL_SSL://broker.example.com:9094"),
        ("kafka_0.internal:65535", "kafka_0.internal:65535"),
    ],
)
def test_good_bootstrap_lists_are_accepted(value: str, expected: str) -> None:
    assert TransportConfig.from_env({"REDPANDA_BOOTSTRAP_SERVERS": value}).bootstrap_servers == (
        expected
    )


def test_security_settings_are_normalised_and_the_password_never_appears_in_errors() -> None:
    tc = TransportConfig.from_env(
        {
            "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "KAFKA_SASL_MECHANISM": "scram-sha-256",
            "KAFKA_SASL_USERNAME": "u",
            "KAFKA_SASL_PASSWORD": "hunter2-secret",
        }
    )
    assert tc.librdkafka_config == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "u",
        "sasl.password": "hunter2-secret",
    }
    with pytest.raises(ConfigError, match="KAFKA_SASL_MECHANISM") as info:
        TransportConfig.from_env(
            {"KAFKA_SASL_MECHANISM": "MD5", "KAFKA_SASL_PASSWORD": "hunter2-secret"}
        )
    assert "hunter2-secret" not in str(info.value)


@pytest.mark.parametrize(
    ("config", "field", "value"),
    [
        (TransportConfig, "producer_linger_ms", 10**12),
        (TransportConfig, "producer_batch_size", 2**31),
        (TransportConfig, "producer_delivery_timeout_ms", 1.5),
        (TransportConfig, "consumer_max_poll_records", 2**64),
        (TransportConfig, "topic_replication_factor", 0),
        (TransportConfig, "bootstrap_servers", "localhost:notaport"),
        (TransportConfig, "topic_prefix", "a b"),
        (TransportConfig, "producer_acks", "most"),
        (TransportConfig, "producer_enable_idempotence", "yes"),
        (TransportConfig, "librdkafka_config", {"security.protocol": "TLS"}),
        (TransportConfig, "librdkafka_config", {"message.max.bytes": "10"}),
        (EventBusConfig, "close_timeout_seconds", float("inf")),
        (EventBusConfig, "sub_block_ms", 0),
        (EventBusConfig, "consumer_poll_timeout_ms", float("nan")),
        (EventBusConfig, "max_concurrent_partitions", True),
        (EventBusConfig, "enable_dlq", "false"),
        (EventBusConfig, "dlq_topic_suffix", "/dlq"),
    ],
)
def test_configs_built_in_python_are_checked_too_naming_the_field(
    config: type[EventBusConfig] | type[TransportConfig], field: str, value: object
) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{config.__name__}.{field}")):
        config(**{field: value})


def test_nested_settings_are_checked_naming_their_field() -> None:
    from tradecore_eventbus._internal.config.settings import CircuitBreakerConfig

    with pytest.raises(ConfigError, match=r"CircuitBreakerConfig\.timeout_seconds"):
        CircuitBreakerConfig(timeout_seconds=float("inf"))
    with pytest.raises(ConfigError, match=r"RetryConfig\.max_delay_ms"):
        RetryConfig(max_delay_ms=2**31)
    with pytest.raises(ConfigError, match=r"EventBusConfig\.publish_retry"):
        EventBusConfig(publish_retry=5)  # type: ignore[arg-type]


def test_a_spool_directory_that_cannot_be_created_or_written_is_refused(tmp_path: Path) -> None:
    regular_file = tmp_path / "file"
    regular_file.write_text("not a directory")
    for bad in (regular_file, regular_file / "spool", regular_file / "a" / "b"):
        with pytest.raises(ConfigError, match="EVENT_BUS_SPOOL_DIR"):
            EventBusConfig.from_env({"EVENT_BUS_SPOOL_DIR": str(bad)})
    # Creatable (not created yet: the spool is made on first use) and existing are fine.
    fresh = tmp_path / "new" / "spool"
    assert EventBusConfig.from_env({"EVENT_BUS_SPOOL_DIR": str(fresh)}).spool_dir == str(fresh)
    assert not fresh.exists()
    assert EventBusConfig.from_env({"EVENT_BUS_SPOOL_DIR": str(tmp_path)}).spool_dir


def test_the_event_bus_checks_its_spool_directory_when_it_is_built(tmp_path: Path) -> None:
    from tradecore_eventbus import EventBus, MemoryTransportAdapter

    regular_file = tmp_path / "file"
    regular_file.write_text("x")
    with pytest.raises(ConfigError, match="spool_dir"):
        EventBus(MemoryTransportAdapter(), spool_dir=str(regular_file / "spool"))
    config = EventBusConfig(spool_dir=str(regular_file))
    with pytest.raises(ConfigError, match="EVENT_BUS_SPOOL_DIR"):
        EventBus(MemoryTransportAdapter(config, TransportConfig()), event_bus_config=config)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        (
            {"KAFKA_PRODUCER_LINGER_MS": "5000", "KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS": "5000"},
            "KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS",
        ),
        ({"KAFKA_CONSUMER_SESSION_TIMEOUT_MS": "300001"}, "KAFKA_CONSUMER_SESSION_TIMEOUT_MS"),
    ],
)
def test_librdkafkas_cross_checks_are_made_at_from_env(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        TransportConfig.from_env(env)


@pytest.mark.parametrize(
    ("value", "bound"),
    [
        ("7.5", 7.5),
        ("0", 0.0),
        (None, EventBusConfig().close_timeout_seconds),
        ("soon", EventBusConfig().close_timeout_seconds),
        ("-1", EventBusConfig().close_timeout_seconds),
    ],
)
def test_the_exit_hook_waits_at_most_the_close_timeout(
    monkeypatch: pytest.MonkeyPatch, value: str | None, bound: float
) -> None:
    """A malformed value still gives a bound (a bus reading it reported it already), and
    the rest of the configuration is not read: nothing else can keep the hook from running."""
    from tradecore_eventbus._internal import interpreter_exit

    if value is None:
        monkeypatch.delenv("EVENT_BUS_CLOSE_TIMEOUT_SECONDS", raising=False)
    else:
        monkeypatch.setenv("EVENT_BUS_CLOSE_TIMEOUT_SECONDS", value)
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setenv("EVENT_BUS_MAX_CONCURRENT_PARTITIONS", "many")
    waited: list[float] = []
    monkeypatch.setattr(interpreter_exit._core, "before_exit", waited.append)
    interpreter_exit._before_exit()
    assert waited == [bound]


@pytest.mark.parametrize("huge", [1e19, 1e300, float("inf")])
def test_the_core_takes_a_huge_exit_bound_as_no_deadline(huge: float) -> None:
    """Checked in a child process: the call sets the exiting flag for good."""
    import subprocess
    import sys

    code = (
        "from tradecore_eventbus import _core; "
        f"_core.before_exit(float({str(huge)!r})); print('told')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "told"


def test_the_core_refuses_a_negative_exit_bound_by_name() -> None:
    from tradecore_eventbus import _core
    from tradecore_eventbus.exceptions import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="timeout"):
        _core.before_exit(-1.0)
