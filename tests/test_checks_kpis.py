"""KPI conditions (parsed, never evaluated), aggregations and the kpi check."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from checks.kpis import KpiSpec, kpi_profile, kpi_results, kpi_value, parse_condition
from checks.profiles import DatasetProfile
from checks.results import Direction, Status


@pytest.mark.parametrize(
    "where,op,value",
    [
        ("< 0.5", "<", 0.5),
        (">= 100", ">=", 100.0),
        ("<=-3", "<=", -3.0),
        ("== 'approved'", "==", "approved"),
        ('!= "web"', "!=", "web"),
        ("in ['a', 'b']", "in", ("a", "b")),
        ("not  in [1, 2.5]", "not in", (1.0, 2.5)),
        ("== 7", "==", 7.0),
    ],
)
def test_conditions_parse(where: str, op: str, value: object) -> None:
    condition = parse_condition(where)
    assert (condition.op, condition.value) == (op, value)


@pytest.mark.parametrize(
    "where,message",
    [
        ("__import__('os').system('echo hi')", "operator"),
        ("== __import__('os')", "not a number"),
        ("< 1 or True", "not a number"),
        ("== open('x')", "not a number"),
        ("< 'abc'", "compares numbers"),
        ("in []", "non-empty list"),
        ("in 'abc'", "non-empty list"),
        ("in ['a', 1]", "mixes"),
        ("== None", "compare with"),
        ("== True", "compare with"),
        ("=~ 'a'", "operator"),
        ("0.5", "operator"),
        ("> 1e999", "finite"),
        ("== {'a': 1}", "compare with"),
    ],
)
def test_unsafe_or_invalid_conditions_are_rejected(where: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_condition(where)
    with pytest.raises(ValidationError):
        KpiSpec(name="k", column="c", agg="share", where=where)


def test_spec_validation() -> None:
    with pytest.raises(ValidationError, match="needs q"):
        KpiSpec(name="k", column="c", agg="quantile")
    with pytest.raises(ValidationError, match="quantile only"):
        KpiSpec(name="k", column="c", agg="mean", q=0.5)
    with pytest.raises(ValidationError, match="share lies in"):
        KpiSpec(name="k", column="c", agg="share", max=5)
    with pytest.raises(ValidationError, match="above max"):
        KpiSpec(name="k", column="c", agg="mean", min=5, max=1)
    with pytest.raises(ValidationError, match="Extra inputs"):
        KpiSpec(name="k", column="c", agg="mean", whre="< 1")


AMOUNTS = np.array([10.0, np.nan, 250.0, 40.0, np.inf, 120.0, 99.0, np.nan])
FINITE = np.array([10.0, 250.0, 40.0, 120.0, 99.0])


@pytest.mark.parametrize(
    "agg,where,expected",
    [
        ("count", ">= 100", 2.0),
        ("share", ">= 100", 2 / 5),
        ("sum", "< 100", 149.0),
        ("mean", "< 100", 149.0 / 3),
        ("mean", None, FINITE.mean()),
        ("share", "in [10, 99]", 2 / 5),
        ("count", "not in [10, 99]", 3.0),
        ("share", "!= 40", 4 / 5),
    ],
)
def test_numeric_aggregations(agg: str, where: str | None, expected: float) -> None:
    spec = KpiSpec(name="k", column="amount", agg=agg, where=where)
    profile = kpi_profile(AMOUNTS, spec)
    assert profile.total == 5  # NaN and inf are not counted
    assert kpi_value(profile, spec) == pytest.approx(expected)


def test_quantile_kpi_keeps_a_sketch_within_its_error() -> None:
    values = np.random.default_rng(0).lognormal(2, 1, 10_000)
    spec = KpiSpec(name="k", column="amount", agg="quantile", q=0.9, where="> 5")
    profile = kpi_profile(values, spec)
    truth = np.quantile(values[values > 5], 0.9, method="lower")
    assert kpi_value(profile, spec) == pytest.approx(truth, rel=0.0051)
    assert kpi_profile(values, KpiSpec(name="m", column="amount", agg="mean")).sketch is None


def test_text_conditions_on_object_arrays() -> None:
    channel = np.array(["web", None, "app", float("nan"), "web", "store"], dtype=object)
    share = KpiSpec(name="k", column="channel", agg="share", where="!= 'web'")
    profile = kpi_profile(channel, share)
    assert (profile.total, profile.matched) == (4, 2)
    assert kpi_value(kpi_profile(channel, KpiSpec(name="k", column="c", agg="count", where="in ['app', 'store']")), share) == 0.5
    unicode = np.array(["a", "b", "a"])
    assert kpi_profile(unicode, KpiSpec(name="k", column="c", agg="count", where="== 'a'")).matched == 2


def test_numbers_held_as_objects_and_type_mismatches() -> None:
    mixed = np.array([1.5, None, 3, "4"], dtype=object)
    assert kpi_profile(mixed, KpiSpec(name="k", column="c", agg="sum", where="> 2")).sum == pytest.approx(7.0)
    with pytest.raises(ValueError, match="holds text"):
        kpi_profile(np.array(["a", "b"], dtype=object), KpiSpec(name="k", column="c", agg="share", where="< 1"))
    with pytest.raises(ValueError, match="holds numbers"):
        kpi_profile(np.array([1.0, 2.0]), KpiSpec(name="k", column="c", agg="share", where="== 'a'"))


def test_kpi_profiles_merge_like_the_concatenation() -> None:
    spec = KpiSpec(name="k", column="c", agg="mean", where=">= 40")
    merged = kpi_profile(AMOUNTS[:4], spec).merge(kpi_profile(AMOUNTS[4:], spec))
    assert merged.to_dict() == kpi_profile(AMOUNTS, spec).to_dict()


def test_kpi_check_bounds_and_no_data() -> None:
    specs = [
        KpiSpec(name="big_share", column="amount", agg="share", where=">= 100", min=0.1, max=0.3),
        KpiSpec(name="small_mean", column="amount", agg="mean", where="< 0", min=1),
        KpiSpec(name="volume", column="amount", agg="count", min=1),
        KpiSpec(name="absent", column="other", agg="count"),
        KpiSpec(name="p90", column="amount", agg="quantile", q=0.9),
    ]
    profiles = {s.name: kpi_profile(AMOUNTS, s) for s in specs if s.name != "absent"}
    profiles["p90"] = kpi_profile(AMOUNTS, KpiSpec(name="p90", column="amount", agg="mean"))  # lost its sketch
    current = DatasetProfile(rows=8, columns={}, kpis=profiles)
    rows = {r.column: r for r in kpi_results(current, current, specs, segment="eu")}
    big = rows["big_share"]
    assert big.status is Status.BREACH and big.threshold == 0.3 and big.direction is Direction.MAX
    assert big.details["bound"] == "max" and big.details["min"] == 0.1 and big.details["reference"] == 0.4
    assert big.metric == "share" and big.segment == "eu"
    assert rows["small_mean"].status is Status.NO_DATA  # nothing matched
    assert rows["volume"].status is Status.OK and rows["volume"].value == 5
    assert rows["absent"].status is Status.NO_DATA
    assert rows["p90"].status is Status.ERROR and "sketch" in rows["p90"].details["error"]
    empty = kpi_results(current, DatasetProfile(rows=0, columns={}), specs)
    assert {r.status for r in empty} == {Status.NO_DATA}
