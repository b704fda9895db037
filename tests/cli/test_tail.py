"""``tail``: pretty-printed events, from now or from the beginning, an event-type filter, and
a clean end on Ctrl-C (SIGINT to a real process)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import pytest
from tests.conftest import unique

from tradecore_eventbus import EventBus

from .conftest import COMMAND_TIMEOUT_S, cli_env, foreground_command, invoke, signal_state

pytestmark = pytest.mark.kafka


async def test_from_the_beginning_with_an_event_type_filter(kafka_bus: EventBus) -> None:
    channel = unique("transport.cli-tail")
    await kafka_bus.publish_batch(
        channel,
        [
            {"event_type": "OrderPlaced", "order_id": "o-1"},
            {"event_type": "OrderCancelled", "order_id": "o-1"},
            {"event_type": "OrderPlaced", "order_id": "o-2"},
        ],
        partition_key="one-partition",
    )
    result = await asyncio.to_thread(
        invoke,
        ["tail", channel, "--from-beginning", "--event-type", "OrderPlaced", "--max", "2"],
        COLUMNS="200",
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.count("OrderPlaced") == 4  # the header line and the JSON of each
    assert "OrderCancelled" not in out
    assert '"order_id": "o-1"' in out
    assert '"order_id": "o-2"' in out
    assert out.index('"o-1"') < out.index('"o-2"')
    assert out.rstrip().endswith("2 event(s) shown")


async def test_from_now_shows_only_new_events_and_ctrl_c_ends_it_cleanly(
    kafka_bus: EventBus,
) -> None:
    channel = unique("transport.cli-tail-now")
    await kafka_bus.publish(channel, {"event_type": "Old", "n": 0})
    process = subprocess.Popen(  # noqa: ASYNC220 (read from a thread below)
        foreground_command(["tail", channel]),
        env={**os.environ, **cli_env(COLUMNS="200")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = await asyncio.to_thread(process.stdout.readline)
        assert first.startswith(f"tailing {channel} (6 partitions) from now"), first
        # Published until the tail shows it: its partitions are assigned at "now".
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        await kafka_bus.publish(channel, {"event_type": "New", "n": 1})
        line = await asyncio.to_thread(process.stdout.readline)
        assert " New " in line, line
        assert channel in line, line
        assert time.monotonic() < deadline
        process.send_signal(signal.SIGINT)
        try:
            out, err = await asyncio.to_thread(process.communicate, timeout=COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"tail still running after Ctrl-C; {signal_state(process.pid)}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert err == ""
    assert "Old" not in first + line + out
    assert out.rstrip().endswith("1 event(s) shown")


def test_a_channel_without_a_topic_is_one_line() -> None:
    channel = unique("transport.cli-missing")
    result = invoke(["tail", channel, "--timeout", "10"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: topic '{channel}' (channel '{channel}') does not exist; "
        f"`tradecore-eventbus topics init {channel}` creates it"
    ]
