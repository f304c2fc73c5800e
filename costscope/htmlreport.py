"""What `costscope report` draws, computed from the priced step table: spend per period and model, per agent, the
token composition, the cost-per-trace distribution, the costliest traces, optionally findings and the savings of
policy files. `render/html.py` turns it into one self-contained page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import api
from . import attribution as attr
from .errors import ConfigError
from .findings import find
from .report import Report

MAX_MODELS = 6
"""Models drawn in the spend-over-time chart; the rest are summed as `other models`."""
OTHER_MODELS = "other models"
MAX_DAILY_PERIODS = 62
MAX_WEEKLY_PERIODS = 60
BINS_PER_DECADE = 4
"""Cost-per-trace histogram bins per factor of ten (the distribution is heavy-tailed: a log axis)."""


@dataclass(frozen=True)
class SpendOverTime:
    """Priced spend (USD) per period and model; calls without a timestamp are left out and summed in `undated_usd`."""

    period: str
    """`day`, `week` (ISO) or `month`: the finest that keeps the chart readable."""
    periods: list[str]
    """Every period from the first call to the last, empty ones included (an even time axis)."""
    models: list[str]
    usd: list[list[float]]
    """One row per model (in `models` order), one value per period."""
    undated_usd: float


@dataclass(frozen=True)
class TraceHistogram:
    """Cost per priced trace on log-spaced bins: `edges[i] <= cost < edges[i + 1]` (USD)."""

    edges: list[float]
    counts: list[int]
    zero: int
    """Priced traces that cost exactly $0 (free models), drawn as a bin of their own."""


@dataclass(frozen=True)
class HtmlReport:
    title: str
    analysis: Report
    """The same report `costscope analyze` prints (`by = model`), for totals, distribution and top traces."""
    spend: SpendOverTime
    agents: list[dict[str, Any]]
    histogram: TraceHistogram
    scenarios: list[dict[str, Any]] | None
    """`SimulationReport.to_dict()["scenarios"]` when policy files were given."""
    findings: list[dict[str, Any]] | None
    """Cost leaks (kind, title, usd_at_stake, evidence, policy_yaml), when the caller looked for them."""


def choose_period(first: date, last: date) -> str:
    days = (last - first).days + 1
    if days <= MAX_DAILY_PERIODS:
        return "day"
    return "week" if days <= MAX_WEEKLY_PERIODS * 7 else "month"


def period_labels(first: date, last: date, period: str) -> list[str]:
    """Every period label from `first` to `last` in order, formatted as the group keys are (attribution.GROUP_KEYS)."""
    pattern = attr.GROUP_KEYS[period]
    labels: dict[str, None] = {}
    day = first
    while day <= last:
        labels[day.strftime(pattern)] = None
        day += timedelta(days=1)
    return list(labels)


def spend_over_time(calls: pa.Table, max_models: int = MAX_MODELS) -> SpendOverTime:
    dated = calls.filter(pc.is_valid(calls["start"]))
    undated = calls.filter(pc.is_null(calls["start"]))
    undated_usd = float(pc.sum(undated["cost_total"]).as_py() or 0.0)
    if dated.num_rows == 0:
        return SpendOverTime("day", [], [], [], undated_usd)
    first, last = pc.min(dated["start"]).as_py().date(), pc.max(dated["start"]).as_py().date()
    period = choose_period(first, last)
    periods = period_labels(first, last, period)
    model_order = [g["key"]["model"] for g in attr.groups(dated, ["model"])]
    shown = model_order if len(model_order) <= max_models else model_order[: max_models - 1]
    names = [_model_name(m) for m in shown] + ([OTHER_MODELS] if len(shown) < len(model_order) else [])
    index = {p: i for i, p in enumerate(periods)}
    usd = [[0.0] * len(periods) for _ in names]
    for g in attr.groups(dated, [period, "model"]):
        model = g["key"]["model"]
        row = shown.index(model) if model in shown else len(names) - 1
        usd[row][index[g["key"][period]]] += g["cost_usd"] or 0.0
    return SpendOverTime(period, periods, names, usd, undated_usd)


def _model_name(model: str | None) -> str:
    return "(no model)" if model is None else model


def trace_histogram(costs: np.ndarray, bins_per_decade: int = BINS_PER_DECADE) -> TraceHistogram:
    """Log-spaced bins from the decade-fraction below the cheapest priced trace to the one above the costliest."""
    positive = np.sort(costs[costs > 0])
    zero = int((costs <= 0).sum())
    if not len(positive):
        return TraceHistogram([], [], zero)
    low = math.floor(math.log10(positive[0]) * bins_per_decade)
    high = max(math.floor(math.log10(positive[-1]) * bins_per_decade) + 1, low + 1)
    edges = [10.0 ** (k / bins_per_decade) for k in range(low, high + 1)]
    index = np.clip(np.searchsorted(np.array(edges), positive, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(index, minlength=len(edges) - 1)
    return TraceHistogram(edges, [int(c) for c in counts], zero)


def priced_trace_costs(calls: pa.Table) -> np.ndarray:
    """Cost (USD) of each trace with at least one priced call (an all-unpriced trace has no known cost)."""
    per_trace = attr.trace_costs(calls)
    if per_trace.num_rows == 0:
        return np.zeros(0)
    priced = per_trace.filter(pc.greater(per_trace["cost_total_count"], 0))
    costs: np.ndarray = priced["cost_total_sum"].to_numpy(zero_copy_only=False).astype(np.float64)
    return costs


def build(
    steps: api.PricedSteps,
    policies: list[str] | None = None,
    top: int = 10,
    findings: list[dict[str, Any]] | None = None,
    title: str | None = None,
) -> HtmlReport:
    """Everything the page shows. With `policies`, each file is replayed (api.build_simulation) for its waterfall;
    `findings` (dicts of `Finding.to_dict`) default to the cost leaks found in the steps."""
    options = api.AnalyzeOptions(by=("model",), top=top)
    analysis = api.build_report(steps, options)
    calls = attr.llm_calls(steps.table)
    agents = attr.groups(calls, ["agent"]) if calls.num_rows else []
    scenarios = None
    if policies:
        simulation, _ = api.build_simulation(steps, list(policies))
        scenarios = simulation.to_dict()["scenarios"]
    return HtmlReport(
        title=title or "costscope report",
        analysis=analysis,
        spend=spend_over_time(calls),
        agents=agents,
        histogram=trace_histogram(priced_trace_costs(calls)),
        scenarios=scenarios,
        findings=findings if findings is not None else [f.to_dict() for f in find(steps)],
    )


def write_html(text: str, path: str) -> None:
    """Write the page (UTF-8); an unwritable path is a usage error, not a traceback."""
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}", hint="choose a writable -o path") from None
