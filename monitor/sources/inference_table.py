"""Databricks Model Serving inference tables: one row per request, unpacked into one row per record.

An inference table logs every request of a serving endpoint with the request and response as JSON
text. The legacy table's columns are ``databricks_request_id, client_request_id, date,
timestamp_ms, status_code, sampling_fraction, execution_time_ms, request, response,
request_metadata``; AI-gateway tables rename some, so ``InferenceTableSpec`` names each one.
``InferenceTableSource`` sits on top of any source (Delta, Parquet, SQL...): the window filter and
the projection run in that source, on the table's own columns; this adapter then

* drops requests whose ``status_code`` is not 200 (counted in the report's warnings),
* parses ``request`` (``dataframe_records``, ``dataframe_split``, ``instances``, ``inputs``) into
  records, each record's keys becoming feature columns,
* parses ``response`` (``predictions`` or ``outputs``) into one ``prediction`` per record (the key
  ``prediction_field`` of objects, or its position in lists),
* adds per record the request's ``timestamp``, ``latency_ms``, ``model_version`` (from
  ``request_metadata``), ``status_code``, ``request_id`` and any ``extra_columns``, and a
  ``record_id`` unique per record (``{request_id}:{position in the request}``), the column to give
  the monitor as ``id`` (``request_id`` repeats across the records of a request).

A request whose JSON cannot be read is dropped and counted; a response that cannot be read, or
that holds a different number of predictions than the request has records, leaves its records
without a prediction, counted too. Nothing in a row's JSON stops a read. These counts go to the
read report's ``warnings``; ``files``, ``rows_scanned`` and ``bad_timestamps`` are the underlying
source's and count requests, ``rows`` counts the records yielded.

``columns()`` unpacks the first ``SAMPLE_REQUESTS`` requests to tell the features' kinds, and lists
``status_code``, ``request_id`` and ``record_id`` with the kind ``other`` so that feature inference
never takes them for features.

Parsing is per batch: Arrow's JSON reader parses a whole batch of ``dataframe_records`` requests
and ``predictions`` responses at once; batches holding anything else (other formats, malformed
rows, pretty-printed JSON) fall back to ``json.loads`` per row, for that batch and column only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Collection, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from monitor.sources._columns import kind_of_series, wanted_columns
from monitor.sources.base import (
    BatchSource,
    ColumnKind,
    ReadReport,
    Source,
    SourceError,
)
from monitor.sources.specs import InferenceTableSpec
from monitor.windows import Window

TIMESTAMP = "timestamp"
PREDICTION = "prediction"
LATENCY = "latency_ms"
MODEL_VERSION = "model_version"
STATUS = "status_code"
REQUEST_ID = "request_id"
RECORD_ID = "record_id"
OUTPUTS = (TIMESTAMP, PREDICTION, LATENCY, MODEL_VERSION, STATUS, REQUEST_ID, RECORD_ID)
"""The columns the adapter makes, besides the records' own keys and ``extra_columns``."""

SAMPLE_REQUESTS = 1_000
"""Requests unpacked by ``columns()`` to tell the features' kinds."""

_MAX_BLOCK = (1 << 31) - 1  # Arrow's JSON block size is an int32


# ---------------------------------------------------------------------------------------------- parsing


def _loads(value: object) -> object:
    """A request/response cell as Python objects; already-parsed values (a JSON-lines or struct
    source) pass through. Raises ValueError when it is not JSON."""
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8")
    if isinstance(value, str):
        return json.loads(value)
    raise ValueError(f"not JSON text: {type(value).__name__}")


def _tensor_records(value: object) -> list[dict] | None:
    """``instances`` / ``inputs``: a list of rows, or columns of equal length, or one row."""
    if isinstance(value, dict):
        if value and all(isinstance(column, list) for column in value.values()):
            lengths = {len(column) for column in value.values()}
            if len(lengths) != 1:
                return None
            names = list(value)
            return [dict(zip(names, row)) for row in zip(*value.values())]
        return [value]
    if isinstance(value, list):
        records: list[dict] = []
        for item in value:
            if isinstance(item, dict):
                records.append(item)
            elif isinstance(item, list):
                records.append({f"input_{position}": element for position, element in enumerate(item)})
            else:
                records.append({"input": item})
        return records
    return None


