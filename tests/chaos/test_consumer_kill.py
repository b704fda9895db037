"""Scenario 2, after ducktape's consumer_test: a stream consumer running in its own process
is SIGKILLed mid-stream, again and again, and a replacement with the same group and the
same consumer name is started at once, while events keep being published.

At-least-once means: every stored event is handled by some incarnation by the end (lost 0),
and what a killed consumer handled but had not committed is handled again by its
replacement (duplicates, reported per kill). Also reported: the time from the kill until
the replacement handles events again.

Two variants: dynamic membership (the killed member holds its partitions until its session
times out, so the replacement may wait that long, but must then take over rather than give
up), and static membership (KAFKA_CONSUMER_STATIC_MEMBERSHIP=true: the replacement takes
over the killed member's identity and resumes without waiting for the session timeout)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from tests.chaos import modes, report
from tests.chaos.checker import Stored, check_consumption, read_and_check
from tests.chaos.infra import ROOT, SingleBroker, poll_until
from tests.chaos.report import ScenarioResult, median_line, recording
from tests.chaos.workload import History, KeyedPublishers, make_bus
from tests.chaos.workload import transport_config as chaos_transport
from tests.conftest import BOOTSTRAP

from tradecore_eventbus import EventBusConfig, TransportConfig

MODE = modes.CONSUMER_KILL
WORKER = Path(__file__).with_name("consumer_worker.py")
DEFAULTS = TransportConfig()
#: Session timeout per variant: dynamic members get the mode's (short: the broker's minimum,
#: to bound the time); static members the package default, since what static membership
#: promises is that a replacement does not wait for it.
SESSION_MS = {"dynamic": MODE.session_timeout_ms, "static": DEFAULTS.consumer_session_timeout_ms}
HEARTBEAT_S = DEFAULTS.consumer_heartbeat_interval_ms / 1000
SESSION_S = max(SESSION_MS.values()) / 1000  # the longer one bounds the test's timeout
#: How long a subscribe call waits for its consumer to be live (EVENT_BUS_CONSUMER_POLL_TIMEOUT_MS).
LIVE_TIMEOUT_S = EventBusConfig().consumer_poll_timeout_ms / 1000
#: A new process needs a few seconds to import the package and connect on two busy cores.
PROCESS_START_S = 15.0


def replacement_s(membership: str) -> float:
    """The longest a correct replacement may take to handle again: the killed member keeps
    its partitions for up to a session timeout, then the group rebalances and the
    replacement joins within the live timeout."""
    return PROCESS_START_S + SESSION_MS[membership] / 1000 + LIVE_TIMEOUT_S


LONGEST_REPLACEMENT_S = max(replacement_s(m) for m in SESSION_MS)
#: Everything published must be handled by the end: the backlog of the last outage drains
#: within a session timeout at the rates used here.
CATCH_UP_S = SESSION_S + 60.0
PROGRESS_S = 3 * MODE.handled_before_kill / MODE.rate + 30.0

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.kafka,
    pytest.mark.timeout(
        int(LONGEST_REPLACEMENT_S * (MODE.kills + 1) + MODE.kills * PROGRESS_S + 240)
    ),
]


class Worker:
    """One incarnation of the consumer process, and what it handled."""

    def __init__(self, n: int, directory: Path, proc: asyncio.subprocess.Process) -> None:
        self.n = n
        self.out = directory / f"worker-{n}.handled"
        self.live = directory / f"worker-{n}.live"
        self.stderr = directory / f"worker-{n}.stderr"
        self.proc = proc
        self.handled: list[tuple[str, float]] = []
        self._read = 0
        self.killed = False

    @classmethod
    async def start(
        cls, n: int, directory: Path, env: dict[str, str], channel: str, group: str
    ) -> Worker:
        stderr = (directory / f"worker-{n}.stderr").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            *("--channel", channel, "--group", group, "--consumer", "worker-1"),
            *("--out", str(directory / f"worker-{n}.handled")),
            *("--live", str(directory / f"worker-{n}.live")),
            env=env,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
        stderr.close()
        return cls(n, directory, proc)

    def refresh(self) -> int:
        """Reads the lines appended since the last call (only whole lines)."""
        try:
            with self.out.open("rb") as f:
                f.seek(self._read)
                chunk = f.read()
        except FileNotFoundError:
            return 0
        end = chunk.rfind(b"\n") + 1
        for line in chunk[:end].decode().splitlines():
            event_id, at = line.split("\t")
            self.handled.append((event_id, float(at)))
        self._read += end
        return len(self.handled)

    def count(self) -> int:
        return self.refresh()

    def exit_reason(self) -> str | None:
        """Why the process can no longer make progress (it exited by itself)."""
        if self.proc.returncode is None or self.killed:
            return None
        lines = self.stderr.read_text(errors="replace").strip().splitlines()
        last = lines[-1] if lines else "(no output)"  # the exception, when it raised
        return f"worker {self.n} exited with {self.proc.returncode}: {last}"

    def live_at(self) -> float | None:
        try:
            return float(self.live.read_text())
        except (FileNotFoundError, ValueError):
            return None

    async def kill(self) -> None:
        self.killed = True
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        # What it wrote since the last read: handled (and maybe committed, so never
        # redelivered) but not counted yet.
        self.refresh()

    async def terminate(self, timeout: float) -> None:
        if self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            await self.kill()
            raise AssertionError(f"worker {self.n} did not close within {timeout}s") from None


def worker_env(membership: str, spool: Path) -> dict[str, str]:
    # The bus settings of whoever runs the tests must not reach the worker (a topic prefix
    # would have it read another topic than the one the test publishes to).
    ours = ("KAFKA_", "EVENT_BUS_", "REDPANDA_", "ENABLE_", "DLQ_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(
        {
            "REDPANDA_BOOTSTRAP_SERVERS": BOOTSTRAP,
            "REDPANDA_CLIENT_ID": "chaos",
            "KAFKA_CONSUMER_GROUP_ID_PREFIX": "chaos",
            "KAFKA_CONSUMER_SESSION_TIMEOUT_MS": str(SESSION_MS[membership]),
            "KAFKA_CONSUMER_STATIC_MEMBERSHIP": "true" if membership == "static" else "false",
            "EVENT_BUS_SPOOL_DIR": str(spool),
        }
    )
    return env


@pytest.mark.parametrize("membership", ["dynamic", "static"])
async def test_a_killed_consumer_is_replaced_and_every_event_is_handled(
    single_broker: SingleBroker, tmp_path: Path, membership: str
) -> None:
    title = f"2. consumer SIGKILL ({membership} membership)"
    result = ScenarioResult(f"2-consumer-kill-{membership}", title)
    with recording(result):
        await run(tmp_path, membership, result)


async def run(tmp_path: Path, membership: str, result: ScenarioResult) -> None:
    bus, _ = make_bus(chaos_transport(BOOTSTRAP), tmp_path / "spool")
    channel = f"transport.chaos-consumer-{uuid.uuid4().hex[:8]}"
    group = f"chaos-workers-{uuid.uuid4().hex[:8]}"
    history = History()
    keys = [f"order-{i:02d}" for i in range(8)]
    publishers = KeyedPublishers(bus, channel, keys, MODE.rate, history)
    env = worker_env(membership, tmp_path / "worker-spool")
    workers: list[Worker] = []
    kills: list[tuple[float, float]] = []  # (killed at, replacement's first event at)

    async def start_worker() -> Worker:
        worker = await Worker.start(len(workers), tmp_path, env, channel, group)
        workers.append(worker)
        return worker

    try:
        await bus.start()
        publishers.start()
        worker = await start_worker()
        await poll_until(
            lambda: worker.count() > 0,
            replacement_s(membership),
            "the first worker handles events",
            fail_fast=worker.exit_reason,
        )
        for n in range(1, MODE.kills + 1):
            target = worker.count() + MODE.handled_before_kill
            await poll_until(
                lambda w=worker, t=target: w.count() >= t,
                PROGRESS_S,
                f"kill {n}: worker {worker.n} handles {MODE.handled_before_kill} events",
                fail_fast=worker.exit_reason,
            )
            killed_at = time.monotonic()
            await worker.kill()
            worker = await start_worker()  # at once: same group, same consumer name
            await poll_until(
                lambda w=worker: w.count() > 0,
                replacement_s(membership),
                f"kill {n}: the replacement handles events again",
                fail_fast=worker.exit_reason,
            )
            kills.append((killed_at, worker.handled[0][1]))
        await publishers.stop(60.0)
        stored, verdict = await read_and_check(BOOTSTRAP, bus.adapter.topic_for(channel), history)
        unhandled = {s.event_id for s in stored}

        def all_handled() -> bool:
            for w in workers:
                w.refresh()  # a no-op for the dead ones: their files are read to the end
            unhandled.difference_update(e for w in workers for e, _ in w.handled)
            return not unhandled

        try:
            await poll_until(
                all_handled,
                CATCH_UP_S,
                "every stored event handled by the end",
                fail_fast=worker.exit_reason,
            )
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; {describe_unhandled(stored, unhandled, worker)}"
            ) from None
        await worker.terminate(EventBusConfig().close_timeout_seconds + 10)
    finally:
        if not publishers.stopping.is_set():
            await publishers.stop(60.0)
        for w in workers:
            if w.proc.returncode is None:
                await w.kill()
        await bus.close()
        result.published(history)
        summarize(result, workers, kills, membership)
        keep_worker_files(tmp_path, result.scenario_id)

    handled = Counter(e for w in workers for e, _ in w.handled)
    consumption = check_consumption(stored, handled)
    result.events, result.acked = verdict.events, verdict.acked
    result.spooled, result.duplicates = verdict.spooled, verdict.duplicates
    result.lost = verdict.lost + len(consumption.unhandled)
    result.redelivered = consumption.redelivered
    result.order_violations = len(verdict.order_violations)
    assert not verdict.problems(), "; ".join(verdict.problems())
    assert not consumption.unhandled, f"{len(consumption.unhandled)} stored events never handled"
    if membership == "static":
        # A dynamic member's session expires at the earliest a session timeout after its last
        # heartbeat, at most one heartbeat interval before the kill: a replacement that took
        # longer than that waited for the killed member's session instead of replacing it.
        waited = SESSION_MS["static"] / 1000 - HEARTBEAT_S
        slow = [round(back - killed, 1) for killed, back in kills if back - killed >= waited]
        assert not slow, (
            f"with static membership the replacement waited for the killed member's session "
            f"({waited:.0f} s or more after the kill): {slow} s"
        )


def summarize(
    result: ScenarioResult,
    workers: list[Worker],
    kills: list[tuple[float, float]],
    membership: str,
) -> None:
    """Per kill: redeliveries (events the replacement handled that an earlier incarnation
    had handled already) and the time until the replacement handled again."""
    seen: set[str] = set()
    recoveries: list[float] = []
    duplicates: list[float] = []
    for w in workers:
        w.refresh()
        ids = [e for e, _ in w.handled]
        if w.n > 0:
            again = sum(1 for e in ids if e in seen)
            duplicates.append(float(again))
            line = f"kill {w.n}: replacement handled {len(ids)} events, {again} of them again"
            if w.n <= len(kills):
                killed, back = kills[w.n - 1]
                recoveries.append(back - killed)
                live = w.live_at()
                line += f"; handling again {back - killed:.1f} s after the kill"
                if live is not None:
                    line += f" (subscribe returned after {live - killed:.1f} s)"
            result.rounds.append(line)
        seen.update(ids)
    result.rounds.append(median_line("kill to handling again", recoveries, " s"))
    result.rounds.append(median_line("redelivered per kill", duplicates, digits=0))
    result.notes.append(
        f"{membership} membership, KAFKA_CONSUMER_SESSION_TIMEOUT_MS={SESSION_MS[membership]}, "
        f"publishing {MODE.rate:.0f} events/s on 8 keys, kill after "
        f"{MODE.handled_before_kill} handled events; commit every "
        f"{chaos_transport(BOOTSTRAP).commit_interval_ms} ms or "
        f"{chaos_transport(BOOTSTRAP).commit_batch_size} events"
    )


def describe_unhandled(stored: list[Stored], unhandled: set[str], worker: Worker) -> str:
    """Where the events no incarnation handled are, and what the last one logged."""
    where: dict[int, list[int]] = {}
    for s in stored:
        if s.event_id in unhandled:
            where.setdefault(s.partition, []).append(s.offset)
    parts = ", ".join(
        f"partition {p}: {len(o)} (offsets {min(o)}-{max(o)})" for p, o in sorted(where.items())
    )
    log = [
        line
        for line in worker.stderr.read_text(errors="replace").splitlines()
        if " WARNING " in line or " ERROR " in line or "Error" in line
    ]
    return f"{len(unhandled)} unhandled: {parts}; worker {worker.n} logged: {log[-5:]}"


def keep_worker_files(tmp_path: Path, scenario_id: str) -> None:
    """The workers' files outlive pytest's temporary directories (other runs rotate them)."""
    target = report.CACHE / f"{scenario_id}-{modes.MODE}-workers"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for f in tmp_path.glob("worker-*"):
        if f.is_file():
            shutil.copy(f, target / f.name)
