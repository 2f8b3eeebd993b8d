"""Driftline's statistics: profiles, metrics and thresholds as pure functions.

Nothing here reads files, databases or the network, and nothing here imports ``monitor``,
``alerts`` or ``dashboards``.
"""
