"""Runaway traces: traces costing far more than their peers, and agents repeating the same tool call.

A trace's population is the traces with the same operation (else agent) on their first call; with enough of
them, a trace above `cost_factor` × the population's median cost is an outlier. A loop is the same tool call
(identical name and arguments) or the same tool result (identical content) arriving in `min_repeats` or more
consecutive calls of a trace; every call after the first of such a run reacted to a repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .base import Calls, Finding, count, per_trace_sum, usd

KIND = "runaway_traces"


@dataclass(frozen=True)
class Params:
    cost_factor: float = 3.0
    """A trace costing more than this many times the median trace of its population is a runaway."""
    min_population: int = 10
    """Populations with fewer priced traces have no meaningful median and are not judged."""
    min_repeats: int = 3
    """The same tool call or tool result arriving in this many consecutive calls of a trace is a loop."""


def detect(calls: Calls, params: Params) -> Finding | None:
    traces = len(calls.trace_names)
    cost = per_trace_sum(calls, calls.cost)
    priced = np.bincount(calls.trace, weights=(~np.isnan(calls.cost)).astype(float), minlength=traces) > 0
    cap = _caps(calls, cost, priced, params)
    outlier = priced & (cost > cap)
    cut = _cut_above(calls, cost, cap)
    loop_calls, loop_names = _loop_calls(calls, params.min_repeats)
    loop_usd = per_trace_sum(calls, np.where(loop_calls, calls.cost, 0.0))
    at_stake_trace = np.maximum(cut, loop_usd)
    flagged = np.flatnonzero(at_stake_trace > 0)
    if not len(flagged):
        return None
    at_stake = float(at_stake_trace[flagged].sum())
    flagged = flagged[np.lexsort((flagged, -at_stake_trace[flagged]))]
    rows, notes = _evidence_rows(calls, flagged[: calls.max_evidence], loop_calls, loop_names, cost, cap)
    outliers, loops = int(outlier.sum()), int((loop_usd > 0).sum())
    budget, budget_cut = _global_cap(calls, cost, cap, outlier, priced)
    if budget is None:
        capped = "no single per-trace cap would cut them without cutting normal traces of another population"
    else:
        capped = f"a per-trace cap of {usd(budget)} (above every normal trace) would cut {usd(budget_cut)}"
    return Finding(
        kind=KIND,
        title="Runaway traces and tool-call loops",
        usd_at_stake=at_stake,
        basis=f"per trace, the larger of: what a cap at {params.cost_factor:g} × its population's median trace cost "
        "would cut (the calls after the one crossing it), and the cost of the calls that received a repeat of a "
        f"tool call or result arriving in ≥ {params.min_repeats} consecutive calls (the first arrival not counted)",
        evidence=calls.evidence(rows, notes),
        detail=f"{count(outliers, 'trace')} cost more than {params.cost_factor:g} × the median trace of their "
        f"population and {count(loops, 'trace')} loop on the same tool call ({usd(at_stake)} above the median "
        f"line or inside loops); {capped}.",
        policy=policy(budget) if budget is not None else None,
        calls=int(loop_calls.sum()),
        traces=len(flagged),
        figures={
            "outlier_traces": outliers,
            "loop_traces": loops,
            "max_usd_per_trace": budget,
            "cap_cuts_usd": budget_cut,
            "traces": [
                {
                    "trace_id": calls.trace_names[t],
                    "cost_usd": float(cost[t]),
                    "population_cap_usd": float(cap[t]) if np.isfinite(cap[t]) else None,
                    "loop_usd": float(loop_usd[t]),
                }
                for t in flagged[:20]
            ],
        },
    )


def policy(max_usd_per_trace: float) -> dict[str, Any]:
    return {"budget": {"per_trace": {"max_usd": max_usd_per_trace}}}


def _cut_above(calls: Calls, cost: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Per trace: USD of its calls after the one whose running cost crosses `cap` (0 when it never does)."""
    spent = np.nan_to_num(calls.cost)
    running = np.cumsum(spent)
    first = np.r_[0, np.flatnonzero(np.diff(calls.trace)) + 1]
    running -= np.repeat(running[first] - spent[first], np.diff(np.r_[first, calls.n]))
    after = cost[calls.trace] - running
    cut = np.zeros(len(cost))
    crossed = running > cap[calls.trace]
    np.maximum.at(cut, calls.trace[crossed], after[crossed])
    return cut


