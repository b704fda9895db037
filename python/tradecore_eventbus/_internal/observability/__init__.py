"""Observation: the ``Observer`` interface the bus reports to (``observer``), the fan-out
that calls the registered ones (``dispatch``), the counters ``health_check()`` reads
(``counters``) and the sampler of commits and lag (``sampler``)."""
