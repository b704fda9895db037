"""The events every contender sends: JSON objects of about 200 bytes, like a trading back
end's (event type, ids, symbol, quantity, price, timestamp). Generated before the clock
starts; encoding them is part of every contender's measured work."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Any

SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA", "META", "JPM"]


def make_events(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return [
        {
            "event_type": "OrderPlaced",
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "order_id": f"ord-{i:09d}",
            "account_id": f"acct-{rng.randrange(10_000):05d}",
            "symbol": rng.choice(SYMBOLS),
            "quantity": rng.randrange(1, 1000),
            "price": round(rng.uniform(10, 1000), 2),
            "timestamp": now,
        }
        for i in range(n)
    ]


def keys_for(events: list[dict[str, Any]]) -> list[str]:
    return [e["account_id"] for e in events]
