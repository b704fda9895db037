"""The implementation of ``tradecore_eventbus.testing``: helpers for users' tests (no pytest
needed) and the pytest plugin (``plugin.py``)."""
