"""The docstring examples of alerts/ run (``alerts`` is not among pytest's doctest paths)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "alerts.settings", "alerts.policy", "alerts.links", "alerts.redact", "alerts.backoff",
    "alerts.payload", "alerts.channels", "alerts.channels.webhook", "alerts.channels.slack",
    "alerts.channels.databricks", "alerts.channels._http", "alerts.receiver",
]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_alerts_module_is_listed() -> None:
    import pkgutil

    import alerts

    found = {m.name for m in pkgutil.walk_packages(alerts.__path__, "alerts.")}
    assert found <= set(MODULES), sorted(found - set(MODULES))


def test_alerts_never_imports_monitor() -> None:
    # Floors: dashboards -> monitor -> alerts -> checks. A fresh interpreter, so nothing else loaded monitor.
    import subprocess
    import sys

    code = "import sys, " + ", ".join(MODULES) + "; bad = sorted(m for m in sys.modules if m == 'monitor' or m.startswith('monitor.')); print(bad); sys.exit(bool(bad))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
