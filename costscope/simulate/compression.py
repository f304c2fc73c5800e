"""Over a context budget, summarize a call's older turns: later calls carry the summary, not the turns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from .policy import Settings
from .replay import Replay
from .truncation import content_gaps, context_risks, evaluated_calls, removed_input

NAME = "compression"
OPERATION = "summarize"
"""The `operation` of the summarizer calls this policy adds (their cost shows under it)."""
TURN_KINDS = ("history", "tool_result")
"""Segment kinds that are turns: summarized when old. Tools, system, the new user input and framing never are."""


class CompressionConfig(Settings):
    """Settings of the compression policy (tokens as the model bills them)."""

    trigger_tokens: int = Field(
        default=32_000, ge=1, description="Context budget: a call whose input would exceed it is compressed first."
    )
    keep_last: int = Field(
        default=4, ge=1, description="Newest turns kept verbatim (a turn is one history or tool-result message part)."
    )
    summary_tokens: int = Field(
        default=1_000, ge=1, description="Size of the summary that replaces the older turns (tokens)."
    )
    summary_prompt_tokens: int = Field(
        default=200, ge=0, description="Instructions of each summarizer call, on top of the text it summarizes."
    )
    summarizer_model: str | None = Field(
        default=None, description="Model of the summarizer calls (default: the model of the call being compressed)."
    )
    summarizer_provider: str | None = Field(
        default=None,
        description="Provider of `summarizer_model` (default: the compressed call's; prices fall back to the model "
        "name when that provider does not list it).",
    )


Config = CompressionConfig


@dataclass
class _Walk:
    """The calls of the traces that ever go over budget (from each one's first such call) and their segments.

    Calls are in trace order, then replay order; a summary is named by the index of the call that made it.
    """

    calls: np.ndarray
    """Per call: its row of base."""
    trace: np.ndarray
    """Per call: its trace (0, 1, ... in call order)."""
    scale: np.ndarray
    """Per call: billed input tokens per recounted token."""
    evaluated: np.ndarray
    rows: np.ndarray
    """Per segment row (calls in order, then prompt order): its row in `replay.segments()`."""
    row_call: np.ndarray
    """Per segment row: its call."""
    codes: np.ndarray
    """Per segment row: its content, numbered per trace (the same text in two traces has two codes)."""
    kept: np.ndarray
    turn: np.ndarray


@dataclass
class _Result:
    """What the walk decided, per row of base and per summary."""

    carried: np.ndarray
    """Per row of base: summaries the rebuilt call carries (each `summary_tokens` tokens)."""
    made_by: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per summary, in replay order: the row of base of the call it compressed."""
    summarized: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Per summary: the billed tokens it summarized (older turns + the summaries it folded in)."""
    traces: int = 0
    not_compressible: int = 0
    still_over: int = 0


def apply(config: CompressionConfig, replay: Replay) -> None:
    """Walk each trace that ever exceeds the budget; summarize, then rebill the calls' input and add summarizers."""
    outcome = replay.outcomes[NAME]
    seg = replay.segments()
    scale = replay.content_scale()
    evaluated = evaluated_calls(replay, scale)
    outcome.not_evaluated.extend(content_gaps(replay, scale, "their history cannot be compressed"))
    before = removed_input(replay, scale)
    result = _walk(config, replay, seg, scale, evaluated)
    removed = removed_input(replay, scale) - before
    added = result.carried * float(config.summary_tokens)
    if len(result.made_by):
        replay.sync_content()
        _add_summary_tokens(replay, added)
        replay.add_calls(_summarizer_calls(config, replay, result), NAME)
    outcome.assumptions.extend(_assumptions(config))
    outcome.risks.update(context_risks(replay, removed, evaluated))
    outcome.details.update(_details(config, result, removed, added, evaluated))


def _walk(
    config: CompressionConfig, replay: Replay, seg: pd.DataFrame, scale: np.ndarray, evaluated: np.ndarray
) -> _Result:
    """Replay the traces that ever go over budget, summary by summary; zero the kept tokens of summarized rows."""
    n = replay.base.num_rows
    calls = seg["call"].to_numpy()
    context = np.bincount(calls, weights=seg["kept"].to_numpy(), minlength=n) * np.nan_to_num(scale)
    over = evaluated & (context > config.trigger_tokens)
    result = _Result(np.zeros(n, dtype=np.int64))
    if not over.any():
        return result
    walk = _walk_of(replay, seg, scale, evaluated, over)
    summary, carried = _replay_traces(config, walk, result)
    result.carried[walk.calls] = carried
    gone = summary[walk.codes] <= walk.row_call
    kept = seg["kept"].to_numpy().copy()
    kept[walk.rows[gone]] = 0.0
    seg["kept"] = kept
    return result


def _walk_of(replay: Replay, seg: pd.DataFrame, scale: np.ndarray, evaluated: np.ndarray, over: np.ndarray) -> _Walk:
    """The calls to walk: each trace with a call over budget, from that call on."""
    codes = _trace_codes(replay)
    wanted = np.zeros(int(codes.max(initial=-1)) + 1, dtype=bool)
    wanted[codes[over]] = True
    chosen = np.flatnonzero(wanted[codes])
    order = chosen[np.argsort(codes[chosen], kind="stable")]
    starts = np.r_[True, codes[order][1:] != codes[order][:-1]]
    trace = np.cumsum(starts) - 1
    overs = np.cumsum(over[order])
    before = (overs - over[order])[starts][trace]
    keep = overs > before
    order, trace = order[keep], trace[keep]
    lengths = np.bincount(seg["call"].to_numpy(), minlength=replay.base.num_rows)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    sizes = lengths[order]
    local = np.concatenate([[0], np.cumsum(sizes)])
    rows = (np.repeat(bounds[order] - local[:-1], sizes) + np.arange(int(local[-1]))).astype(np.int64)
    row_call = np.repeat(np.arange(len(order)), sizes)
    hashes = seg["hash"].to_numpy()[rows]
    content = pd.factorize(trace[row_call] * (int(hashes.max(initial=0)) + 1) + hashes)[0].astype(np.int64)
    turn = seg["kind"].isin(TURN_KINDS).to_numpy()[rows]
    return _Walk(
        order, trace, scale[order], evaluated[order], rows, row_call, content, seg["kept"].to_numpy()[rows], turn
    )


def _trace_codes(replay: Replay) -> np.ndarray:
    """Per row of base: its trace as a number; a call without trace id is a trace of its own."""
    column = replay.base["trace_id"]
    encoded = (column.combine_chunks() if column.num_chunks else pa.array([], pa.string())).dictionary_encode()
    codes: np.ndarray = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    alone = codes < 0
    codes[alone] = len(encoded.dictionary) + np.arange(int(alone.sum()))
    return codes


def _replay_traces(config: CompressionConfig, walk: _Walk, result: _Result) -> tuple[np.ndarray, np.ndarray]:
    """Per round, every trace still going gets its next summary (the state only changes when one is made).

    Returns, per content, the call from which it is summarized (len(calls) if never), and per call the number of
    summaries it carries.
    """
    count = len(walk.calls)
    summary = np.full(int(walk.codes.max(initial=-1)) + 1, count, dtype=np.int64)
    holder = np.arange(count, dtype=np.int64)
    carried = np.zeros(count, dtype=np.int64)
    made, amounts, stuck, still = [], [], 0, 0
    pending, rows = np.arange(count), np.arange(len(walk.codes))
    while len(pending):
        step = _Round(config, walk, summary, holder, pending, rows)
        carried[pending[step.done]] = step.carried[step.done]
        stuck += int((step.over & step.done).sum())
        if not len(step.made):
            break
        calls = pending[step.made]
        carried[calls] = 1
        made.append(calls)
        amounts.append(step.summarized[step.made])
        still += int((step.context - step.summarized + config.summary_tokens > config.trigger_tokens)[step.made].sum())
        step.fold(summary, holder)
        pending, rows = pending[step.later], rows[step.later[step.local]]
    if made:
        by_call = np.concatenate(made)
        order = np.argsort(by_call)
        result.made_by = walk.calls[by_call[order]]
        result.summarized = np.concatenate(amounts)[order]
        result.traces = len(np.unique(walk.trace[by_call]))
    result.not_compressible, result.still_over = stuck, still
    return summary, carried


class _Round:
    """One round over the pending calls: their contexts under the current summaries, and the next summaries."""

    def __init__(
        self,
        config: CompressionConfig,
        walk: _Walk,
        summary: np.ndarray,
        holder: np.ndarray,
        pending: np.ndarray,
        rows: np.ndarray,
    ) -> None:
        size = float(config.summary_tokens)
        m = len(pending)
        self.walk, self.pending, self.rows = walk, pending, rows
        rank = np.empty(len(walk.calls), dtype=np.int64)
        rank[pending] = np.arange(m)
        row_call = walk.row_call[rows]
        self.local = local = rank[row_call]
        since = summary[walk.codes[rows]]
        self.active = active = since > row_call
        self.holders = np.where(active, -1, holder[np.minimum(since, len(holder) - 1)])
        kept = walk.kept[rows]
        evaluated = walk.evaluated[pending]
        self.carried = np.where(evaluated, _distinct_per_call(local[~active], self.holders[~active], m), 0)
        scale = walk.scale[pending]
        self.context = np.bincount(local, weights=kept * active, minlength=m) * scale + size * self.carried
        self.over = evaluated & (self.context > config.trigger_tokens)
        self.candidate = _older_turns(local, active & walk.turn[rows], config.keep_last, m)
        has_turns = np.bincount(local, weights=self.candidate, minlength=m) > 0
        self.summarized = np.bincount(local, weights=kept * self.candidate, minlength=m) * scale + size * self.carried
        triggers = np.flatnonzero(self.over & has_turns & (self.summarized > size))
        traces = walk.trace[pending]
        _, first = np.unique(traces[triggers], return_index=True)
        self.made = triggers[first]
        stop = np.full(int(walk.trace[-1]) + 1, m, dtype=np.int64)
        stop[traces[self.made]] = self.made
        position = np.arange(m)
        self.done = position < stop[traces]
        self.later = position > stop[traces]

    def fold(self, summary: np.ndarray, holder: np.ndarray) -> None:
        """Make the round's summaries: their older turns leave from that call on; earlier summaries fold in."""
        maker = np.zeros(len(self.pending), dtype=bool)
        maker[self.made] = True
        in_maker = maker[self.local]
        taken = in_maker & self.candidate
        call = self.pending[self.local]
        summary[self.walk.codes[self.rows[taken]]] = call[taken]
        folded = in_maker & ~self.active
        if folded.any():
            target = np.arange(len(holder), dtype=np.int64)
            target[self.holders[folded]] = call[folded]
            holder[:] = target[holder]


def _distinct_per_call(local: np.ndarray, holders: np.ndarray, m: int) -> np.ndarray:
    """Per call: how many distinct summaries hold its summarized segments (`local` is sorted)."""
    counts = np.zeros(m, dtype=np.int64)
    if not len(local):
        return counts
    starts = np.flatnonzero(np.r_[True, local[1:] != local[:-1]])
    mixed = np.minimum.reduceat(holders, starts) != np.maximum.reduceat(holders, starts)
    counts[local[starts]] = 1
    if mixed.any():
        calls = local[starts][mixed]
        rows = np.isin(local, calls)
        width = int(holders.max()) + 1
        pairs = np.unique(local[rows] * width + holders[rows])
        counts[calls] = np.bincount(pairs // width, minlength=m)[calls]
    return counts


def _older_turns(local: np.ndarray, turn: np.ndarray, keep_last: int, m: int) -> np.ndarray:
    """Per segment row: a turn followed by at least `keep_last` turns in its call (summarized if it compresses)."""
    total = np.bincount(local, weights=turn, minlength=m)
    running = np.cumsum(turn)
    starts = np.r_[True, local[1:] != local[:-1]] if len(local) else np.zeros(0, dtype=bool)
    before_call = (running - turn)[starts][np.cumsum(starts) - 1]
    after = total[local] - (running - before_call)
    older: np.ndarray = turn & (after >= keep_last)
    return older


def _add_summary_tokens(replay: Replay, added: np.ndarray) -> None:
    """Add the carried summaries to the rebuilt calls' input; their cache reads/writes keep their share of it."""
    calls = replay.calls
    rows = np.flatnonzero((calls["added_by"] == "").to_numpy())
    extra = added[calls["origin"].to_numpy()[rows]]
    rows, extra = rows[extra > 0], extra[extra > 0]
    current = calls["input_tokens"].to_numpy()[rows]
    known = ~np.isnan(current)
    rows, extra, current = rows[known], extra[known], current[known]
    new = current + extra
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(current > 0, new / current, 1.0)
    calls.loc[rows, "input_tokens"] = new
    for name in ("cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens"):
        calls.loc[rows, name] = calls[name].to_numpy()[rows] * ratio
    calls.loc[rows, "content_changed"] = True


def _summarizer_calls(config: CompressionConfig, replay: Replay, result: _Result) -> pd.DataFrame:
    """One call per summary, at the start of the call it compresses: the summarized text in, the summary out."""
    origin, summarized = result.made_by, result.summarized
    calls = replay.calls
    own_rows = np.flatnonzero((calls["added_by"] == "").to_numpy())
    position = np.empty(replay.base.num_rows, dtype=np.int64)
    position[calls["origin"].to_numpy()[own_rows]] = own_rows
    recorded = calls.iloc[position[origin]]
    rows = pd.DataFrame({"origin": origin})
    own = config.summarizer_model is None
    rows["model"] = recorded["model"].to_numpy() if own else np.full(len(origin), config.summarizer_model, object)
    rows["recorded_model"] = rows["model"].to_numpy()
    provider = recorded["provider"].to_numpy()
    rows["provider"] = (
        provider if config.summarizer_provider is None else np.full(len(origin), config.summarizer_provider)
    )
    rows["service_tier"] = recorded["service_tier"].to_numpy() if own else np.full(len(origin), None, object)
    rows["operation"] = OPERATION
    rows["usage_source"] = "recounted"
    for name in ("request_hash", "prompt_text", "output_text"):
        rows[name] = np.full(len(origin), None, object)
    rows["input_tokens"] = summarized + float(config.summary_prompt_tokens)
    rows["output_tokens"] = float(config.summary_tokens)
    for name in ("cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens"):
        rows[name] = 0.0
    rows["start"] = recorded["start"].to_numpy()
    rows["end"] = recorded["start"].to_numpy()
    rows["has_content"] = False
    rows["content_changed"] = False
    return rows


# ---------------------------------------------------------------- outcome


def _assumptions(config: CompressionConfig) -> list[str]:
    model = config.summarizer_model or "the compressed call's own model"
    return [
        f"A call whose input would exceed {config.trigger_tokens} tokens first has its older turns summarized: a "
        "turn is one history or tool-result message part; the newest "
        f"{config.keep_last} turns, the tool definitions, system prompt, new user input and framing are kept.",
        f"The summary is exactly {config.summary_tokens} tokens; a new summary folds in the previous one. Every "
        "later call of the trace that re-sends a summarized turn sends the summary instead of those turns.",
        f"Each summary costs one summarizer call on {model} (operation `{OPERATION}`): the summarized turns, the "
        f"previous summary and {config.summary_prompt_tokens} tokens of instructions in, the summary out; its "
        "latency is not modelled.",
        "A call is only compressed when that shrinks it (the turns summarized outweigh the summary).",
        "Turn sizes are the recount scaled to each call's reported input; the agent's later calls and answers "
        "are as recorded (the context-removed shares measure the risk that a summary loses what it needed).",
        "The recorded cache reads and writes of a rebuilt call keep their share of its input; enable prompt_cache "
        "to model the cache breaks a summary causes.",
    ]


def _details(
    config: CompressionConfig, result: _Result, removed: np.ndarray, added: np.ndarray, evaluated: np.ndarray
) -> dict[str, Any]:
    summarizer_in = float(result.summarized.sum())
    summaries = len(result.made_by)
    return {
        "trigger_tokens": config.trigger_tokens,
        "keep_last": config.keep_last,
        "summary_tokens": config.summary_tokens,
        "summarizer_model": config.summarizer_model,
        "calls_evaluated": int(evaluated.sum()),
        "traces_compressed": result.traces,
        "summaries_made": summaries,
        "summarizer_operation": OPERATION,
        "summarizer_input_tokens": float(np.round(summarizer_in + summaries * config.summary_prompt_tokens, 3)),
        "summarizer_output_tokens": summaries * config.summary_tokens,
        "input_tokens_removed": float(np.round(removed[evaluated].sum(), 3)),
        "summary_input_tokens_added": float(np.round(added[evaluated].sum(), 3)),
        "calls_over_budget_not_compressible": result.not_compressible,
        "calls_still_over_budget": result.still_over,
    }
