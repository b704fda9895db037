"""The local spool: its files (``files``) and the drainer that sends them (``drainer``)."""
