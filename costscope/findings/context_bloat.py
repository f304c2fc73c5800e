"""Context bloat: traces whose input grows step over step because every call re-sends the whole conversation.

A trace is bloated when it has at least `min_calls` calls, its input grows from call to call (at least
`min_increasing_share` of its steps, and to at least `growth_factor` × its first call's input), and the
conversation so far (history and tool results) is at least `min_history_share` of its input. Only calls that
logged their request content are judged (the share needs the segments).

The fix is compression: once a call's input would exceed `trigger_tokens`, its older turns are summarized.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import TURN_KINDS, Calls, Finding, costliest_first, count, per_trace_sum, run_position, usd
from .frontier_overuse import cheaper_model

KIND = "context_bloat"


@dataclass(frozen=True)
class Params:
    min_calls: int = 5
    """Traces with fewer calls are not judged."""
    growth_factor: float = 3.0
    """The trace's largest input is at least this many times its first call's input."""
    min_increasing_share: float = 0.6
    """Share of the trace's steps whose input is larger than the step before."""
    min_history_share: float = 0.5
    """Share of the trace's input tokens that are history and tool results."""
    trigger_tokens: int = 16_000
    """Context budget of the suggested compression: a call above it has its older turns summarized."""
    keep_last: int = 4
    """Newest turns kept verbatim by the suggested compression."""
    summary_tokens: int = 1_000
    """Size of a summary (tokens)."""
    summary_prompt_tokens: int = 200
    """Instructions of each summarizer call (tokens), as the compression policy's default."""


def detect(calls: Calls, params: Params) -> Finding | None:
    x = calls.content
    if not len(x.parent):
        return None
    bloated = _bloated_traces(calls, params)
    if not bloated.any():
        return None
    turns = np.isin(x.kind, TURN_KINDS)
    older = turns & ~_newest(turns, calls.segment_call, params.keep_last)
    call = calls.segment_call
    old_tokens = np.bincount(call[older], weights=x.calibrated[older], minlength=calls.n)
    old_usd = np.bincount(call[older], weights=np.nan_to_num(x.usd[older]), minlength=calls.n)
    has_content = np.bincount(call, minlength=calls.n) > 0
    over = bloated[calls.trace] & has_content & (calls.input > params.trigger_tokens) & ~np.isnan(calls.cost)
    removed = np.where(over, np.minimum(calls.input - params.trigger_tokens, old_tokens - params.summary_tokens), 0.0)
    removed = np.maximum(removed, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        saved = np.where(removed > 0, removed * old_usd / old_tokens, 0.0)
    rows = np.flatnonzero(saved > 0)
    if not len(rows):
        return None
    summarizer = _summarizer_model(calls, rows)
    events, event_cost = _summaries(calls, rows, old_tokens, summarizer, params)
    per_trace = per_trace_sum(calls, saved) - events * event_cost
    traces = np.flatnonzero(per_trace_sum(calls, saved) > 0)
    at_stake = float(per_trace[traces].sum())
    if at_stake <= 0:
        return None
    ordered = costliest_first(rows, saved[rows])
    notes = [
        f"{calls.input[r]:,.0f} input tokens, {old_tokens[r]:,.0f} in older turns"
        for r in ordered[: calls.max_evidence]
    ]
    share = float(old_tokens[rows].sum() / calls.input[rows].sum())
    return Finding(
        kind=KIND,
        title="Context grows step over step",
        usd_at_stake=at_stake,
        basis=f"per call above {params.trigger_tokens:,} input tokens in a bloated trace: min(input − "
        f"{params.trigger_tokens:,}, its turns older than the newest {params.keep_last} − a "
        f"{params.summary_tokens:,}-token summary) tokens at the rate its older turns were billed, minus one "
        f"summarizer call ({params.trigger_tokens:,} tokens in, {params.summary_tokens:,} out, on "
        f"{summarizer or 'the same model'}) each time the context refills",
        evidence=calls.evidence(ordered, notes),
        detail=f"{count(int(bloated.sum()), 'trace')} re-send a growing conversation ({share:.0%} of the input of "
        f"their {count(len(rows), 'call')} above {params.trigger_tokens:,} tokens is turns older than the newest "
        f"{params.keep_last}); compressing at {params.trigger_tokens:,} tokens saves about {usd(at_stake)} net of "
        f"{count(int(events.sum()), 'summary', 'summaries')}.",
        policy=policy(params, summarizer),
        calls=len(rows),
        traces=int(bloated.sum()),
        figures={
            "bloated_traces": int(bloated.sum()),
            "calls_over_trigger": len(rows),
            "older_turns_share": share,
            "summaries": int(events.sum()),
            "summarizer_model": summarizer,
        },
    )


def policy(params: Params, summarizer: str | None) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "trigger_tokens": params.trigger_tokens,
        "keep_last": params.keep_last,
        "summary_tokens": params.summary_tokens,
        "summary_prompt_tokens": params.summary_prompt_tokens,
    }
    if summarizer is not None:
        settings["summarizer_model"] = summarizer
    return {"compression": settings}


