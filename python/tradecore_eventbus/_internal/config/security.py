"""TLS and SASL settings: the ``KAFKA_SECURITY_PROTOCOL`` / ``KAFKA_SASL_*`` / ``KAFKA_SSL_*``
variables, checked at ``from_env()`` and passed to librdkafka; and how secrets among any
librdkafka properties are kept out of reprs and log records (decision 50).

Error messages name the variable and never repeat a secret's value.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

from tradecore_eventbus import _core

from ...exceptions import ConfigError
from .checks import SASL_MECHANISMS, parse_sasl_mechanism, parse_security_protocol

#: What a secret is shown as.
MASK = "***"

#: Environment variable -> librdkafka property.
SECURITY_VARS: dict[str, str] = {
    "KAFKA_SECURITY_PROTOCOL": "security.protocol",
    "KAFKA_SASL_MECHANISM": "sasl.mechanism",
    "KAFKA_SASL_USERNAME": "sasl.username",
    "KAFKA_SASL_PASSWORD": "sasl.password",
    "KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
    "KAFKA_SSL_CERTIFICATE_LOCATION": "ssl.certificate.location",
    "KAFKA_SSL_KEY_LOCATION": "ssl.key.location",
    "KAFKA_SSL_KEY_PASSWORD": "ssl.key.password",
    "KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM": "ssl.endpoint.identification.algorithm",
}

#: Mechanisms that authenticate with KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD.
_PASSWORD_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_FILES = ("KAFKA_SSL_CA_LOCATION", "KAFKA_SSL_CERTIFICATE_LOCATION", "KAFKA_SSL_KEY_LOCATION")


def is_secret(key: str) -> bool:
    """Whether a librdkafka property holds a secret (the Rust core's rule, so both sides
    mask the same keys)."""
    return _core.is_secret_setting(key)


def masked(config: Mapping[str, str]) -> dict[str, str]:
    """``config`` with every secret value replaced by ``***``."""
    return {k: (MASK if is_secret(k) else v) for k, v in config.items()}


def redact(text: str) -> str:
    """``text`` with every configured secret replaced by ``***``. Lone surrogates (text UTF-8
    cannot carry, e.g. from a decoded ``"\\ud800"``) are written as ``\\udXXX`` escapes
    first: the scrubber in the Rust core only takes text UTF-8 can carry."""
    return _core.redact(text.encode("utf-8", "backslashreplace").decode("utf-8"))


class RedactingFilter(logging.Filter):
    """Replaces configured secrets in a record's message and traceback with ``***``. For
    loggers that quote text this package did not write (a handler's exception); text from
    the Rust core is clean already."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            clean = redact(text)
            if clean != text:
                record.exc_text = clean
        return True


def security_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """The librdkafka properties the security variables set (unset or empty ones are left
    out), checked: a known protocol and mechanism, both credentials for password mechanisms,
    certificate files that exist. Protocol and mechanism are upper-cased (librdkafka
    compares the mechanism case-sensitively); the rest is passed as given."""
    values = {
        var: env[var].strip()
        for var in SECURITY_VARS
        if env.get(var) is not None and env[var].strip() != ""
    }
    # Passwords are taken as they are (spaces may belong to them).
    for var in ("KAFKA_SASL_PASSWORD", "KAFKA_SSL_KEY_PASSWORD"):
        if var in values:
            values[var] = env[var]
    protocol = "PLAINTEXT"
    if "KAFKA_SECURITY_PROTOCOL" in values:
        protocol = _parsed(values, "KAFKA_SECURITY_PROTOCOL", parse_security_protocol)
    mechanism = None
    if "KAFKA_SASL_MECHANISM" in values:
        # Upper-cased: librdkafka compares the mechanism case-sensitively.
        mechanism = _parsed(values, "KAFKA_SASL_MECHANISM", parse_sasl_mechanism)
    if protocol.startswith("SASL_"):
        if mechanism is None:
            # librdkafka would fall back to GSSAPI, which this build does not have.
            raise ConfigError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_MECHANISM (one of "
                f"{', '.join(SASL_MECHANISMS)})"
            )
        if mechanism in _PASSWORD_MECHANISMS:
            missing = [v for v in ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD") if v not in values]
            if missing:
                raise ConfigError(
                    f"KAFKA_SECURITY_PROTOCOL={protocol} with KAFKA_SASL_MECHANISM={mechanism} "
                    f"needs {' and '.join(missing)}"
                )
    elif any(v in values for v in ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD")):
        raise ConfigError(
            "KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD need KAFKA_SECURITY_PROTOCOL=SASL_SSL or "
            f"SASL_PLAINTEXT (it is {protocol}): they would be ignored"
        )
    for var in _FILES:
        path = values.get(var)
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"{var}={path!r}: no such file")
    algorithm = values.get("KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM")
    if algorithm is not None:
        algorithm = algorithm.lower()
        if algorithm not in ("https", "none"):
            raise ConfigError(
                f"KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM={algorithm!r} is not https or none"
            )
    return {SECURITY_VARS[var]: value for var, value in values.items()}


def _parsed(values: dict[str, str], var: str, parse: Callable[[str], str]) -> str:
    """``values[var]`` parsed (and stored back normalised); a ``ConfigError`` naming ``var``."""
    try:
        values[var] = parse(values[var])
    except ValueError as exc:
        raise ConfigError(f"{var}={values[var]!r} is not a known value: {exc}") from None
    return values[var]
