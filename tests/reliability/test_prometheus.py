"""The Prometheus observer: a known workload on the bus, scraped over HTTP from /metrics,
gives exactly the counts the workload made; handlers are timed only while someone listens."""

from __future__ import annotations

import asyncio
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from tests.bus.conftest import TRANSPORTS
from tests.reliability.conftest import BusBuilder
from tests.reliability.test_observers import until
from tests.reliability.test_publish_faults import refused_error, timeout_error

from tradecore_eventbus import CircuitBreakerOpenError, ConfigError, PublishError, _core
from tradecore_eventbus._internal.config.consumer_groups import group_id as prefixed_group
from tradecore_eventbus._internal.consuming import subscription
from tradecore_eventbus._internal.observability.dispatch import SILENT
from tradecore_eventbus._internal.transports.memory.broker import MemoryBroker
from tradecore_eventbus.exceptions import MissingExtraError
from tradecore_eventbus.observers import Observer
from tradecore_eventbus.prometheus import MetricsServer, PrometheusObserver, start_http_server

NS = "tradecore_eventbus"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def server(registry: CollectorRegistry) -> Iterator[MetricsServer]:
    served = start_http_server(0, registry=registry)
    yield served
    served.close()


async def scrape(server: MetricsServer) -> Samples:
    """GET /metrics as Prometheus would, parsed from the text format."""

    def get() -> str:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            return str(response.read().decode())

    text = await asyncio.to_thread(get)
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((f"{NS}_{name}", frozenset(labels.items())))


def channel() -> str:
    return f"transport.prom-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_scrape_of_metrics_gives_the_exact_counts_of_a_workload(
    reliable_bus: BusBuilder,
    kind: str,
    registry: CollectorRegistry,
    server: MetricsServer,
) -> None:
    bus = await reliable_bus(kind, observer_sample_interval_seconds=0.05)
    bus.add_observer(PrometheusObserver(registry))
    ch = channel()
    # 7 events in 4 sends: 3 single events one after the other (concurrent ones would be
    # coalesced into one send) and one batch of 4.
    for n in range(3):
        await bus.publish_stream(ch, {"event_type": "T", "n": n})
    await bus.publish_batch(ch, [{"event_type": "T", "n": n} for n in range(3, 7)])

    failing = {2, 5}

    async def handler(event: dict[str, Any]) -> None:
        if event["n"] in failing:
            raise ValueError(f"bad {event['n']}")

    name = f"g-{uuid.uuid4().hex[:6]}"
    await bus.subscribe_stream(ch, handler, group=name)
    # Labelled with the Kafka group id (the configured prefix, then the name).
    group = prefixed_group(name, bus.transport_config.consumer_group_id_prefix)

    def got(name: str, want: float, **labels: str) -> bool:
        return registry.get_sample_value(f"{NS}_{name}", labels) == want

    await until(lambda: got("consumed_events_total", 7, channel=ch, group=group))
    await until(lambda: got("dead_lettered_events_total", 2, channel=ch, source="consume"))
    lag_reported = kind == "memory" or hasattr(_core.Consumer, "lag")
    if lag_reported:
        # Everything was fetched, so the sampled lag of every partition comes down to 0.
        await until(
            lambda: any(
                s.name == f"{NS}_consumer_lag" and s.labels["channel"] == ch
                for m in registry.collect()
                for s in m.samples
            )
        )

    samples = await scrape(server)
    attempts = bus.config.handler_retry.max_attempts
    assert value(samples, "published_events_total", channel=ch) == 7
    # One latency sample per send (a call, a batch, or concurrent calls coalesced), not per
    # event.
    assert value(samples, "publish_latency_seconds_count", channel=ch) == 4
    assert value(samples, "consumed_events_total", channel=ch, group=group) == 7
    assert value(samples, "dead_lettered_events_total", channel=ch, source="consume") == 2
    assert value(samples, "handler_failures_total", channel=ch, group=group) == 2 * attempts
    # The 5 handled records, each timed once; the failing ones are not handled.
    assert value(samples, "handler_latency_seconds_count", channel=ch, group=group) == 5
    handler_sum = value(samples, "handler_latency_seconds_sum", channel=ch, group=group)
    assert handler_sum is not None
    assert handler_sum >= 0
    assert value(samples, "publish_failed_events_total", channel=ch, destination="dlq") is None
    lags = {
        labels: v
        for (name, labels), v in samples.items()
        if name == f"{NS}_consumer_lag" and ("channel", ch) in labels
    }
    if lag_reported:
        assert lags
        assert all(v >= 0 for v in lags.values())
        assert {dict(labels)["group"] for labels in lags} == {group}


