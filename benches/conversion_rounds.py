"""Python <-> Rust conversion cost of two builds of ``_core`` in one run (decision 90):
encoding 1,000 events (``encode_events``, what ``publish_batch`` does) and decoding 1,000
record values into dicts (``EncodedBatch.event``, the decoder of ``Consumer.take(
decode_events=True)``), best of ``--reps`` calls, rounds alternating the builds.

    python benches/conversion_rounds.py BEFORE.so AFTER.so [--rounds 5] [--reps 300]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_events import keys_for, make_events


def best_ms(f: Any, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def one_round(so: str, reps: int) -> dict[str, float]:
    spec = importlib.util.spec_from_file_location("_core", so)
    assert spec is not None
    assert spec.loader is not None
    core: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core)
    made = make_events(1000)
    events = [{k: v for k, v in e.items() if k not in ("event_id", "timestamp")} for e in made]
    keys = keys_for(made)
    encode = best_ms(lambda: core.encode_events(events, keys, str), reps)
    batch, _ = core.encode_events(events, keys, str)
    decode = best_ms(lambda: [batch.event(i) for i in range(len(batch))], reps)
    return {"encode_ms": encode, "decode_ms": decode}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # a child: one build, one round
        print(json.dumps(one_round(args.before, args.reps)))
        return
    results: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
        for name in order:
            so = args.before if name == "before" else args.after
            cmd = [sys.executable, __file__, so, so, "--one", "--reps", str(args.reps)]
            out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
            for what, ms in out.items():
                results.setdefault((what, name), []).append(ms)
            print(f"round {r + 1} {name:6s} {out}", flush=True)
    for what in ("encode_ms", "decode_ms"):
        b, a = results[(what, "before")], results[(what, "after")]
        mb, ma = statistics.median(b), statistics.median(a)
        rounds = ", ".join(f"{x:.3f}" for x in b), ", ".join(f"{x:.3f}" for x in a)
        print(f"{what}: before {mb:.3f} ({rounds[0]}) after {ma:.3f} ({rounds[1]}) x{ma / mb:.3f}")


if __name__ == "__main__":
    main()
