"""What one work unit (dataset files holding whole traces) contributes to a result.

Each function runs the library's own code on the unit's rows (`price_table`, the attribution group-bys,
`explode` and `_carried` of the composition, `baseline.summarize`, `simulate_recorded`) and reduces it to partial
figures that `merge.py` combines on the client. They run inside the engine's workers: they take and return plain
picklable values and read nothing but the unit's files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import attribution as attr
from .. import dataset
from ..api import PricedSteps
from ..baseline import Baseline, summarize
from ..composition import (
    CARRIED_KINDS,
    PLACEHOLDER_MAX_TOKENS,
    PLACEHOLDER_MIN_CHARS,
    KindSums,
    _carried,
    _col,
    _ratios,
    exact,
    explode,
)
from ..errors import InputError
from ..money import Exact, exact_sum
from ..parsers import Skips
from ..parsers.segments import INPUT_KINDS, OUTPUT
from ..pricing import PriceBook, PricingResult, price_table
from ..schema import UsageSource, empty_table
from ..simulate.policy_file import Scenario
from ..simulate.session import Recorded, Sweep, simulate_recorded
from ..steps import Filters, LoadResult


@dataclass(frozen=True)
class Task:
    """One unit of work and the options every kind of run needs."""

    root: str
    unit: dataset.Unit
    filters: Filters
    book: PriceBook
    by: tuple[str, ...] = ()
    top: int = 5
    scenarios: tuple[Scenario, ...] = ()
    sweep: Sweep | None = None


@dataclass
class Read:
    """Reading and pricing one unit: what the inputs, prices and warnings of a report need."""

    label: str
    rows: int
    """Rows read, before filters (the client checks them against the manifest)."""
    filtered_out: int
    pricing: PricingResult
    """Without its table (`table` is emptied before the result travels back)."""
    matched_rules: frozenset[int]
    recounted: int
    totals: dict[str, Any]
    """`attribution.totals`, its dollar sums exact (`money.Exact`)."""


def read_priced(task: Task, replay: bool = False) -> tuple[pa.Table, Read]:
    """The unit's rows, filtered and priced (`replay`: with the simulator's text columns)."""
    columns = None if replay else dataset.analysis_columns()
    table = dataset.read_files(task.root, task.unit.files, columns)
    if table.num_rows != task.unit.rows:
        raise InputError(
            f"{task.unit.label}: read {table.num_rows} rows where the dataset manifest lists {task.unit.rows}",
            hint="the dataset changed while it was read, or a file was damaged: convert the traces again",
        )
    return price_rows(table, task.unit.label, task.filters, task.book)


def price_rows(table: pa.Table, label: str, filters: Filters, book: PriceBook) -> tuple[pa.Table, Read]:
    """A unit's rows (whole traces, in step-table order) filtered and priced, and the facts of that reading."""
    kept = filters.apply(table)
    own_book = PriceBook(rules=book.rules, rules_source=book.rules_source)
    pricing = price_table(kept, own_book)
    priced = pricing.table
    recounted = int(pc.sum(pc.equal(priced["usage_source"], UsageSource.RECOUNTED.value)).as_py() or 0)
    totals = attr.totals(attr.llm_calls(priced), exact=True)
    light = PricingResult(empty_table(), pricing.entries, pricing.unpriced, pricing.undated_calls, [])
    read = Read(
        label,
        table.num_rows,
        table.num_rows - kept.num_rows,
        light,
        frozenset(own_book._matched_rules),
        recounted,
        totals,
    )
    return priced, read


# ---------------------------------------------------------------- analyze


@dataclass
class CompositionPart:
    """Sums behind the composition summary of `analyze`, and the per-model ratios its mismatch count needs."""

    calls_with_content: int
    tokenizers: frozenset[str]
    kinds: dict[str, KindSums]
    """Per segment kind: calibrated tokens, recounted tokens, USD (None when no segment is priced), priced segments."""
    input_tokens: Exact
    input_usd: Exact
    carry: dict[str, tuple[int, Exact, Exact | None]]
    """`all` and each carried kind: re-sends, calibrated tokens, USD (None when none is known)."""
    ratios: dict[str, np.ndarray]
    """Per model: reported / recounted input of the calls usable for its median (placeholders excluded)."""
    placeholders: int


@dataclass
class AnalyzePart:
    read: Read
    groups: list[dict[str, Any]]
    agent_groups: list[dict[str, Any]]
    traces: int
    trace_costs: np.ndarray
    """Cost of each trace with a priced call (USD)."""
    top_traces: pa.Table
    top_steps: pa.Table
    top3: tuple[Exact | None, Exact | None]
    """USD in each trace's three costliest steps, and USD of all priced calls."""
    reported: dict[str, Any]
    composition: CompositionPart | None


def analyze_unit(task: Task) -> AnalyzePart:
    table, read = read_priced(task)
    return analyze_part(table, read, task.by, task.top)


