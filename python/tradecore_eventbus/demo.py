"""The main job behind ``make demo``: an EventBus publishing and consuming pub/sub and
stream events, printing what happened (``tradecore-eventbus demo`` runs the same).

    python -m tradecore_eventbus.demo                   # in memory, no server needed
    python -m tradecore_eventbus.demo --broker kafka    # on the local broker (make broker-start)
"""

from __future__ import annotations

from ._internal.demo import OrderPlaced, build_adapter, main, run

__all__ = ["OrderPlaced", "build_adapter", "main", "run"]

if __name__ == "__main__":
    main()