def request_records(obj: object) -> list[dict] | None:
    """The records of one parsed request, or None when it has no recognisable form.

    >>> request_records({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}})
    [{'a': 1, 'b': 2}, {'a': 3, 'b': 4}]
    >>> request_records({"inputs": {"a": [1, 2]}})
    [{'a': 1}, {'a': 2}]
    """
    if isinstance(obj, list):  # a bare list of records (MLflow 1 accepted it)
        return obj if all(isinstance(item, dict) for item in obj) else None
    if not isinstance(obj, dict):
        return None
    if "dataframe_records" in obj:
        records = obj["dataframe_records"]
        if isinstance(records, dict):
            records = [records]
        if isinstance(records, list) and all(isinstance(item, dict) for item in records):
            return records
        return None
    if "dataframe_split" in obj:
        split = obj["dataframe_split"]
        if not isinstance(split, dict) or not isinstance(split.get("data"), list):
            return None
        columns = split.get("columns")
        rows = split["data"]
        if not all(isinstance(row, list) for row in rows):
            return None
        if columns is None:
            return [{f"input_{position}": value for position, value in enumerate(row)} for row in rows]
        if not isinstance(columns, list) or any(len(row) != len(columns) for row in rows):
            return None
        names = [str(name) for name in columns]
        return [dict(zip(names, row)) for row in rows]
    for key in ("instances", "inputs"):
        if key in obj:
            return _tensor_records(obj[key])
    return None


def response_predictions(obj: object) -> list | None:
    """The predictions of one parsed response (before ``prediction_field``), or None.

    >>> response_predictions({"predictions": [0.1, 0.9]})
    [0.1, 0.9]
    >>> response_predictions({"predictions": {"score": [0.1, 0.9], "label": [0, 1]}})
    [{'score': 0.1, 'label': 0}, {'score': 0.9, 'label': 1}]
    """
    if isinstance(obj, dict):
        for key in ("predictions", "outputs"):
            if key in obj:
                obj = obj[key]
                break
        else:
            return None
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict):  # columns: {"score": [...], "label": [...]}
        if obj and all(isinstance(column, list) for column in obj.values()):
            lengths = {len(column) for column in obj.values()}
            if len(lengths) == 1:
                names = list(obj)
                return [dict(zip(names, row)) for row in zip(*obj.values())]
        return None
    if obj is None:
        return None
    return [obj]  # one scalar for a one-record request


@dataclass
class _Notes:
    """What one read dropped or could not unpack, turned into warnings at its end."""

    requests: int = 0
    failed: int = 0
    failed_codes: dict[str, int] = field(default_factory=dict)
    bad_requests: int = 0
    bad_responses: int = 0
    mismatched: int = 0
    unpicked: set[str] = field(default_factory=set)
    bad_metadata: int = 0
    shadowed: set[str] = field(default_factory=set)
    no_status: bool = False

    def warnings(self, description: str) -> list[str]:
        out = []
        if self.failed:
            codes = ", ".join(f"{code}: {count}" for code, count in sorted(self.failed_codes.items()))
            out.append(
                f"{description}: {self.failed} of {self.requests} requests failed (status code other than 200; {codes}) "
                "and were dropped"
            )
        if self.no_status:
            out.append(f"{description}: no status code column: failed requests could not be dropped")
        if self.bad_requests:
            out.append(
                f"{description}: {self.bad_requests} requests hold no readable records (malformed JSON or an unknown "
                "format) and were dropped"
            )
        if self.bad_responses:
            out.append(
                f"{description}: {self.bad_responses} responses hold no readable predictions (malformed JSON or an "
                "unknown format); their records have no prediction"
            )
        if self.mismatched:
            out.append(
                f"{description}: {self.mismatched} responses hold a different number of predictions than their "
                "request has records; those records have no prediction"
            )
        out.extend(f"{description}: {note}" for note in sorted(self.unpicked))
        if self.bad_metadata:
            out.append(f"{description}: {self.bad_metadata} request metadata values are not readable JSON objects; no model version for them")
        if self.shadowed:
            names = ", ".join(sorted(self.shadowed))
            out.append(f"{description}: record keys {names} are also columns the adapter makes; the adapter's columns were kept")
        return out


