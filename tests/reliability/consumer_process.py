"""A stream consumer in a process of its own, for the restart tests and figures: it uses only
the public API and its settings come from the environment (``KAFKA_CONSUMER_*``,
``EVENT_BUS_*``), as a service's would.

    python -m tests.reliability.consumer_process CHANNEL GROUP CONSUMER OUT_FILE DELAY_MS

Each handled event appends ``{n} {time.time()}`` to OUT_FILE with one ``write`` of an
O_APPEND file (it survives a SIGKILL of this process); the handler then sleeps DELAY_MS so
that a kill finds work in progress. Once ``subscribe_stream`` returned, one JSON line on
stdout gives the subscription's health entry; a line ``{"live": ...}`` follows when it turns
live. The process runs until it is killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from tradecore_eventbus import (
    EventBus,
    EventBusConfig,
    EventBusError,
    RedpandaTransportAdapter,
    TransportConfig,
)


def say(line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)


async def main(channel: str, group: str, consumer: str, out_file: str, delay_ms: int) -> None:
    out = os.open(out_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    delay = delay_ms / 1000.0

    async def handle(event: dict[str, Any]) -> None:
        os.write(out, f"{event['n']} {time.time():.6f}\n".encode())
        if delay:
            await asyncio.sleep(delay)

    config = EventBusConfig.from_env()
    bus = EventBus(
        RedpandaTransportAdapter(
            event_bus_config=config, transport_config=TransportConfig.from_env()
        )
    )
    started = time.time()
    try:
        sub_id = await bus.subscribe_stream(channel, handle, group=group, consumer=consumer)
    except EventBusError as exc:
        say({"subscribe_error": f"{type(exc).__name__}: {exc}", "after_s": time.time() - started})
        return

    async def entry() -> dict[str, Any]:
        [consumer] = (await bus.health_check())["adapter"]["details"]["consumers"].values()
        return dict(consumer)

    say({"subscribed": sub_id, "after_s": time.time() - started, **await entry()})
    while True:
        state = await entry()
        if state["state"] != "waiting_for_partitions":
            say({"live": state["state"], "after_s": time.time() - started, **state})
            break
        await asyncio.sleep(0.05)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5], int(sys.argv[5])))
