"""Reading records from any transport's consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from .protocol import ConsumerLike, RecordLike


async def poll_batch(
    consumer: ConsumerLike, max_records: int, timeout: float
) -> Sequence[RecordLike]:
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


async def close_within(consumer: ConsumerLike, timeout: float) -> bool:
    """Closes ``consumer``, waiting at most ``timeout`` seconds; False if it had not closed
    by then. The close goes on after the wait ends (cancelling the wait does not cancel it):
    a consumer whose broker stopped answering finishes closing once it answers again, and
    what it had not committed is redelivered to its group."""
    try:
        await asyncio.wait_for(consumer.close(), timeout)
    except TimeoutError:
        return False
    return True
