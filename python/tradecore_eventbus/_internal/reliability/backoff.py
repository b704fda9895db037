"""The one backoff of the package: the wait between attempts of anything that is retried.

Every retry loop (a publish, the spool drainer, a handler, a dead-letter write, a fetch
error, a partition worker's restart, the outbox relay, a lookup of a leaderless partition)
counts its attempts in a :class:`Backoff` built from a ``RetryConfig``, and waits through
:func:`sleep` or :meth:`Backoff.wait`. The schedule is the Rust core's
(``_core.backoff_cap_ms``); nothing here has its own constants (decision 62).
"""

from __future__ import annotations

import asyncio
import random

from .retry import RetryConfig


async def sleep(seconds: float) -> None:
    """Every backoff wait goes through here (the seam the retry tests observe)."""
    await asyncio.sleep(seconds)


async def sleep_unless(stop: asyncio.Event | None, seconds: float) -> bool:
    """Waits ``seconds``, or less if ``stop`` is set meanwhile; returns False if it was."""
    if stop is None:
        await sleep(seconds)
        return True
    if stop.is_set():
        return False
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return True
    return False


class Backoff:
    """The attempts of one retried operation and the delays between them.

    ``jitter=True`` (the default) draws each delay uniformly below the schedule's cap ("full
    jitter": many clients retrying at once spread out); ``jitter=False`` waits the cap
    itself (a single background loop, such as the spool drainer, that should simply wait
    longer each time). No delay is shorter than ``floor_s``.
    """

    __slots__ = ("_rng", "failures", "floor_s", "jitter", "policy")

    def __init__(
        self,
        policy: RetryConfig,
        *,
        jitter: bool = True,
        floor_s: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self.jitter = jitter
        self.floor_s = floor_s
        #: Failures since the last success (the attempt that failed last is number this).
        self.failures = 0
        self._rng = rng

    @property
    def exhausted(self) -> bool:
        """Whether the policy's ``max_attempts`` have all been used."""
        return self.failures >= self.policy.max_attempts

    def reset(self) -> None:
        self.failures = 0

    def next_delay_s(self) -> float:
        """Counts one more failure and returns the delay before the next attempt."""
        self.failures += 1
        return self.delay_s(self.failures)

    def delay_s(self, retry: int) -> float:
        """The delay before retry number ``retry`` (1-based), without counting it."""
        if self.jitter:
            delay = self.policy.delay_s(retry, self._rng)
        else:
            delay = self.policy.delay_cap_ms(retry) / 1000.0
        return max(delay, self.floor_s)

    async def wait(self, stop: asyncio.Event | None = None) -> bool:
        """Counts a failure and waits the next delay; False if ``stop`` was set meanwhile."""
        return await sleep_unless(stop, self.next_delay_s())
