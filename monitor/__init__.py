"""Driftline's service: config, sources, engines, store, runner, scheduler and CLI."""

__version__ = "0.1.0"
