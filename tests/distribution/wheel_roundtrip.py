"""Run by the installed wheel's interpreter (test_wheel_install.py): one event published to a
stream on the real broker and consumed back by a stream subscriber. Prints one JSON line
with what was sent and what arrived.

    python wheel_roundtrip.py BOOTSTRAP TIMEOUT_SECONDS
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

from tradecore_eventbus import EventBus, RedpandaTransportAdapter


async def main(bootstrap: str, timeout: float) -> None:
    run = uuid.uuid4().hex[:10]
    stream = f"transport.wheel-{run}"
    arrived: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def on_event(event: dict[str, Any]) -> None:
        await arrived.put(event)

    adapter = RedpandaTransportAdapter(bootstrap_servers=bootstrap, client_id=f"wheel-{run}")
    async with EventBus(adapter) as bus:
        await bus.subscribe_stream(stream, on_event, group=f"wheel-{run}")
        sent = await bus.publish_stream(
            stream, {"event_type": "WheelInstalled", "run": run}, partition_key="k"
        )
        event = await asyncio.wait_for(arrived.get(), timeout)
    print(
        json.dumps(
            {
                "sent_event_id": sent.event_id,
                "sent_topic": sent.topic,
                "received_event_id": event["event_id"],
                "received_run": event["run"],
                "run": run,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
