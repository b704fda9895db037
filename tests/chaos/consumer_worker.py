"""A consumer process for the consumer-kill scenario, as an application would run one: an
EventBus built from the environment (``EventBusConfig.from_env()``,
``TransportConfig.from_env()``, so settings such as KAFKA_CONSUMER_SESSION_TIMEOUT_MS or
KAFKA_CONSUMER_STATIC_MEMBERSHIP reach it the way they reach a deployment), subscribed to
one stream as one named member of a group.

Its handler appends ``event_id<TAB>monotonic time`` to ``--out`` and flushes after every
event, so a SIGKILL loses nothing it handled (the OS keeps what was written; the process
dying is the fault, not the machine). ``--live`` is written once ``subscribe_stream``
returned. SIGTERM closes the bus gracefully. time.monotonic() is CLOCK_MONOTONIC, one clock
for every process on the machine, so the test compares it with its own.

    python tests/chaos/consumer_worker.py --channel C --group G --consumer worker-1 \\
        --out handled.txt --live live.txt
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time
from pathlib import Path
from typing import Any

from tradecore_eventbus import EventBus, EventBusConfig, RedpandaTransportAdapter, TransportConfig


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--channel", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--consumer", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--live", required=True, type=Path)
    args = parser.parse_args()
    # Warnings with times on stderr (a file the test keeps): how the bus saw the kill.
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s.%(msecs)03d %(levelname)s %(name)s %(message)s",
        datefmt="%H:%M:%S",
    )

    config = EventBusConfig.from_env()
    adapter = RedpandaTransportAdapter(
        event_bus_config=config, transport_config=TransportConfig.from_env()
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    with args.out.open("a", encoding="utf-8") as out:

        async def handle(event: dict[str, Any]) -> None:
            out.write(f"{event['event_id']}\t{time.monotonic():.6f}\n")
            out.flush()

        async with EventBus(adapter, event_bus_config=config) as bus:
            await bus.subscribe_stream(
                args.channel, handle, group=args.group, consumer=args.consumer
            )
            args.live.write_text(f"{time.monotonic():.6f}\n")
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