def _bloated_traces(calls: Calls, params: Params) -> np.ndarray:
    """Per trace code: it meets the size, growth and history-share conditions."""
    x, traces = calls.content, len(calls.trace_names)
    n = np.bincount(calls.trace, minlength=traces)
    first = np.r_[0, np.flatnonzero(np.diff(calls.trace)) + 1]
    first_input = calls.input[first]
    peak = np.zeros(traces)
    np.maximum.at(peak, calls.trace, calls.input)
    same_trace = np.r_[False, calls.trace[1:] == calls.trace[:-1]]
    grew = same_trace & (np.r_[0.0, np.diff(calls.input)] > 0)
    growing = np.bincount(calls.trace, weights=grew.astype(float), minlength=traces) / np.maximum(n - 1, 1)
    turns = np.isin(x.kind, TURN_KINDS)
    call = calls.segment_call
    turn_tokens = np.bincount(call[turns], weights=x.calibrated[turns], minlength=calls.n)
    has_content = np.bincount(call, minlength=calls.n) > 0
    content_input = per_trace_sum(calls, np.where(has_content, calls.input, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        history_share = np.where(content_input > 0, per_trace_sum(calls, turn_tokens) / content_input, 0.0)
    result: np.ndarray = (
        (n >= params.min_calls)
        & (first_input > 0)
        & (peak >= params.growth_factor * first_input)
        & (growing >= params.min_increasing_share)
        & (history_share >= params.min_history_share)
    )
    return result


def _newest(turns: np.ndarray, call: np.ndarray, keep_last: int) -> np.ndarray:
    """Segment mask: the last `keep_last` turn segments of each call."""
    rows = np.flatnonzero(turns)
    reverse = rows[::-1]
    rank = run_position(call[reverse])
    newest = np.zeros(len(turns), dtype=bool)
    newest[reverse[rank < keep_last]] = True
    return newest


def _summarizer_model(calls: Calls, rows: np.ndarray) -> str | None:
    """The one cheaper model every compressed call's model maps to, else None (each call's own model)."""
    models = {str(m) for m in np.unique(calls.text("model")[rows])}
    targets = {cheaper_model(m) for m in models}
    return targets.pop() if len(targets) == 1 and None not in targets else None


def _summaries(
    calls: Calls, rows: np.ndarray, old_tokens: np.ndarray, summarizer: str | None, params: Params
) -> tuple[np.ndarray, np.ndarray]:
    """Per trace: how many summaries compression would make, and what one costs (USD)."""
    traces = len(calls.trace_names)
    first = np.full(traces, -1, dtype=np.int64)
    first[calls.trace[rows[::-1]]] = rows[::-1]
    peak = np.zeros(traces)
    np.maximum.at(peak, calls.trace[rows], calls.input[rows])
    over_calls = np.bincount(calls.trace[rows], minlength=traces)
    events = np.zeros(traces)
    has = first >= 0
    k = first[has]
    base = calls.input[k] - old_tokens[k] + params.summary_tokens
    freed = params.trigger_tokens - base
    refills = np.where(freed > 0, 1 + np.floor((peak[has] - calls.input[k]) / np.maximum(freed, 1.0)), over_calls[has])
    events[has] = np.minimum(refills, over_calls[has])
    model = calls.text("model")
    if summarizer is not None:
        model[:] = summarizer
    zero = np.zeros(calls.n)
    one = calls.reprice(
        model=list(model),
        input_tokens=np.full(calls.n, float(params.trigger_tokens + params.summary_prompt_tokens)),
        output_tokens=np.full(calls.n, float(params.summary_tokens)),
        cache_read_tokens=zero,
        cache_write_tokens=zero,
        cache_write_1h_tokens=zero,
        reasoning_tokens=zero,
    )
    cost = np.zeros(traces)
    cost[has] = np.nan_to_num(one[k])
    return events, cost
