"""Bill latency-tolerant calls at the batch API discount; group small calls sharing a prompt to pay it once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import Field

from ..batch_terms import BATCH_TERMS, BATCH_TIER
from ..pricing import UNDATED_PRICE_TIME, PriceBook
from ..steps import matching
from .policy import Settings
from .replay import Replay

NAME = "batching"
DEPENDENT_KINDS = ("history", "tool_result")
"""Segment kinds that show a call re-sends what earlier calls of its trace said or fetched."""
SHARED_KINDS = ("tools", "system")
"""Segment kinds of the shared prompt a group of calls sends once."""

CACHE_COLUMNS = ("cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens")

Patterns = str | list[str]


class BatchingWhen(Settings):
    """Which calls one rule selects: every condition given must hold (none given: every call)."""

    agent: Patterns | None = Field(default=None, description="Agent names (glob patterns, case-sensitive); any.")
    operation: Patterns | None = Field(default=None, description="Operation names (glob patterns); any.")
    tenant: Patterns | None = Field(default=None, description="Tenant names (glob patterns); any.")
    provider: Patterns | None = Field(default=None, description="The call's current provider (glob patterns); any.")
    model: Patterns | None = Field(default=None, description="The call's current model (glob patterns); any.")


class BatchingConfig(Settings):
    """Settings of the batching policy."""

    when: list[BatchingWhen] = Field(
        default_factory=list,
        description="Rules selecting the latency-tolerant calls; a call matching any rule is batched. Empty: every "
        "call (agent loops still excluded, see `allow_agent_loops`).",
    )
    allow_agent_loops: bool = Field(
        default=False,
        description="Also batch the calls of agent loops (traces where a later call re-sends an earlier call's "
        "history or tool results): every turn then waits for its batch. Default: such calls are skipped.",
    )
    group_size: int | None = Field(
        default=None,
        ge=2,
        description="Group up to this many selected calls that share their prompt (same tools and system segments, "
        "model and tenant) into one request that sends the shared prompt once; null: no grouping.",
    )
    group_window_s: float | None = Field(
        default=3600.0,
        gt=0,
        description="Calls are grouped only within the same window of this many seconds (windows follow each other "
        "from the first such call); null: one window over all the data.",
    )
    group_max_tokens: int = Field(
        default=2000,
        ge=1,
        description="Only small calls are grouped: their own input (without the shared prompt) plus their output, "
        "in tokens, is at most this.",
    )


Config = BatchingConfig


# ---------------------------------------------------------------------------------------------- batch prices


def batch_pricing(book: PriceBook, calls: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Per call of `rows`: `price data` (the price data has batch rates at its date), `batch terms` (the price book
    applies the provider's discount from BATCH_TERMS) or None (the provider offers no batch API costscope knows of)."""
    out = np.full(len(rows), None, dtype=object)
    if not len(rows):
        return out
    start = calls["start"].to_numpy()[rows]
    keys = pd.DataFrame(
        {
            "provider": calls["provider"].to_numpy(dtype=object)[rows],
            "model": calls["model"].to_numpy(dtype=object)[rows],
            "day": np.where(np.isnan(start), -1, np.floor(np.nan_to_num(start) / 86_400e6)).astype(np.int64),
        }
    )
    codes = keys.groupby(["provider", "model", "day"], sort=False, dropna=False).ngroup().to_numpy()
    first = np.unique(codes, return_index=True)[1]
    verdicts = np.empty(len(first), dtype=object)
    for code, row in zip(codes[first], first, strict=True):
        provider, model, day = keys.iloc[row]
        provider = None if pd.isna(provider) else provider
        when = UNDATED_PRICE_TIME if day < 0 else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=int(day))
        verdicts[code] = _verdict(book, provider, None if pd.isna(model) else model, when)
    out[:] = verdicts[codes]
    return out


def _verdict(book: PriceBook, provider: str | None, model: str | None, when: datetime) -> str | None:
    if model is not None:
        priced = book.resolve(provider, model, BATCH_TIER, when)
        standard = book.resolve(provider, model, None, when)
        if priced is not None and standard is not None and priced.rates != standard.rates and not priced.batch_terms:
            return "price data"
    return "batch terms" if (provider or "") in BATCH_TERMS else None


# ---------------------------------------------------------------------------------------------- selection


def selected(rules: list[BatchingWhen], calls: pd.DataFrame) -> np.ndarray:
    """Calls that match any rule (all calls when there is none)."""
    if not rules:
        return np.ones(len(calls), dtype=bool)
    out = np.zeros(len(calls), dtype=bool)
    for rule in rules:
        mask = np.ones(len(calls), dtype=bool)
        for column in ("agent", "operation", "tenant", "provider", "model"):
            patterns = getattr(rule, column)
            if patterns is not None:
                values = pa.chunked_array(
                    [pa.array(calls[column].to_numpy(dtype=object), pa.string(), from_pandas=True)]
                )
                mask &= matching(values, tuple([patterns] if isinstance(patterns, str) else patterns))
        out |= mask
    return out


