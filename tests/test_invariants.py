"""Invariants that must hold for any step table: cost is additive across groupings, never negative,
and the native formats round-trip the table exactly."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costscope import attribution as attr
from costscope.api import write_steps
from costscope.pricing import PriceBook, price_table
from costscope.schema import COST_COLUMNS, STEP_SCHEMA, batch_from_rows
from costscope.steps import load_steps, order_steps

MODELS = ["claude-sonnet-4-5", "claude-haiku-4-5", "gpt-4o", "gpt-5", "gemini-2.5-pro", "my-unknown-model", None]
START = 1_790_000_000_000_000  # 2026-09-21, microseconds


@st.composite
def call_rows(draw: st.DrawFn) -> dict[str, object]:
    cache_read = draw(st.integers(0, 300_000))
    cache_write = draw(st.integers(0, 50_000))
    write_1h = draw(st.integers(0, cache_write))
    uncached = draw(st.integers(0, 100_000))
    output = draw(st.integers(0, 20_000))
    reported = draw(st.booleans()) or True
    return {
        "source": "gen.jsonl",
        "line": draw(st.integers(1, 10_000)),
        "kind": "llm",
        "trace_id": draw(st.sampled_from(["t1", "t2", "t3", None])),
        "agent": draw(st.sampled_from(["planner", "coder", None])),
        "tenant": draw(st.sampled_from(["acme", "globex", None])),
        "operation": draw(st.sampled_from(["fix", "chat", None])),
        "model": draw(st.sampled_from(MODELS)),
        "start": draw(st.one_of(st.none(), st.integers(START, START + 90 * 86_400_000_000))),
        "input_tokens": uncached + cache_read + cache_write,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "cache_write_1h_tokens": write_1h,
        "output_tokens": output,
        "reasoning_tokens": draw(st.integers(0, output)),
        "usage_source": "reported" if reported else None,
    }


def table_of(rows: list[dict[str, object]]) -> pa.Table:
    return order_steps(pa.Table.from_batches([batch_from_rows(rows)], schema=STEP_SCHEMA))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(call_rows(), min_size=1, max_size=40), st.sampled_from(list(attr.GROUP_KEYS)))
def test_total_cost_equals_sum_over_any_grouping(rows: list[dict[str, object]], key: str) -> None:
    priced = price_table(table_of(rows), PriceBook()).table
    totals = attr.totals(priced)
    groups = attr.groups(priced, [key])
    assert sum(g["calls"] for g in groups) == totals["calls"]
    for field in ("input_tokens", "cache_read_tokens", "output_tokens"):
        assert sum(g[field] for g in groups) == totals[field]
    group_cost = sum(g["cost_usd"] or 0.0 for g in groups)
    assert math.isclose(group_cost, totals["cost_usd"] or 0.0, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(call_rows(), min_size=1, max_size=40))
def test_costs_are_never_negative_and_unknown_is_null(rows: list[dict[str, object]]) -> None:
    priced = price_table(table_of(rows), PriceBook()).table
    for name in COST_COLUMNS:
        for value, model in zip(priced[name].to_pylist(), priced["model"].to_pylist(), strict=True):
            if model in ("my-unknown-model", None):
                assert value is None
            else:
                assert value is not None and value >= 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(call_rows(), min_size=1, max_size=30), st.sampled_from([".jsonl", ".parquet"]))
def test_native_formats_round_trip_the_step_table(tmp_path: Path, rows: list[dict[str, object]], ext: str) -> None:
    priced = price_table(table_of(rows), PriceBook()).table
    path = tmp_path / f"steps{ext}"
    write_steps(priced, str(path))
    loaded = load_steps([str(path)])
    assert loaded.skips.total == 0
    reread = price_table(loaded.table, PriceBook()).table
    assert reread.equals(priced)
