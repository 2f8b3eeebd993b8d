"""One peer tool on the scale benchmark's data, in the peers' venv (``bench/peers/.venv``).

    bench/peers/.venv/bin/python bench/scale/peers_child.py '{"tool": "nannyml", ...}'
    bench/peers/.venv/bin/python bench/scale/peers_child.py --versions

Reads the reference and the window from Parquet into pandas first (not timed: "the same data
already in memory"), then times the tool's own work with its defaults and prints one JSON line
with the seconds of each step and this process's peak RSS. Imports nothing of Driftline.

- evidently: ``Report([DataDriftPreset()]).run(window, reference)``, the data-drift report with
  the 25 features declared numeric or categorical (``DataDefinition``);
- nannyml: ``UnivariateDriftCalculator`` with its default methods and thresholds on the 25
  features, ``fit(reference)`` then ``calculate(window)``; chunks of ``rows / chunks`` rows of the
  reference (the 20 row-order chunks Driftline learns the reference's variation from), the window
  in chunks of the same size;
- whylogs: ``why.log(frame)`` of the reference and of the window (profiling only: whylogs keeps
  no reference model and no drift verdict by default).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import warnings

for _name, _value in (("DO_NOT_TRACK", "1"), ("EVIDENTLY_DISABLE_TELEMETRY", "1"), ("NML_DISABLE_USAGE_LOGGING", "1"), ("WHYLOGS_NO_ANALYTICS", "True")):
    os.environ.setdefault(_name, _value)

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


def versions() -> dict[str, str]:
    out = {"pandas": pd.__version__}
    for name in ("evidently", "nannyml", "whylogs"):
        try:
            out[name] = __import__(name).__version__
        except Exception as exc:  # not installed: say so
            out[name] = f"unavailable ({type(exc).__name__})"
    return out


def load(paths: list[str], columns: list[str]) -> pd.DataFrame:
    return pa.concat_tables(pq.read_table(p, columns=columns) for p in paths).to_pandas()


def evidently(spec: dict, reference: pd.DataFrame, window: pd.DataFrame) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=spec["numeric"], categorical_columns=spec["categorical"])
    started = time.perf_counter()
    ref = Dataset.from_pandas(reference, data_definition=definition)
    cur = Dataset.from_pandas(window, data_definition=definition)
    snapshot = Report([DataDriftPreset()]).run(cur, ref)
    snapshot.dict()  # the report's content, as a user reads it
    return {"seconds": time.perf_counter() - started}


def nannyml(spec: dict, reference: pd.DataFrame, window: pd.DataFrame) -> dict:
    import nannyml as nml

    columns = [*spec["numeric"], *spec["categorical"]]
    chunk_size = max(1, len(reference) // int(spec.get("chunks", 20)))
    calculator = nml.UnivariateDriftCalculator(column_names=columns, treat_as_categorical=spec["categorical"], chunk_size=chunk_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        calculator.fit(reference)
        fitted = time.perf_counter()
        result = calculator.calculate(window)
        result.to_df()
        done = time.perf_counter()
    return {"seconds": done - started, "fit_seconds": fitted - started, "calculate_seconds": done - fitted, "chunk_size": chunk_size}


def whylogs(spec: dict, reference: pd.DataFrame, window: pd.DataFrame) -> dict:
    import whylogs as why

    started = time.perf_counter()
    why.log(reference).view()
    profiled = time.perf_counter()
    why.log(window).view()
    done = time.perf_counter()
    return {"seconds": done - started, "reference_seconds": profiled - started, "window_seconds": done - profiled}


TOOLS = {"evidently": evidently, "nannyml": nannyml, "whylogs": whylogs}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--versions"]:
        print(json.dumps(versions()))
        return 0
    spec = json.loads(argv[0])
    columns = [*spec["numeric"], *spec["categorical"]]
    reference, window = load(spec["reference"], columns), load(spec["window"], columns)
    out = TOOLS[spec["tool"]](spec, reference, window)
    out.update(tool=spec["tool"], rows_reference=len(reference), rows_window=len(window), peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
