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


def test_floats_replaces_exact_sums_everywhere() -> None:
    assert money.floats({"a": [Exact(1 << 60), (Exact(0), 2)], "b": None}) == {"a": [1.0, (0.0, 2)], "b": None}


def test_top3_share_is_a_ratio_of_exact_sums() -> None:
    calls = pa.table({"trace_id": ["t"] * 4 + ["u"], "cost_total": pa.array([1.0, 2.0, 3.0, 4.0, None])})
    top, total = attr.top3_step_usd(calls)
    assert top == money.exact_sum(np.array([4.0, 3.0, 2.0])) and total == money.exact_sum(np.arange(1.0, 5.0))
    assert attr.top3_step_share(calls) == 0.9


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False))), max_size=300)
)
def test_group_sums_are_each_groups_exact_sum(rows: list[tuple[int, float | None]]) -> None:
    ids = np.array([g for g, _ in rows], dtype=np.int64)
    values = np.array([np.nan if v is None else v for _, v in rows], dtype=np.float64)
    got = money.group_sums(ids, values, 4)
    for g in range(4):
        assert got[g] == money.exact_sum(values[ids == g])  # None where the group has no value


def test_group_sums_and_counts_of_huge_values_stay_exact() -> None:
    ids = np.array([0, 1, 0, 0], dtype=np.int64)
    huge = np.array([2.0**51, 1.0, 2.0**51, 0.5])  # whole digits past 2**53 in sum: added as integers
    got = money.group_sums(ids, huge, 2)
    assert got[0] is not None and got[0].units == (2**52 << money.FRACTION_BITS) + (1 << (money.FRACTION_BITS - 1))
    tokens = np.array([2**60, 3, 2**60, 1], dtype=np.int64)
    assert money.group_counts(ids, tokens, 2).tolist() == [2**61 + 1, 3]


def test_group_ids_and_first_rows() -> None:
    table = pa.table({"a": ["x", None, "x", "y", None], "b": [1, 1, 1, 2, 1]})
    ids, first = attr.group_ids(table, ["a", "b"])
    rows = {g: [r for r in range(5) if ids[r] == g] for g in set(ids.tolist())}
    assert sorted(rows.values()) == [[0, 2], [1, 4], [3]]  # a null key is a value of its own
    assert all(first[g] == members[0] for g, members in rows.items())
    ids, first = attr.group_ids(table, [])
    assert ids.tolist() == [0] * 5 and first.tolist() == [0]
