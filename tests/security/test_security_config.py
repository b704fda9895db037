"""The TLS / SASL variables: every one reaches librdkafka, and bad combinations are a
``ConfigError`` naming the variable at ``from_env()``, not a handshake failure later."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradecore_eventbus import ConfigError, TransportConfig

PEM = str(Path(__file__))  # any existing file stands for a PEM file here


def test_every_security_variable_becomes_its_librdkafka_property() -> None:
    tc = TransportConfig.from_env(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "scram-sha-512",
            "KAFKA_SASL_USERNAME": "eventbus",
            "KAFKA_SASL_PASSWORD": " spaced pw ",
            "KAFKA_SSL_CA_LOCATION": PEM,
            "KAFKA_SSL_CERTIFICATE_LOCATION": PEM,
            "KAFKA_SSL_KEY_LOCATION": PEM,
            "KAFKA_SSL_KEY_PASSWORD": "key-pw",
            "KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM": "none",
        }
    )
    assert tc.librdkafka_config == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",  # librdkafka compares it case-sensitively
        "sasl.username": "eventbus",
        "sasl.password": " spaced pw ",  # a password is taken as it is
        "ssl.ca.location": PEM,
        "ssl.certificate.location": PEM,
        "ssl.key.location": PEM,
        "ssl.key.password": "key-pw",
        "ssl.endpoint.identification.algorithm": "none",
    }
    assert TransportConfig.from_env({}).librdkafka_config == {}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "tls"}, "KAFKA_SECURITY_PROTOCOL"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-1"},
            "KAFKA_SASL_MECHANISM",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_USERNAME": "u",
            },
            "KAFKA_SASL_PASSWORD",
        ),
        ({"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SSL_CA_LOCATION": "/no/such/ca.pem"}, "KAFKA_SSL_CA_LOCATION"),
        ({"KAFKA_SSL_KEY_LOCATION": "/no/such/key.pem"}, "KAFKA_SSL_KEY_LOCATION"),
        (
            {"KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM": "dns"},
            "KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM",
        ),
    ],
)
def test_unusable_security_settings_are_refused_naming_the_variable(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        TransportConfig.from_env(env)


def test_a_mechanism_without_passwords_needs_no_credentials() -> None:
    tc = TransportConfig.from_env(
        {"KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "KAFKA_SASL_MECHANISM": "OAUTHBEARER"}
    )
    assert tc.librdkafka_config["sasl.mechanism"] == "OAUTHBEARER"