def _global_cap(
    calls: Calls, cost: np.ndarray, cap: np.ndarray, outlier: np.ndarray, priced: np.ndarray
) -> tuple[float | None, float]:
    """The one per-trace USD cap (rounded up to two significant digits) above every trace that is not an outlier
    and above the outliers' population caps, and what it would cut; None when it cuts nothing."""
    if not outlier.any():
        return None, 0.0
    normal = cost[priced & ~outlier]
    floor = max(float(cap[outlier].max()), float(normal.max()) if len(normal) else 0.0)
    budget = round_up(floor)
    cut = float(_cut_above(calls, cost, np.full(len(cost), budget)).sum())
    return (budget, cut) if cut > 0 else (None, 0.0)


def _caps(calls: Calls, cost: np.ndarray, priced: np.ndarray, params: Params) -> np.ndarray:
    """Per trace: `cost_factor` × the median cost of its population's priced traces (inf when not judged)."""
    first = np.r_[0, np.flatnonzero(np.diff(calls.trace)) + 1]
    operation, agent = calls.text("operation")[first], calls.text("agent")[first]
    by_operation = np.char.add("operation:", operation.astype(str))
    population = np.where(operation != "", by_operation, np.char.add("agent:", agent.astype(str)))
    frame = pd.DataFrame({"population": population, "cost": np.where(priced, cost, np.nan)})
    stats = frame.groupby("population")["cost"].agg(["count", "median"])
    judged = stats["count"] >= params.min_population
    limit = (stats["median"] * params.cost_factor).where(judged, np.inf)
    caps: np.ndarray = frame["population"].map(limit).to_numpy(dtype=np.float64)
    return caps


def _loop_calls(calls: Calls, min_repeats: int) -> tuple[np.ndarray, dict[int, str]]:
    """Per call: it received another copy of a tool call or result that arrived in `min_repeats` or more
    consecutive calls of its trace (the first arrival of such a run is not counted); per trace, the tool."""
    x = calls.content
    loop = np.zeros(calls.n, dtype=bool)
    tooled = np.flatnonzero(calls.is_input_segment & x.tool.is_valid().to_numpy(zero_copy_only=False))
    if not len(tooled):
        return loop, {}
    frame = pd.DataFrame(
        {
            "call": calls.segment_call[tooled],
            "key": pd.Series(x.kind[tooled]) + "\x1f" + x.hash.take(tooled).to_numpy(zero_copy_only=False),
            "tool": x.tool.take(tooled).to_numpy(zero_copy_only=False),
        }
    )
    copies = frame.groupby(["call", "key"], sort=True).agg(copies=("tool", "size"), tool=("tool", "first"))
    copies = copies.reset_index()
    copies["trace"] = calls.trace[copies["call"].to_numpy()]
    copies = copies.sort_values(["trace", "key", "call"], kind="stable").reset_index(drop=True)
    keys = [copies["trace"], copies["key"]]
    seen = copies.groupby(keys, sort=False)["copies"].cummax().groupby(keys, sort=False).shift(1).fillna(0)
    arrivals = copies[copies["copies"] > seen].reset_index(drop=True)
    same = (arrivals["trace"] == arrivals["trace"].shift()) & (arrivals["key"] == arrivals["key"].shift())
    adjacent = same & (arrivals["call"] - arrivals["call"].shift() == 1)
    run = (~adjacent).cumsum()
    length = run.map(run.value_counts())
    looping = adjacent & (length >= min_repeats)
    loop[arrivals.loc[looping, "call"].to_numpy()] = True
    firsts = arrivals[looping].drop_duplicates("trace")
    runs = zip(firsts["trace"], firsts["tool"], length[firsts.index], strict=True)
    return loop, {int(t): f"{tool} ×{int(n)}" for t, tool, n in runs}


def _evidence_rows(
    calls: Calls, traces: np.ndarray, loop: np.ndarray, names: dict[int, str], cost: np.ndarray, cap: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """For each flagged trace: its first looping call, else its costliest call, with a note."""
    rows, notes = [], []
    for t in traces.tolist():
        members = np.flatnonzero(calls.trace == t)
        looped = members[loop[members]]
        if len(looped):
            rows.append(int(looped[0]))
            notes.append(f"loop: {names.get(t, 'tool')}, trace {usd(float(cost[t]))}")
        else:
            rows.append(int(members[np.argmax(np.nan_to_num(calls.cost[members], nan=-1.0))]))
            notes.append(f"trace {usd(float(cost[t]))} vs cap {usd(float(cap[t]))}")
    return np.array(rows, dtype=np.int64), notes


def round_up(value: float) -> float:
    """`value` rounded up to two significant digits (0.1293 -> 0.13, 0.007 -> 0.007), for a readable cap."""
    if value <= 0:
        return value
    step = 10.0 ** (np.floor(np.log10(value)) - 1)
    return float(round(np.ceil(round(value / step, 6)) * step, 12))
