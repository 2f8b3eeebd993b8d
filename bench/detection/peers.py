"""Driver side of the peers: write a scenario's data as Parquet, run ``peers_run.py`` with the
peers' venv python in a subprocess (telemetry off), read back their flags. Driftline's process
never imports Evidently or NannyML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parent.parent
PEERS_PYTHON = BENCH / "peers" / ".venv" / "bin" / "python"
PEERS_RUN = Path(__file__).resolve().parent / "peers_run.py"
TOOLS = ("evidently", "nannyml")
NO_TELEMETRY = {"DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1", "NML_DISABLE_USAGE_LOGGING": "1"}
HOW_TO_INSTALL = (
    "python3 -m venv bench/peers/.venv && bench/peers/.venv/bin/pip install -r bench/peers/requirements.txt"
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **NO_TELEMETRY}


def available(python: Path = PEERS_PYTHON) -> bool:
    return python.exists()


def versions(python: Path = PEERS_PYTHON) -> dict[str, str]:
    out = subprocess.run([str(python), str(PEERS_RUN), "--versions"], capture_output=True, text=True, env=_env(), check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class Batch:
    """The cases of one scenario that the peers will run, written to ``folder``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.cases: list[dict] = []

    def add_reference(self, reference: pd.DataFrame, chunks: Sequence[pd.DataFrame]) -> str:
        """Write a reference with its chunk numbers (``__chunk``); returns its path."""
        sizes = [len(c) for c in chunks]
        if sum(sizes) != len(reference):
            raise ValueError("the reference's chunks must cover it exactly")
        path = self.folder / f"reference{len(list(self.folder.glob('reference*.parquet'))):03d}.parquet"
        reference.assign(__chunk=np.repeat(np.arange(len(chunks), dtype=np.int32), sizes)).to_parquet(path, index=False)
        return str(path)

    def add_case(self, case_id: str, reference_path: str, numeric: list[str], categorical: list[str]) -> CaseWriter:
        folder = self.folder / f"case{len(self.cases):03d}"
        folder.mkdir(parents=True)
        entry = {"id": case_id, "reference": reference_path, "windows": [], "numeric": numeric, "categorical": categorical}
        self.cases.append(entry)
        return CaseWriter(folder, entry)

    def run(self, python: Path = PEERS_PYTHON, tools: Sequence[str] = TOOLS) -> tuple[dict, float]:
        """Run the peers on every case; (their output, wall seconds)."""
        manifest = self.folder / "manifest.json"
        out = self.folder / "peers_out.json"
        manifest.write_text(json.dumps({"cases": self.cases, "tools": list(tools)}))
        started = time.perf_counter()
        proc = subprocess.run([str(python), str(PEERS_RUN), str(manifest), str(out)], env=_env(), stdout=subprocess.PIPE, stderr=None, text=True)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            print(proc.stdout, file=sys.stderr)
            raise RuntimeError(f"peers_run.py failed with exit code {proc.returncode}")
        return json.loads(out.read_text()), seconds


class CaseWriter:
    def __init__(self, folder: Path, entry: dict):
        self.folder = folder
        self.entry = entry

    def add_window(self, frame: pd.DataFrame) -> None:
        path = self.folder / f"w{len(self.entry['windows']):04d}.parquet"
        frame.to_parquet(path, index=False)
        self.entry["windows"].append(str(path))


def flags_of(result: dict, columns: Sequence[str]) -> list[dict[str, bool]] | None:
    """A peer's flags in the adapter's shape (None when it failed on the case)."""
    if "flags" not in result:
        return None
    return [{c: c in set(flagged) for c in columns} for flagged in result["flags"]]
