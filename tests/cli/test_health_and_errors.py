"""``health`` exit codes, and how a wrong address or a bad value fails: one line on stderr,
a non-zero exit, no traceback, no secret."""

from __future__ import annotations

import json

import pytest

from .conftest import invoke, run_module

pytestmark = pytest.mark.kafka

#: A port nothing listens on: the broker "does not answer".
NOBODY = "127.0.0.1:1"


def test_health_on_the_broker_is_healthy_json_and_exit_code_0(spool_dir: str) -> None:
    result = invoke(["health", "--spool-dir", spool_dir, "--timeout", "10"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["healthy"] is True
    assert report["adapter"]["details"]["ping_successful"] is True
    # The spool in use is shown (issue 14): the flag's directory.
    assert report["adapter"]["details"]["spool"]["directory"] == spool_dir


def test_health_of_an_unreachable_broker_is_unhealthy_and_exit_code_1() -> None:
    done = run_module(["health", "--bootstrap", NOBODY, "--timeout", "1"])
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["healthy"] is False
    assert report["adapter"]["details"]["ping_successful"] is False
    assert "Traceback" not in done.stderr


def test_health_takes_the_address_from_the_environment() -> None:
    result = invoke(["health", "--timeout", "1"], REDPANDA_BOOTSTRAP_SERVERS=NOBODY)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["healthy"] is False


@pytest.mark.parametrize(
    "args",
    [
        ["topics", "list"],
        ["topics", "init", "transport.never-created"],
        ["tail", "transport.never-read"],
        ["dlq", "list", "transport.never-read"],
        ["dlq", "replay", "transport.never-read"],
        ["spool", "replay"],
        ["bench", "--bootstrap", NOBODY],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_an_unreachable_broker_is_one_line_and_exit_code_1(args: list[str]) -> None:
    done = run_module([*args, "--timeout", "1"], REDPANDA_BOOTSTRAP_SERVERS=NOBODY)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"Error: the broker at {NOBODY} did not answer within 1s (--bootstrap or "
        "REDPANDA_BOOTSTRAP_SERVERS; --timeout or EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS)"
    ]


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        (["topics", "list", "--bootstrap", "no port here"], {}, "--bootstrap"),
        (["tail", "a.b", "--topic-prefix", "bad prefix!"], {}, "--topic-prefix"),
        (["health"], {"REDPANDA_BOOTSTRAP_SERVERS": "host:notaport"}, "REDPANDA_BOOTSTRAP_SERVERS"),
        (["topics", "list"], {"KAFKA_TOPIC_PARTITIONS": "zero"}, "KAFKA_TOPIC_PARTITIONS"),
        (["spool", "list"], {"EVENT_BUS_SPOOL_DIR": "/proc/version/spool"}, "EVENT_BUS_SPOOL_DIR"),
    ],
)
def test_a_bad_value_is_one_line_naming_it(
    args: list[str], env: dict[str, str], names: str
) -> None:
    done = run_module(args, **env)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("Error: ")
    assert names in line
    assert done.stdout == ""


def test_a_bad_channel_name_is_one_line() -> None:
    done = run_module(["tail", "bad channel!", "--timeout", "5"])
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("Error: InvalidTopicError: ")


def test_secrets_are_never_printed(spool_dir: str) -> None:
    secret = "hunter2-do-not-print"
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": "operator",
        "KAFKA_SASL_PASSWORD": secret,
    }
    health = run_module(
        ["health", "--bootstrap", NOBODY, "--timeout", "1", "--spool-dir", spool_dir], **env
    )
    failed = run_module(["topics", "list", "--bootstrap", NOBODY, "--timeout", "1"], **env)
    bad = run_module(["topics", "list"], **env, KAFKA_PRODUCER_LINGER_MS="-5")
    for done in (health, failed, bad):
        assert done.returncode != 0
        assert secret not in done.stdout + done.stderr
