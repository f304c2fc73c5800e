"""Exact sums (`costscope.money`): the same figure whatever the order of the terms and however they are split."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from costscope import attribution as attr
from costscope import money
from costscope.money import Exact

costs = st.lists(st.floats(min_value=0.0, max_value=5_000.0, allow_nan=False), max_size=200)
signed = st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=1, max_size=100)


@settings(max_examples=300, deadline=None)
@given(costs, st.randoms(use_true_random=False), st.integers(min_value=0, max_value=200))
def test_a_sum_does_not_depend_on_order_or_parts(values: list[float], rnd: object, cut: int) -> None:
    whole = money.exact_sum(np.array(values))
    shuffled = list(values)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    left, right = money.exact_sum(np.array(shuffled[:cut])), money.exact_sum(np.array(shuffled[cut:]))
    parts = [p for p in (left, right) if p is not None]
    assert (whole is None) == (not values)
    if whole is not None:
        assert sum(parts, Exact(0)) == whole


@settings(max_examples=300, deadline=None)
@given(signed)
def test_a_sum_is_the_exact_sum_of_its_terms_on_the_grid(values: list[float]) -> None:
    got = money.exact_sum(np.array(values))
    assert got is not None
    grid = Fraction(1, 1 << money.FRACTION_BITS)
    want = sum(_nearest(Fraction(v) / grid) for v in values)  # each term to the nearest 2**-60, ties away from 0
    assert got.units == want
    assert math.isclose(got.value, math.fsum(values), rel_tol=1e-15, abs_tol=len(values) * 2.0**-60)


def _nearest(x: Fraction) -> int:
    return int(math.floor(abs(x) + Fraction(1, 2))) * (-1 if x < 0 else 1)


def test_nulls_and_nan_are_unknown_not_zero() -> None:
    assert money.exact_sum(pa.array([None, None], pa.float64())) is None
    assert money.exact_sum(np.array([np.nan])) is None
    assert money.total(pa.array([0.1, None, 0.2])) == 0.1 + 0.2  # the nearest double to the exact sum
    assert money.exact_sum(np.zeros(0)) is None


def test_split_columns_sum_in_a_group_by() -> None:
    table = pa.table({"k": ["a", "b", "a", "b"], "usd": pa.array([0.1, None, 0.2, None], pa.float64())})
    rows = (
        money.split_columns(table, ["usd"])
        .group_by("k", use_threads=False)
        .aggregate(money.aggregations(["usd"]))
        .to_pylist()
    )
    sums = {r["k"]: money.joined(r, "usd") for r in rows}
    assert sums["a"] == money.exact_sum(np.array([0.2, 0.1])) and sums["b"] is None


def test_floats_replaces_exact_sums_everywhere() -> None:
    assert money.floats({"a": [Exact(1 << 60), (Exact(0), 2)], "b": None}) == {"a": [1.0, (0.0, 2)], "b": None}


def test_top3_share_is_a_ratio_of_exact_sums() -> None:
    calls = pa.table({"trace_id": ["t"] * 4 + ["u"], "cost_total": pa.array([1.0, 2.0, 3.0, 4.0, None])})
    top, total = attr.top3_step_usd(calls)
    assert top == money.exact_sum(np.array([4.0, 3.0, 2.0])) and total == money.exact_sum(np.arange(1.0, 5.0))
    assert attr.top3_step_share(calls) == 0.9
