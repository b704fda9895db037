"""The operators' command line, ``tradecore-eventbus`` (also ``python -m tradecore_eventbus``).

One module per command group; ``entry.main`` is the console script. click and rich come
with the ``cli`` extra and are imported through ``libs`` (decision 72).
"""
