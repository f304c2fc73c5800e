"""Step ordering/numbering and the row filters (--since/--until/--model/--agent)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costscope import AnalyzeOptions, Filters, load_priced_steps
from costscope.attribution import llm_calls, value_ranks
from costscope.errors import InputError
from costscope.schema import PARSED_SCHEMA, STEP_SCHEMA, batch_from_rows, compact, nulls, row_run
from costscope.steps import drop_duplicate_responses, duplicate_responses, matching, order_steps


def us(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def table_of(rows: list[dict[str, Any]]) -> pa.Table:
    full_rows = []
    for i, row in enumerate(rows, 1):
        full = {"source": "t.jsonl", "line": i, "kind": "llm", **row}
        if isinstance(full.get("start"), str):
            full["start"] = us(full["start"])
        full_rows.append(full)
    return pa.Table.from_batches([batch_from_rows(full_rows)], schema=STEP_SCHEMA)


ROWS = [
    {"trace_id": "a", "start": "2025-09-30T23:59:59Z", "model": "gpt-4o", "agent": "planner"},
    {"trace_id": "a", "start": "2025-10-01T00:00:00Z", "model": "gpt-4o-mini", "agent": "coder"},
    {"trace_id": "b", "start": "2025-10-01T12:00:00Z", "model": "claude-sonnet-4-5", "agent": "coder"},
    {"trace_id": "b", "start": "2025-10-02T00:00:00Z", "model": "claude-haiku-4-5", "agent": None},
    {"trace_id": "c", "start": None, "model": None, "agent": "reviewer"},
]


def lines(table: pa.Table) -> list[int]:
    return sorted(table["line"].to_pylist())


# --- Filters ----------------------------------------------------------------------------------------------


def test_no_filters_keep_everything() -> None:
    assert lines(Filters().apply(table_of(ROWS))) == [1, 2, 3, 4, 5]


def test_since_is_inclusive_and_a_bare_date_is_midnight_utc() -> None:
    # 2025-10-01 == 2025-10-01T00:00:00Z: row 2 (exactly midnight) is kept, row 1 (a second before) is not;
    # the undated row cannot be shown to be inside the window and is dropped.
    assert lines(Filters(since="2025-10-01").apply(table_of(ROWS))) == [2, 3, 4]


def test_until_is_exclusive() -> None:
    assert lines(Filters(until="2025-10-02").apply(table_of(ROWS))) == [1, 2, 3]
    assert lines(Filters(until="2025-10-02T00:00:01Z").apply(table_of(ROWS))) == [1, 2, 3, 4]


def test_since_and_until_with_offsets() -> None:
    # 2025-10-01T14:00+02:00 == 12:00Z -> only row 3 in [12:00Z, 13:00Z)
    f = Filters(since="2025-10-01T14:00:00+02:00", until="2025-10-01T13:00:00Z")
    assert lines(f.apply(table_of(ROWS))) == [3]


def test_naive_time_is_utc() -> None:
    assert lines(Filters(since="2025-10-01T12:00:00").apply(table_of(ROWS))) == [3, 4]


def test_model_globs() -> None:
    table = table_of(ROWS)
    assert lines(Filters(models=("gpt-4o",)).apply(table)) == [1]  # exact, not a prefix
    assert lines(Filters(models=("gpt-4o*",)).apply(table)) == [1, 2]
    assert lines(Filters(models=("claude-*", "gpt-4o-mini")).apply(table)) == [2, 3, 4]
    assert lines(Filters(models=("claude-?aiku-4-5",)).apply(table)) == [4]
    assert lines(Filters(models=("*",)).apply(table)) == [1, 2, 3, 4]  # a null model never matches
    assert lines(Filters(models=("GPT-4O",)).apply(table)) == []  # case-sensitive


def test_agent_globs_and_combination_with_model_and_time() -> None:
    table = table_of(ROWS)
    assert lines(Filters(agents=("coder",)).apply(table)) == [2, 3]
    assert lines(Filters(agents=("*er",)).apply(table)) == [1, 2, 3, 5]
    assert lines(Filters(agents=("coder",), models=("claude-*",)).apply(table)) == [3]
    assert lines(Filters(agents=("coder",), until="2025-10-01T06:00:00Z").apply(table)) == [2]


def test_filters_on_an_empty_table() -> None:
    empty = STEP_SCHEMA.empty_table()
    assert Filters(since="2025-01-01", models=("x*",), agents=("y",)).apply(empty).num_rows == 0


@pytest.mark.parametrize("option", ["since", "until"])
def test_bad_time_is_an_input_error_naming_the_option(option: str) -> None:
    with pytest.raises(InputError, match=f"--{option}"):
        Filters(**{option: "last tuesday"}).apply(table_of(ROWS))


def test_matching_handles_nulls_and_repeats() -> None:
    column = pa.chunked_array([["a1", None, "b1"], ["a1", "a2"]])
    assert matching(column, ("a*",)).tolist() == [True, False, False, True, True]


def test_filters_are_applied_before_pricing_and_counted(jsonl_file: Any) -> None:
    def call(when: str, model: str) -> dict[str, Any]:
        return {
            "timestamp": when,
            "response": {
                "object": "chat.completion",
                "model": model,
                "usage": {"prompt_tokens": 1000, "completion_tokens": 0},
            },
        }

    path = jsonl_file([call("2025-09-30T10:00:00Z", "gpt-4o"), call("2025-10-01T10:00:00Z", "gpt-4o")])
    steps = load_priced_steps([path], AnalyzeOptions(filters=Filters(since="2025-10-01")))
    assert steps.table.num_rows == 1
    assert steps.load.filtered_out == 1
    # 1000 * $2.50 / 1e6
    assert steps.table["cost_total"][0].as_py() == pytest.approx(0.0025, rel=1e-12)


# --- order_steps ------------------------------------------------------------------------------------------


def test_order_steps_sorts_by_trace_then_time_and_numbers_from_one() -> None:
    table = table_of(
        [
            {"trace_id": "b", "start": "2025-10-01T00:00:03Z"},
            {"trace_id": "a", "start": "2025-10-01T00:00:02Z"},
            {"trace_id": "b", "start": "2025-10-01T00:00:01Z"},
            {"trace_id": "a", "start": "2025-10-01T00:00:01Z"},
            {"trace_id": "b", "start": "2025-10-01T00:00:02Z"},
        ]
    )
    ordered = order_steps(table)
    got = list(
        zip(ordered["trace_id"].to_pylist(), ordered["step"].to_pylist(), ordered["line"].to_pylist(), strict=True)
    )
    assert got == [("a", 1, 4), ("a", 2, 2), ("b", 1, 3), ("b", 2, 5), ("b", 3, 1)]
    assert ordered.schema == STEP_SCHEMA


def test_order_steps_breaks_time_ties_by_source_and_line() -> None:
    same = "2025-10-01T00:00:00Z"
    table = table_of(
        [
            {"trace_id": "t", "start": same, "source": "b.jsonl", "line": 1},
            {"trace_id": "t", "start": same, "source": "a.jsonl", "line": 9},
            {"trace_id": "t", "start": same, "source": "a.jsonl", "line": 2},
        ]
    )
    ordered = order_steps(table)
    assert list(zip(ordered["source"].to_pylist(), ordered["line"].to_pylist(), strict=True)) == [
        ("a.jsonl", 2),
        ("a.jsonl", 9),
        ("b.jsonl", 1),
    ]
    assert ordered["step"].to_pylist() == [1, 2, 3]


def test_order_steps_gives_untraced_calls_their_own_source_line_trace() -> None:
    table = table_of(
        [
            {"trace_id": None, "start": "2025-10-01T00:00:00Z", "source": "x.jsonl", "line": 7},
            {"trace_id": None, "start": "2025-10-01T00:00:01Z", "source": "x.jsonl", "line": 8},
            {"trace_id": "x.jsonl:7", "start": "2025-10-01T00:00:05Z", "source": "y.jsonl", "line": 1},
        ]
    )
    ordered = order_steps(table)
    got = sorted(zip(ordered["trace_id"].to_pylist(), ordered["step"].to_pylist(), strict=True))
    # An explicit trace id equal to an implied one joins it (ids are plain strings).
    assert got == [("x.jsonl:7", 1), ("x.jsonl:7", 2), ("x.jsonl:8", 1)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["r1", "r2", "r3", None]),
            st.sampled_from(["t1", "t2", None]),
            st.one_of(st.none(), st.integers(0, 5)),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_ordering_with_a_keep_mask_is_dropping_the_duplicates_then_ordering(
    rows: list[tuple[str | None, str | None, int | None, bool]],
) -> None:
    table = table_of(
        [
            {
                "record_id": record,
                "trace_id": trace,
                "start": None if second is None else us("2025-10-01T00:00:00Z") + second * 1_000_000,
                "usage_source": "reported" if reported else None,
            }
            for record, trace, second, reported in rows
        ]
    )
    keep, dropped = duplicate_responses(table)
    deduplicated, dropped_too = drop_duplicate_responses(table)
    assert dropped == dropped_too
    assert order_steps(table, keep).equals(order_steps(deduplicated))


def test_order_steps_on_empty_table() -> None:
    empty = STEP_SCHEMA.empty_table()
    assert order_steps(empty).num_rows == 0


def test_order_steps_is_idempotent() -> None:
    once = order_steps(table_of(ROWS))
    assert order_steps(once).equals(once)


def test_order_steps_numbering_with_many_traces() -> None:
    rows = [{"trace_id": f"t{i % 7}", "start": us("2025-10-01T00:00:00Z") + (100 - i) * 1_000_000} for i in range(100)]
    ordered = order_steps(table_of(rows))
    per_trace: dict[str, list[tuple[int, int]]] = {}
    for trace, step, start in zip(
        ordered["trace_id"].to_pylist(),
        ordered["step"].to_pylist(),
        ordered["start"].to_pylist(),
        strict=True,
    ):
        per_trace.setdefault(trace, []).append((step, start))
    assert len(per_trace) == 7
    for entries in per_trace.values():
        steps = [s for s, _ in entries]
        starts = [t for _, t in entries]
        assert steps == list(range(1, len(entries) + 1))
        assert starts == sorted(starts)
    assert all(isinstance(t, datetime) and t.tzinfo is not None for _, t in per_trace["t0"])
    assert per_trace["t0"][0][1] < datetime(2025, 10, 1, 0, 2, tzinfo=UTC)


# --- the parsed (dictionary-encoded) form -------------------------------------------------------------------


def test_compact_rows_order_to_the_same_table() -> None:
    rows = [{**row, "source": f"s{i % 2}.jsonl", "tenant": "p"} for i, row in enumerate(ROWS + ROWS)]
    table = table_of(rows)
    halves = [compact(table.slice(0, 4)), compact(table.slice(4))]  # two chunks, each with its own dictionaries
    assert halves[0]["trace_id"].chunk(0).dictionary != halves[1]["trace_id"].chunk(0).dictionary
    parsed = pa.concat_tables(halves)
    assert parsed.schema.equals(PARSED_SCHEMA)
    assert parsed.num_rows == table.num_rows
    ordered = order_steps(parsed)
    assert ordered.schema.equals(STEP_SCHEMA)
    assert ordered.equals(order_steps(table))
    keep, _ = duplicate_responses(table)
    assert order_steps(parsed, keep).equals(order_steps(table, keep))
    assert order_steps(compact(table.slice(0, 0))).schema.equals(STEP_SCHEMA)


@given(st.lists(st.one_of(st.none(), st.sampled_from(["b", "a", "c", "ab", ""])), max_size=30))
def test_value_ranks_of_a_dictionary_column_are_those_of_its_values(values: list[str | None]) -> None:
    plain = pa.array(values, pa.string())
    # a dictionary may hold a value twice (and a null): equal values must still rank equal
    dictionary = pa.array(["c", "a", "b", "a", None, "ab", "", "b"], pa.string())
    position = {"c": 0, "a": 3, "b": 7, "ab": 5, "": 6}
    indices = pa.array([None if v is None else position[v] for v in values], pa.int32())
    encoded = pa.DictionaryArray.from_arrays(indices, dictionary)
    expected = comparisons(value_ranks(plain).tolist())
    assert comparisons(value_ranks(encoded).tolist()) == expected
    assert comparisons(value_ranks(pa.chunked_array([encoded[:3], encoded[3:]])).tolist()) == expected


def comparisons(ranks: list[int]) -> list[list[int]]:
    """How each rank compares with each other (-1, 0, 1): what sorting and grouping by them depend on."""
    return [[(a > b) - (a < b) for b in ranks] for a in ranks]


def test_calls_come_first_and_are_a_slice_of_the_table() -> None:
    rows = [
        {"trace_id": "b", "start": "2025-10-01T00:00:03Z", "kind": "tool"},
        {"trace_id": "a", "start": "2025-10-01T00:00:02Z"},
        {"trace_id": "b", "start": "2025-10-01T00:00:01Z"},
        {"trace_id": "a", "start": "2025-10-01T00:00:01Z", "kind": "agent"},
        {"trace_id": "b", "start": "2025-10-01T00:00:04Z"},
    ]
    ordered = order_steps(table_of(rows))
    assert [(r["kind"], r["trace_id"], r["step"]) for r in ordered.to_pylist()] == [
        ("llm", "a", 2),
        ("llm", "b", 1),
        ("llm", "b", 3),
        ("agent", "a", 1),
        ("tool", "b", 2),
    ]
    calls = llm_calls(ordered)
    assert calls.equals(ordered.slice(0, 3))
    assert calls["source"].chunk(0).buffers()[2].address == ordered["source"].chunk(0).buffers()[2].address
    unordered = table_of(rows)  # calls not in one run: filtered
    assert llm_calls(unordered)["line"].to_pylist() == [2, 3, 5]


@pytest.mark.parametrize("column", [f.name for f in STEP_SCHEMA] + ["dictionary"])
def test_shared_null_columns_are_null_columns(column: str) -> None:
    type_ = PARSED_SCHEMA.field("source").type if column == "dictionary" else STEP_SCHEMA.field(column).type
    made = nulls(5, type_)
    made.validate(full=True)
    assert made.type == type_ and made.null_count == 5
    assert made.equals(pa.nulls(5, type_))
    assert made.slice(1, 3).to_pylist() == [None] * 3
    assert pa.concat_arrays([made, pa.nulls(2, type_)]).null_count == 7
    assert nulls(0, type_).to_pylist() == []


@given(st.lists(st.booleans(), max_size=20))
def test_row_run_is_the_slice_holding_exactly_the_selected_rows(mask: list[bool]) -> None:
    run = row_run(np.array(mask, dtype=bool))
    if run is None:
        assert not any(mask) or not all(mask[mask.index(True) : len(mask) - mask[::-1].index(True)])
    else:
        first, stop = run
        assert [first <= i < stop for i in range(len(mask))] == mask
