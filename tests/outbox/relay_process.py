"""A relay in a process of its own, for the crash test: it publishes one batch, says SENT
once the broker acknowledged it, and then hangs before marking the rows, waiting to be
killed (python -m tests.outbox.relay_process <schema>)."""

from __future__ import annotations

import asyncio
import sys

from tests.bus.conftest import make_adapter
from tests.outbox.conftest import make_pool

from tradecore_eventbus import EventBus
from tradecore_eventbus._internal.outbox.store import OutboxRow
from tradecore_eventbus.outbox_service import OutboxService


async def main(schema: str) -> None:
    pool = await make_pool(schema, 2)
    bus = EventBus(make_adapter("kafka"))

    async def hang(rows: list[OutboxRow]) -> None:
        print("SENT", len(rows), flush=True)
        await asyncio.sleep(600)

    outbox = OutboxService(bus, pool, after_send=hang)
    await outbox.run_once()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
