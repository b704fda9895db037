"""Sampling what no single call reports: each subscription's completed offset commits and
its consumer lag, handed to the observers every ``EVENT_BUS_OBSERVER_SAMPLE_INTERVAL_SECONDS``.

It runs only while an observer besides the built-in counters listens for commits or lag,
so a bus nobody observes has no sampling task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..config.settings import EventBusConfig
from .dispatch import Observers

if TYPE_CHECKING:
    from ..consuming.subscription import Subscription

logger = logging.getLogger("tradecore_eventbus.observers")


class Sampler:
    def __init__(
        self,
        observers: Observers,
        subscriptions: Mapping[str, Subscription],
        config: EventBusConfig,
    ) -> None:
        self.observers = observers
        self.subscriptions = subscriptions
        self.interval_s = config.observer_sample_interval_seconds
        self._task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        #: Commits already reported, per subscription id.
        self._commits: dict[str, int] = {}

    def start_if_needed(self) -> None:
        if self._task is not None or self._stopped.is_set():
            return
        if not self.observers.listens("offsets_committed", "consumer_lag"):
            return
        with contextlib.suppress(RuntimeError):  # no running loop yet: started on connect
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="eventbus-observer-sampler"
            )

    async def stop(self) -> None:
        self._stopped.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.interval_s)
            try:
                self.sample()
            except Exception:  # a sample must never end the sampling
                logger.exception("sampling commits and lag failed")

    def sample(self) -> None:
        """Reports every subscription's new commits and its lag now."""
        for sub_id, sub in list(self.subscriptions.items()):
            stats = sub.consumer.stats()
            commits = int(stats.get("commits", 0))
            new = commits - self._commits.get(sub_id, 0)
            self._commits[sub_id] = commits
            if new > 0:
                self.observers.offsets_committed(sub.channel, sub.group_id, new)
            for _topic, partition, lag in sub.consumer.lag():
                self.observers.consumer_lag(sub.channel, sub.group_id, partition, lag)
        for gone in set(self._commits) - set(self.subscriptions):
            del self._commits[gone]