def trace_codes(calls: pd.DataFrame) -> np.ndarray:
    """Per call: its trace as an integer (a call without trace id is a trace of its own)."""
    codes, uniques = pd.factorize(calls["trace_id"].to_numpy(dtype=object), use_na_sentinel=True)
    alone = codes < 0
    codes = codes.astype(np.int64)
    codes[alone] = len(uniques) + np.arange(int(alone.sum()))
    return codes


def agent_loop_calls(replay: Replay) -> np.ndarray:
    """Per call: it belongs to an agent loop, a trace of several calls where a later call depends on an earlier one.

    A later call depends on the earlier ones when its request re-sends history or tool results, or when it logged
    no request content (unknown: treated as dependent). The first call of a trace and every call of a one-call
    trace never make a loop."""
    calls = replay.calls
    codes = trace_codes(calls)
    size = np.bincount(codes)[codes]
    later = pd.Series(codes).groupby(codes).cumcount().to_numpy() > 0
    seg = replay.segments()
    dependent_seg = np.isin(seg["kind"].to_numpy(), DEPENDENT_KINDS)
    resends = np.bincount(seg["call"].to_numpy()[dependent_seg], minlength=replay.base.num_rows) > 0
    origin = calls["origin"].to_numpy()
    dependent = later & (~calls["has_content"].to_numpy(dtype=bool) | resends[origin])
    loop_trace = np.bincount(codes, weights=dependent.astype(np.float64)) > 0
    loops: np.ndarray = loop_trace[codes] & (size > 1)
    return loops


# ---------------------------------------------------------------------------------------------- grouping


@dataclass
class _Grouping:
    groups: int = 0
    calls_grouped: int = 0
    input_tokens_removed: float = 0.0
    without_content: int = 0
    without_shared_prompt: int = 0
    too_large: int = 0
    without_time: int = 0


