"""The main job behind ``make demo`` and ``tradecore-eventbus demo``: an EventBus publishing
and consuming pub/sub and stream events, printing what happened.

    python -m tradecore_eventbus.demo                   # in memory, no server needed
    python -m tradecore_eventbus.demo --broker kafka    # on the local broker (make broker-start)
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any, Literal

from ..exceptions import EventValidationError
from .bus.event_bus import EventBus
from .config.settings import EventBusConfig, TransportConfig
from .transports.kafka.adapter import RedpandaTransportAdapter
from .transports.memory.adapter import MemoryTransportAdapter
from .transports.protocol import TransportAdapter
from .validation.base_model import BaseEvent
from .validation.registry import register_event


class OrderPlaced(BaseEvent):
    event_type: Literal["OrderPlaced"] = "OrderPlaced"
    order_id: str
    symbol: str
    quantity: int


def build_adapter(broker: str, bootstrap: str) -> TransportAdapter:
    bus_config = EventBusConfig(sub_block_ms=200)
    if broker == "memory":
        return MemoryTransportAdapter(bus_config, TransportConfig())
    return RedpandaTransportAdapter(
        bootstrap_servers=bootstrap,
        client_id="demo",
        event_bus_config=bus_config,
        transport_config=TransportConfig.from_env(),
    )


async def run(broker: str, bootstrap: str, orders: int) -> None:
    register_event(OrderPlaced)
    run_id = uuid.uuid4().hex[:6]
    prices, order_stream = f"realtime.demo-prices-{run_id}", f"transport.demo-orders-{run_id}"
    async with EventBus(build_adapter(broker, bootstrap)) as bus:
        print(f"transport: {bus.adapter.name}")
        done = asyncio.Event()
        handled: list[str] = []
        quotes: list[float] = []

        async def on_price(event: dict[str, Any]) -> None:
            quotes.append(event["price"])
            print(f"  [pub/sub] {event['symbol']} at {event['price']}")

        async def on_order(order: OrderPlaced) -> None:  # asks for the registered model
            handled.append(order.order_id)
            if len(handled) == orders:
                done.set()

        await bus.subscribe(prices, on_price, filter_fn=lambda e: e["symbol"] == "AAPL")
        await bus.subscribe_stream(order_stream, on_order, group="demo-workers", consumer="w1")

        for symbol, price in [("AAPL", 150.25), ("MSFT", 410.0), ("AAPL", 150.5)]:
            await bus.publish(
                prices, {"event_type": "PriceUpdated", "symbol": symbol, "price": price}
            )
        results = await bus.publish_batch(
            order_stream,
            [
                {
                    "event_type": "OrderPlaced",
                    "order_id": str(i),
                    "symbol": "AAPL",
                    "quantity": 10 * i,
                }
                for i in range(1, orders + 1)
            ],
            partition_key="user-123",
        )
        print(
            f"published {len(results)} orders to {results[0].topic} "
            f"(partition {results[0].partition}, offsets {results[0].offset}..{results[-1].offset})"
        )
        try:
            await bus.publish_stream(order_stream, {"event_type": "OrderPlaced", "order_id": "x"})
        except EventValidationError as exc:
            print(f"rejected an invalid order, nothing sent: {exc}")

        await asyncio.wait_for(done.wait(), 30)
        in_order = handled == [str(i) for i in range(1, orders + 1)]
        print(f"handled {len(handled)} orders, in publish order: {in_order}")
        health = await bus.health_check()
        details = health["adapter"]["details"]
        print(
            f"health: healthy={health['healthy']} sent={details['messages_sent']} "
            f"received={details['messages_received']} consumers={details['active_consumers']}"
        )
    print(f"closed; {len(quotes)} AAPL quotes seen")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--broker", choices=["memory", "kafka"], default="memory")
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--orders", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(run(args.broker, args.bootstrap, args.orders))


if __name__ == "__main__":
    main()
