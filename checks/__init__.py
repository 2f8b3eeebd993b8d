"""Driftline's statistics: profiles, metrics and thresholds as pure functions.

Nothing here reads files, databases or the network, and nothing here imports ``monitor``,
``alerts`` or ``dashboards``.

Modules: ``profiles``/``sketch`` (mergeable summaries), ``settings`` (the ``checks:`` config),
``roles``, ``drift`` (method registry), ``quality``, ``latency``, ``predictions``,
``performance`` (metric registry), ``kpis``, ``bounds``, ``results`` and ``evaluate`` (one window
against its reference).
"""
