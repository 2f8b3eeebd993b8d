"""Smoke tests of the detection benchmark's scenario generator and scoring (bench/detection).

Fast on purpose: no Driftline check runs here, no peer; only that the data are what the
scenarios say and that flags turn into the right rates, delays and cells.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from detection import scenarios as sc  # noqa: E402
from detection.scoring import Rate, delay_cell, mark, rows_for, score  # noqa: E402


def test_frames_have_the_promised_columns_and_are_reproducible():
    spec = sc.WindowSpec(2_000, (1, 2, 3))
    frame = sc.make_frame(spec)
    assert list(frame.columns) == sc.COLUMNS
    assert len(sc.NUMERIC) == 20 and len(sc.CATEGORICAL) == 5
    assert frame.shape == (2_000, 25)
    counts = [c.name for c in sc.NUMERIC_COLUMNS if c.family in ("count", "flag")]
    assert all(frame[c].dtype.kind == "i" for c in counts)
    assert set(frame["flag"].unique()) <= {0, 1}
    assert all(str(frame[c].dtype) == "category" for c in sc.CATEGORICAL)
    assert frame.equals(sc.make_frame(spec))
    assert not frame.equals(sc.make_frame(sc.WindowSpec(2_000, (1, 2, 4))))


def test_categorical_shares_are_zipf_like():
    column = sc.CategoricalColumn("c", 10)
    shares = column.shares
    assert shares.sum() == pytest.approx(1.0)
    assert np.all(np.diff(shares) < 0) and shares[0] / shares[-1] > 10
    drawn = sc.make_frame(sc.WindowSpec(50_000, (5,)))["cat_10"].value_counts(normalize=True).sort_index()
    assert np.allclose(drawn.to_numpy(), shares, atol=0.01)


@pytest.mark.parametrize("column", sc.NUMERIC_COLUMNS, ids=lambda c: c.name)
def test_changes_move_each_numeric_column_as_stated(column):
    rng = lambda: np.random.default_rng(11)  # noqa: E731
    n = 200_000
    base = column.sample(rng(), n, sc.Change()).astype(float)
    assert base.mean() == pytest.approx(column.mean, abs=0.02 * column.std)
    assert base.std() == pytest.approx(column.std, rel=0.03)
    shifted = column.sample(rng(), n, sc.Change(mean_shift=0.25)).astype(float)
    assert (shifted.mean() - column.mean) / column.std == pytest.approx(0.25, abs=0.02)
    if column.family != "flag":
        wider = column.sample(rng(), n, sc.Change(scale=1.5)).astype(float)
        assert wider.std() / column.std == pytest.approx(1.5, rel=0.03)
        assert wider.mean() == pytest.approx(column.mean, abs=0.03 * column.std)


def test_categorical_changes():
    frame = sc.make_frame(sc.WindowSpec(100_000, (3,), sc.Change(new_category=0.05, share_move=0.01)))
    column = sc.CATEGORICAL_COLUMNS[2]
    shares = frame[column.name].value_counts(normalize=True)
    assert shares["new"] == pytest.approx(0.05, abs=0.005)
    assert shares["v00"] == pytest.approx((column.shares[0] - 0.01) * 0.95, abs=0.006)
    assert "new" not in set(sc.make_frame(sc.WindowSpec(1_000, (3,)))[column.name])


def test_changed_columns():
    assert sc.changed_columns(sc.Change()) == frozenset()
    assert sc.changed_columns(sc.Change(mean_shift=0.25)) == frozenset(sc.NUMERIC)
    assert sc.changed_columns(sc.Change(scale=1.5)) == frozenset(sc.NUMERIC) - {"flag"}
    assert sc.changed_columns(sc.Change(new_category=0.05)) == frozenset(sc.CATEGORICAL)


def test_reference_size_and_chunks():
    assert sc.reference_rows(200) == 100_000
    assert sc.reference_rows(100_000) == 1_000_000
    assert sc.reference_rows(1_000_000) == 1_000_000  # capped
    assert sc.stationary_reference(200, 0).n_chunks == 500
    assert sc.stationary_reference(1_000_000, 0).chunk_rows == 100_000  # at least 10 chunks
    spec = sc.ReferenceSpec((sc.WindowSpec(1_050, (0,)),), chunk_rows=100)
    frame, chunks = sc.make_reference(spec)
    assert [len(c) for c in chunks] == [100] * 9 + [150]  # the remainder joins the last chunk
    assert sum(len(c) for c in chunks) == len(frame)


def test_scenarios_label_their_windows():
    (stationary,) = sc.stationary([200], {200: 40}, seed=1)
    assert len(stationary.windows) * len(sc.COLUMNS) == 1_000
    assert all(not w.drifted for w in stationary.windows)

    cases = {c.label: c for c in sc.sudden([200], {200: 2}, pre=3, post=4, seed=1)}
    assert set(cases) == {*sc.SUDDEN_CHANGES, "mean +1 std"}
    assert "mean +1 std" not in {c.label for c in sc.sudden([10_000], {10_000: 1}, 1, 1, seed=1)}
    case = cases["scale x1.5"]
    assert [(w.phase, w.rep, w.index) for w in case.windows[:8]] == [("pre", 0, i) for i in range(3)] + [("post", 0, i) for i in range(4)] + [("pre", 1, 0)]
    assert all(w.drifted == sc.changed_columns(sc.Change(scale=1.5)) for w in case.windows if w.phase == "post")
    assert len(case.limited(7).windows) == 7 and {w.rep for w in case.limited(7).windows} == {0}

    (seasonal,) = sc.seasonal([50], days=2, monitored_hours=6, seed=1)
    assert seasonal.reference.n_chunks == 48 and len(seasonal.windows) == 6
    assert seasonal.windows[0].change == sc.seasonal_change(48) and not seasonal.windows[0].drifted
    assert max(sc.seasonal_change(h).mean_shift for h in range(24)) == pytest.approx(0.3)

    (gradual,) = sc.gradual([100], {100: 1}, plateau=2, seed=1)
    shifts = [w.change.mean_shift for w in gradual.windows]
    assert shifts[0] == pytest.approx(0.025) and shifts[19] == pytest.approx(0.5) and shifts[-1] == pytest.approx(0.5)

    (negligible,) = sc.negligible([1_000_000], 2, seed=1)
    assert all(not w.drifted and w.change == sc.NEGLIGIBLE for w in negligible.windows)


def _case():
    return sc.sudden([10_000], {10_000: 2}, pre=1, post=3, seed=1)[0]  # mean +0.25 std, 20 drifted numeric columns


def test_scoring_rates_and_delays():
    case = _case()
    flags = []
    for w in case.windows:
        if w.phase == "pre":
            flags.append({"cat_3": True})  # one false alarm per pre-change window
        elif w.rep == 0:
            flags.append({c: True for c in sc.NUMERIC})  # caught at once
        else:
            flags.append({c: w.index >= 2 for c in sc.NUMERIC[:10]})  # half the columns, two windows late
    s = score(case.windows, flags, sc.COLUMNS)
    assert s.windows == 8
    assert s.false_alarms == Rate(2, 2 * 25 + 6 * 5)
    assert s.first_window == Rate(20, 40)
    assert s.detection == Rate(20 * 3 + 10, 40 * 3)
    assert sorted(s.delays, key=lambda d: -1 if d is None else d) == [None] * 10 + [0] * 20 + [2] * 10
    assert s.flagged_by_column == {"cat_3": 2}
    assert delay_cell(s.delays) == "0 / never (10/40 never flagged)"
    assert delay_cell([0, 0, 3]) == "0 / 3"
    assert delay_cell([4, 4, None], sc.gradual_shift) == "4 / never (median at +0.125 std; 1/3 never flagged)"
    assert Rate(4, 1000).cell() == "0.4% (4/1000)" and Rate(0, 0).cell() == "–"


def test_scoring_accepts_fewer_flags_than_windows():
    case = _case()
    s = score(case.windows, [{}] * 2, sc.COLUMNS)
    assert s.windows == 2 and s.false_alarms == Rate(0, 25 + 5) and s.first_window == Rate(0, 20)
    with pytest.raises(ValueError):
        score(case.windows[:1], [{}, {}], sc.COLUMNS)


def test_targets_are_marked():
    case = _case()
    all_caught = [{c: w.phase == "post" for c in sc.NUMERIC} for w in case.windows]
    s = score(case.windows, all_caught, sc.COLUMNS)
    rows = {r.metric: r for r in rows_for(case)}
    assert mark(rows["detected in 1st window after change"], s) == "100% (40/40)"
    assert mark(rows["delay, windows: median / max"], s) == "0 / 0"
    noisy = score(case.windows, [{c: True for c in sc.COLUMNS} for _ in case.windows], sc.COLUMNS)
    assert mark(rows["false alarms before change / unchanged columns"], noisy).endswith("✗")
    (stationary,) = sc.stationary([200], {200: 2}, seed=1)
    (row,) = rows_for(stationary)
    assert mark(row, score(stationary.windows, [{}, {}], sc.COLUMNS)) == "0% (0/50)"
