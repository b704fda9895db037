"""Short mode (the default, part of ``make test``) and full mode (``CHAOS_FULL=1``, ``make
chaos``): how many faults each scenario injects and how hard it drives the bus.

Short mode exists so that every ``make test`` crosses each fault path at least twice while
adding at most about two minutes; full mode is the ducktape-style run with five faults per
scenario whose numbers go into docs/reliability.md (``CHAOS_REPORT=1``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

FULL = os.environ.get("CHAOS_FULL", "").strip().lower() in {"1", "true", "yes"}
REPORT = os.environ.get("CHAOS_REPORT", "").strip().lower() in {"1", "true", "yes"}
MODE = "full" if FULL else "short"


@dataclass(frozen=True)
class BrokerKillMode:
    kills: int
    keys: int
    #: Publish calls per second over all keys (the publishers are paced so that the broker,
    #: which shares the two cores, is not starved while it recovers its log).
    rate: float
    #: Acknowledged events required between two kills: each kill hits a bus in full flow.
    progress_between_kills: int
    #: How long the broker stays dead before it is restarted, on top of the restart itself
    #: (which is an outage of its own: ~5 s of JVM start plus up to the 9 s KRaft broker
    #: session the killed incarnation still holds, so short mode adds nothing to it).
    outage_s: float


@dataclass(frozen=True)
class ConsumerKillMode:
    kills: int
    rate: float
    #: Events an incarnation of the worker must have handled before it is killed.
    handled_before_kill: int
    #: KAFKA_CONSUMER_SESSION_TIMEOUT_MS given to the worker with dynamic membership: a
    #: killed member holds its partitions this long, so it bounds the scenario's time.
    #: Short mode uses the broker's minimum (group.min.session.timeout.ms = 6000); full
    #: mode uses the package default (45000), what a deployment without tuning sees. The
    #: static variant always runs with the default: its replacement must not wait for it.
    session_timeout_ms: int


@dataclass(frozen=True)
class LeaderKillMode:
    #: One kill in short mode: each costs ~30 s of Kafka's own timing (the controller fences
    #: a dead broker after its 9 s session, the restarted JVM needs ~15 s), which two kills
    #: would put past the suite's two-minute share of ``make test``.
    kills: int
    keys: int
    rate: float
    progress_between_kills: int


@dataclass(frozen=True)
class RebalanceStormMode:
    #: Membership changes (a consumer joins or leaves) during the storm.
    changes: int
    #: Seconds between two changes.
    period_s: float
    max_members: int
    keys: int
    rate: float


BROKER_KILL = (
    BrokerKillMode(kills=5, keys=32, rate=800.0, progress_between_kills=2000, outage_s=2.0)
    if FULL
    else BrokerKillMode(kills=2, keys=16, rate=400.0, progress_between_kills=500, outage_s=0.0)
)
CONSUMER_KILL = (
    ConsumerKillMode(kills=5, rate=300.0, handled_before_kill=1000, session_timeout_ms=45_000)
    if FULL
    else ConsumerKillMode(kills=2, rate=200.0, handled_before_kill=200, session_timeout_ms=6_000)
)
LEADER_KILL = (
    LeaderKillMode(kills=5, keys=24, rate=500.0, progress_between_kills=1500)
    if FULL
    else LeaderKillMode(kills=1, keys=12, rate=250.0, progress_between_kills=300)
)
REBALANCE_STORM = (
    RebalanceStormMode(changes=20, period_s=3.0, max_members=5, keys=24, rate=500.0)
    if FULL
    else RebalanceStormMode(changes=6, period_s=2.0, max_members=4, keys=12, rate=250.0)
)
