"""Cap tool results at a number of tokens: every later call that re-sends a capped result sends the short version."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from pydantic import Field

from .policy import Settings
from .replay import Replay

NAME = "truncation"

Keep = Literal["head", "tail", "head_tail"]


class TruncationToolRule(Settings):
    """A cap for the results of the tools whose name matches `match` (the first matching rule wins)."""

    match: str = Field(description="Tool name, or a glob over tool names (`*`, `?`, `[ab]`; case-sensitive).")
    max_tokens: int | None = Field(
        ge=1, description="Cap on each of these tools' results (tokens); null: never truncate these tools."
    )
    keep: Keep | None = Field(
        default=None, description="Which part of a capped result survives (default: the policy's `keep`)."
    )


class TruncationConfig(Settings):
    """Settings of the truncation policy (token counts are the recount's: the tokenizer named in the step table)."""

    max_tokens: int = Field(default=2000, ge=1, description="Cap on each tool result (tokens) unless a rule matches.")
    keep: Keep = Field(
        default="head_tail",
        description="Which part of a capped result survives: `head` (its start), `tail` (its end) or `head_tail` "
        "(half of the cap from each end). It changes no token count, only what the model still sees.",
    )
    marker_tokens: int = Field(
        default=10, ge=0, description='Tokens of the "[... N tokens truncated ...]" note added to a capped result.'
    )
    tools: list[TruncationToolRule] = Field(
        default_factory=list, description="Per-tool caps, tried in order; the first rule whose glob matches wins."
    )


Config = TruncationConfig


def apply(config: TruncationConfig, replay: Replay) -> None:
    """Lower the kept tokens of every tool-result segment over its cap, then rebill the calls' input."""
    outcome = replay.outcomes[NAME]
    seg = replay.segments()
    scale = replay.content_scale()
    evaluated = evaluated_calls(replay, scale)
    outcome.not_evaluated.extend(content_gaps(replay, scale, "their tool results cannot be truncated"))
    results = (seg["kind"] == "tool_result").to_numpy()
    in_scope = results & evaluated[seg["call"].to_numpy()]
    if not in_scope.any():
        outcome.not_evaluated.append("no tool results in the logged request content: nothing to truncate")
    caps = _ToolCaps.of(config, seg["tool"])
    limit = caps.limit[caps.codes]
    kept = seg["kept"].to_numpy().copy()
    cut = results & (kept > limit)
    before = removed_input(replay, scale)
    if cut.any():
        seg["kept"] = np.where(cut, limit, kept)
        replay.sync_content()
    removed = removed_input(replay, scale) - before
    outcome.assumptions.extend(_assumptions(config))
    outcome.risks.update(context_risks(replay, removed, evaluated))
    outcome.details.update(_details(config, seg, cut & in_scope, kept - seg["kept"].to_numpy(), caps))
    outcome.details["calls_evaluated"] = int(evaluated.sum())
    outcome.details["input_tokens_removed"] = float(np.round(removed[evaluated].sum(), 3))


@dataclass(frozen=True)
class _ToolCaps:
    """The cap of each tool name in the segments (the last entry stands for results without a tool name)."""

    codes: np.ndarray
    """Per segment row: index into the names."""
    names: list[str]
    limit: np.ndarray
    """Per name: the most tokens a result keeps (cap + marker; inf when uncapped)."""
    keep: list[Keep]

    @classmethod
    def of(cls, config: TruncationConfig, tools: pd.Series) -> _ToolCaps:
        codes, names = pd.factorize(tools, use_na_sentinel=True)
        limit: list[float] = []
        keep: list[Keep] = []
        for name in [*names.tolist(), None]:
            rule = _rule_for(config, name)
            cap = rule.max_tokens if rule is not None else config.max_tokens
            limit.append(np.inf if cap is None else float(cap + config.marker_tokens))
            keep.append((rule.keep if rule is not None else None) or config.keep)
        index = np.where(codes < 0, len(names), codes).astype(np.int64)
        return cls(index, [*map(str, names.tolist()), "(unnamed)"], np.array(limit), keep)


def _rule_for(config: TruncationConfig, tool: str | None) -> TruncationToolRule | None:
    if tool is None:
        return None
    return next((rule for rule in config.tools if fnmatchcase(tool, rule.match)), None)


# ---------------------------------------------------------------- shared with the compression policy


def live_recorded(replay: Replay) -> np.ndarray:
    """Per row of `replay.base`: the recorded call is still made (not dropped by an earlier policy)."""
    calls = replay.calls
    rows = replay.live & (calls["added_by"] == "").to_numpy()
    mask = np.zeros(replay.base.num_rows, dtype=bool)
    mask[calls["origin"].to_numpy()[rows]] = True
    return mask


def evaluated_calls(replay: Replay, scale: np.ndarray) -> np.ndarray:
    """Per row of `replay.base`: a live recorded call whose content is logged and sums to its reported input."""
    has_content = ~pc.is_null(replay.base["segments"]).to_numpy(zero_copy_only=False)
    evaluated: np.ndarray = live_recorded(replay) & has_content & np.isfinite(scale)
    return evaluated


def recorded_input(replay: Replay) -> np.ndarray:
    """Per row of `replay.base`: the recorded input tokens (0 when unknown)."""
    values: np.ndarray = pc.fill_null(replay.base["input_tokens"], 0).to_numpy().astype(np.float64)
    return values


def removed_input(replay: Replay, scale: np.ndarray) -> np.ndarray:
    """Per row of `replay.base`: billed input tokens its segments no longer send (recount removed × scale)."""
    seg = replay.segments()
    calls = seg["call"].to_numpy()
    gone = np.bincount(calls, weights=(seg["tokens"] - seg["kept"]).to_numpy(), minlength=replay.base.num_rows)
    removed: np.ndarray = np.where(np.isfinite(scale), gone * np.nan_to_num(scale), 0.0)
    return removed


def context_risks(replay: Replay, removed: np.ndarray, evaluated: np.ndarray) -> dict[str, float | int]:
    """Share of the recorded input removed, over the evaluated calls and over the calls it touched (0..1)."""
    recorded = recorded_input(replay)
    affected = evaluated & (removed > 0)
    return {
        "context_removed_share": _share(removed[evaluated].sum(), recorded[evaluated].sum()),
        "context_removed_share_affected": _share(removed[affected].sum(), recorded[affected].sum()),
        "calls_affected_share": _share(float(affected.sum()), float(evaluated.sum())),
        "calls_affected": int(affected.sum()),
    }


def content_gaps(replay: Replay, scale: np.ndarray, consequence: str) -> list[str]:
    """Not-evaluated notes for the live calls whose content is missing or does not add up, with their spend."""
    live = live_recorded(replay)
    has_content = ~pc.is_null(replay.base["segments"]).to_numpy(zero_copy_only=False)
    spend = pc.fill_null(replay.base["cost_total"], 0.0).to_numpy().astype(np.float64)
    total = spend[live].sum()
    notes = []
    gaps = (
        (live & ~has_content, "logged no request content"),
        (live & has_content & ~np.isfinite(scale), "logged content but no input tokens to scale it to"),
    )
    for mask, why in gaps:
        if mask.any():
            notes.append(
                f"{int(mask.sum())} of {int(live.sum())} calls ({_share(spend[mask].sum(), total):.1%} of recorded "
                f"spend) {why}: {consequence}; they are projected as recorded"
            )
    return notes


def _share(part: float, whole: float) -> float:
    return float(part / whole) if whole > 0 else 0.0


# ---------------------------------------------------------------- outcome


def _assumptions(config: TruncationConfig) -> list[str]:
    return [
        "A tool result over its cap keeps exactly the cap in tokens plus a "
        f"{config.marker_tokens}-token truncation note; tokens are counted with the step table's recount tokenizer "
        "and the saving is billed at each call's reported/recounted ratio.",
        "Every later call that re-sends a capped result (same content) sends the capped version.",
        "The agent's later calls and answers are as recorded: the model is assumed not to need the cut part "
        "(the context-removed shares measure that risk).",
        "The recorded cache reads and writes of a shortened call shrink in proportion to its input; enable "
        "prompt_cache to model the cache breaks a changed prefix causes.",
    ]


def _details(
    config: TruncationConfig, seg: pd.DataFrame, cut: np.ndarray, recount_removed: np.ndarray, caps: _ToolCaps
) -> dict[str, Any]:
    """Results capped (distinct contents and segment rows) and the recounted tokens removed, in total and per tool."""
    tool = caps.codes[cut]
    hashes = seg["hash"].to_numpy()[cut]
    width_hash = int(hashes.max(initial=0)) + 1
    distinct = pd.unique(tool * width_hash + hashes) // width_hash
    width = len(caps.names)
    results = np.bincount(distinct, minlength=width)
    rows = np.bincount(tool, minlength=width)
    tokens = np.bincount(tool, weights=recount_removed[cut], minlength=width)
    by_tool = [
        {
            "tool": caps.names[i],
            "keep": caps.keep[i],
            "results_truncated": int(results[i]),
            "segments_truncated": int(rows[i]),
            "recount_tokens_removed": float(tokens[i]),
        }
        for i in sorted(np.flatnonzero(rows).tolist(), key=lambda i: caps.names[i])
    ]
    return {
        "max_tokens": config.max_tokens,
        "keep": config.keep,
        "marker_tokens": config.marker_tokens,
        "results_truncated": int(len(pd.unique(hashes))),
        "segments_truncated": int(cut.sum()),
        "by_tool": by_tool,
    }
