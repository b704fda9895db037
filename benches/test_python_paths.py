"""pytest-benchmark of the Python side of publishing (run by `make bench`):
enrichment + encoding of 1,000 events on the Rust path and on the Python path, and what
Pydantic validation adds.

    pytest benches/test_python_paths.py --benchmark-only
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from bench_events import make_events
from tradecore_eventbus import BaseEvent, register_event
from tradecore_eventbus._internal.publishing.prepare import prepare, prepare_one
from tradecore_eventbus.event_registry import EVENT_TYPE_TO_PYDANTIC_MODEL

EVENTS = [
    {k: v for k, v in e.items() if k not in ("event_id", "timestamp")} for e in make_events(1000)
]


class OrderPlaced(BaseEvent):
    event_type: Literal["OrderPlaced"] = "OrderPlaced"
    order_id: str
    account_id: str
    symbol: str
    quantity: int
    price: float


@pytest.fixture
def model_registered() -> Any:
    register_event(OrderPlaced)
    yield
    EVENT_TYPE_TO_PYDANTIC_MODEL.pop("OrderPlaced", None)


def test_json_dumps_baseline(benchmark: Any) -> None:
    benchmark(lambda: [json.dumps(e).encode() for e in EVENTS])


def test_enrich_and_encode_in_rust(benchmark: Any) -> None:
    batch = benchmark(lambda: prepare("transport.bench", EVENTS, "k", validate=False, strict=False))
    assert len(batch) == 1000


def test_enrich_and_encode_in_python(benchmark: Any) -> None:
    benchmark(lambda: [prepare_one(e, "k", validate=False, strict=False) for e in EVENTS])


def test_enrich_validate_and_encode(benchmark: Any, model_registered: Any) -> None:
    batch = benchmark(lambda: prepare("transport.bench", EVENTS, "k", validate=True, strict=False))
    assert len(batch) == 1000
