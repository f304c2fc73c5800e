"""Backtest of the prompt-cache simulation against traces that really used caching.

A trace whose calls report cache reads and writes carries the ground truth of what the provider's cache did. The
backtest strips those columns, lets the `prompt_cache` policy replay the calls under the provider's rules, and
compares predicted with actual cache read tokens, cache write tokens and dollars, per trace and overall. It is
how the simulator earns trust: a policy that cannot reproduce the recorded caching should not be believed on a
"what if".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError
from . import prompt_cache
from .policy_file import Scenario
from .replay import Replay


@dataclass(frozen=True)
class BacktestRow:
    """Predicted (replayed) versus actual (recorded) cache tokens and dollars of a group of calls."""

    key: str
    """The trace id, the provider family, or `overall`."""
    calls: int
    predicted_cache_read_tokens: float
    actual_cache_read_tokens: float
    predicted_cache_write_tokens: float
    actual_cache_write_tokens: float
    predicted_usd: float
    """cost_total of the calls (input, cache and output, USD) with the replayed cache columns."""
    actual_usd: float
    """cost_total of the same calls as recorded (USD)."""

    @property
    def usd_error_pct(self) -> float | None:
        """(predicted - actual) / actual, in percent of the actual dollars."""
        return 100.0 * (self.predicted_usd - self.actual_usd) / self.actual_usd if self.actual_usd else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "usd_error_pct": self.usd_error_pct}


@dataclass
class Backtest:
    """The backtest of one scenario's `prompt_cache` settings."""

    overall: BacktestRow
    traces: list[BacktestRow]
    by_provider: list[BacktestRow]
    not_evaluated: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_dict(),
            "by_provider": [row.to_dict() for row in self.by_provider],
            "traces": [row.to_dict() for row in self.traces],
            "not_evaluated": self.not_evaluated,
            "assumptions": self.assumptions,
        }


def strip_cache(calls: pa.Table) -> pa.Table:
    """The calls with every recorded cache read and write turned into plain input (unknown stays unknown)."""
    out = calls
    for name in prompt_cache.CACHE_COLUMNS:
        column = calls[name]
        zeros = pc.if_else(pc.is_null(column), pa.nulls(len(column), column.type), pa.scalar(0, column.type))
        out = out.set_column(out.schema.get_field_index(name), name, zeros)
    return out


def backtest(template: Replay, scenario: Scenario) -> Backtest:
    """Replay the recorded calls of `template` (its `base`: priced LLM calls in replay order) with their cache
    columns stripped under `scenario`'s prompt_cache settings, and compare with what they recorded."""
    calls = template.base
    config = dict(scenario.policies).get(prompt_cache.NAME)
    if config is None or config.mode == "off":
        raise ConfigError(
            f"{scenario.source}: a backtest needs the prompt_cache policy in simulate mode",
            hint="add `prompt_cache: {}` to the policy file (or drop --backtest)",
        )
    replay = Replay(strip_cache(calls), template.book)
    projection = prompt_cache.project(config, replay, recorded=calls)
    prompt_cache.write_projection(replay, projection)
    predicted = replay.price()
    rows = projection.rows
    truth = ~pc.is_null(calls["cache_read_tokens"]).to_numpy(zero_copy_only=False)[rows]
    keep = rows[truth]
    frame = pd.DataFrame(
        {
            "trace": pd.Series(calls["trace_id"].to_pylist(), dtype=object).to_numpy()[keep],
            "family": projection.family[truth],
            "calls": 1,
            "predicted_cache_read_tokens": _column(predicted, "cache_read_tokens")[keep],
            "actual_cache_read_tokens": _column(calls, "cache_read_tokens")[keep],
            "predicted_cache_write_tokens": _column(predicted, "cache_write_tokens")[keep],
            "actual_cache_write_tokens": _column(calls, "cache_write_tokens")[keep],
            "predicted_usd": _column(predicted, "cost_total")[keep],
            "actual_usd": _column(calls, "cost_total")[keep],
        }
    )
    frame["trace"] = frame["trace"].fillna("")
    not_evaluated = [
        f"{count} call(s) {reason}: not replayed, left out of the comparison."
        for reason, count in projection.skipped.items()
    ]
    if int((~truth).sum()):
        not_evaluated.append(f"{int((~truth).sum())} call(s) recorded no cache figures: no ground truth to compare.")
    return Backtest(
        _rows(frame, None)[0],
        _rows(frame, "trace"),
        _rows(frame, "family"),
        not_evaluated,
        [*prompt_cache.ASSUMPTIONS, *prompt_cache.setting_assumptions(config)],
    )


def _column(table: pa.Table, name: str) -> np.ndarray:
    values: np.ndarray = pc.fill_null(pc.cast(table[name], pa.float64()), 0.0).to_numpy(zero_copy_only=False)
    return values


def _rows(frame: pd.DataFrame, by: str | None) -> list[BacktestRow]:
    columns = [c for c in frame.columns if c not in ("trace", "family")]
    if by is None:
        sums = frame[columns].sum()
        return [BacktestRow("overall", int(sums["calls"]), *(float(sums[c]) for c in columns[1:]))]
    grouped = frame.groupby(by, sort=True)[columns].sum()
    return [
        BacktestRow(str(key), int(row["calls"]), *(float(row[c]) for c in columns[1:]))
        for key, row in grouped.iterrows()
    ]
