"""What the input tokens are made of, whether the logged usage can be trusted, and what re-sent context costs.

All figures are column operations over the segments of the priced step table, exploded to one row per
segment (never per character or per token):
- calibration: where usage is reported, each call's segment counts are scaled by reported input / recounted
  input, so its segments sum to the reported input exactly (reported usage is the truth; the recount explains
  it); calls billed from the recount have a scale of 1;
- dollars: a call's input cost is split over its segments in prompt order: the first `cache_read_tokens`
  (calibrated) tokens at the call's cache-read rate, the next `cache_write_tokens` at its cache-write rate, the
  rest at its uncached rate, so a cached system prompt costs what it really cost and segments sum to the call;
- reconciliation: per model the ratio reported / recounted input (median, p5, p95) and the calls that disagree;
- context carry: a system prompt or tool result re-sent by later calls of its trace costs again every time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import money
from .attribution import group_ids, llm_calls, share, with_keys
from .money import Exact
from .parsers.segments import INPUT_KINDS, KINDS, OUTPUT, SYSTEM, TOOL_RESULT
from .schema import UsageSource

PLACEHOLDER_MAX_TOKENS = 4
"""A reported input of at most this many tokens ..."""
PLACEHOLDER_MIN_CHARS = 1024
"""... with at least this much input text is a placeholder, not a count."""
UNDER_REPORTED = 0.7
"""Flag a call whose ratio reported / recounted is below this fraction of its model's median ratio."""
OVER_REPORTED = 2.0
"""Flag a call whose ratio is above this multiple of its model's median (images, files and hidden
provider prompts make moderate excesses normal)."""
MIN_CALLS_FOR_MEDIAN = 5
"""Below this many reconciled calls a model's ratios are judged against 1.0 instead of their median."""
CARRIED_KINDS = (SYSTEM, TOOL_RESULT)


@dataclass
class Exploded:
    """One row per segment of the calls that carry content, with calibrated tokens and dollars."""

    calls: pa.Table
    """The LLM calls with segments (priced step-table rows)."""
    parent: np.ndarray
    """Call index (into `calls`) of each segment."""
    kind: np.ndarray
    hash: pa.Array
    tool: pa.Array
    chars: np.ndarray
    tokens: np.ndarray
    """Recounted tokens (the row's tokenizer), uncalibrated."""
    calibrated: np.ndarray
    usd: np.ndarray
    """Input cost (USD) of each input segment, NaN for unpriced calls and for output segments."""
    recounted_input: np.ndarray
    """Per call: recounted input tokens (all input segments)."""
    scale: np.ndarray
    """Per call: reported / recounted input (1 where usage was recounted, NaN where it cannot be formed)."""


def _col(table: pa.Table, name: str, fill: float = np.nan) -> np.ndarray:
    values: np.ndarray = pc.fill_null(pc.cast(table[name], pa.float64()), fill).to_numpy(zero_copy_only=False)
    return values