def _json_lines(values: pd.Series) -> tuple[pa.Buffer, np.ndarray] | None:
    """Cells as one buffer of JSON lines for Arrow, with a mask of the cells that are null or blank
    (written as ``{}`` to keep one line per row); None when Arrow cannot take them (not text, or
    pretty-printed JSON spanning lines)."""
    if len(values) == 0:
        return None
    try:
        text = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type) or pa.types.is_string_view(text.type)):
        return None
    if isinstance(text, pa.ChunkedArray):  # pandas' Arrow-backed text comes in chunks
        text = text.combine_chunks()
    text = text.cast(pa.large_string())
    data = text.buffers()[2]  # every character of every cell (perhaps a little more: a superset)
    if data is not None:
        raw = data.to_pybytes()
        if b"\n" in raw or b"\r" in raw:
            return None
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(text), ""), True)
    lines = pc.if_else(blank, pa.scalar("{}", pa.large_string()), text)
    joined = pc.binary_join(pa.LargeListArray.from_arrays(pa.array([0, len(lines)], pa.int64()), lines), pa.scalar("\n", pa.large_string()))
    return joined[0].as_buffer(), blank.to_numpy(zero_copy_only=False)


def _no_timestamps(dtype: pa.DataType) -> pa.DataType:
    """``dtype`` with every timestamp replaced by text: JSON has no dates, Arrow's inference invents them."""
    if pa.types.is_timestamp(dtype):
        return pa.string()
    if pa.types.is_struct(dtype):
        return pa.struct([item.with_type(_no_timestamps(item.type)) for item in dtype])
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return pa.list_(dtype.value_field.with_type(_no_timestamps(dtype.value_type)))
    return dtype


def _arrow_json(values: pd.Series, key: str) -> tuple[pa.ListArray, np.ndarray] | None:
    """Arrow's parse of a batch of JSON objects whose only needed key is ``key``, a list in every row
    that is not blank: ``(lists, blank)``; None when the batch needs the row-by-row path."""
    prepared = _json_lines(values)
    if prepared is None:
        return None
    data, blank = prepared
    if data.size + 1 >= _MAX_BLOCK:
        return None
    # One block: one type inference for the whole batch.
    options = pajson.ReadOptions(block_size=data.size + 1)
    try:
        table = pajson.read_json(pa.BufferReader(data), read_options=options)
        if key not in table.column_names:
            return None
        inferred = table.schema.field(key).type
        if not pa.types.is_list(inferred):
            return None
        cleaned = _no_timestamps(inferred)
        if cleaned != inferred:
            schema = pa.schema([pa.field(key, cleaned)])
            parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
            table = pajson.read_json(pa.BufferReader(data), read_options=options, parse_options=parse)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # malformed rows, mixed types: the row-by-row path isolates them
    if table.num_rows != len(values):
        return None
    lists = table.column(key).combine_chunks()
    if pc.any(pc.and_(pc.is_null(lists), pa.array(~blank))).as_py():
        return None  # some row uses another key (another request format): row by row
    return lists, blank


def _records_arrow(values: pd.Series, keep: Collection[str] | None) -> tuple[np.ndarray, pd.DataFrame] | None:
    parsed = _arrow_json(values, "dataframe_records")
    if parsed is None:
        return None
    lists, blank = parsed
    if not pa.types.is_struct(lists.type.value_type):
        return None
    counts = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    counts[blank] = -1
    flat = lists.flatten()  # the records of every row, in order (offsets honoured)
    names = [item.name for item in flat.type]
    fields = flat.flatten()  # struct nulls (a JSON null record) become nulls in every field
    chosen = [position for position, name in enumerate(names) if keep is None or name in keep]
    if not chosen:
        return counts, pd.DataFrame(index=range(len(flat)))
    table = pa.Table.from_arrays([fields[position] for position in chosen], names=[names[position] for position in chosen])
    return counts, table.to_pandas()


