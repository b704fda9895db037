"""The brokers the faults are injected into, driven through the project's scripts, and the
waiting primitive every scenario uses: poll a condition until a deadline.

Missing infrastructure is a failure, never a skip: a chaos suite that silently does not run
looks exactly like one that passes."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROKER_SH = ROOT / "scripts/kafka/broker.sh"
CLUSTER_SH = ROOT / "scripts/kafka/cluster.sh"
#: The scripts wait up to KAFKA_START_TIMEOUT (120 s) for a broker to answer.
SCRIPT_TIMEOUT_S = float(os.environ.get("KAFKA_START_TIMEOUT", "120")) + 60.0
#: Condition polling interval: short next to every timing the scenarios measure (>= 0.5 s).
POLL_S = 0.05


class InfraError(AssertionError):
    """A broker script failed; the message carries its output."""


async def run_script(script: Path, *args: str, timeout: float = SCRIPT_TIMEOUT_S) -> str:
    """Runs one of the broker scripts without blocking the event loop (the bus keeps
    publishing while a broker restarts); returns its stdout, fails with its stderr."""
    require(script)
    proc = await asyncio.create_subprocess_exec(
        str(script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise InfraError(
            f"{script.name} {' '.join(args)} did not finish within {timeout}s"
        ) from None
    if proc.returncode != 0:
        hint = ""
        if proc.returncode == 2 and b"usage" in err.lower():
            hint = f" ({script.name} does not support `{args[0]}`: the chaos suite needs it)"
        # The scripts' own messages ("[broker] ...") say what failed; the broker log tail
        # they print after them is kept short.
        text = err.decode(errors="replace")
        own = [line for line in text.splitlines() if line.startswith(("[broker]", "[cluster]"))]
        raise InfraError(
            f"{script.name} {' '.join(args)} exited {proc.returncode}{hint}: "
            f"{' / '.join(own[-8:])}; last output: {text[-600:]}"
        )
    return out.decode()


def require(script: Path) -> None:
    if not script.exists():
        pytest.fail(f"{script.relative_to(ROOT)} is missing: the chaos suite needs it")


async def script_ok(script: Path, *args: str) -> bool:
    proc = await asyncio.create_subprocess_exec(
        str(script),
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=ROOT,
    )
    return await asyncio.wait_for(proc.wait(), 30) == 0


class SingleBroker:
    """The project's broker on 127.0.0.1:19092 (scripts/kafka/broker.sh)."""

    async def require_running(self) -> None:
        require(BROKER_SH)
        if not await script_ok(BROKER_SH, "pid"):
            pytest.fail(
                "the chaos suite kills the project's own broker (make broker-start); "
                "scripts/kafka/broker.sh reports none running"
            )

    async def kill(self) -> None:
        """SIGKILL, storage kept."""
        await run_script(BROKER_SH, "kill")

    async def restart(self) -> None:
        """Starts on the same storage; returns once it answers."""
        await run_script(BROKER_SH, "restart")

    async def running(self) -> bool:
        return await script_ok(BROKER_SH, "status")

    async def ensure_running(self) -> None:
        """Leaves the broker as the rest of the suite expects it, whatever happened: on its
        storage if it can, on fresh storage otherwise."""
        if await self.running():
            return
        try:
            await self.restart()
        except InfraError:
            await run_script(BROKER_SH, "start")


class Cluster:
    """The 3-broker KRaft cluster on 127.0.0.1:29092-29094 (scripts/kafka/cluster.sh)."""

    #: cluster.sh numbers its brokers 1..3 on consecutive ports.
    FIRST_PORT = 29092

    async def start(self) -> None:
        await run_script(CLUSTER_SH, "start")

    async def stop(self) -> None:
        await run_script(CLUSTER_SH, "stop")

    async def running(self) -> bool:
        require(CLUSTER_SH)
        return await script_ok(CLUSTER_SH, "status")

    async def bootstrap(self) -> str:
        return (await run_script(CLUSTER_SH, "bootstrap")).strip()

    async def kill(self, n: int) -> None:
        await run_script(CLUSTER_SH, "kill", str(n))

    async def restart(self, n: int) -> None:
        await run_script(CLUSTER_SH, "restart", str(n))

    @classmethod
    def number_of(cls, port: int) -> int:
        """cluster.sh's broker number for a broker's port (what metadata reports)."""
        return port - cls.FIRST_PORT + 1


async def poll_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    fail_fast: Callable[[], str | None] | None = None,
) -> float:
    """Waits until ``condition()`` holds; returns the seconds it took. Fails naming ``what``
    when ``timeout`` passes, or at once when ``fail_fast()`` explains why it never will."""
    started = time.monotonic()
    deadline = started + timeout
    while not condition():
        if fail_fast is not None and (reason := fail_fast()):
            raise AssertionError(f"{what}: {reason}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not reached within {timeout:.1f}s")
        await asyncio.sleep(POLL_S)
    return time.monotonic() - started


async def poll_until_async(
    condition: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.2
) -> float:
    """``poll_until`` for conditions that must ask a broker (metadata): polled less often."""
    started = time.monotonic()
    deadline = started + timeout
    while not await condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not reached within {timeout:.1f}s")
        await asyncio.sleep(interval)
    return time.monotonic() - started


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Waits ``seconds`` unless ``stop`` is set first; returns whether it was set. Used for
    pacing and deliberate fault durations, never to wait for a condition."""
    try:
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))
    except TimeoutError:
        return False
    return True
