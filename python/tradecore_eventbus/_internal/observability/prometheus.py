"""The Prometheus observer: the bus's observer callbacks as Prometheus metrics, per channel.

``prometheus_client`` is an optional dependency (the ``prometheus`` extra): it is imported
when a :class:`PrometheusObserver` or the HTTP server is made, never when this module is,
so ``import tradecore_eventbus.prometheus`` works without it and the error names the extra.

Every counter counts events (a publish of a batch of 100 adds 100), except
``handler_failures_total`` (one per failed handler attempt) and ``offset_commits_total``
(one per completed commit). ``publish_latency_seconds`` observes one value per publish call
or batch (the time until the whole call was acknowledged), not per event: a batch of 1,000
events is one sample (decision 71).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..extras import require
from .observer import Observer

if TYPE_CHECKING:
    from types import ModuleType
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry

#: ``breaker_state``'s value for each state the Rust breaker reports.
BREAKER_STATES = {"CLOSED": 0, "HALF_OPEN": 1, "OPEN": 2}

#: Handler latencies span sub-millisecond dict handlers to seconds-long I/O.
HANDLER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: A publish waits for the broker's ack (linger, then a round trip), rarely under a ms.
PUBLISH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def _prometheus_client() -> ModuleType:
    return require("prometheus_client", "prometheus", feature="the Prometheus observer")


class PrometheusObserver(Observer):
    """Exports what the bus reports as Prometheus metrics named ``{namespace}_...``, in
    ``registry`` (default: prometheus_client's global ``REGISTRY``, which its own
    ``start_http_server`` and ``generate_latest`` serve). Register it with
    ``EventBus(..., observers=[PrometheusObserver()])`` or ``bus.add_observer(...)``.

    Raises :class:`~tradecore_eventbus.exceptions.MissingExtraError` (a ``ConfigError``) if
    prometheus_client is not installed, and prometheus_client's ``ValueError`` if the
    registry already holds these metrics (one observer per registry and namespace)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, namespace: str = "tradecore_eventbus"
    ) -> None:
        prom = _prometheus_client()
        self.registry: CollectorRegistry = prom.REGISTRY if registry is None else registry
        common = {"namespace": namespace, "registry": self.registry}
        Counter, Gauge, Histogram = prom.Counter, prom.Gauge, prom.Histogram
        self._handler_latency_children: dict[tuple[str, str], Any] = {}

        self.published_events = Counter(
            "published_events", "Events the broker acknowledged.", ["channel"], **common
        )
        self.publish_failed_events = Counter(
            "publish_failed_events",
            "Events not delivered after every attempt, by where they went instead (dlq, "
            "spool, dead, none).",
            ["channel", "destination"],
            **common,
        )
        self.publish_retried_events = Counter(
            "publish_retried_events",
            "Events of a failed publish attempt that were sent again.",
            ["channel"],
            **common,
        )
        self.spooled_events = Counter(
            "spooled_events",
            "Records written to the local spool, by what they were bound for (topic, dlq).",
            ["channel", "destination"],
            **common,
        )
        self.dead_lettered_events = Counter(
            "dead_lettered_events",
            "Records written to the channel's DLQ topic, by source (publish, consume, outbox).",
            ["channel", "source"],
            **common,
        )
        self.dead_letter_failed_events = Counter(
            "dead_letter_failed_events",
            "Dead letters whose DLQ write failed (refused: for good, else tried again).",
            ["channel", "source", "refused"],
            **common,
        )
        self.consumed_events = Counter(
            "consumed_events",
            "Records a subscription finished (handled, filtered out or dead-lettered).",
            ["channel", "group"],
            **common,
        )
        self.handler_failures = Counter(
            "handler_failures",
            "Handler attempts that raised (a record retried 3 times that always fails adds 3).",
            ["channel", "group"],
            **common,
        )
        self.worker_restarts = Counter(
            "worker_restarts",
            "Partition workers that died and were restarted.",
            ["channel", "group"],
            **common,
        )
        self.retry_scheduled_events = Counter(
            "retry_scheduled_events",
            "Failing records written to a retry topic of the channel (tier 1, 2, ...).",
            ["channel", "group", "tier"],
            **common,
        )
        self.offset_commits = Counter(
            "offset_commits",
            "Offset commits the subscription's consumer completed (sampled).",
            ["channel", "group"],
            **common,
        )
        self.breaker_state = Gauge(
            "breaker_state",
            "The channel's circuit breaker: 0 closed, 1 half-open, 2 open (set on each "
            "transition).",
            ["channel"],
            **common,
        )
        self.lag = Gauge(
            "consumer_lag",
            "Records of the partition not yet consumed by this member (sampled).",
            ["channel", "group", "partition"],
            **common,
        )
        self.publish_latency = Histogram(
            "publish_latency_seconds",
            "From a publish call's start to the broker's ack of all its events; one sample per "
            "call or batch, not per event.",
            ["channel"],
            buckets=PUBLISH_BUCKETS,
            **common,
        )
        self.handler_latency = Histogram(
            "handler_latency_seconds",
            "A handler's successful call for one record.",
            ["channel", "group"],
            buckets=HANDLER_BUCKETS,
            **common,
        )

    # ------------------------------------------------------------ publishing

    def published(self, channel: str, count: int, latency_s: float) -> None:
        self.published_events.labels(channel).inc(count)
        self.publish_latency.labels(channel).observe(latency_s)

    def publish_retried(
        self, channel: str, count: int, attempt: int, error: BaseException, delay_s: float
    ) -> None:
        self.publish_retried_events.labels(channel).inc(count)

    def publish_failed(
        self, channel: str, count: int, error: BaseException, destination: str | None
    ) -> None:
        self.publish_failed_events.labels(channel, destination or "none").inc(count)

    def spooled(self, channel: str, count: int, destination: str) -> None:
        self.spooled_events.labels(channel, destination).inc(count)

    # ------------------------------------------------------------ dead letters

    def dead_lettered(self, channel: str, count: int, source: str) -> None:
        self.dead_lettered_events.labels(channel, source).inc(count)

    def dead_letter_failed(
        self, channel: str, count: int, source: str, error: BaseException, refused: bool
    ) -> None:
        self.dead_letter_failed_events.labels(channel, source, str(refused).lower()).inc(count)

    # ------------------------------------------------------------ consuming

    def consumed(self, channel: str, group: str, count: int) -> None:
        self.consumed_events.labels(channel, group).inc(count)

    def handled(self, channel: str, group: str, seconds: float) -> None:
        # Called per handled record: the labelled child is looked up once per subscription
        # (``labels()`` costs about as much as the observation itself).
        key = (channel, group)
        child = self._handler_latency_children.get(key)
        if child is None:
            child = self._handler_latency_children[key] = self.handler_latency.labels(*key)
        child.observe(seconds)

    def handler_failed(self, channel: str, group: str, error: BaseException, attempt: int) -> None:
        self.handler_failures.labels(channel, group).inc()

    def worker_restarted(self, channel: str, group: str, partition: int) -> None:
        self.worker_restarts.labels(channel, group).inc()

    def retry_scheduled(self, channel: str, group: str, tier: int, count: int) -> None:
        self.retry_scheduled_events.labels(channel, group, str(tier)).inc(count)

    def offsets_committed(self, channel: str, group: str, count: int) -> None:
        self.offset_commits.labels(channel, group).inc(count)

    def consumer_lag(self, channel: str, group: str, partition: int, lag: int) -> None:
        self.lag.labels(channel, group, str(partition)).set(lag)

    # ------------------------------------------------------------ breakers

    def breaker_transition(self, channel: str, old_state: str, new_state: str) -> None:
        self.breaker_state.labels(channel).set(BREAKER_STATES.get(new_state, -1))


class MetricsServer:
    """prometheus_client's ``/metrics`` HTTP server, running in a daemon thread."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The port it listens on (the one the OS chose for ``port=0``)."""
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stops serving and frees the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def start_http_server(
    port: int = 0, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> MetricsServer:
    """Serves ``registry`` (default: the global ``REGISTRY``) as Prometheus text on
    ``http://addr:port/metrics``. It listens on loopback only unless ``addr`` says otherwise
    (prometheus_client's own default is every interface); ``port=0`` picks a free port, see
    ``MetricsServer.port``."""
    prom = _prometheus_client()
    server, thread = prom.start_http_server(
        port, addr=addr, registry=prom.REGISTRY if registry is None else registry
    )
    return MetricsServer(server, thread)
