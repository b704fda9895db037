"""The rule Kafka applies to topic names, shared by topic names and the topic prefix."""

from __future__ import annotations

import re

LEGAL_TOPIC = re.compile(r"^[A-Za-z0-9._-]+$")
MAX_TOPIC_LENGTH = 249


def topic_name_problem(name: str) -> str | None:
    """Why Kafka would refuse ``name`` as a topic name, or None if it would not."""
    if not name:
        return "a topic name must not be empty"
    if name in (".", ".."):
        return f"{name!r} is not a valid topic name"
    if len(name) > MAX_TOPIC_LENGTH:
        return (
            f"topic name {name[:40]!r}... is {len(name)} characters long; "
            f"Kafka allows {MAX_TOPIC_LENGTH}"
        )
    if not LEGAL_TOPIC.match(name):
        bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "._-"))})
        return (
            f"topic name {name!r} has characters Kafka refuses: {''.join(bad)!r} "
            "(allowed: letters, digits, '.', '_' and '-')"
        )
    return None
