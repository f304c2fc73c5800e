"""The versioned simulation report: before / after / saved per technique and jointly, with the assumptions and
quality-risk indicators behind each figure. Renderers and `--format json` consume `to_dict()`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from .. import __version__
from .. import attribution as attr
from ..pricing import Unpriced
from .engine import JOINT, ScenarioResult

SIMULATION_REPORT_VERSION = 1


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def scenario_dict(result: ScenarioResult) -> dict[str, Any]:
    runs = result.rows
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


def sweep_dict(scenario: str, key: str, points: list[dict[str, Any]]) -> dict[str, Any]:
    return {"scenario": scenario, "key": key, "points": points}


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
