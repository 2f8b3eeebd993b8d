"""Helpers of ``bench/bench_detection.py``: seeded scenarios, scoring, and the adapters that turn
each tool's verdicts into per-column flags (Driftline in-process, the peers in their own venv)."""