def _records_python(values: pd.Series, keep: Collection[str] | None) -> tuple[np.ndarray, pd.DataFrame]:
    counts = np.full(len(values), -1, dtype=np.int64)
    records: list[dict] = []
    for position, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        try:
            found = request_records(_loads(value))
        except ValueError:  # json.JSONDecodeError is a ValueError
            continue
        if found is not None:
            counts[position] = len(found)
            records.extend(found)
    if keep is not None:
        records = [{key: value for key, value in record.items() if key in keep} for record in records]
    features = pd.DataFrame.from_records(records, index=range(len(records)))
    features.columns = [str(name) for name in features.columns]
    return counts, features


def parse_requests(
    values: pd.Series, keep: Collection[str] | None = None, *, fast: bool = True
) -> tuple[np.ndarray, pd.DataFrame]:
    """Records per request (-1: unreadable) and every record, in request order, one column per key
    (only the keys in ``keep`` when given)."""
    values = values.reset_index(drop=True)
    parsed = _records_arrow(values, keep) if fast else None
    return parsed if parsed is not None else _records_python(values, keep)


def _pick_python(item: object, key: str | int | None, notes: _Notes) -> object:
    if isinstance(item, dict):
        if key is not None and not isinstance(key, int):
            if key not in item:
                notes.unpicked.add(f"some predictions have no key {key!r} (keys: {', '.join(map(str, item))})")
            return item.get(key)
        if len(item) == 1:
            return next(iter(item.values()))
        notes.unpicked.add(
            f"predictions are objects with keys {', '.join(map(str, item))}: set inference_table.prediction_field to one of them"
        )
        return None
    if isinstance(item, list):
        if isinstance(key, int):
            return item[key] if -len(item) <= key < len(item) else None
        notes.unpicked.add("predictions are lists: set inference_table.prediction_field to the position to use")
        return None
    return item


def _predictions_arrow(values: pd.Series, key: str | int | None, notes: _Notes) -> tuple[np.ndarray, pd.Series] | None:
    parsed = _arrow_json(values, "predictions")
    if parsed is None:
        return None
    lists, blank = parsed
    counts = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    counts[blank] = -1
    flat = lists.flatten()
    kind = flat.type
    if pa.types.is_struct(kind):
        names = [item.name for item in kind]
        if key is not None and not isinstance(key, int):
            if key not in names:
                if len(flat):
                    notes.unpicked.add(f"some predictions have no key {key!r} (keys: {', '.join(names)})")
                flat = pa.nulls(len(flat))
            else:
                flat = pc.struct_field(flat, [names.index(key)])
        elif len(names) == 1:
            flat = pc.struct_field(flat, [0])
        else:
            if len(flat):
                notes.unpicked.add(
                    f"predictions are objects with keys {', '.join(names)}: set inference_table.prediction_field to one of them"
                )
            flat = pa.nulls(len(flat))
    elif pa.types.is_list(kind):
        if not isinstance(key, int):
            if len(flat):
                notes.unpicked.add("predictions are lists: set inference_table.prediction_field to the position to use")
            flat = pa.nulls(len(flat))
        else:
            return None  # positions, negative ones and short lists: row by row
    return counts, flat.to_pandas()


def _predictions_python(values: pd.Series, key: str | int | None, notes: _Notes) -> tuple[np.ndarray, pd.Series]:
    counts = np.full(len(values), -1, dtype=np.int64)
    flat: list[object] = []
    for position, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        try:
            found = response_predictions(_loads(value))
        except ValueError:
            continue
        if found is not None:
            counts[position] = len(found)
            flat.extend(_pick_python(item, key, notes) for item in found)
    series = pd.Series(flat, dtype=object)
    if len(series):
        series = pd.Series(series.infer_objects().tolist())  # numbers as numbers, text as text
    return counts, series


def parse_responses(
    values: pd.Series, key: str | int | None, notes: _Notes, *, fast: bool = True
) -> tuple[np.ndarray, pd.Series]:
    """Predictions per response (-1: unreadable) and every prediction, in order, after ``key``."""
    values = values.reset_index(drop=True)
    parsed = _predictions_arrow(values, key, notes) if fast else None
    return parsed if parsed is not None else _predictions_python(values, key, notes)


