"""Rust futures awaited from asyncio: settled on the loop's own thread through its inbox, on
every loop in turn, after cancellations, and on loops that cannot watch a socket (the
completer-thread fallback)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from tests.conftest import unique

from tradecore_eventbus import _core

pytestmark = pytest.mark.kafka


async def wait_results(bootstrap: str) -> list[bool]:
    consumer = _core.Consumer(bootstrap, unique("g"))
    try:
        # Nothing subscribed: each wait ends on its timeout with False.
        return list(await asyncio.gather(*(consumer.wait(0.05) for _ in range(50))))
    finally:
        await consumer.close()


def test_futures_resolve_on_one_loop_after_another(bootstrap: str) -> None:
    for _ in range(3):
        results = asyncio.run(wait_results(bootstrap))
        assert results == [False] * 50


def test_a_cancelled_future_is_cancelled_and_the_loop_keeps_resolving(bootstrap: str) -> None:
    async def main() -> list[bool]:
        consumer = _core.Consumer(bootstrap, unique("g"))
        try:
            waiting = asyncio.ensure_future(consumer.wait(30.0))
            await asyncio.sleep(0.05)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            return [await consumer.wait(0.05) for _ in range(3)]
        finally:
            await consumer.close()

    assert asyncio.run(main()) == [False, False, False]


class NoReaderLoop(asyncio.SelectorEventLoop):
    """A loop that cannot watch file descriptors (like the Windows proactor loop)."""

    def add_reader(self, fd: Any, callback: Callable[..., Any], *args: Any) -> None:
        raise NotImplementedError


def test_loops_without_add_reader_are_served_by_the_completer_thread(bootstrap: str) -> None:
    loop = NoReaderLoop()
    try:
        results = loop.run_until_complete(wait_results(bootstrap))
    finally:
        loop.close()
    assert results == [False] * 50
    assert getattr(loop, "_tradecore_inbox", "unset") is None, "the refusal is remembered"
