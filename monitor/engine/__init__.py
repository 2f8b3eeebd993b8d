"""Engines turn batches of log rows into profiles. ``pandas`` is the default."""
