"""What an observer costs: the EventBus contender of a workload with and without a
PrometheusObserver (``BENCH_PROMETHEUS=1``, benches/contenders.py), alternating in one run,
each measurement in a fresh process like the harness.

    python benches/observer_cost.py --workload batch --records 200000 --rounds 7

Prints each round, the medians and the ratio (with / without); a ratio of 0.95 is a 5% cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import prefill, topic  # noqa: E402


def measure(workload: str, records: int, topic_name: str, prometheus: bool) -> float:
    env = dict(os.environ, BENCH_PROMETHEUS="1" if prometheus else "0")
    cmd = [sys.executable, str(HERE / "run_one.py"), workload, "eventbus"]
    cmd += ["--records", str(records), "--topic", topic_name]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return float(result["rate"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", choices=["batch", "consume"], default="batch")
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    stored = prefill(args.records) if args.workload == "consume" else ""
    rates: dict[bool, list[float]] = {False: [], True: []}
    for r in range(args.rounds):
        # Alternate which goes first, so drift on a shared machine hits both alike.
        for prometheus in (r % 2 == 1, r % 2 == 0):
            t = stored if args.workload == "consume" else topic(args.workload)
            rate = measure(args.workload, args.records, t, prometheus)
            rates[prometheus].append(rate)
            label = "with metrics" if prometheus else "without"
            print(f"round {r + 1} {args.workload} {label:12s} {rate:>10,.0f} events/s", flush=True)
    without, with_metrics = (statistics.median(rates[k]) for k in (False, True))
    print(f"without:      {', '.join(f'{x:,.0f}' for x in rates[False])} (median {without:,.0f})")
    print(
        f"with metrics: {', '.join(f'{x:,.0f}' for x in rates[True])} (median {with_metrics:,.0f})"
    )
    print(f"ratio with/without: {with_metrics / without:.3f}")


if __name__ == "__main__":
    main()