def _shared_prompt(replay: Replay) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `base`: the shared prompt's identity (0: none) and its kept recount tokens.

    The shared prompt is the leading run of tools and system segments; two calls share it when the same contents
    come in the same order (exact: no hashing of hashes)."""
    n = replay.base.num_rows
    seg = replay.segments()
    call, pos = seg["call"].to_numpy(), seg["pos"].to_numpy()
    shared_kind = np.isin(seg["kind"].to_numpy(), SHARED_KINDS)
    first_other = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_other, call[~shared_kind], pos[~shared_kind])
    prefix = shared_kind & (pos < first_other[call])
    tokens = np.bincount(call[prefix], weights=seg["kept"].to_numpy()[prefix], minlength=n)
    length = np.bincount(call[prefix], minlength=n).astype(np.int64)
    key = np.zeros(n, dtype=np.int64)
    p_call, p_hash = call[prefix], seg["hash"].to_numpy()[prefix]
    p_depth = pd.Series(p_call).groupby(p_call).cumcount().to_numpy()
    width = int(p_hash.max()) + 2 if len(p_hash) else 1
    for depth in range(int(length.max()) if n else 0):
        at = p_depth == depth
        rows = p_call[at]
        combined = key[rows] * width + p_hash[at] + 1
        key[rows] = pd.factorize(combined)[0].astype(np.int64) + 1
    identity = np.where(length > 0, pd.factorize(length * (n + 2) + key)[0] + 1, 0)
    return identity.astype(np.int64), tokens


def _group(config: BatchingConfig, replay: Replay, rows: np.ndarray) -> _Grouping:
    """Group the calls of `rows` N at a time per (shared prompt, provider, model, service tier, tenant, window) in
    time order; every call of a group but the first stops sending the shared prompt (its billed share removed)."""
    assert config.group_size is not None
    calls = replay.calls
    out = _Grouping()
    recorded = rows & (calls["added_by"] == "").to_numpy()
    has_content = recorded & calls["has_content"].to_numpy(dtype=bool)
    out.without_content = int((recorded & ~has_content).sum())
    origin = calls["origin"].to_numpy()
    identity, shared_recount = _shared_prompt(replay)
    scale = np.nan_to_num(replay.content_scale())
    shared = shared_recount[origin] * scale[origin]
    inp = calls["input_tokens"].to_numpy()
    own = inp - shared + np.nan_to_num(calls["output_tokens"].to_numpy())
    start = calls["start"].to_numpy()
    with_prompt = has_content & (identity[origin] > 0) & np.isfinite(inp)
    out.without_shared_prompt = int((has_content & ~with_prompt).sum())
    small = with_prompt & (own <= config.group_max_tokens)
    out.too_large = int((with_prompt & ~small).sum())
    timed = small & np.isfinite(start)
    out.without_time = int((small & ~timed).sum())
    members = np.flatnonzero(timed)
    if len(members) < 2:
        return out
    frame = pd.DataFrame(
        {
            "prompt": identity[origin[members]],
            "provider": calls["provider"].to_numpy(dtype=object)[members],
            "model": calls["model"].to_numpy(dtype=object)[members],
            "tier": calls["service_tier"].to_numpy(dtype=object)[members],
            "tenant": calls["tenant"].to_numpy(dtype=object)[members],
            "start": start[members],
            "row": members,
        }
    )
    frame["key"] = frame.groupby(["prompt", "provider", "model", "tier", "tenant"], sort=False, dropna=False).ngroup()
    if config.group_window_s is None:
        frame["window"] = 0
    else:
        first = frame.groupby("key")["start"].transform("min")
        frame["window"] = np.floor((frame["start"] - first) / (config.group_window_s * 1e6)).astype(np.int64)
    frame = frame.sort_values(["key", "window", "start", "row"], kind="stable")
    rank = frame.groupby(["key", "window"], sort=False).cumcount().to_numpy()
    frame["group"] = rank // config.group_size
    size = frame.groupby(["key", "window", "group"], sort=False)["row"].transform("size").to_numpy()
    grouped = size >= 2
    out.groups = int(((rank % config.group_size == 0) & grouped).sum())
    out.calls_grouped = int(grouped.sum())
    followers = frame["row"].to_numpy()[grouped & (rank % config.group_size > 0)]
    out.input_tokens_removed = float(_remove_input(calls, followers, shared[followers]).sum())
    return out


def _remove_input(calls: pd.DataFrame, rows: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Take `tokens` of billed input off each call of `rows`: from its cache reads first (the shared prompt is the
    cached prefix), then its cache writes, then uncached input. Returns the tokens removed (unknown buckets stay
    unknown)."""
    inp = calls["input_tokens"].to_numpy()[rows]
    removed: np.ndarray = np.minimum(tokens, inp)
    read, write, write_1h = (calls[name].to_numpy()[rows] for name in CACHE_COLUMNS)
    from_read = np.minimum(removed, np.nan_to_num(read))
    from_write = np.minimum(removed - from_read, np.nan_to_num(write))
    calls.loc[rows, "input_tokens"] = inp - removed
    calls.loc[rows, "cache_read_tokens"] = read - from_read
    calls.loc[rows, "cache_write_tokens"] = write - from_write
    calls.loc[rows, "cache_write_1h_tokens"] = np.minimum(write_1h, write - from_write)
    calls.loc[rows, "content_changed"] = True
    return removed


# ---------------------------------------------------------------------------------------------- apply


def apply(config: BatchingConfig, replay: Replay) -> None:
    """Move the selected, batchable calls to the batch tier (priced at batch rates), then group small ones."""
    outcome = replay.outcomes[NAME]
    calls = replay.calls
    live = replay.live
    matched = live & selected(config.when, calls)
    already = matched & (calls["service_tier"].to_numpy(dtype=object) == BATCH_TIER)
    loops = agent_loop_calls(replay)
    skipped_loop = matched & ~already & loops & (not config.allow_agent_loops)
    candidates = np.flatnonzero(matched & ~already & ~skipped_loop)
    pricing = batch_pricing(replay.book, calls, candidates)
    known = pd.notna(pricing)
    batched, unsupported = candidates[known], candidates[~known]
    calls.loc[batched, "service_tier"] = BATCH_TIER
    grouping = _group(config, replay, matched & ~skipped_loop) if config.group_size is not None else None
    counts = {
        "matched": int(matched.sum()),
        "batched": len(batched),
        "already_batch": int(already.sum()),
        "skipped_agent_loop": int(skipped_loop.sum()),
        "batched_in_agent_loops": int(loops[batched].sum()),
        "live": int(live.sum()),
    }
    outcome.assumptions.extend(_assumptions(config, grouping))
    outcome.not_evaluated.extend(_not_evaluated(calls, unsupported, grouping))
    outcome.risks.update(_risks(counts, grouping))
    outcome.details.update(_details(config, counts, pricing, calls, candidates, grouping))


def _calls(n: int) -> str:
    return f"{n} call" if n == 1 else f"{n} calls"


def _share(part: float, whole: float) -> float:
    return float(part / whole) if whole > 0 else 0.0