async def test_failures_spool_and_the_open_breaker_are_exported(
    reliable_bus: BusBuilder,
    broker: MemoryBroker,
    registry: CollectorRegistry,
    server: MetricsServer,
) -> None:
    bus = await reliable_bus(broker=broker)
    bus.add_observer(PrometheusObserver(registry))
    ch = channel()
    await bus.publish_stream(ch, {"event_type": "Warmup"})
    attempts = bus.config.publish_retry.max_attempts
    broker.injected_failures += [timeout_error() for _ in range(attempts)]
    with pytest.raises(PublishError):
        await bus.publish_stream(ch, {"event_type": "Unreachable"})
    await bus.replay_spool()  # else the next publish drains it first and meets the refusal
    broker.injected_failures.append(refused_error())
    with pytest.raises(PublishError):
        await bus.publish_stream(ch, {"event_type": "Refused"})

    samples = await scrape(server)
    assert value(samples, "published_events_total", channel=ch) == 1
    assert value(samples, "publish_retried_events_total", channel=ch) == attempts - 1
    assert value(samples, "spooled_events_total", channel=ch, destination="topic") == 1
    assert value(samples, "publish_failed_events_total", channel=ch, destination="spool") == 1
    assert value(samples, "publish_failed_events_total", channel=ch, destination="dlq") == 1
    assert value(samples, "dead_lettered_events_total", channel=ch, source="publish") == 1
    assert value(samples, "breaker_state", channel=ch) is None, "no transition yet"

    # Refusals until the breaker opens.
    for _ in range(bus.config.circuit_breaker.failure_threshold + 1):
        broker.injected_failures.append(refused_error())
        try:
            await bus.publish_stream(ch, {"event_type": "Z"})
        except CircuitBreakerOpenError:
            break
        except PublishError:
            continue
    else:
        raise AssertionError("the breaker never opened")
    samples = await scrape(server)
    assert value(samples, "breaker_state", channel=ch) == 2


class HandledTimes(Observer):
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def handled(self, channel: str, group: str, seconds: float) -> None:
        self.seconds.append(seconds)


async def test_handlers_are_timed_only_while_an_observer_listens(
    reliable_bus: BusBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock_reads = 0
    real_clock = subscription._clock

    def counting_clock() -> float:
        nonlocal clock_reads
        clock_reads += 1
        return real_clock()

    monkeypatch.setattr(subscription, "_clock", counting_clock)
    bus = await reliable_bus()
    assert bus.observers.handled is SILENT
    handled: list[int] = []

    async def handler(event: dict[str, Any]) -> None:
        handled.append(event["n"])

    ch = channel()
    await bus.subscribe_stream(ch, handler, group="timing")
    await bus.publish_batch(ch, [{"event_type": "T", "n": n} for n in range(5)])
    await until(lambda: len(handled) == 5)
    assert clock_reads == 0

    # Added while the subscription runs: the next records are timed, two reads each.
    times = HandledTimes()
    bus.add_observer(times)
    assert bus.observers.handled is not SILENT
    await bus.publish_batch(ch, [{"event_type": "T", "n": n} for n in range(5, 8)])
    await until(lambda: len(handled) == 8)
    await until(lambda: len(times.seconds) == 3)
    assert clock_reads == 2 * 3
    assert all(s >= 0 for s in times.seconds)


def test_without_prometheus_client_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A None entry in sys.modules makes `import prometheus_client` raise ImportError.
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(MissingExtraError, match=r'pip install "tradecore-eventbus\[prometheus\]"'):
        PrometheusObserver(CollectorRegistry())
    with pytest.raises(ConfigError, match="prometheus") as raised:
        start_http_server(0)
    assert isinstance(raised.value, MissingExtraError)
    assert raised.value.extra == "prometheus"


def test_the_default_registry_is_prometheus_clients_global_one() -> None:
    from prometheus_client import REGISTRY
    from prometheus_client.metrics import MetricWrapperBase

    ns = f"t{uuid.uuid4().hex[:8]}"
    observer = PrometheusObserver(namespace=ns)
    try:
        assert observer.registry is REGISTRY
        observer.published("transport.x", 3, 0.01)
        got = REGISTRY.get_sample_value(f"{ns}_published_events_total", {"channel": "transport.x"})
        assert got == 3
    finally:
        for metric in vars(observer).values():
            if isinstance(metric, MetricWrapperBase):
                REGISTRY.unregister(metric)
