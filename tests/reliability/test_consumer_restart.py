"""A stream consumer process is SIGKILLed and its replacement (same group, same consumer
name) starts at once, on the real broker (decision 42).

Without static membership the dead member keeps its partitions until its session times out:
the replacement's ``subscribe_stream`` must not fail meanwhile; it returns registered and
waiting, and handles the rest once Kafka reassigns. With static membership the replacement
takes the partitions back at once. Either way nothing is lost, and what is handled twice is
bounded by the commit batch (``duplicate_bound``). The session timeout is short here to bound the test's time;
every wait derives from it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.reliability.restart_harness import PARTITIONS, Settings, run_round

pytestmark = pytest.mark.kafka

HEARTBEAT_MS = 1000


def duplicate_bound(settings: Settings) -> int:
    """What a killed consumer can have handled without committing it: per partition up to
    one commit batch not yet marked, plus one commit batch marked and not yet committed."""
    return settings.commit_batch_size * (PARTITIONS + 1)


async def test_a_replacement_waits_for_the_dead_members_partitions_and_loses_nothing(
    tmp_path: Path,
) -> None:
    # The replacement's subscribe call gives up waiting well before the dead member's session
    # can have ended (its last heartbeat was at most one interval before the kill).
    session_ms = 9000
    settings = Settings(
        static=False,
        session_ms=session_ms,
        heartbeat_ms=HEARTBEAT_MS,
        poll_timeout_ms=(session_ms - HEARTBEAT_MS) // 4,
    )
    r = await run_round(settings, tmp_path)

    assert "subscribe_error" not in r.replacement, r.replacement
    assert r.replacement["state"] == "waiting_for_partitions", r.replacement
    assert r.replacement["waiting_since"] is not None
    assert r.replacement["active"] is False
    assert r.replacement["partitions"] == []
    assert r.live["state"] == "active", r.live
    assert r.live["waiting_since"] is None
    assert r.live["partitions"] == list(range(PARTITIONS))
    assert r.resumed_at is not None
    assert r.resumed_at > r.killed_at
    assert r.lost == 0
    assert r.duplicates <= duplicate_bound(settings), r.duplicates


async def test_with_static_membership_the_replacement_takes_the_partitions_back_at_once(
    tmp_path: Path,
) -> None:
    # Were the partitions not handed back at once, they would come only when the dead
    # member's session ended, after the replacement's subscribe call had stopped waiting.
    session_ms = 10_000
    settings = Settings(
        static=True,
        session_ms=session_ms,
        heartbeat_ms=HEARTBEAT_MS,
        poll_timeout_ms=(session_ms - HEARTBEAT_MS) // 2,
    )
    r = await run_round(settings, tmp_path)

    assert "subscribe_error" not in r.replacement, r.replacement
    assert r.replacement["state"] == "active", r.replacement
    assert r.replacement["partitions"] == list(range(PARTITIONS))
    assert r.replacement["group_instance_id"].endswith(".worker-1")
    assert r.lost == 0
    assert r.duplicates <= duplicate_bound(settings), r.duplicates
