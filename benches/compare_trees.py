"""The EventBus's own workloads (batch, concurrent, consume) measured for two source trees
of the package in one run, rounds alternating the trees so machine noise hits both alike:
the "no regression" check of a refactoring. Each tree runs with the ``_core`` extension in
its own ``python/tradecore_eventbus/`` (build the old one with ``cargo build --release
--lib`` in its checkout and copy ``lib_core.so`` there) and its own ``benches/run_one.py``.

    python benches/compare_trees.py --before /path/to/old/python --after python [--scale 0.2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import PY, prefill, run, topic

WORKLOADS = {"batch": 1_000_000, "concurrent": 100_000, "consume": 1_000_000}


def one(tree: str, workload: str, records: int, t: str) -> float:
    env_path = os.pathsep.join([str(Path(tree).resolve()), os.environ.get("PYTHONPATH", "")])
    # Each tree measured by its own harness (the contenders follow its API).
    harness = Path(tree).resolve().parent / "benches" / "run_one.py"
    cmd = [PY, str(harness), workload, "eventbus", "--records", str(records)]
    os.environ["PYTHONPATH"], saved = env_path, os.environ.get("PYTHONPATH", "")
    try:
        return float(run([*cmd, "--topic", t])["rate"])
    finally:
        os.environ["PYTHONPATH"] = saved


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="the python/ directory of the old tree")
    ap.add_argument("--after", required=True, help="the python/ directory of the new tree")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    counts = {w: int(n * args.scale) for w, n in WORKLOADS.items()}
    stored = prefill(counts["consume"])
    rates: dict[tuple[str, str], list[float]] = {}
    trees = {"before": args.before, "after": args.after}
    for r in range(args.rounds):
        for workload, records in counts.items():
            order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
            for name in order:
                t = stored if workload == "consume" else topic(workload)
                rate = one(trees[name], workload, records, t)
                rates.setdefault((workload, name), []).append(rate)
                print(f"round {r + 1} {workload:10s} {name:6s} {rate:>12,.0f} /s", flush=True)
    print("\n| workload | before (median, rounds) | after (median, rounds) | after / before |")
    print("|---|---|---|---|")
    for workload in counts:
        b, a = rates[(workload, "before")], rates[(workload, "after")]
        mb, ma = statistics.median(b), statistics.median(a)
        fmt = ", ".join
        print(
            f"| {workload} | {mb:,.0f} ({fmt(f'{x:,.0f}' for x in b)}) | "
            f"{ma:,.0f} ({fmt(f'{x:,.0f}' for x in a)}) | {ma / mb:.3f} |"
        )


if __name__ == "__main__":
    main()