def analyze_part(table: pa.Table, read: Read, by: tuple[str, ...], top: int) -> AnalyzePart:
    """What a unit's priced rows (`price_rows`) contribute to `analyze`'s report."""
    calls = attr.llm_calls(table)
    per_trace = attr.trace_costs(calls)
    priced_traces = per_trace.filter(pc.greater(per_trace["cost_total_count"], 0))
    return AnalyzePart(
        read=read,
        groups=attr.groups(calls, list(by), exact=True) if by else [],
        agent_groups=attr.groups(calls, ["agent"], exact=True) if calls.num_rows else [],
        traces=per_trace.num_rows,
        trace_costs=priced_traces["cost_total_sum"].to_numpy(zero_copy_only=False).astype(np.float64),
        top_traces=_top(per_trace, [("cost_total_sum", "descending"), ("trace_id", "ascending")], top),
        top_steps=_top(
            calls.select(list(attr.STEP_FIELDS)),
            [("cost_total", "descending"), ("trace_id", "ascending"), ("step", "ascending")],
            top,
        ),
        top3=attr.top3_step_usd(calls),
        reported=attr.reported_costs(table, calls, exact=True),
        composition=composition_part(table),
    )


def _top(table: pa.Table, keys: list[tuple[str, str]], n: int) -> pa.Table:
    """The first `n` rows in `keys` order, as a table of their own: a slice would keep (and ship to the client) the
    buffers of the whole table."""
    return table.take(pc.sort_indices(table, sort_keys=keys).slice(0, n))


def composition_part(table: pa.Table) -> CompositionPart | None:
    """The composition's sums over one unit (`composition.composition` and `context_carry` before rounding)."""
    x = explode(table)
    if x.calls.num_rows == 0:
        return None
    is_input = x.kind != OUTPUT
    kinds: dict[str, KindSums] = {}
    for kind in INPUT_KINDS:
        mask = is_input & (x.kind == kind)
        if mask.any():
            usd = x.usd[mask]
            kinds[kind] = (
                exact(x.calibrated[mask]),
                exact(x.tokens[mask]),
                exact_sum(usd),
                int((~np.isnan(usd)).sum()),
            )
    cost_output = _col(x.calls, "cost_output")
    kinds[OUTPUT] = (
        exact(_col(x.calls, "output_tokens", 0.0)),
        exact(x.tokens[~is_input]),
        exact_sum(cost_output),
        int((~np.isnan(cost_output)).sum()),
    )
    carried = _carried(x)
    carry = {"all": _carry(x, carried)}
    for kind in CARRIED_KINDS:
        carry[kind] = _carry(x, carried & (x.kind == kind))
    ratio, chars = _ratios(x)
    reported = _col(x.calls, "input_tokens")
    placeholder = (reported <= PLACEHOLDER_MAX_TOKENS) & (chars >= PLACEHOLDER_MIN_CHARS) & ~np.isnan(ratio)
    models = pc.fill_null(x.calls["model"], "(none)").to_numpy(zero_copy_only=False).astype(str)
    usable = ~np.isnan(ratio) & ~placeholder
    return CompositionPart(
        calls_with_content=x.calls.num_rows,
        tokenizers=frozenset(t for t in x.calls["tokenizer"].to_pylist() if t),
        kinds=kinds,
        input_tokens=exact(x.calibrated[is_input]),
        input_usd=exact(x.usd[is_input]),
        carry=carry,
        ratios={str(m): ratio[usable & (models == m)] for m in np.unique(models[usable]).tolist()},
        placeholders=int(placeholder.sum()),
    )


def _carry(x: Any, mask: np.ndarray) -> tuple[int, Exact, Exact | None]:
    return int(mask.sum()), exact(x.calibrated[mask]), exact_sum(x.usd[mask])


# ---------------------------------------------------------------- baseline


@dataclass
class BaselinePart:
    read: Read
    summary: Baseline


def baseline_unit(task: Task) -> BaselinePart:
    table, read = read_priced(task)
    steps = PricedSteps(LoadResult(table, [], [], Skips()), replace(read.pricing, table=table), task.book)
    return BaselinePart(read, summarize(steps))


# ---------------------------------------------------------------- simulate


@dataclass
class SimulatePart:
    read: Read
    calls: int
    """Recorded LLM calls replayed (the weight of this unit's shares when outcomes are combined)."""
    baseline: dict[str, Any] | None
    scenarios: list[dict[str, Any]] | None
    sweep: dict[str, Any] | None


def simulate_unit(task: Task) -> SimulatePart:
    table, read = read_priced(task, replay=True)
    calls = read.totals["calls"]
    if not calls:
        return SimulatePart(read, 0, None, None, None)
    book = PriceBook(rules=task.book.rules, rules_source=task.book.rules_source)
    report, _ = simulate_recorded(Recorded(table, book, {}, [], []), list(task.scenarios), task.sweep)
    return SimulatePart(read, int(calls), report.baseline, report.scenarios, report.sweep)
