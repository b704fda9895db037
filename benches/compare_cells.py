"""Any contenders of any workloads, for one or two source trees, in one run: rounds rotate
the cells so machine noise hits them alike, each run a fresh process (the harness's
method). A cell is ``tree:workload:contender``; ``tree`` is ``after`` (this checkout) or
``before`` (``--before``, the ``python/`` directory of another checkout, measured with its
own ``benches/run_one.py``). Prints each round and a table of medians, ratio to the first.

    python benches/compare_cells.py --records 100000 --before ../old/python \\
        after:awaited:eventbus before:awaited:eventbus after:awaited:confluent_flush
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import PY, ROOT, run, topic


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cells", nargs="+")
    ap.add_argument("--before", default=None, help="the python/ directory of the old tree")
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    trees = {"after": ROOT / "python"}
    if args.before:
        trees["before"] = Path(args.before).resolve()
    rates: dict[str, list[float]] = {cell: [] for cell in args.cells}
    saved = os.environ.get("PYTHONPATH", "")
    for r in range(args.rounds):
        k = r % len(args.cells)
        for cell in args.cells[k:] + args.cells[:k]:
            tree, workload, contender = cell.split(":")
            python_dir = trees[tree]
            harness = python_dir.parent / "benches" / "run_one.py"
            os.environ["PYTHONPATH"] = os.pathsep.join([str(python_dir), saved])
            try:
                cmd = [PY, str(harness), workload, contender, "--records", str(args.records)]
                rate = float(run([*cmd, "--topic", topic(workload)])["rate"])
            finally:
                os.environ["PYTHONPATH"] = saved
            rates[cell].append(rate)
            print(f"round {r + 1} {cell:40s} {rate:>12,.0f} /s", flush=True)
    first = statistics.median(rates[args.cells[0]])
    print("\n| cell | rounds | median | ÷ first |\n|---|---|---:|---:|")
    for cell, values in rates.items():
        med = statistics.median(values)
        rounds = ", ".join(f"{v:,.0f}" for v in values)
        print(f"| {cell} | {rounds} | {med:,.0f} | {med / first:.2f} |")


if __name__ == "__main__":
    main()
