"""A user's test package: its fixtures come from the ``tradecore_eventbus.testing`` plugin
(loaded by ``tests/conftest.py`` in this tree, by the pytest11 entry point once installed),
nothing from the package's own test fixtures."""
