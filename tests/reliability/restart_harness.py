"""SIGKILL a stream consumer process and start its replacement at once, on the real broker.

Used by ``test_consumer_restart.py`` and, as a script, for the figures of decision 42:

    python -m tests.reliability.restart_harness [--rounds 3] [--session-ms 45000] [--events N]

One round: N events are published to a fresh channel (6 partitions); process A
(``consumer_process``) handles them slowly; once it handled a fifth, it is SIGKILLed and
process B, same group and consumer name, is started at once. The round ends when every
event was handled by A or B. Reported: what B's ``subscribe_stream`` returned (state, after
how long), the time from the kill to B's first handled event, lost events (never handled:
must be 0) and duplicates (handled by both: A's work since its last commit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradecore_eventbus import (
    EventBus,
    EventBusConfig,
    EventBusError,
    RedpandaTransportAdapter,
    TransportConfig,
)

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = os.environ.get("TRADECORE_TEST_BOOTSTRAP", "127.0.0.1:19092")
PARTITIONS = 6
KEYS = 60


@dataclass(frozen=True)
class Settings:
    """What a round is run with; every wait of the harness is derived from these."""

    static: bool
    session_ms: int
    heartbeat_ms: int
    poll_timeout_ms: int
    events: int = 3000
    handle_delay_ms: int = 10
    commit_batch_size: int = 100

    @property
    def session_s(self) -> float:
        return self.session_ms / 1000.0

    @property
    def poll_timeout_s(self) -> float:
        return self.poll_timeout_ms / 1000.0

    @property
    def drain_s(self) -> float:
        """Ample time to handle every event once, one partition at a time."""
        return 2.0 * self.events * self.handle_delay_ms / 1000.0

    def env(self, spool_dir: str) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "REDPANDA_BOOTSTRAP_SERVERS": BOOTSTRAP,
            "KAFKA_CONSUMER_SESSION_TIMEOUT_MS": str(self.session_ms),
            "KAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS": str(self.heartbeat_ms),
            "EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS": str(self.poll_timeout_ms),
            "KAFKA_CONSUMER_STATIC_MEMBERSHIP": "true" if self.static else "false",
            "KAFKA_COMMIT_BATCH_SIZE": str(self.commit_batch_size),
            "EVENT_BUS_SPOOL_DIR": spool_dir,
        }


@dataclass
class Round:
    settings: Settings
    #: B's first line: its health entry once ``subscribe_stream`` returned (or its error).
    replacement: dict[str, Any] = field(default_factory=dict)
    #: B's line once it turned live.
    live: dict[str, Any] = field(default_factory=dict)
    killed_at: float = 0.0
    resumed_at: float | None = None
    handled_by_first: int = 0
    counts: Counter[int] = field(default_factory=Counter)

    @property
    def resume_s(self) -> float | None:
        return None if self.resumed_at is None else self.resumed_at - self.killed_at

    @property
    def lost(self) -> int:
        return sum(1 for n in range(self.settings.events) if self.counts[n] == 0)

    @property
    def duplicates(self) -> int:
        return sum(c - 1 for c in self.counts.values() if c > 1)


def handled(path: Path) -> list[tuple[int, float]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        n, at = line.split()
        out.append((int(n), float(at)))
    return out


async def publish_events(channel: str, count: int, spool_dir: str) -> None:
    adapter = RedpandaTransportAdapter(
        event_bus_config=EventBusConfig(spool_dir=spool_dir),
        transport_config=TransportConfig(bootstrap_servers=BOOTSTRAP, topic_partitions=PARTITIONS),
    )
    async with EventBus(adapter, validate_on_publish=False) as bus:
        for key in range(KEYS):
            batch = [{"event_type": "Step", "n": n} for n in range(key, count, KEYS)]
            await bus.publish_batch(channel, batch, partition_key=f"k{key}")


async def spawn(
    settings: Settings, channel: str, group: str, out: Path, spool_dir: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.reliability.consumer_process",
        channel,
        group,
        "worker-1",
        str(out),
        str(settings.handle_delay_ms),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env=settings.env(spool_dir),
    )


async def read_line(proc: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    if not line:
        raise AssertionError(f"the consumer process exited (code {await proc.wait()})")
    parsed: dict[str, Any] = json.loads(line)
    return parsed


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.1f}s")
        await asyncio.sleep(0.05)


async def run_round(settings: Settings, workdir: Path) -> Round:
    """Kills the first consumer process mid-stream and starts its replacement at once."""
    channel = f"transport.restart-{uuid.uuid4().hex[:10]}"
    group = f"restart-{uuid.uuid4().hex[:8]}"
    spool_dir = str(workdir / "spool")
    first_out, second_out = workdir / f"{channel}.a", workdir / f"{channel}.b"
    result = Round(settings)
    await publish_events(channel, settings.events, spool_dir)
    # A process needs a few seconds to start on a busy machine; the join itself is bounded
    # by the session timeout (a new group) plus the subscribe call's own timeout.
    startup_s = settings.session_s + settings.poll_timeout_s
    first = await spawn(settings, channel, group, first_out, spool_dir)
    second: asyncio.subprocess.Process | None = None
    try:
        await read_line(first, startup_s)
        await wait_for(
            lambda: len(handled(first_out)) >= settings.events // 5,
            startup_s + settings.drain_s,
            "the first consumer handling a fifth of the events",
        )
        result.killed_at = time.time()
        first.send_signal(signal.SIGKILL)
        second = await spawn(settings, channel, group, second_out, spool_dir)
        await first.wait()
        result.handled_by_first = len(handled(first_out))
        result.replacement = await read_line(second, startup_s)
        if "subscribe_error" in result.replacement:
            return result
        if result.replacement["state"] == "waiting_for_partitions":
            # Kafka hands the dead member's partitions over when its session has timed out.
            result.live = await read_line(second, 2 * settings.session_s)
        else:
            result.live = result.replacement

        def all_handled() -> bool:
            seen = {n for n, _ in handled(first_out)} | {n for n, _ in handled(second_out)}
            return len(seen) == settings.events

        await wait_for(
            all_handled, 2 * settings.session_s + settings.drain_s, "every event handled"
        )
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
    by_second = handled(second_out)
    result.resumed_at = min((at for _, at in by_second), default=None)
    result.counts = Counter(n for n, _ in handled(first_out) + by_second)
    return result


def describe(r: Round) -> str:
    s = r.settings
    resumed = "-" if r.resume_s is None else f"{r.resume_s:.2f}"
    outcome = r.replacement.get("state", r.replacement.get("subscribe_error"))
    return (
        f"static={str(s.static).lower():5} session={s.session_ms}ms "
        f"subscribe->{outcome} "
        f"after {r.replacement.get('after_s', 0.0):.2f}s, kill->handling {resumed}s, "
        f"handled by A {r.handled_by_first}, lost {r.lost}, duplicates {r.duplicates}"
    )


async def measured_round(settings: Settings, workdir: Path, tries: int = 3) -> Round:
    """A round, run again when the shared test broker went away under it (another user
    restarting it makes the publish, a subscribe or the first consumer fail); such a round
    says nothing about a consumer restart, and it is reported, not counted."""
    for attempt in range(1, tries + 1):
        try:
            r = await run_round(settings, workdir)
        except (AssertionError, EventBusError) as exc:
            print(f"  discarded (try {attempt}): {type(exc).__name__}: {exc}", flush=True)
            continue
        if "subscribe_error" not in r.replacement:
            return r
        print(f"  discarded (try {attempt}): {describe(r)}", flush=True)
    raise RuntimeError(f"no round completed in {tries} tries: is the broker up?")


async def figures(rounds: int, session_ms: int, events: int) -> None:
    results: dict[bool, list[Round]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            for static in (False, True):
                settings = Settings(
                    static=static,
                    session_ms=session_ms,
                    heartbeat_ms=3000,
                    poll_timeout_ms=15_000,
                    events=events,
                )
                r = await measured_round(settings, Path(tmp))
                results[static].append(r)
                print(f"round {i + 1}: {describe(r)}", flush=True)
    for static, rs in results.items():
        times = [r.resume_s for r in rs if r.resume_s is not None]
        print(
            f"static={str(static).lower()}: median kill->handling "
            f"{statistics.median(times):.2f}s, median duplicates "
            f"{statistics.median(r.duplicates for r in rs)}, lost {sum(r.lost for r in rs)}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--session-ms", type=int, default=45_000)
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    asyncio.run(figures(args.rounds, args.session_ms, args.events))
