"""Spend as the budget policy sees it: what each call costs before the policy, and running totals per group in
the order spend accrues (by start time)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .batching import trace_codes
from .replay import Replay


@dataclass
class Work:
    """The calls made before this policy, per call of `calls`: live mask, trace (integer code), input + output
    tokens and USD (0 where unpriced)."""

    live: np.ndarray
    traces: np.ndarray
    tokens: np.ndarray
    costs: np.ndarray


def work_before(replay: Replay, policy: str) -> Work:
    """The figures of the calls as every earlier policy left them (one pricing of the whole replay); unpriced
    calls are noted in the outcome of `policy`."""
    calls = replay.calls
    live = replay.live
    tokens = np.nan_to_num(calls["input_tokens"].to_numpy()) + np.nan_to_num(calls["output_tokens"].to_numpy())
    costs = replay.live_costs()
    unpriced = live & np.isnan(costs)
    if unpriced.any():
        replay.outcomes[policy].not_evaluated.append(
            f"{int(unpriced.sum())} calls have no price: they count as $0 towards dollar caps and budgets"
        )
    return Work(live, trace_codes(calls), tokens, np.nan_to_num(costs))


def share(part: float, whole: float) -> float:
    return float(part / whole) if whole > 0 else 0.0


def ordered(keys: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Positions sorted by group key, then start time (unknown last), then row: the order spend accrues in."""
    order: np.ndarray = np.lexsort((np.arange(len(keys)), np.where(np.isnan(start), np.inf, start), keys))
    return order


def spent_before(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per position of rows ordered by key: the sum of `values` over the earlier rows of the same key (accumulated
    within the key, so a group's figures do not depend on the groups before it)."""
    series = pd.Series(values, dtype=np.float64)
    running = series.groupby(keys, sort=False).cumsum()
    before: np.ndarray = running.groupby(keys, sort=False).shift(1, fill_value=0.0).to_numpy()
    return before
