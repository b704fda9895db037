"""Checks of setting values: numeric ranges (librdkafka's, which are C ``int``s), broker
addresses, security settings, the spool directory.

Each check is used twice (decision 45): by ``from_env()``, whose ``ConfigError`` names the
environment variable, and by the config dataclasses' ``__post_init__``, whose error names
the field (and its variable), so a config built in Python is held to the same rules.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ...exceptions import ConfigError

INT32_MAX = 2**31 - 1
INT16_MAX = 2**15 - 1
#: Every duration fits in a signed 32-bit count of milliseconds, as librdkafka's do
#: (about 24.8 days); longer ones are surely a mistake (and overflow C ints or timers).
MAX_MS = INT32_MAX
MAX_SECONDS = MAX_MS / 1000.0

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
#: The mechanisms this build of librdkafka has (GSSAPI/Kerberos needs libsasl2, left out).
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")


@dataclass(frozen=True)
class IntRange:
    """An integer from ``low`` to ``high`` (both included)."""

    low: int
    high: int

    def problem(self, value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, not {type(value).__name__}"
        if not self.low <= value <= self.high:
            return f"must be between {self.low} and {self.high}"
        return None

    def parse(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected an integer between {self.low} and {self.high}") from None
        problem = self.problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


@dataclass(frozen=True)
class FloatRange:
    """A finite number from ``low`` to ``high`` (both included); ints are accepted."""

    low: float
    high: float

    def problem(self, value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, not {type(value).__name__}"
        if not math.isfinite(value):
            return "must be a finite number"
        if not self.low <= value <= self.high:
            return f"must be between {self.low:g} and {self.high:g}"
        return None

    def parse(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected a number between {self.low:g} and {self.high:g}") from None
        problem = self.problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


Rule = IntRange | FloatRange
#: field name -> (rule, environment variable or None)
Rules = Mapping[str, tuple[Rule, str | None]]


def check_fields(obj: object, rules: Rules) -> None:
    """Raises ``ConfigError`` naming the first field of ``obj`` that breaks its rule."""
    for name, (rule, variable) in rules.items():
        value = getattr(obj, name)
        problem = rule.problem(value)
        if problem is not None:
            where = f"{type(obj).__name__}.{name}" + (f" ({variable})" if variable else "")
            raise ConfigError(f"{where} {problem}, not {value!r}")


def check_type(obj: object, name: str, kind: type, variable: str | None = None) -> None:
    value = getattr(obj, name)
    if not isinstance(value, kind):
        where = f"{type(obj).__name__}.{name}" + (f" ({variable})" if variable else "")
        raise ConfigError(f"{where} must be a {kind.__name__}, not {type(value).__name__}")


# ------------------------------------------------------------------ broker addresses

_SCHEME = re.compile(r"^([A-Za-z_]+)://")
_HOSTNAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


def parse_bootstrap_servers(value: str) -> str:
    """A comma-separated list of ``host:port`` (``[ipv6]:port``, optionally behind a
    ``protocol://``); returns it without blanks. Raises ``ValueError`` saying what is wrong."""
    entries = [e.strip() for e in value.split(",")]
    if not value.strip() or any(not e for e in entries):
        raise ValueError("expected host:port[,host:port...] with no empty entry")
    for entry in entries:
        _check_address(entry)
    return ",".join(entries)


def _check_address(entry: str) -> None:
    rest = entry
    scheme = _SCHEME.match(entry)
    if scheme is not None:
        if scheme.group(1).upper() not in SECURITY_PROTOCOLS:
            raise ValueError(f"{entry!r}: unknown protocol {scheme.group(1)!r}")
        rest = entry[scheme.end() :]
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise ValueError(f"{entry!r}: '[' without ']'")
        host = rest[1:end]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{entry!r}: {host!r} is not an IPv6 address") from None
        tail = rest[end + 1 :]
        if not tail.startswith(":"):
            raise ValueError(f"{entry!r} has no port (expected [address]:port)")
        port = tail[1:]
    else:
        host, colon, port = rest.rpartition(":")
        if not colon:
            raise ValueError(f"{entry!r} has no port (expected host:port)")
        if ":" in host:
            raise ValueError(f"{entry!r}: an IPv6 address goes in brackets, e.g. [::1]:9092")
        if not host or len(host) > 253 or ".." in host or not _HOSTNAME.match(host):
            raise ValueError(f"{entry!r}: {host!r} is not a host name or address")
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise ValueError(f"{entry!r}: port {port!r} is not a number from 1 to 65535")


# ------------------------------------------------------------------ security


def parse_security_protocol(value: str) -> str:
    upper = value.strip().upper()
    if upper not in SECURITY_PROTOCOLS:
        raise ValueError(f"expected one of {', '.join(SECURITY_PROTOCOLS)} (any case)")
    return upper


def parse_sasl_mechanism(value: str) -> str:
    upper = value.strip().upper()
    if upper not in SASL_MECHANISMS:
        raise ValueError(f"expected one of {', '.join(SASL_MECHANISMS)}")
    return upper


#: librdkafka's debug contexts (CONFIGURATION.md, ``debug``; librdkafka 2.12).
DEBUG_CONTEXTS = (
    "generic",
    "broker",
    "topic",
    "metadata",
    "feature",
    "queue",
    "msg",
    "protocol",
    "cgrp",
    "security",
    "fetch",
    "interceptor",
    "plugin",
    "consumer",
    "admin",
    "eos",
    "mock",
    "assignor",
    "conf",
    "telemetry",
    "all",
)


def parse_debug_contexts(value: str) -> str:
    """A comma-separated list of librdkafka debug contexts (``broker,topic,msg``), as
    librdkafka's ``debug`` property takes it; spaces and case are tidied."""
    names = [name.strip().lower() for name in value.split(",")]
    if not any(names):
        raise ValueError(f"expected a comma-separated list of {', '.join(DEBUG_CONTEXTS)}")
    unknown = [name for name in names if name not in DEBUG_CONTEXTS]
    if unknown:
        raise ValueError(
            f"unknown debug context(s) {', '.join(repr(n) for n in unknown)}; librdkafka's are "
            f"{', '.join(DEBUG_CONTEXTS)}"
        )
    return ",".join(names)


#: librdkafka properties whose values this package checks, wherever they come from.
CHECKED_PROPERTIES = {
    "security.protocol": parse_security_protocol,
    "sasl.mechanism": parse_sasl_mechanism,
    "sasl.mechanisms": parse_sasl_mechanism,
    "debug": parse_debug_contexts,
}
#: librdkafka ``message.max.bytes`` (the DLQ's size cap is derived from it).
MESSAGE_MAX_BYTES = IntRange(1000, 1_000_000_000)


def check_librdkafka_config(config: Mapping[str, object], where: str) -> None:
    for key, value in config.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigError(f"{where} must map property names to str values (at {key!r})")
        parse = CHECKED_PROPERTIES.get(key)
        if parse is not None:
            try:
                parse(value)
            except ValueError as exc:
                raise ConfigError(f"{where}[{key!r}]={value!r}: {exc}") from None
    for name in ("max.poll.interval.ms",):
        raw = config.get(name)
        if isinstance(raw, str):
            try:
                IntRange(1, 86_400_000).parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{where}[{name!r}]={raw!r}: {exc}") from None
    raw = config.get("message.max.bytes")
    if isinstance(raw, str):
        try:
            MESSAGE_MAX_BYTES.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{where}['message.max.bytes']={raw!r}: {exc}") from None


# ------------------------------------------------------------------ spool directory


def check_spool_dir(path: str, where: str) -> None:
    """The spool directory exists and is writable, or can be created (its nearest existing
    ancestor is a writable directory). Creates nothing: the spool is made on first use."""
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise ConfigError(f"{where} must be a directory path, not {path!r}")
    target = Path(path)
    probe = target
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if probe == target:
        if not target.is_dir():
            raise ConfigError(f"{where}={str(path)!r} is not a directory")
        if not os.access(target, os.W_OK | os.X_OK):
            raise ConfigError(f"{where}={str(path)!r} is not writable by this process")
        return
    if not probe.is_dir():
        raise ConfigError(
            f"{where}={str(path)!r} cannot be created: {str(probe)!r} is not a directory"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{where}={str(path)!r} cannot be created: {str(probe)!r} is not writable"
        )


#: At most this many retry tiers per channel (each one a topic and a fetched partition set).
MAX_RETRY_TIERS = 20


def check_retry_delays(value: object, name: str) -> tuple[int, ...]:
    """A channel's retry tiers: a non-empty sequence of delays in ms (1 to ``MAX_MS``), at
    most ``MAX_RETRY_TIERS`` of them. Raises :class:`ConfigError` naming ``name``."""
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise ConfigError(
            f"{name} must be a list of delays in milliseconds, e.g. (1000, 5000, 30000), "
            f"not {type(value).__name__}"
        )
    if not value:
        raise ConfigError(f"{name} must name at least one delay (or be None: no retry topics)")
    if len(value) > MAX_RETRY_TIERS:
        raise ConfigError(f"{name} has {len(value)} delays; at most {MAX_RETRY_TIERS}")
    delays = IntRange(1, MAX_MS)
    for i, delay in enumerate(value):
        problem = delays.problem(delay)
        if problem is not None:
            raise ConfigError(f"{name}[{i}]={delay!r} {problem} (a delay in milliseconds)")
    return tuple(value)
