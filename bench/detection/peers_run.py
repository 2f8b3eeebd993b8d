"""Run the peers (Evidently, NannyML) with their defaults on data the benchmark wrote.

Runs in the peers' own venv (``bench/peers/.venv``), never in Driftline's: it imports neither
Driftline nor the rest of ``bench/detection``. Usage::

    bench/peers/.venv/bin/python bench/detection/peers_run.py MANIFEST.json OUT.json
    bench/peers/.venv/bin/python bench/detection/peers_run.py --versions

The manifest lists cases: ``{"id", "reference", "windows", "numeric", "categorical"}`` with
Parquet paths; the reference has a ``__chunk`` column numbering its own windows (NannyML's
reference chunks). The output holds, per case and tool, the flagged columns of every window,
the methods and thresholds the tool chose, and its seconds (fitting on a reference counts in the
first case that uses it); a tool that fails on a case records its error instead.

- Evidently: one ``ValueDrift`` metric per column with no method or threshold, which is exactly
  what ``DataDriftPreset()`` builds per column (its extra ``DriftedColumnsCount`` recomputes every
  column and is ~5x slower, without changing any column's verdict). Flag = the metric's test
  failed (drift detected).
- NannyML: ``UnivariateDriftCalculator`` with its default methods and thresholds, chunked by
  period on a synthetic timestamp (one day per reference chunk and per monitored window), fitted
  on the reference. Flag = alert.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import warnings

for _name in ("DO_NOT_TRACK", "EVIDENTLY_DISABLE_TELEMETRY", "NML_DISABLE_USAGE_LOGGING"):
    os.environ.setdefault(_name, "1")

import pandas as pd  # noqa: E402

CHUNK = "__chunk"
TIMESTAMP = "__ts"
REFERENCE_START = pd.Timestamp("2000-01-01")
ANALYSIS_START = pd.Timestamp("2010-01-01")


def versions() -> dict[str, str]:
    import evidently
    import nannyml
    import numpy
    import scipy

    return {"evidently": evidently.__version__, "nannyml": nannyml.__version__, "pandas": pd.__version__, "numpy": numpy.__version__, "scipy": scipy.__version__}


def fit_evidently(case: dict, reference: pd.DataFrame):
    from evidently import DataDefinition, Dataset

    columns = [*case["numeric"], *case["categorical"]]
    definition = DataDefinition(numerical_columns=case["numeric"], categorical_columns=case["categorical"])
    return definition, Dataset.from_pandas(reference[columns], data_definition=definition)


def run_evidently(case: dict, fitted) -> dict:
    from evidently import Dataset, Report
    from evidently.metrics import ValueDrift

    definition, ref = fitted
    columns = [*case["numeric"], *case["categorical"]]
    flags, methods, thresholds = [], {}, {}
    for path in case["windows"]:
        current = Dataset.from_pandas(pd.read_parquet(path, columns=columns), data_definition=definition)
        snapshot = Report([ValueDrift(column=c) for c in columns], include_tests=True).run(current, ref).dict()
        for metric in snapshot["metrics"]:
            config = metric["config"]
            methods.setdefault(config["column"], set()).add(config.get("method"))
            thresholds.setdefault(config["column"], set()).add(config.get("threshold"))
        failed = []
        for test in snapshot["tests"]:
            column = test["metric_config"]["params"]["column"]
            if test["status"] not in ("SUCCESS", "FAIL"):
                raise RuntimeError(f"Evidently test on {column}: status {test['status']}")
            if test["status"] == "FAIL":
                failed.append(column)
        flags.append(failed)
    return {
        "flags": flags,
        "methods": {c: sorted(map(str, m)) for c, m in methods.items()},
        "thresholds": {c: sorted(t) for c, t in thresholds.items()},
    }


def fit_nannyml(case: dict, reference: pd.DataFrame):
    import nannyml as nml

    columns = [*case["numeric"], *case["categorical"]]
    ref = reference[columns].copy()
    ref[TIMESTAMP] = REFERENCE_START + pd.to_timedelta(reference[CHUNK].to_numpy(), unit="D")
    calculator = nml.UnivariateDriftCalculator(column_names=columns, timestamp_column_name=TIMESTAMP, chunk_period="D")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calculator.fit(ref)
    return calculator, int(reference[CHUNK].nunique())


def run_nannyml(case: dict, fitted) -> dict:
    calculator, reference_chunks = fitted
    columns = [*case["numeric"], *case["categorical"]]
    flags = []
    for i, path in enumerate(case["windows"]):
        current = pd.read_parquet(path, columns=columns)
        current[TIMESTAMP] = ANALYSIS_START + pd.Timedelta(days=i)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = calculator.calculate(current).filter(period="analysis").to_df(multilevel=True)
        if len(result) != 1:
            raise RuntimeError(f"NannyML made {len(result)} chunks of one window")
        row = result.iloc[-1]
        alerted = []
        for column in columns:
            methods = [m.column_name for m in calculator._column_to_models_mapping[column]]
            if any(bool(row[(column, m, "alert")]) for m in methods):
                alerted.append(column)
        flags.append(alerted)
    methods, thresholds = {}, {}
    for column, fitted_methods in calculator._column_to_models_mapping.items():
        methods[column] = [m.column_name for m in fitted_methods]
        thresholds[column] = [[m.lower_threshold_value, m.upper_threshold_value] for m in fitted_methods]
    return {
        "flags": flags,
        "methods": methods,
        "thresholds": thresholds,
        "continuous": list(calculator.continuous_column_names),
        "categorical": list(calculator.categorical_column_names),
        "reference_chunks": reference_chunks,
    }


TOOLS = {"evidently": (fit_evidently, run_evidently), "nannyml": (fit_nannyml, run_nannyml)}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--versions"]:
        print(json.dumps(versions()))
        return 0
    manifest_path, out_path = argv
    with open(manifest_path) as f:
        manifest = json.load(f)
    out: dict = {"versions": versions(), "cases": {}}
    reference, reference_path = None, None
    fitted: dict = {}  # tool -> what it learned from the current reference (cases on one reference follow each other)
    for case in manifest["cases"]:
        if case["reference"] != reference_path:
            reference = fitted = None
            reference = pd.read_parquet(case["reference"])
            reference_path, fitted = case["reference"], {}
        results = {}
        for tool in manifest.get("tools", list(TOOLS)):
            fit, run = TOOLS[tool]
            started = time.perf_counter()
            try:
                if tool not in fitted:
                    fitted[tool] = fit(case, reference)
                results[tool] = run(case, fitted[tool])
            except Exception as exc:  # one tool failing on one case must not cost the others
                results[tool] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)}
            results[tool]["seconds"] = time.perf_counter() - started
            print(f"  peers: {case['id']}: {tool} {results[tool]['seconds']:.1f}s", file=sys.stderr, flush=True)
        out["cases"][case["id"]] = results
    with open(out_path, "w") as f:
        json.dump(out, f, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
