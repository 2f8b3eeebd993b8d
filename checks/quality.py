"""Data quality of a window (check ``quality``): volume, missing/invalid/out-of-range/unseen
values per column, duplicate ids, unreadable timestamps and absent columns.

Shares of a column are over the column's rows (values + missing + invalid), except
``out_of_range_share`` and ``unseen_share``, which are over its valid values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from checks.profiles import CategoricalProfile, ColumnProfile, DatasetProfile, NumericProfile
from checks.results import ALL, Direction, MetricResult, Status, error_result, judge

if TYPE_CHECKING:
    from checks.settings import QualitySettings

CHECK = "quality"


def _share(
    column: str, metric: str, numerator: int, denominator: int, threshold: float | None, segment: str, **details: Any
) -> MetricResult:
    if denominator <= 0:
        return MetricResult(CHECK, column, metric, None, Status.NO_DATA, threshold, Direction.MAX, segment, {**details, "reason": "nothing to measure"})
    value = numerator / denominator
    return MetricResult(
        CHECK, column, metric, value, judge(value, threshold, Direction.MAX), threshold, Direction.MAX, segment, {**details, "count": numerator, "of": denominator}
    )


def row_count(current: DatasetProfile, settings: QualitySettings, *, segment: str = ALL) -> MetricResult:
    """The window's rows: ``no_data`` when empty, a breach below ``min_rows`` (info when
    ``min_rows`` is 1 or less, since any non-empty window then passes)."""
    threshold = float(settings.min_rows) if settings.min_rows > 1 else None
    if current.rows == 0:
        return MetricResult(CHECK, "", "row_count", 0.0, Status.NO_DATA, threshold, Direction.MIN, segment, {"reason": "the window is empty"})
    status = judge(float(current.rows), threshold, Direction.MIN)
    return MetricResult(CHECK, "", "row_count", float(current.rows), status, threshold, Direction.MIN, segment)


def column_quality(
    name: str,
    current: ColumnProfile,
    reference: ColumnProfile | None,
    settings: QualitySettings,
    *,
    check_missing: bool = True,
    segment: str = ALL,
) -> list[MetricResult]:
    """missing_share (unless ``check_missing`` is off, as for late labels), invalid_share, and
    out_of_range_share (numeric) or unseen_share (categorical) of one column."""
    results = []
    if check_missing:
        ref_share = reference.missing / reference.rows if reference is not None and reference.rows else 0.0
        threshold = settings.missing_share_max
        if threshold is None:
            threshold = min(1.0, ref_share + settings.missing_share_increase)
        results.append(_share(name, "missing_share", current.missing, current.rows, threshold, segment, reference=ref_share))
    results.append(_share(name, "invalid_share", current.invalid, current.rows, settings.invalid_share_max, segment))
    if isinstance(current, NumericProfile):
        b = current.binning
        results.append(
            _share(
                name, "out_of_range_share", current.below + current.above, current.count, settings.out_of_range_share_max, segment,
                below=current.below, above=current.above, reference_min=b.low, reference_max=b.high,
            )
        )
    elif isinstance(current, CategoricalProfile):
        results.append(
            _share(name, "unseen_share", current.unseen, current.count, settings.unseen_share_max, segment, top_unseen=dict(current.unseen_values))
        )
    return results


def quality_results(
    reference: DatasetProfile,
    current: DatasetProfile,
    columns: Sequence[str],
    settings: QualitySettings,
    *,
    unlabelled: Sequence[str] = (),
    segment: str = ALL,
) -> list[MetricResult]:
    """Every quality metric of the window; each column isolated from the others. Columns in
    ``unlabelled`` (the target: labels arrive late) skip ``missing_share``."""
    results = [row_count(current, settings, segment=segment)]
    for name in columns:
        try:
            profile = current.columns.get(name)
            if profile is None:
                if name not in current.missing_columns:
                    reason = "the window is empty" if current.rows == 0 else "the window has no profile of this column"
                    results.append(MetricResult(CHECK, name, "missing_share", None, Status.NO_DATA, segment=segment, details={"reason": reason}))
                continue
            results.extend(
                column_quality(name, profile, reference.columns.get(name), settings, check_missing=name not in unlabelled, segment=segment)
            )
        except Exception as exc:
            results.append(error_result(CHECK, name, "column", exc, segment))
    results.append(_share("", "duplicate_id_share", current.duplicate_ids, current.rows, settings.duplicate_id_share_max, segment))
    # A window whose every timestamp was unreadable has 0 rows but still a share of 1 to report.
    results.append(
        _share("", "bad_timestamp_share", current.bad_timestamps, current.rows + current.bad_timestamps, settings.bad_timestamp_share_max, segment)
    )
    for name in current.missing_columns:
        results.append(
            MetricResult(CHECK, name, "column_missing", 1.0, Status.BREACH, 0.0, Direction.MAX, segment, {"reason": "configured column absent from the data"})
        )
    return results