def explode(table: pa.Table) -> Exploded:
    calls = llm_calls(table)
    calls = calls.filter(pc.is_valid(calls["segments"])).combine_chunks()
    lists = calls["segments"].combine_chunks() if calls.num_rows else pa.array([], calls.schema.field("segments").type)
    flat = pc.list_flatten(lists)
    parent = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    kinds = pc.dictionary_encode(flat.field("kind")) if len(flat) else None
    kind = (
        np.array(kinds.dictionary.to_pylist(), dtype=str)[kinds.indices.to_numpy(zero_copy_only=False)]
        if kinds is not None
        else np.zeros(0, dtype=str)
    )
    tokens = pc.fill_null(flat.field("tokens"), 0).to_numpy(zero_copy_only=False).astype(np.float64)
    chars = pc.fill_null(flat.field("chars"), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    n = calls.num_rows
    is_input = kind != OUTPUT
    recounted = np.bincount(parent[is_input], tokens[is_input], minlength=n)
    reported = _col(calls, "input_tokens")
    is_reported = pc.fill_null(pc.equal(calls["usage_source"], UsageSource.REPORTED.value), False).to_numpy(
        zero_copy_only=False
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(is_reported, reported / recounted, 1.0)
    scale = np.where(np.isfinite(scale), scale, np.nan)
    calibrated = tokens * np.where(np.isnan(scale), 1.0, scale)[parent]
    usd = _input_dollars(calls, parent, is_input, calibrated)
    return Exploded(calls, parent, kind, flat.field("hash"), flat.field("tool"), chars, tokens, calibrated, usd,
                    recounted, scale)  # fmt: skip


_OFFSET_SCALE = float(1 << 30)


def _input_dollars(calls: pa.Table, parent: np.ndarray, is_input: np.ndarray, calibrated: np.ndarray) -> np.ndarray:
    """Each input segment's share of its call's input cost, prefix-aware (cache reads first, then writes)."""
    usd = np.full(len(parent), np.nan)
    if not is_input.any():
        return usd
    read, write = _col(calls, "cache_read_tokens", 0.0), _col(calls, "cache_write_tokens", 0.0)
    total = _col(calls, "input_tokens", 0.0)
    uncached = np.maximum(total - read - write, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_read = np.where(read > 0, _col(calls, "cost_cache_read", 0.0) / read, 0.0)
        rate_write = np.where(write > 0, _col(calls, "cost_cache_write", 0.0) / write, 0.0)
        rate_plain = np.where(uncached > 0, _col(calls, "cost_input", 0.0) / uncached, 0.0)
    priced = ~np.isnan(_col(calls, "cost_total"))
    p, t = parent[is_input], calibrated[is_input]
    # each segment's place in its call's prompt: a running sum in integer 2**-30 tokens, so that it is exact and
    # the same whatever calls come before (a float running sum over the table rounds by what precedes); the
    # table-wide int64 sum may wrap around, a call's own difference of two of its values stays exact
    steps = np.rint(t * _OFFSET_SCALE).astype(np.int64)
    end_units = np.cumsum(steps)
    start_units = end_units - steps
    call_start = np.zeros(len(calls) + 1, dtype=np.int64)
    firsts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    call_start[p[firsts]] = start_units[firsts]
    start = (start_units - call_start[p]) / _OFFSET_SCALE
    end = (end_units - call_start[p]) / _OFFSET_SCALE
    in_read = np.clip(np.minimum(end, read[p]) - start, 0, None)
    in_write = np.clip(np.minimum(end, read[p] + write[p]) - np.maximum(start, read[p]), 0, None)
    plain = np.clip(t - in_read - in_write, 0, None)
    dollars = in_read * rate_read[p] + in_write * rate_write[p] + plain * rate_plain[p]
    usd[is_input] = np.where(priced[p], dollars, np.nan)
    return usd


# ---------------------------------------------------------------- composition


def composition(x: Exploded, by: list[str]) -> list[dict[str, Any]]:
    """Tokens and dollars by segment kind, per group of `by` (one group with an empty key when `by` is empty).

    Input kinds are calibrated recounts and their dollars; `output` is the calls' output tokens and cost.
    """
    calls = x.calls
    keyed, key_columns = with_keys(calls, by)
    codes, first_call = group_ids(keyed, key_columns)
    is_input = x.kind != OUTPUT
    n = calls.num_rows
    output_raw = np.bincount(x.parent[~is_input], x.tokens[~is_input], minlength=n)
    group = np.concatenate([codes[x.parent[is_input]], codes])
    kind = np.concatenate([x.kind[is_input], np.full(n, OUTPUT)])
    tokens = np.concatenate([x.calibrated[is_input], _col(calls, "output_tokens", 0.0)])
    raw = np.concatenate([x.tokens[is_input], output_raw])
    usd = np.concatenate([x.usd[is_input], _col(calls, "cost_output")])  # NaN: not priced
    cells, first = group_ids(pa.table({"group": group, "kind": kind}), ["group", "kind"])
    token_sums, raw_sums = money.group_sums(cells, tokens, len(first)), money.group_sums(cells, raw, len(first))
    usd_sums = money.group_sums(cells, usd, len(first))
    priced = np.bincount(cells, weights=~np.isnan(usd), minlength=len(first))
    per_group: dict[int, dict[str, KindSums]] = {}
    for cell, row in enumerate(first.tolist()):
        tokens_sum, raw_sum = token_sums[cell], raw_sums[cell]
        assert tokens_sum is not None and raw_sum is not None  # never missing
        sums = (tokens_sum, raw_sum, usd_sums[cell], int(priced[cell]))
        per_group.setdefault(int(group[row]), {})[str(kind[row])] = sums
    counts = np.bincount(codes, minlength=len(first_call))
    groups: list[dict[str, Any]] = []
    for code, kinds in per_group.items():
        segments, input_tokens, input_usd = segment_summary(kinds)
        row = int(first_call[code])
        groups.append(
            {
                "key": {k: keyed[c][row].as_py() for k, c in zip(by, key_columns, strict=True)},
                "calls": int(counts[code]),
                "input_tokens": round(input_tokens.value),
                "input_cost_usd": input_usd.value if input_usd is not None else None,
                "segments": segments,
            }
        )
    groups.sort(key=lambda g: (-(g["input_cost_usd"] or 0.0), -g["input_tokens"], str(list(g["key"].values()))))
    return groups


KindSums = tuple[Exact, Exact, Exact | None, int]
"""Sums over the segments of one kind: calibrated tokens, recounted tokens, dollars (None when none is priced), and
the priced segments (`output`: the calls' output tokens and cost)."""


def segment_summary(kinds: dict[str, KindSums]) -> tuple[list[dict[str, Any]], Exact, Exact | None]:
    """The `segments` of a composition from each kind's exact sums (shares of exact sums: the same figures however
    the calls were split into parts), the input tokens, and the input dollars (None when no input is priced)."""
    inputs = [kinds[k] for k in INPUT_KINDS if k in kinds]
    input_tokens = sum((r[0] for r in inputs), Exact(0))
    priced = [r[2] for r in inputs if r[2] is not None and r[3]]
    input_usd = sum(priced, Exact(0)) if priced else None
    output_usd = kinds[OUTPUT][2] if OUTPUT in kinds else None
    all_usd = (input_usd or Exact(0)) + (output_usd or Exact(0))
    segments = [
        {
            "kind": k,
            "tokens": round(kinds[k][0].value),
            "recounted_tokens": round(kinds[k][1].value),
            "share": share(kinds[k][0], input_tokens) if k != OUTPUT else None,
            "cost_usd": usd.value if (usd := kinds[k][2]) is not None and kinds[k][3] else None,
            "cost_share": share(kinds[k][2], all_usd),
        }
        for k in KINDS
        if k in kinds
    ]
    return segments, input_tokens, input_usd


def exact(values: np.ndarray) -> Exact:
    """The exact sum of `values` (zero when there is none)."""
    return money.exact_sum(values) or Exact(0)


# ---------------------------------------------------------------- reconciliation


def _ratios(x: Exploded) -> tuple[np.ndarray, np.ndarray]:
    """Per call: the ratio reported / recounted (NaN when not reported or nothing recounted) and input chars."""
    is_input = x.kind != OUTPUT
    chars = np.bincount(x.parent[is_input], x.chars[is_input], minlength=x.calls.num_rows)
    reported = pc.fill_null(pc.equal(x.calls["usage_source"], UsageSource.REPORTED.value), False)
    ratio = np.where(reported.to_numpy(zero_copy_only=False), x.scale, np.nan)
    return ratio, chars


MAX_LISTED_MISMATCHES = 1000
"""Outlier calls listed (in reading order); all of them are counted."""


def reconciliation(x: Exploded) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Per model: reported / recounted input ratio stats; the first outlier calls; how many there are."""
    ratio, chars = _ratios(x)
    calls = x.calls
    reported = _col(calls, "input_tokens")
    models = pc.fill_null(calls["model"], "(none)").to_numpy(zero_copy_only=False).astype(str)
    tokenizers = pc.fill_null(calls["tokenizer"], "").to_numpy(zero_copy_only=False).astype(str)
    recounted_calls = pc.fill_null(pc.equal(calls["usage_source"], UsageSource.RECOUNTED.value), False)
    recounted_mask = recounted_calls.to_numpy(zero_copy_only=False)
    placeholder = (reported <= PLACEHOLDER_MAX_TOKENS) & (chars >= PLACEHOLDER_MIN_CHARS) & ~np.isnan(ratio)
    per_model: list[dict[str, Any]] = []
    reference = np.ones(len(ratio))
    for model in sorted(set(models.tolist())):
        mask = models == model
        usable = mask & ~np.isnan(ratio) & ~placeholder
        values = ratio[usable]
        median = float(np.median(values)) if len(values) else None
        if median is not None and len(values) >= MIN_CALLS_FOR_MEDIAN:
            reference[mask] = median
        per_model.append(
            {
                "model": model,
                "tokenizer": ", ".join(sorted({t for t in tokenizers[mask].tolist() if t})),
                "calls": int(mask.sum()),
                "reconciled_calls": int(len(values)),
                "recounted_usage_calls": int((mask & recounted_mask).sum()),
                "reported_input_tokens": int(np.nansum(np.where(usable, reported, 0))),
                "recounted_input_tokens": int(x.recounted_input[usable].sum()),
                "ratio_median": median,
                "ratio_p5": float(np.percentile(values, 5)) if len(values) else None,
                "ratio_p95": float(np.percentile(values, 95)) if len(values) else None,
            }
        )
    with np.errstate(invalid="ignore"):
        under = ~placeholder & (ratio < UNDER_REPORTED * reference)
        over = ~placeholder & (ratio > OVER_REPORTED * reference)
    all_flagged = np.flatnonzero(placeholder | under | over)
    flagged = all_flagged[:MAX_LISTED_MISMATCHES]
    reasons = np.where(placeholder, "placeholder_usage", np.where(under, "under_reported", "over_reported"))
    fields = calls.select(["source", "line", "trace_id", "step", "agent", "model"]).take(pa.array(flagged)).to_pylist()
    mismatches = [
        {
            **row,
            "finding": "usage_mismatch",
            "reason": str(reasons[i]),
            "reported_input_tokens": int(reported[i]),
            "recounted_input_tokens": int(x.recounted_input[i]),
            "input_chars": int(chars[i]),
            "ratio": float(ratio[i]),
            "expected_ratio": float(reference[i]),
        }
        for row, i in zip(fields, flagged.tolist(), strict=True)
    ]
    return per_model, mismatches, len(all_flagged)


# ---------------------------------------------------------------- context carry


def _carried(x: Exploded) -> np.ndarray:
    """Segments (system prompts and tool results) whose content an earlier call of the same trace already sent.

    The k-th copy of a text within a call is matched with the k-th copy in earlier calls, so two identical tool
    results of one trace are two items, each carried from its own first appearance.
    """
    carried = np.zeros(len(x.parent), dtype=bool)
    candidates = np.flatnonzero(np.isin(x.kind, CARRIED_KINDS))
    if not len(candidates):
        return carried
    trace = pc.dictionary_encode(x.calls["trace_id"]).combine_chunks().indices.to_numpy(zero_copy_only=False)
    hashes = pc.dictionary_encode(x.hash.take(pa.array(candidates)))
    h = hashes.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    p = x.parent[candidates]
    order = np.lexsort((p, h))
    same = np.r_[False, (h[order][1:] == h[order][:-1]) & (p[order][1:] == p[order][:-1])]
    run_start = np.maximum.accumulate(np.where(~same, np.arange(len(order)), 0))
    copy = np.empty(len(order), dtype=np.int64)
    copy[order] = np.arange(len(order)) - run_start
    t = trace[p]
    order = np.lexsort((p, copy, h, t))
    first = np.r_[True, (t[order][1:] != t[order][:-1]) | (h[order][1:] != h[order][:-1])
                  | (copy[order][1:] != copy[order][:-1])]  # fmt: skip
    carried[candidates[order]] = ~first
    return carried


def context_carry(x: Exploded, top: int) -> dict[str, Any]:
    """Tokens and dollars spent re-sending system prompts and tool results, overall, per tool, per agent and
    per item (the costliest `top`)."""
    carried = _carried(x)
    is_input = x.kind != OUTPUT
    total_tokens, total_usd = exact(x.calibrated[is_input]).value, exact(x.usd[is_input]).value
    agents = pc.fill_null(x.calls["agent"], "(none)").to_numpy(zero_copy_only=False).astype(str)[x.parent]
    tools = pc.fill_null(x.tool, "(unknown)").to_numpy(zero_copy_only=False).astype(str)

    def summary(mask: np.ndarray) -> dict[str, Any]:
        usd = money.exact_sum(x.usd[mask])  # None when no segment is priced
        return {
            "resends": int(mask.sum()),
            "tokens": round(exact(x.calibrated[mask]).value),
            "cost_usd": usd.value if usd is not None else None,
        }

    def grouped(mask: np.ndarray, labels: np.ndarray, name: str) -> list[dict[str, Any]]:
        rows = [{name: label, **summary(mask & (labels == label))} for label in sorted(set(labels[mask].tolist()))]
        rows.sort(key=lambda r: (-(r["cost_usd"] or 0.0), -r["tokens"], r[name]))
        return rows

    tool_results = carried & (x.kind == TOOL_RESULT)
    by_agent = [
        {"kind": kind, **row} for kind in CARRIED_KINDS for row in grouped(carried & (x.kind == kind), agents, "agent")
    ]
    carried_all = summary(carried)
    return {
        **carried_all,
        "share_of_input_tokens": carried_all["tokens"] / total_tokens if total_tokens else None,
        "share_of_input_cost": (carried_all["cost_usd"] or 0.0) / total_usd if total_usd else None,
        "by_kind": [{"kind": k, **summary(carried & (x.kind == k))} for k in CARRIED_KINDS],
        "by_tool": grouped(tool_results, tools, "tool"),
        "by_agent": by_agent,
        "top_items": _top_items(x, carried, top),
    }


def _top_items(x: Exploded, carried: np.ndarray, top: int) -> list[dict[str, Any]]:
    """The re-sent contents that cost most, each with where it was first sent."""
    idx = np.flatnonzero(carried)
    if not len(idx) or top <= 0:
        return []
    hashes = x.hash.take(pa.array(idx)).to_numpy(zero_copy_only=False).astype(str)
    usd = np.nan_to_num(x.usd[idx])
    items: dict[str, list[int]] = {}
    for position, h in enumerate(hashes.tolist()):
        items.setdefault(h, []).append(position)
    ranked = sorted(items.items(), key=lambda kv: (-usd[kv[1]].sum(), -x.calibrated[idx[kv[1]]].sum(), kv[0]))
    all_hashes = x.hash.to_numpy(zero_copy_only=False).astype(str)
    out = []
    for h, positions in ranked[:top]:
        first_segment = int(np.flatnonzero(all_hashes == h)[0])
        call = x.calls.slice(int(x.parent[first_segment]), 1).select(["source", "line", "trace_id", "agent"])
        origin = call.to_pylist()[0]
        segs = idx[positions]
        out.append(
            {
                "hash": h,
                "kind": str(x.kind[first_segment]),
                "tool": x.tool[first_segment].as_py(),
                "tokens": round(float(x.calibrated[first_segment])),
                "chars": int(x.chars[first_segment]),
                "resends": len(positions),
                "carried_tokens": round(float(x.calibrated[segs].sum())),
                "carried_cost_usd": float(usd[positions].sum()) if not np.isnan(x.usd[segs]).all() else None,
                "first_sent": f"{origin['source']}:{origin['line']}",
                "agent": origin["agent"],
            }
        )
    return out


# ---------------------------------------------------------------- the whole analysis


@dataclass
class Composition:
    """Everything `costscope tokens` shows (and the summary `analyze` adds when content is present)."""

    calls: int
    calls_with_content: int
    tokenizers: list[str]
    groups: list[dict[str, Any]]
    overall: dict[str, Any]
    reconciliation: list[dict[str, Any]]
    mismatches: list[dict[str, Any]]
    mismatch_count: int
    carry: dict[str, Any]
    dedup: dict[str, Any]
    by: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "calls_with_content": self.calls_with_content,
            "tokenizers": self.tokenizers,
            "by": self.by,
            "overall": self.overall,
            "groups": self.groups,
            "reconciliation": self.reconciliation,
            "usage_mismatch_count": self.mismatch_count,
            "usage_mismatches": self.mismatches,
            "context_carry": self.carry,
            "dedup": self.dedup,
        }

    def summary(self) -> dict[str, Any]:
        """The short form `analyze` reports: composition overall, carry totals, mismatch count."""
        carry = {k: v for k, v in self.carry.items() if k not in ("by_agent", "top_items", "by_tool")}
        return {
            "calls_with_content": self.calls_with_content,
            "tokenizers": self.tokenizers,
            "segments": self.overall["segments"],
            "context_carry": carry,
            "usage_mismatches": self.mismatch_count,
        }


def _dedup(x: Exploded) -> dict[str, Any]:
    """How much re-sent content there is: segment occurrences vs distinct contents (by hash), in characters."""
    if not len(x.parent):
        return {"segments": 0, "distinct_segments": 0, "chars": 0, "distinct_chars": 0, "ratio": None}
    table = pa.table({"hash": x.hash, "chars": pa.array(x.chars)})
    distinct = table.group_by("hash", use_threads=False).aggregate([("chars", "max")])
    distinct_chars = int(pc.sum(distinct["chars_max"]).as_py() or 0)
    chars = int(x.chars.sum())
    return {
        "segments": len(x.parent),
        "distinct_segments": distinct.num_rows,
        "chars": chars,
        "distinct_chars": distinct_chars,
        "ratio": chars / distinct_chars if distinct_chars else None,
    }


def analyze_composition(table: pa.Table, by: list[str] | None = None, top: int = 10) -> Composition | None:
    """The composition of the priced step table's LLM calls that carry content; None when none does."""
    x = explode(table)
    if x.calls.num_rows == 0:
        return None
    per_model, mismatches, mismatch_count = reconciliation(x)
    overall = composition(x, [])[0]
    tokenizers = sorted({t for t in x.calls["tokenizer"].to_pylist() if t})
    return Composition(
        calls=llm_calls(table).num_rows,
        calls_with_content=x.calls.num_rows,
        tokenizers=tokenizers,
        groups=composition(x, list(by or [])) if by else [],
        overall=overall,
        reconciliation=per_model,
        mismatches=mismatches,
        mismatch_count=mismatch_count,
        carry=context_carry(x, top),
        dedup=_dedup(x),
        by=list(by or []),
    )
