"""``close_within``: a consumer's close waited for at most a budget, never cancelled by it."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from tradecore_eventbus._internal.transports.poll import close_within
from tradecore_eventbus.exceptions import ClosedError


class SlowClose:
    """A consumer whose close takes ``seconds`` and then succeeds, or raises ``error``."""

    def __init__(self, seconds: float, error: Exception | None = None) -> None:
        self.seconds = seconds
        self.error = error
        self.finished = asyncio.Event()

    async def close(self) -> None:
        await asyncio.sleep(self.seconds)
        self.finished.set()
        if self.error is not None:
            raise self.error


@pytest.mark.parametrize("budget", [0.0, 0.01])
async def test_a_close_that_outlasts_its_budget_still_runs_to_the_end(
    budget: float, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = SlowClose(0.05)
    assert await close_within(cast(Any, consumer), budget, "reader of t") is False
    assert "reader of t: the consumer had not closed" in caplog.text
    assert not consumer.finished.is_set()
    await asyncio.wait_for(consumer.finished.wait(), 5)


async def test_a_close_within_its_budget_reports_it_and_raises_its_error() -> None:
    assert await close_within(cast(Any, SlowClose(0.0)), 5, "c") is True
    with pytest.raises(ClosedError):
        await close_within(cast(Any, SlowClose(0.0, ClosedError("gone"))), 5, "c")


async def test_the_error_of_a_late_close_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    consumer = SlowClose(0.02, ClosedError("the broker refused the commit"))
    assert await close_within(cast(Any, consumer), 0, "c") is False
    await asyncio.wait_for(consumer.finished.wait(), 5)
    await asyncio.sleep(0)  # the done-callback runs on the next turn
    assert "the broker refused the commit" in caplog.text
