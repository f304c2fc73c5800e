"""Run a scenario: each enabled policy alone, then all of them in one joint replay (never the sum of parts)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from .. import attribution as attr
from ..pricing import PriceBook
from ..schema import TOKEN_COLUMNS
from .policy_file import Scenario, with_value
from .registry import BY_NAME
from .replay import Outcome, Replay

JOINT = "joint"
GROUP_KEYS = ("agent", "model")


@dataclass
class Run:
    """The result of one replay: the priced projected calls and what each policy reported."""

    technique: str
    """A policy name (that policy alone) or `joint` (every policy of the scenario together)."""
    policies: list[str]
    table: pa.Table
    outcomes: dict[str, Outcome]
    calls_added: dict[str, int] = field(default_factory=dict)
    calls_dropped: dict[str, int] = field(default_factory=dict)


@dataclass
class ScenarioResult:
    scenario: Scenario
    rows: list[dict[str, Any]]
    """The report row (`summarize`) of each enabled policy alone, then of the joint run (when more than one
    policy is enabled)."""
    joint: Run
    """The last run, kept whole: its priced projection is what `--output` writes."""


def run_policies(template: Replay, scenario: Scenario, technique: str, content: bool = False) -> Run:
    """Replay the recorded calls under `scenario`'s policies, in stack order (`content`: see Replay.projected)."""
    replay = template.fork()
    for name, config in scenario.policies:
        BY_NAME[name].apply(config, replay)
    calls = replay.calls
    added = calls.loc[calls["added_by"] != "", "added_by"].value_counts().sort_index()
    dropped = calls.loc[calls["dropped_by"] != "", "dropped_by"].value_counts().sort_index()
    return Run(
        technique,
        scenario.enabled,
        replay.price(content),
        {name: replay.outcomes[name] for name in scenario.enabled},
        {str(k): int(v) for k, v in added.items()},
        {str(k): int(v) for k, v in dropped.items()},
    )


@dataclass(frozen=True)
class Side:
    """The figures of one side of a comparison, computed once: totals, and groups by each of GROUP_KEYS."""

    totals: dict[str, Any]
    groups: dict[str, list[dict[str, Any]]]


def side(table: pa.Table) -> Side:
    groups = {key: attr.groups(table, [key]) if table.num_rows else [] for key in GROUP_KEYS}
    return Side(attr.totals(table), groups)


def summarize(before: Side, run: Run) -> dict[str, Any]:
    """One row of the report: a technique alone, or the joint replay."""
    after = side(run.table)
    return {
        "technique": run.technique,
        "policies": run.policies,
        **money_summary(before.totals, after.totals),
        "calls_added": run.calls_added,
        "calls_not_made": run.calls_dropped,
        "by_agent": money_by(before.groups["agent"], after.groups["agent"], "agent"),
        "by_model": money_by(before.groups["model"], after.groups["model"], "model"),
        "outcomes": {name: asdict(outcome) for name, outcome in run.outcomes.items()},
    }


def simulate_scenario(template: Replay, scenario: Scenario, content: bool = False) -> ScenarioResult:
    """Each technique alone, then the joint replay (the single run when at most one policy is enabled: a file
    enabling none replays the record unchanged, which must save exactly nothing). Each run is summarized as soon
    as it is priced and only the last one is kept, so memory holds two projections at most, not one per policy."""
    alone = len(scenario.enabled) == 1
    before = side(template.base)
    rows, run = [], None
    for name in scenario.enabled:
        run = run_policies(template, scenario.only(name), name, content and alone)
        rows.append(summarize(before, run))
    if not alone:
        run = run_policies(template, scenario, JOINT, content)
        rows.append(summarize(before, run))
    assert run is not None
    return ScenarioResult(scenario, rows, run)


def sweep(template: Replay, scenario: Scenario, key: str, values: list[Any]) -> list[dict[str, Any]]:
    """The joint replay once per value of one setting (the savings curve): money and risks at each value."""
    points = []
    before = attr.totals(template.base)
    for value in values:
        run = run_policies(template, with_value(scenario, key, value), JOINT)
        risks = {f"{p}.{k}": v for p, o in run.outcomes.items() for k, v in o.risks.items()}
        points.append({"value": value, **money_summary(before, attr.totals(run.table)), "risks": risks})
    return points


def make_template(calls: pa.Table, book: PriceBook) -> Replay:
    """The replay every run forks from: the recorded LLM calls in replay order (trace, start, source, line)."""
    return Replay(calls, book)


def money_summary(b: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
    """Before / after / saved (USD and % of before) and the calls and tokens on each side (`attr.totals` of each)."""
    cost_before, cost_after = b["cost_usd"] or 0.0, a["cost_usd"] or 0.0
    saved = cost_before - cost_after
    return {
        "calls_before": b["calls"],
        "calls_after": a["calls"],
        **{f"{name}_before": b[name] for name in TOKEN_COLUMNS if name in ("input_tokens", "output_tokens")},
        **{f"{name}_after": a[name] for name in TOKEN_COLUMNS if name in ("input_tokens", "output_tokens")},
        "cost_before_usd": cost_before,
        "cost_after_usd": cost_after,
        "saved_usd": saved,
        "saved_pct": (100.0 * saved / cost_before) if cost_before else None,
    }


def money_by(before: list[dict[str, Any]], after: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Before / after / saved per value of `key` from `attr.groups` of each side (a routed call counts under its
    new model after)."""
    rows: dict[Any, dict[str, Any]] = {}
    for label, groups in (("before", before), ("after", after)):
        for group in groups:
            value = group["key"][key]
            row = rows.setdefault(
                value,
                {key: value, "calls_before": 0, "calls_after": 0, "cost_before_usd": None, "cost_after_usd": None},
            )
            row[f"calls_{label}"] = group["calls"]
            row[f"cost_{label}_usd"] = group["cost_usd"]
    return with_savings(list(rows.values()), key)


def with_savings(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Per-`key` rows of calls and costs before and after, given their saving (null when neither side is priced),
    costliest first."""
    for row in rows:
        b, a = row["cost_before_usd"], row["cost_after_usd"]
        known = b is not None or a is not None
        row["saved_usd"] = (b or 0.0) - (a or 0.0) if known else None
        row["saved_pct"] = 100.0 * row["saved_usd"] / b if known and b else None
    rows.sort(key=lambda r: (-(r["cost_before_usd"] or 0.0), -(r["cost_after_usd"] or 0.0), str(r[key] or "")))
    return rows