def _assumptions(config: BatchingConfig, grouping: _Grouping | None) -> list[str]:
    out = [
        "Batched calls return within 24 hours (usually under one) instead of seconds: only work that can wait "
        "(offline classification, evaluations, nightly jobs) should match the rules.",
        "A batch call is priced at the price data's batch rates where genai-prices has them for its model and date, "
        "else at its provider's published batch discount: Anthropic 50% on everything (cache reads and writes "
        "included), OpenAI 50% on input and output, Gemini 50% on input and output with the cache rate not halved. "
        "Where a price file sets the rates, the discount applies on top of them.",
        "Cache reads and writes are kept as the replay had them; providers serve cache hits inside batches on a best-"
        "effort basis (Anthropic quotes 30-98%), so the cached share of batched calls may be lower.",
        "An agent loop is a trace with several calls where a later call re-sends the history or tool results of "
        "earlier ones (or logged no content); "
        + (
            "its calls are batched too (allow_agent_loops), each turn waiting for its batch."
            if config.allow_agent_loops
            else "its calls are not batched: each turn needs the previous answer at once."
        ),
    ]
    if grouping is not None:
        out.append(
            f"Up to {config.group_size} small calls with the same tools and system prompt, model and tenant"
            + (f" within {config.group_window_s:g} s" if config.group_window_s is not None else "")
            + " are sent as one request: the shared prompt is paid once (removed from every call of a group but the "
            "first, from its cache reads first), each item's own input and output are unchanged, and items are "
            "assumed not to affect each other's answers. The projected table keeps one row per item."
        )
    return out


def _not_evaluated(calls: pd.DataFrame, unsupported: np.ndarray, grouping: _Grouping | None) -> list[str]:
    out = []
    if len(unsupported):
        providers = pd.Series(calls["provider"].to_numpy(dtype=object)[unsupported]).fillna("(no provider)")
        counts = providers.value_counts()
        listed = ", ".join(f"{name}: {_calls(int(counts[name]))}" for name in sorted(counts.index))
        out.append(
            f"{len(unsupported)} selected calls were not batched: their provider has no batch API costscope knows of "
            f"and the price data has no batch rates for them: {listed}"
        )
    if grouping is not None and grouping.without_content:
        out.append(
            f"{grouping.without_content} selected calls logged no request content: whether they share a prompt is "
            "unknown, so they were not grouped"
        )
    return out


def _risks(counts: dict[str, int], grouping: _Grouping | None) -> dict[str, float | int]:
    risks: dict[str, float | int] = {
        "calls_batched_share": _share(counts["batched"], counts["live"]),
        "agent_loop_calls_batched": counts["batched_in_agent_loops"],
    }
    if grouping is not None:
        risks["calls_grouped_share"] = _share(grouping.calls_grouped, counts["live"])
    return risks


def _details(
    config: BatchingConfig,
    counts: dict[str, int],
    pricing: np.ndarray,
    calls: pd.DataFrame,
    candidates: np.ndarray,
    grouping: _Grouping | None,
) -> dict[str, Any]:
    unsupported = candidates[pd.isna(pricing)]
    providers = pd.Series(calls["provider"].to_numpy(dtype=object)[unsupported], dtype=object).fillna("(no provider)")
    terms_providers = set(calls["provider"].to_numpy(dtype=object)[candidates[pricing == "batch terms"]].tolist())
    details: dict[str, Any] = {
        "calls_matched": counts["matched"],
        "calls_batched": counts["batched"],
        "calls_already_batch": counts["already_batch"],
        "calls_skipped_agent_loop": counts["skipped_agent_loop"],
        "calls_no_batch_api": int(len(unsupported)),
        "no_batch_api_by_provider": {str(k): int(v) for k, v in sorted(providers.value_counts().items())},
        "batch_priced_by": {
            "price data": int((pricing == "price data").sum()),
            "batch terms": int((pricing == "batch terms").sum()),
        },
        "batch_terms_used": {name: BATCH_TERMS[name].source for name in sorted(terms_providers)},
        "allow_agent_loops": config.allow_agent_loops,
    }
    if grouping is not None:
        details["grouping"] = {
            "group_size": config.group_size,
            "group_window_s": config.group_window_s,
            "group_max_tokens": config.group_max_tokens,
            "groups": grouping.groups,
            "calls_grouped": grouping.calls_grouped,
            "requests_merged": grouping.calls_grouped - grouping.groups,
            "input_tokens_removed": round(grouping.input_tokens_removed, 3),
            "calls_without_content": grouping.without_content,
            "calls_without_shared_prompt": grouping.without_shared_prompt,
            "calls_too_large": grouping.too_large,
            "calls_without_time": grouping.without_time,
        }
    return details
