"""``demo`` and ``bench``, in memory and on the broker."""

from __future__ import annotations

import pytest
from tests.conftest import BOOTSTRAP

from .conftest import invoke, invoke_json


def test_demo_in_memory() -> None:
    result = invoke(["demo", "--orders", "20"])
    assert result.exit_code == 0, result.output
    assert "transport: memory" in result.stdout
    assert "handled 20 orders, in publish order: True" in result.stdout


@pytest.mark.kafka
def test_demo_on_the_broker() -> None:
    result = invoke(["demo", "--bootstrap", BOOTSTRAP, "--orders", "20"])
    assert result.exit_code == 0, result.output
    assert "transport: redpanda" in result.stdout
    assert "handled 20 orders, in publish order: True" in result.stdout


@pytest.mark.parametrize("on_kafka", [False, pytest.param(True, marks=pytest.mark.kafka)])
def test_bench_reports_each_round_and_the_median(on_kafka: bool) -> None:
    args = ["bench", "--events", "500", "--batch", "100", "--rounds", "2"]
    report = invoke_json([*args, "--bootstrap", BOOTSTRAP] if on_kafka else args)
    assert report["transport"] == (BOOTSTRAP if on_kafka else "memory")
    assert len(report["rounds"]) == 2
    for r in report["rounds"]:
        assert r["events"] == 500
        assert 0 < r["publish_s"] <= r["end_to_end_s"]
        assert r["publish_rate"] == pytest.approx(500 / r["publish_s"])
    rates = sorted(r["end_to_end_rate"] for r in report["rounds"])
    assert report["median_end_to_end_rate"] == pytest.approx(sum(rates) / 2)


def test_bench_prints_a_table() -> None:
    result = invoke(["bench", "--events", "200", "--rounds", "1"], COLUMNS="200")
    assert result.exit_code == 0, result.output
    assert "bench: memory" in result.stdout
    assert "median" in result.stdout
