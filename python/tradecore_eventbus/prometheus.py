"""Prometheus metrics for the bus (the ``prometheus`` extra: ``pip install
"tradecore-eventbus[prometheus]"``).

``PrometheusObserver`` turns what the bus reports into counters, gauges and histograms per
channel; ``start_http_server`` serves them on ``/metrics``. See the README's "Metrics
(Prometheus)" and decision 71.
"""

from ._internal.observability.prometheus import (
    MetricsServer,
    PrometheusObserver,
    start_http_server,
)

__all__ = ["MetricsServer", "PrometheusObserver", "start_http_server"]