def _metadata_version(value: object) -> tuple[object, bool]:
    """``(model_version or None, readable)`` of one request_metadata cell: JSON text, a dict, or a
    map (Arrow gives a list of key/value pairs)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None, True
    try:
        obj = json.loads(value) if isinstance(value, (str, bytes)) else value
    except ValueError:
        return None, False
    if isinstance(obj, list):
        try:
            obj = dict(obj)
        except (TypeError, ValueError):
            return None, False
    if not isinstance(obj, dict):
        return None, False
    version = obj.get("model_version")
    return (None if version is None else str(version)), True


def model_versions(values: pd.Series, notes: _Notes) -> pd.Series:
    """``model_version`` per request; each distinct text is parsed once (metadata repeats a lot)."""
    values = values.reset_index(drop=True)
    if all(value is None or isinstance(value, (str, float)) for value in values):
        out = pd.Series([None] * len(values), dtype=object)
        for text, positions in values.groupby(values, sort=False).groups.items():
            version, readable = _metadata_version(text)
            if not readable:
                notes.bad_metadata += len(positions)
            out.iloc[list(positions)] = version
        return out.astype("string")
    parsed = [_metadata_version(value) for value in values]
    notes.bad_metadata += sum(1 for _, readable in parsed if not readable)
    return pd.Series([version for version, _ in parsed], dtype="string")


# ---------------------------------------------------------------------------------------------- the source


class InferenceTableSource(BatchSource):
    """Any source holding a Databricks Model Serving inference table, read one row per record."""

    fast_json = True
    """Arrow's JSON parser for batches it can take; False forces ``json.loads`` per row (tests compare them)."""

    def __init__(self, source: Source, spec: InferenceTableSpec) -> None:
        self.source = source
        self.spec = spec
        self.description = f"inference table in {source.description}"

    def __enter__(self) -> InferenceTableSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _role_sources(self) -> dict[str, str | None]:
        """Output column -> the source column it comes from."""
        spec = self.spec
        return {
            TIMESTAMP: spec.timestamp,
            PREDICTION: spec.response,
            LATENCY: spec.latency,
            MODEL_VERSION: spec.request_metadata,
            STATUS: spec.status_code,
            REQUEST_ID: spec.id,
            RECORD_ID: spec.id,
        }

    def _hinted(self, error: SourceError) -> SourceError:
        """The plain source's error; when it is about the request-time column, pointing at the
        adapter's setting rather than at the monitor's ``columns.timestamp``."""
        text = str(error)
        if f"timestamp column {self.spec.timestamp!r} not found" not in text:
            return error
        text = text.split(". Set the monitor's timestamp column")[0]
        return SourceError(f"{text}. Set `inference_table.timestamp` to the table's request-time column")

    def _check_timestamp(self, timestamp: str) -> None:
        if timestamp != TIMESTAMP:
            raise SourceError(
                f"{self.description}: the request time is the column {TIMESTAMP!r} (read from "
                f"{self.spec.timestamp!r}), not {timestamp!r}; set the monitor's `columns.timestamp: {TIMESTAMP}`"
            )

    # -- the Source protocol ----------------------------------------------------------------

    def columns(self) -> dict[str, ColumnKind]:
        """The unpacked columns: the adapter's own, then the features seen in the first requests."""
        underlying = self.source.columns()
        roles = self._role_sources()
        kinds: dict[str, ColumnKind] = {}
        if roles[TIMESTAMP] in underlying:
            kinds[TIMESTAMP] = "timestamp"
        sample = self._sample(underlying)
        for name in (PREDICTION, LATENCY, MODEL_VERSION):
            source_column = roles[name]
            if source_column is None or source_column not in underlying:
                continue
            if name in (PREDICTION, MODEL_VERSION):
                kinds[name] = (kind_of_series(sample[name]) if name in sample else None) or "other"
            else:
                kinds[name] = underlying[source_column]
        # Never features worth inferring: every row kept is a 200, and ids are unique-ish text.
        for name in (STATUS, REQUEST_ID, RECORD_ID):
            if roles[name] is not None and roles[name] in underlying:
                kinds[name] = "other"
        for name in self.spec.extra_columns:
            if name in underlying:
                kinds.setdefault(name, underlying[name])
        for name in sample.columns:
            if name not in kinds:
                kinds[name] = kind_of_series(sample[name], detect_dates=False) or "other"
        return kinds

    def _sample(self, underlying: dict[str, ColumnKind]) -> pd.DataFrame:
        """The first requests' records, unpacked, for their columns' kinds."""
        spec = self.spec
        wanted = [column for column in (spec.request, spec.response, spec.request_metadata, spec.status_code) if column]
        if spec.request not in underlying:
            return pd.DataFrame()
        batches = self.source.read_all([c for c in wanted if c in underlying], batch_rows=SAMPLE_REQUESTS)
        try:
            frame = next(iter(batches), None)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        if frame is None or frame.empty:
            return pd.DataFrame()
        unpacked, _ = self._unpack(frame.head(SAMPLE_REQUESTS), None, [], _Notes(), everything=True)
        return unpacked

    def _read(
        self,
        columns: Sequence[str],
        timestamp: str | None,
        window: Window | None,
        batch_rows: int,
        report: ReadReport,
        categories: frozenset[str] = frozenset(),
    ) -> Iterator[pd.DataFrame]:
        if timestamp is not None:
            self._check_timestamp(timestamp)
        wanted = wanted_columns(columns, timestamp)
        roles = self._role_sources()
        extras = [name for name in wanted if name in self.spec.extra_columns and name not in OUTPUTS]
        features = [name for name in wanted if name not in OUTPUTS and name not in extras]
        needed = [self.spec.request, self.spec.status_code]
        needed += [roles[name] for name in wanted if name in OUTPUTS and name != TIMESTAMP]
        if timestamp is None and TIMESTAMP in wanted:
            needed.append(roles[TIMESTAMP])
        needed += extras
        needed_columns = list(dict.fromkeys(column for column in needed if column))
        report.missing_columns.update(name for name in wanted if name in roles and roles[name] is None)

        inner = ReadReport()
        if timestamp is not None:
            batches = self.source.read(
                needed_columns, timestamp=str(roles[TIMESTAMP]), window=window, batch_rows=batch_rows, report=inner
            )
        else:
            batches = self.source.read_all(needed_columns, batch_rows=batch_rows, report=inner)
        notes = _Notes()
        seen: set[str] = set()
        records = 0
        try:
            for frame in self._guarded(batches):
                out, found = self._unpack(frame, wanted, features, notes)
                seen.update(found)
                records += len(out)
                for offset in range(0, len(out), batch_rows):
                    part = out.iloc[offset : offset + batch_rows].reset_index(drop=True)
                    report.rows += len(part)
                    yield part
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
            report.files += inner.files
            report.rows_scanned += inner.rows_scanned
            report.bad_timestamps += inner.bad_timestamps
            for name, source_column in roles.items():
                if name in wanted and source_column in inner.missing_columns:
                    report.missing_columns.add(name)
            report.missing_columns.update(name for name in extras if name in inner.missing_columns)
            if self.spec.request in inner.missing_columns:
                report.missing_columns.update(features)
            elif records:
                report.missing_columns.update(name for name in features if name not in seen)
            report.warnings.extend(inner.warnings)
            report.warnings.extend(notes.warnings(self.description))

    def _guarded(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        try:
            yield from batches
        except SourceError as error:
            raise self._hinted(error) from None

    def _unpack(
        self,
        frame: pd.DataFrame,
        order: list[str] | None,
        features: list[str],
        notes: _Notes,
        *,
        everything: bool = False,
    ) -> tuple[pd.DataFrame, set[str]]:
        """One batch of requests -> its records with the requested columns (``order``; every column
        with ``everything``), and the record keys seen."""
        spec = self.spec
        roles = self._role_sources()
        frame = frame.reset_index(drop=True)
        notes.requests += len(frame)
        if spec.status_code is not None:
            if spec.status_code in frame.columns:
                codes = pd.to_numeric(frame[spec.status_code], errors="coerce")
                failed = (codes != 200).to_numpy()  # null (unknown) counts as failed
                if failed.any():
                    notes.failed += int(failed.sum())
                    labels = frame[spec.status_code][failed].astype("string").fillna("null")
                    for code, count in labels.value_counts().items():
                        notes.failed_codes[str(code)] = notes.failed_codes.get(str(code), 0) + int(count)
                    frame = frame[~failed].reset_index(drop=True)
            elif not everything:
                notes.no_status = True
        if spec.request in frame.columns:
            keep = None if everything else set(features)
            counts, records = parse_requests(frame[spec.request], keep, fast=self.fast_json)
            notes.bad_requests += int((counts < 0).sum())
        else:
            counts, records = np.ones(len(frame), dtype=np.int64), pd.DataFrame(index=range(len(frame)))
        parent = np.repeat(np.arange(len(frame)), np.clip(counts, 0, None))
        out = records.reset_index(drop=True)
        found = set(out.columns)
        # The adapter's columns win over record keys of the same name.
        made = {name for name in OUTPUTS if roles[name] is not None and roles[name] in frame.columns}
        made |= {PREDICTION} if spec.response in frame.columns else set()
        made |= {name for name in spec.extra_columns if name in frame.columns}
        clash = [name for name in out.columns if name in made]
        if clash:
            notes.shadowed.update(clash)
            out = out.drop(columns=clash)
        wanted = set(order) if order is not None else None

        def want(name: str) -> bool:
            return everything or (wanted is not None and name in wanted)

        def per_record(column: str) -> pd.Series:
            return frame[column].iloc[parent].reset_index(drop=True)

        if want(TIMESTAMP) and roles[TIMESTAMP] in frame.columns:
            out[TIMESTAMP] = per_record(str(roles[TIMESTAMP]))
        if want(PREDICTION) and spec.response in frame.columns:
            out[PREDICTION] = self._predictions(frame[spec.response], counts, parent, notes)
        if want(LATENCY) and spec.latency in frame.columns:
            out[LATENCY] = per_record(spec.latency)
        if want(MODEL_VERSION) and spec.request_metadata in frame.columns:
            versions = model_versions(frame[spec.request_metadata], notes)
            out[MODEL_VERSION] = versions.iloc[parent].reset_index(drop=True)
        if want(STATUS) and spec.status_code in frame.columns:
            out[STATUS] = per_record(spec.status_code)
        if want(REQUEST_ID) and spec.id in frame.columns:
            out[REQUEST_ID] = per_record(spec.id)
        if want(RECORD_ID) and spec.id in frame.columns:
            starts = np.repeat(np.cumsum(np.clip(counts, 0, None)) - np.clip(counts, 0, None), np.clip(counts, 0, None))
            position = pd.Series(np.arange(len(parent)) - starts).astype("string")
            out[RECORD_ID] = per_record(spec.id).astype("string") + ":" + position
        for name in spec.extra_columns:
            if want(name) and name in frame.columns and name not in OUTPUTS:
                out[name] = per_record(name)
        if order is not None and not everything:
            out = out[[name for name in order if name in out.columns]]
        return out, found

    def _predictions(self, responses: pd.Series, counts: np.ndarray, parent: np.ndarray, notes: _Notes) -> pd.Series:
        """One prediction per record: the response's predictions when they match the request's records."""
        predicted, values = parse_responses(responses, self.spec.prediction_field, notes, fast=self.fast_json)
        readable = counts >= 0  # the request's records exist
        notes.bad_responses += int((readable & (predicted < 0)).sum())
        mismatch = readable & (predicted >= 0) & (predicted != counts)
        notes.mismatched += int(mismatch.sum())
        usable = readable & (predicted >= 0) & ~mismatch
        owner = np.repeat(np.arange(len(predicted)), np.clip(predicted, 0, None))
        values = values.reset_index(drop=True)[usable[owner]].reset_index(drop=True)
        positions = np.flatnonzero(usable[parent])
        if len(values) == len(parent):
            return values
        result = pd.Series(values.to_numpy(), index=positions, dtype=values.dtype)
        return result.reindex(range(len(parent)))

    def max_timestamp(self, timestamp: str) -> datetime | None:
        self._check_timestamp(timestamp)
        try:
            return self.source.max_timestamp(self.spec.timestamp)
        except SourceError as error:
            raise self._hinted(error) from None

    def close(self) -> None:
        self.source.close()
