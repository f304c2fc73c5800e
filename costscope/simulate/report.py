"""The versioned simulation report: before / after / saved per technique and jointly, with the assumptions and
quality-risk indicators behind each figure. Renderers and `--format json` consume `to_dict()`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from .. import __version__
from .. import attribution as attr
from ..pricing import Unpriced
from .engine import JOINT, Run, ScenarioResult, money_by, money_summary

SIMULATION_REPORT_VERSION = 1


def _outcomes(run: Run) -> dict[str, Any]:
    return {name: asdict(outcome) for name, outcome in run.outcomes.items()}


def run_dict(before: pa.Table, run: Run) -> dict[str, Any]:
    """One row of the report: a technique alone, or the joint replay."""
    return {
        "technique": run.technique,
        "policies": run.policies,
        **money_summary(before, run.table),
        "calls_added": run.calls_added,
        "calls_not_made": run.calls_dropped,
        "by_agent": money_by(before, run.table, "agent"),
        "by_model": money_by(before, run.table, "model"),
        "outcomes": _outcomes(run),
    }


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def scenario_dict(before: pa.Table, result: ScenarioResult) -> dict[str, Any]:
    runs = [run_dict(before, run) for run in result.runs]
    joint = runs[-1]
    alone = [r for r in runs if r["technique"] != JOINT]
    risks: dict[str, Any] = {}
    for name, outcome in joint["outcomes"].items():
        for key, value in outcome["risks"].items():
            risks[f"{name}.{key}"] = value
    scenario = result.scenario
    return {
        "name": scenario.name,
        "source": scenario.source,
        "description": scenario.description,
        "policies": scenario.enabled,
        "runs": runs,
        "joint": joint["technique"],
        "sum_of_parts_saved_usd": sum(r["saved_usd"] for r in alone) if len(alone) > 1 else None,
        "assumptions": _unique([a for r in runs for o in r["outcomes"].values() for a in o["assumptions"]]),
        "not_evaluated": _unique([n for r in runs for o in r["outcomes"].values() for n in o["not_evaluated"]]),
        "risks": risks,
    }


def sweep_dict(before: pa.Table, scenario: str, key: str, points: list[tuple[Any, Run]]) -> dict[str, Any]:
    rows = []
    for value, run in points:
        money = money_summary(before, run.table)
        risks = {f"{p}.{k}": v for p, o in run.outcomes.items() for k, v in o.risks.items()}
        rows.append({"value": value, **money, "risks": risks})
    return {"scenario": scenario, "key": key, "points": rows}


@dataclass
class SimulationReport:
    inputs: dict[str, Any]
    baseline: dict[str, Any]
    scenarios: list[dict[str, Any]]
    price_sources: list[str]
    unpriced: list[Unpriced]
    sweep: dict[str, Any] | None = None
    backtest: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of `costscope simulate --format json` (field names are a public interface)."""
        return {
            "costscope_version": __version__,
            "report_version": SIMULATION_REPORT_VERSION,
            "inputs": self.inputs,
            "baseline": self.baseline,
            "scenarios": self.scenarios,
            "sweep": self.sweep,
            "backtest": self.backtest,
            "prices": {"sources": self.price_sources},
            "unpriced_models": [asdict(u) for u in self.unpriced],
            "warnings": self.warnings,
        }


def baseline_dict(calls: pa.Table) -> dict[str, Any]:
    """The recorded calls the scenarios start from (the 'before' of every row)."""
    totals = attr.totals(calls)
    return {
        "calls": totals["calls"],
        "priced_calls": totals["priced_calls"],
        "traces": len(set(calls["trace_id"].to_pylist())) if calls.num_rows else 0,
        "calls_with_content": calls.num_rows - calls["segments"].null_count,
        "input_tokens": totals["input_tokens"],
        "cache_read_tokens": totals["cache_read_tokens"],
        "cache_write_tokens": totals["cache_write_tokens"],
        "output_tokens": totals["output_tokens"],
        "cost_usd": totals["cost_usd"],
    }
