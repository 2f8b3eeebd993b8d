"""Seeded inference logs for the scale benchmark, written chunk by chunk to Parquet.

Never holds a window in memory: rows are drawn ``chunk_rows`` at a time and appended to files of
at most ``rows_per_file`` rows, in row groups of ``row_group_rows`` (the layout a batch logger
produces). Columns, for a :class:`Layout` of N numeric and M categorical features:

- ``ts``: timestamp (UTC, microseconds), increasing through the day (omitted for a training set);
- ``x00`` .. : numeric features cycling through five families — normal, lognormal, a bimodal
  mixture, Poisson counts, a 0/1 flag — with scales that differ per column;
- ``c00`` .. : categorical text features with 3 to 30 values and Zipf-like shares;
- ``score`` (a probability from a logistic of three features), ``label`` (0/1, drawn from the
  score) and ``latency_ms`` (lognormal, ~45 ms median).

``shift`` moves the first three numeric features by ``shift`` standard deviations and the first
categorical feature's shares (so the checked window has drift to report).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FAMILIES = ("normal", "lognormal", "bimodal", "count", "flag")
EXTRA = ("score", "label", "latency_ms")  # model output, label and latency: always present


@dataclass(frozen=True)
class Layout:
    """How many feature columns of each kind."""

    numeric: int = 20
    categorical: int = 5

    @classmethod
    def for_columns(cls, total: int) -> Layout:
        """``total`` features, four numeric to one categorical (25 -> 20 + 5)."""
        if total < 2:
            raise ValueError(f"need at least 2 feature columns, got {total}")
        categorical = max(1, round(total / 5))
        return cls(total - categorical, categorical)

    @property
    def features(self) -> int:
        return self.numeric + self.categorical

    @property
    def numeric_names(self) -> list[str]:
        return [f"x{i:02d}" for i in range(self.numeric)]

    @property
    def categorical_names(self) -> list[str]:
        return [f"c{i:02d}" for i in range(self.categorical)]

    def family(self, i: int) -> str:
        return FAMILIES[i % len(FAMILIES)]

    def levels(self, j: int) -> int:
        return 3 + (7 * j) % 28  # 3..30 values


def _numeric(layout: Layout, i: int, rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    family = layout.family(i)
    scale = 1.0 + 0.25 * (i % 7)
    moved = shift if i < 3 else 0.0
    if family == "normal":
        return rng.normal(10.0 * (i % 3) + moved * scale, scale, n)
    if family == "lognormal":
        return np.exp(rng.normal(2.0 + 0.1 * (i % 4) + moved * 0.5, 0.5, n))
    if family == "bimodal":
        high = rng.uniform(size=n) < 0.3
        return np.where(high, rng.normal(4.0 * scale, scale, n), rng.normal(0.0, scale, n)) + moved * 2.0 * scale
    if family == "count":
        return rng.poisson(2.0 + (i % 5) + moved * 2.0, n).astype(np.int64)
    return (rng.uniform(size=n) < 0.2 + 0.05 * (i % 4)).astype(np.int64)


def _shares(levels: int, tilt: float = 0.0) -> np.ndarray:
    weights = 1.0 / np.arange(1, levels + 1) ** 1.1
    if tilt:
        weights = weights * np.exp(tilt * np.linspace(-1.0, 1.0, levels))
    return weights / weights.sum()


def make_chunk(
    layout: Layout,
    rng: np.random.Generator,
    rows: int,
    *,
    shift: float = 0.0,
    start: datetime | None = None,
    span: timedelta = timedelta(days=1),
    first: float = 0.0,
    last: float = 1.0,
) -> pa.Table:
    """``rows`` rows; with ``start``, timestamps spread over ``[first, last)`` of ``span`` after it."""
    columns: dict[str, pa.Array] = {}
    if start is not None:
        fraction = np.sort(rng.uniform(first, last, rows))
        micros = (fraction * span.total_seconds() * 1e6).astype("timedelta64[us]")
        columns["ts"] = pa.array(np.datetime64(start.replace(tzinfo=None), "us") + micros, pa.timestamp("us", tz="UTC"))
    numeric = [_numeric(layout, i, rng, rows, shift) for i in range(layout.numeric)]
    for name, values in zip(layout.numeric_names, numeric):
        columns[name] = pa.array(values)
    for j, name in enumerate(layout.categorical_names):
        levels = layout.levels(j)
        codes = rng.choice(levels, rows, p=_shares(levels, shift if j == 0 else 0.0))
        columns[name] = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array([f"v{k}" for k in range(levels)])).cast(pa.string())
    drivers = [numeric[k] for k in range(min(3, layout.numeric))]
    logit = sum((d - d.mean()) / (d.std() + 1e-12) for d in drivers) * 0.8 - 1.0
    score = 1.0 / (1.0 + np.exp(-logit))
    columns["score"] = pa.array(score)
    columns["label"] = pa.array((rng.uniform(size=rows) < score).astype(np.int64))
    columns["latency_ms"] = pa.array(rng.lognormal(3.8, 0.4, rows))
    return pa.table(columns)


def write_logs(
    folder: Path,
    layout: Layout,
    rows: int,
    seed: int,
    *,
    start: datetime | None,
    shift: float = 0.0,
    span: timedelta = timedelta(days=1),
    rows_per_file: int = 1_000_000,
    chunk_rows: int = 250_000,
    row_group_rows: int = 131_072,
    prefix: str = "part",
) -> list[Path]:
    """Write ``rows`` rows under ``folder`` as ``{prefix}-NNN.parquet`` files; returns them.

    Memory holds one chunk of ``chunk_rows`` rows at a time, whatever ``rows`` is."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths: list[Path] = []
    written = 0
    for file_index, file_rows in enumerate(_split(rows, rows_per_file)):
        path = folder / f"{prefix}-{file_index:03d}.parquet"
        writer: pq.ParquetWriter | None = None
        try:
            for n in _split(file_rows, chunk_rows):
                first, last = written / rows, (written + n) / rows
                table = make_chunk(layout, rng, n, shift=shift, start=start, span=span, first=first, last=last)
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema)
                writer.write_table(table, row_group_size=row_group_rows)
                written += n
        finally:
            if writer is not None:
                writer.close()
        paths.append(path)
    return paths


def _split(total: int, size: int) -> Iterator[int]:
    for offset in range(0, total, size):
        yield min(size, total - offset)


def read_frame(paths: list[Path], columns: list[str] | None = None):
    """The rows of ``paths`` as one pandas frame (for the peers and the numpy floor)."""
    return pa.concat_tables(pq.read_table(p, columns=columns) for p in paths).to_pandas()
