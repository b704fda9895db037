"""Helpers over the Rust transport (``tradecore_eventbus._core``)."""

from __future__ import annotations

import asyncio

from ...._core import Consumer, Record


async def poll_batch(consumer: Consumer, max_records: int, timeout: float) -> list[Record]:
    """Up to ``max_records`` records: as soon as any are here, or ``[]`` after ``timeout``.

    Cancel-safe: records are only taken (synchronously) once they are here, so cancelling
    the wait never loses one.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        records = consumer.take(max_records)
        if records:
            return records
        remaining = deadline - loop.time()
        if remaining <= 0 or consumer.closed:
            return []
        await consumer.wait(remaining)
