"""Reading records from any transport's consumer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from .protocol import ConsumerLike, RecordLike

logger = logging.getLogger("tradecore_eventbus.subscription")


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


async def close_within(consumer: ConsumerLike, timeout: float, name: str) -> bool:
    """Closes ``consumer`` (called ``name`` in the log), waiting at most ``timeout`` seconds;
    False, and logged, if it had not closed by then. The close is started whatever the
    timeout (even 0) and is never cancelled: a consumer whose broker stopped answering
    finishes closing once it answers again, and what it had not committed is redelivered
    to its group."""
    closing = asyncio.ensure_future(consumer.close())
    done, _ = await asyncio.wait({closing}, timeout=timeout)
    if closing in done:
        closing.result()  # its error, if any, is the caller's
        return True
    logger.error(
        "%s: the consumer had not closed after %.1fs (what was left of "
        "EVENT_BUS_CLOSE_TIMEOUT_SECONDS or close(timeout)); it finishes closing in the "
        "background, and records not yet committed are redelivered to the group",
        name,
        timeout,
    )
    # Finishing later: its outcome is only logged, never left unretrieved.
    closing.add_done_callback(_log_late_close)
    return False


def _log_late_close(closing: asyncio.Future[None]) -> None:
    if closing.cancelled():
        return
    exc = closing.exception()
    if exc is not None:
        logger.warning("a consumer closed after its close timeout failed: %s", exc)
