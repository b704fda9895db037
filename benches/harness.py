"""`make bench`: every workload for every contender, in one run against the local broker,
rounds alternating the contenders so machine noise hits them alike. Writes
benches/results/latest.md (medians, min-max, ratios to the EventBus) and latest.png.

    python benches/harness.py [--scale 1.0] [--rounds 3] [--latency-seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
sys.path.insert(0, str(HERE))

THROUGHPUT = {
    "batch": ["eventbus", "core", "rust", "confluent", "aiokafka", "eventbus_validated"],
    "awaited": [
        "eventbus",
        "eventbus_linger0",
        "eventbus_noheaders",
        "rust",
        "confluent",
        "confluent_flush",
        "aiokafka",
    ],
    "concurrent": [
        "eventbus",
        "eventbus_keyed",
        "core",
        "confluent_aio",
        "aiokafka",
        "aiokafka_keyed",
    ],
    "consume": [
        "eventbus",
        "core",
        "rust",
        "confluent",
        "confluent_tuned",
        "confluent_aio",
        "aiokafka",
    ],
}
TITLES = {
    "batch": "1. Batch publish ({n:,} events, batches of 1,000)",
    "awaited": "1b. Awaited batches, one after another ({n:,} events, batches of 1,000)",
    "concurrent": "2. Concurrent single publishes ({n:,} events, 1,000 tasks)",
    "consume": "3. Consume ({n:,} stored events, at-least-once commits)",
}


async def create_topic(name: str) -> str:
    from contenders import BOOTSTRAP
    from tradecore_eventbus import _core

    await _core.Admin(BOOTSTRAP).create_topics([(name, 6, 1, None)])
    return name


def topic(prefix: str) -> str:
    name = f"bench-{prefix}-{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topic(name))
    return name


def run(cmd: list[str], timeout: float = 900) -> dict[str, Any]:
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def one(
    workload: str,
    contender: str,
    records: int,
    extra: list[str] | None = None,
    broker: int | None = None,
) -> dict[str, Any]:
    """One run in a fresh process. With ``broker`` (its pid), the result also has the CPU the
    broker used while that process ran (``broker_cpu_s``): on this machine the client and the
    broker share the same cores."""
    extra = extra or []
    if contender == "rust":
        t = extra[extra.index("--topic") + 1]
        what = {"batch": "produce", "awaited": "produce_awaited"}.get(workload, "consume")
        cmd = ["cargo", "bench", "-q", "--bench", "rdkafka_peer", "--", what, t, str(records)]
    else:
        cmd = [PY, str(HERE / "run_one.py"), workload, contender, "--records", str(records), *extra]
    before = process_cpu_s(broker) if broker is not None else None
    result = run(cmd)
    if broker is not None and before is not None:
        after = process_cpu_s(broker)
        if after is not None:
            result["broker_cpu_s"] = after - before
    return result


def process_cpu_s(pid: int) -> float | None:
    """User plus system CPU seconds of every thread of process ``pid`` (None if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prefill(records: int) -> str:
    name = topic("stored")
    run([PY, str(HERE / "run_one.py"), "batch", "core", "--topic", name, "--records", str(records)])
    return name


def rotate(items: list[str], k: int) -> list[str]:
    k %= len(items)
    return items[k:] + items[:k]


def summarize(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def settle_disk() -> None:
    """Writes out what earlier workloads left dirty in the page cache before a latency run.
    The kernel flushes it about 30 s after the writes (80 MB per million events here), and
    that flush landing inside one contender's 30 s window but not another's would be noise,
    not a property of the client."""
    os.sync()
    time.sleep(1.0)


def per_event_us(runs: list[dict[str, Any]], key: str, events: int) -> str:
    """The median of ``key`` (CPU seconds) per event in microseconds, or "-" if not measured."""
    values = [r[key] for r in runs if key in r]
    if not values:
        return "-"
    return f"{statistics.median(values) / events * 1e6:.1f}"


def broker_pid() -> int:
    out = subprocess.run(
        [str(ROOT / "scripts/kafka/broker.sh"), "pid"], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--scale", type=float, default=1.0, help="fraction of the issue's record counts"
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency-seconds", type=float, default=30.0)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    n_batch = int(1_000_000 * args.scale)
    n_concurrent = int(100_000 * args.scale)
    n_consume = int(1_000_000 * args.scale)
    subprocess.run(
        ["cargo", "bench", "-q", "--no-run", "--bench", "rdkafka_peer"], cwd=ROOT, check=True
    )
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    only = set(args.only) if args.only else None
    try:
        broker: int | None = broker_pid()
    except (OSError, subprocess.CalledProcessError, ValueError):
        broker = None  # not started by scripts/kafka: no broker CPU in the report

    def want(w: str) -> bool:
        return only is None or w in only

    stored = prefill(n_consume) if want("consume") or want("memory") else ""
    for r in range(args.rounds):
        for workload, contenders in THROUGHPUT.items():
            if not want(workload):
                continue
            records = {
                "batch": n_batch,
                "awaited": n_batch,
                "concurrent": n_concurrent,
                "consume": n_consume,
            }[workload]
            for contender in rotate(contenders, r):
                if workload == "consume":
                    # Reads race the kernel's write-back of what the publish workloads (or
                    # the prefill) left dirty; it must not land on one contender only.
                    settle_disk()
                t = stored if workload == "consume" else topic(workload)
                res = one(workload, contender, records, ["--topic", t], broker)
                results.setdefault(workload, {}).setdefault(contender, []).append(res)
                print(
                    f"round {r + 1} {workload:10s} {contender:18s} {res['rate']:>12,.0f} /s  rss {res['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
        if want("latency"):
            for linger in (0, 10):
                for contender in rotate(["eventbus", "aiokafka", "ack_floor"], r):
                    settle_disk()
                    res = one(
                        "latency",
                        contender,
                        0,
                        [
                            "--topic",
                            topic("latency"),
                            "--linger-ms",
                            str(linger),
                            "--seconds",
                            str(args.latency_seconds),
                        ],
                    )
                    results.setdefault(f"latency-linger{linger}", {}).setdefault(
                        contender, []
                    ).append(res)
                    print(
                        f"round {r + 1} latency linger={linger} {contender:10s} p50 {res['p50_ms']:.2f} p99 {res['p99_ms']:.2f} p99.9 {res['p999_ms']:.2f} ms",
                        flush=True,
                    )
    if want("memory"):
        mem = one("memory_consume", "eventbus", 0, ["--topic", stored, "--seconds", "30"])
        results["memory"] = {"consume, slow handler": [mem]}
        t = topic("paused")
        proc = subprocess.Popen(
            [
                PY,
                str(HERE / "run_one.py"),
                "paused_publish",
                "eventbus",
                "--topic",
                t,
                "--seconds",
                "25",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(5)
        pid = broker_pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(15)
        finally:
            os.kill(pid, signal.SIGCONT)
        out, _ = proc.communicate(timeout=300)
        results["memory"]["publishing, broker paused 15 s"] = [
            json.loads(out.strip().splitlines()[-1])
        ]
        print("memory", results["memory"], flush=True)
    write_report(results, args, n_batch, n_concurrent, n_consume)


def write_report(
    results: dict[str, Any], args: Any, n_batch: int, n_concurrent: int, n_consume: int
) -> None:
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    lines = [
        "# Benchmark results",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this machine "
        f"({os.cpu_count()} cores), local Apache Kafka 4.1 broker, {args.rounds} rounds, contenders "
        "alternating. acks=all, lz4, linger 10 ms (unless noted), idempotence where the client "
        "has it, batch.size 16384, 6 partitions, JSON events of ~220 bytes encoded by each "
        "contender. Rates are events per second (median, min-max); ratio = EventBus / contender.",
        "",
        "CPU per event, in microseconds (medians): *client* is the contender's whole process "
        "(every thread, its library's included) over the timed part; *main thread* is the "
        "thread that calls the API (the event loop's, for the asyncio contenders); *broker* is "
        "the broker's process over the contender's whole run (start-up included). The client "
        "and the broker share the machine's cores.",
        "",
    ]
    chart: dict[str, dict[str, float]] = {}
    for workload in ("batch", "awaited", "concurrent", "consume"):
        if workload not in results:
            continue
        n = {
            "batch": n_batch,
            "awaited": n_batch,
            "concurrent": n_concurrent,
            "consume": n_consume,
        }[workload]
        lines += [
            f"## {TITLES[workload].format(n=n)}",
            "",
            "| contender | median /s | min-max /s | EventBus ÷ it | client CPU µs/event "
            "| main thread µs/event | broker CPU µs/event | peak RSS MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        ours = summarize([r["rate"] for r in results[workload]["eventbus"]])[0]
        for contender, runs in results[workload].items():
            med, lo, hi = summarize([r["rate"] for r in runs])
            rss = max(r["peak_rss_mb"] for r in runs)
            chart.setdefault(TITLES[workload].split(" (")[0], {})[contender] = med
            cpu = [per_event_us(runs, k, n) for k in ("cpu_s", "main_thread_cpu_s", "broker_cpu_s")]
            lines.append(
                f"| {contender} | {med:,.0f} | {lo:,.0f}-{hi:,.0f} | {ours / med:.2f}x | "
                f"{cpu[0]} | {cpu[1]} | {cpu[2]} | {rss:.0f} |"
            )
        lines.append("")
    lat = [k for k in results if k.startswith("latency")]
    if lat:
        lines += [
            "## 4. Latency, publish to handler, 1,000 events/s",
            "",
            "| linger | contender | p50 ms | p99 ms | p99.9 ms |",
            "|---|---|---:|---:|---:|",
        ]
        for k in lat:
            for contender, runs in results[k].items():
                p50 = statistics.median(r["p50_ms"] for r in runs)
                p99 = statistics.median(r["p99_ms"] for r in runs)
                p999 = statistics.median(r["p999_ms"] for r in runs)
                lines.append(
                    f"| {k.removeprefix('latency-linger')} ms | {contender} | {p50:.2f} | {p99:.2f} | {p999:.2f} |"
                )
        lines.append("")
    if "memory" in results:
        lines += ["## 5. Memory", "", "| case | peak RSS MB | detail |", "|---|---:|---|"]
        for case, runs in results["memory"].items():
            r = runs[0]
            detail = {
                k: v
                for k, v in r.items()
                if k not in ("workload", "contender", "records", "peak_rss_mb")
            }
            lines.append(f"| {case} | {r['peak_rss_mb']:.0f} | {detail} |")
        lines.append("")
    (out_dir / "latest.md").write_text("\n".join(lines))
    (out_dir / "latest.json").write_text(json.dumps(results, indent=1))
    try:
        if not chart:
            raise ImportError("no throughput results to chart")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(chart), figsize=(6 * len(chart), 4.5))
        if len(chart) == 1:
            axes = [axes]
        for ax, (title, rates) in zip(axes, chart.items(), strict=True):
            names = list(rates)
            ax.barh(
                names,
                [rates[n] / 1000 for n in names],
                color=["#d62728" if n == "eventbus" else "#7f7f7f" for n in names],
            )
            ax.set_title(title)
            ax.set_xlabel("thousand events / s (median)")
            ax.invert_yaxis()
        fig.tight_layout()
        fig.savefig(out_dir / "latest.png", dpi=110)
    except ImportError:
        print("no chart (matplotlib missing or nothing to chart)", file=sys.stderr)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
