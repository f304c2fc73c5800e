"""One `costscope simulate` run: the recorded calls, the scenarios (policy files), an optional sweep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from ..errors import ConfigError
from ..pricing import PriceBook, Unpriced
from .engine import make_template, simulate_scenario, sweep
from .policy_file import Scenario, load_policy_file
from .report import SimulationReport, baseline_dict, scenario_dict, sweep_dict


@dataclass(frozen=True)
class Sweep:
    """`--sweep key=v1,v2,...`: one setting rerun over values (each parsed as a YAML scalar)."""

    key: str
    values: tuple[Any, ...]

    @classmethod
    def parse(cls, text: str) -> Sweep:
        key, sep, rest = text.partition("=")
        values = [v.strip() for v in rest.split(",") if v.strip()]
        if not sep or not key.strip() or not values:
            raise ConfigError(
                f"--sweep {text!r}: expected key=value1,value2,...", hint="e.g. --sweep threshold=0.85,0.9"
            )
        return cls(key.strip(), tuple(yaml.safe_load(v) for v in values))


@dataclass(frozen=True)
class Recorded:
    """The recorded calls and what the analysis of them said (inputs, warnings, prices)."""

    calls: pa.Table
    book: PriceBook
    inputs: dict[str, Any]
    warnings: list[str]
    unpriced: list[Unpriced]


def load_scenarios(paths: list[str]) -> list[Scenario]:
    if not paths:
        raise ConfigError("simulate needs a policy file", hint="--policy sample_traces/policies/all.yaml")
    return [load_policy_file(path) for path in paths]


def simulate_recorded(
    recorded: Recorded,
    scenarios: list[Scenario],
    sweep_spec: Sweep | None = None,
    with_backtest: bool = False,
    content: bool = False,
) -> tuple[SimulationReport, list[pa.Table]]:
    """The report, and the joint projected step table of each scenario (priced, STEP_SCHEMA; with the content
    columns of the calls left unchanged when `content`)."""
    calls = recorded.calls.filter(pc.equal(recorded.calls["kind"], "llm"))
    template = make_template(calls, recorded.book)
    results = [simulate_scenario(template, scenario, content) for scenario in scenarios]
    report = SimulationReport(
        inputs=recorded.inputs,
        baseline=baseline_dict(calls),
        scenarios=[scenario_dict(result) for result in results],
        price_sources=recorded.book.sources,
        unpriced=recorded.unpriced,
        warnings=list(recorded.warnings),
    )
    if sweep_spec is not None:
        first = scenarios[0]
        points = sweep(template, first, sweep_spec.key, list(sweep_spec.values))
        report.sweep = sweep_dict(first.name, sweep_spec.key, points)
    if with_backtest:
        from .backtest import backtest

        report.backtest = backtest(template, scenarios[0]).to_dict()
    return report, [result.joint.table for result in results]
