"""Provider prompt caching replayed from the calls' times and request prefixes: cache reads and writes per call.

Every live call that logged its request is cut into a prefix of content blocks (its segments in prompt order:
tools, system, then the messages; the `framing` segment, a few tokens of chat overhead per message that the
recount puts last, is left out of the prefix). Each block boundary carries a hash of the whole prefix up to it and
the billed tokens up to it (recounted tokens x the call's reported/recounted scale). The calls are then walked in
time order against each provider's rules (`cache_rules`): Anthropic's explicit breakpoints, 20-block lookback,
minimums, 5m/1h TTL refreshed on use and entries readable only once the writing call has answered; OpenAI's and
Gemini's automatic prefix caching; Gemini's explicit caches with their storage fee. The projected reads and
writes replace the calls' cache columns (input tokens unchanged); the engine prices them with genai-prices.

The policy uses the calls as the earlier policies left them: truncated or summarized content changes the prefix
(a segment shortened to `kept` tokens is new content; a run of removed segments is one new block, the summary),
and a routed call looks for its entries under its new model, whose cache is cold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from ..pricing import price_table
from . import cache_rules as rules
from .policy import Settings
from .replay import Replay

NAME = "prompt_cache"
CACHE_COLUMNS = ("cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens")
Breakpoint = Literal["tools", "system", "last_message"]


class PromptCacheAnthropic(Settings):
    """Anthropic (and Claude on Bedrock/Vertex): explicit `cache_control` breakpoints."""

    ttl: Literal["5m", "1h", "recorded"] = Field(
        default="recorded",
        description="Lifetime of the entries the requests write: 5m (1.25x input to write), 1h (2x), or recorded: "
        "1h for the traces whose recorded calls wrote 1-hour entries, else 5m (the API default).",
    )
    breakpoints: list[Breakpoint] = Field(
        default=["system", "last_message"],
        max_length=rules.ANTHROPIC_MAX_BREAKPOINTS,
        description="Where each request puts a cache_control breakpoint: after the tool definitions (tools), after "
        "the system prompt (system), on the last message (last_message, what automatic caching does). Empty: no "
        "caching.",
    )

    agents: Literal["all", "recorded"] | list[str] = Field(
        default="all",
        description="Whose requests carry the breakpoints: all agents, the agents whose recorded calls used the "
        "cache (recorded: caching is opt-in on Anthropic, so the others sent none), or a list of agent names.",
    )

    @field_validator("breakpoints")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a breakpoint position is listed twice")
        return value


class PromptCacheOpenAI(Settings):
    """OpenAI (and Azure OpenAI): automatic caching of prefixes from 1,024 tokens."""

    retention: Literal["in_memory", "24h"] = Field(
        default="in_memory",
        description="in_memory: a prefix stays cached while used at least every in_memory_minutes, one hour at "
        "most; 24h: extended retention (prompt_cache_retention='24h'), up to 24 hours.",
    )
    in_memory_minutes: float = Field(
        default=rules.OPENAI_IN_MEMORY_IDLE_MINUTES,
        gt=0,
        le=60,
        description="Inactivity after which an in-memory prefix is evicted (minutes; the docs say 5 to 10).",
    )


class PromptCacheGemini(Settings):
    """Gemini: implicit caching (2.5 and later) and optional explicit caches (`cachedContents`)."""

    implicit_minutes: float = Field(
        default=rules.GEMINI_IMPLICIT_IDLE_MINUTES,
        gt=0,
        description="How long an implicitly cached prefix survives without use (minutes; undocumented by Google, "
        "an assumption).",
    )
    explicit: bool = Field(
        default=False,
        description="Also create an explicit cache of each request's tools + system prompt; its storage is billed "
        "per token-hour (reported in the details, not in the calls' cost).",
    )
    explicit_ttl_minutes: float = Field(
        default=60.0, gt=0, description="TTL of an explicit cache, extended by each use (minutes; API default 1h)."
    )


class PromptCacheConfig(Settings):
    """Settings of the prompt_cache policy: which provider rules apply how (times in minutes)."""

    mode: Literal["simulate", "off"] = Field(
        default="simulate",
        description="simulate: replay the providers' caches; off: what if caching were turned off (every cache "
        "read and write becomes plain input).",
    )
    scope: Literal["global", "tenant", "trace"] = Field(
        default="global",
        description="Who shares a cache entry: every call of the same provider and model (global: one "
        "organization/workspace), only calls of the same tenant (one workspace per tenant), or of the same trace.",
    )
    stable_system: bool = Field(
        default=False,
        description="What if the system prompt were stable: treat the system prompts of all calls of one agent as "
        "the same content (e.g. a timestamp or ticket id moved out of the system prompt).",
    )
    anthropic: PromptCacheAnthropic = Field(default_factory=PromptCacheAnthropic, description="Anthropic rules.")
    openai: PromptCacheOpenAI = Field(default_factory=PromptCacheOpenAI, description="OpenAI rules.")
    gemini: PromptCacheGemini = Field(default_factory=PromptCacheGemini, description="Gemini rules.")


Config = PromptCacheConfig

ASSUMPTIONS = (
    "A call's prefix is its logged segments in prompt order (tools, system, messages); one segment counts as one "
    "content block for Anthropic's 20-block lookback, and a prefix can only match up to a segment boundary.",
    "The per-message chat framing tokens are left out of the cached prefixes (a few tokens per message).",
    "A cache entry becomes readable when the call that wrote it has ended (the first response token is not "
    "logged): calls running in parallel never read each other's fresh writes.",
    "Cache hit timing uses the calls' start times; OpenAI and Gemini implicit caches are modeled as kept while "
    "used (inactivity window) and matched exactly; OpenAI's overflow above ~15 requests/min per prefix is ignored.",
    "Calls an earlier policy added, calls without logged content or without a start time keep their cache "
    "columns as they were.",
)


@dataclass
class CacheProjection:
    """The cache reads and writes of the calls the policy could evaluate (rows of `replay.calls`)."""

    rows: np.ndarray
    family: np.ndarray
    read: np.ndarray
    write: np.ndarray
    write_1h: np.ndarray
    skipped: dict[str, int] = field(default_factory=dict)
    storage: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------ policy entry point


def apply(config: PromptCacheConfig, replay: Replay) -> None:
    """Recompute the cache reads and writes of the live calls under the providers' rules (or turn caching off)."""
    outcome = replay.outcomes[NAME]
    calls = replay.calls
    if config.mode == "off":
        live = np.flatnonzero(replay.live)
        removed = {name: float(np.nansum(calls[name].to_numpy()[live])) for name in CACHE_COLUMNS}
        for name in CACHE_COLUMNS:
            values = calls[name].to_numpy()[live]
            calls.loc[live, name] = np.where(np.isnan(values), np.nan, 0.0)
        outcome.assumptions.append("Caching turned off: every cache read and write is billed as plain input.")
        outcome.details.update({"mode": "off", "calls": int(len(live)), "removed": removed})
        return
    projection = project(config, replay)
    before = {name: calls[name].to_numpy()[projection.rows].copy() for name in CACHE_COLUMNS}
    write_projection(replay, projection)
    outcome.assumptions.extend(ASSUMPTIONS)
    outcome.assumptions.extend(setting_assumptions(config))
    outcome.not_evaluated.extend(_skipped_sentences(projection.skipped))
    outcome.details.update(_details(config, replay, projection, before))
    if projection.storage.get("token_hours"):
        outcome.not_evaluated.append(
            "Gemini explicit-cache storage (per token-hour) is not in the calls' cost: it is reported in the details "
            "(gemini_explicit.storage_usd)."
        )


def write_projection(replay: Replay, projection: CacheProjection) -> None:
    """Set the projected cache columns of the evaluated calls (input tokens stay as they are)."""
    rows = projection.rows
    replay.calls.loc[rows, "cache_read_tokens"] = projection.read
    replay.calls.loc[rows, "cache_write_tokens"] = projection.write
    replay.calls.loc[rows, "cache_write_1h_tokens"] = projection.write_1h


# ------------------------------------------------------------------ projection


@dataclass
class _CallState:
    """What each evaluated call sends and where: current (after earlier policies) or as recorded."""

    rows: np.ndarray
    origin: np.ndarray
    provider: np.ndarray
    model: np.ndarray
    family: np.ndarray
    input: np.ndarray
    kept: np.ndarray
    """Kept tokens of every row of `replay.segments()`."""
    changed: np.ndarray
    minimum: np.ndarray
    """Minimum cacheable prefix of the call's model (tokens)."""
    automatic: np.ndarray
    """The provider caches the call's prefixes unasked (OpenAI, Gemini implicit)."""
    bills_writes: np.ndarray


def project(
    config: PromptCacheConfig, replay: Replay, recorded: pa.Table | None = None, pristine: bool = False
) -> CacheProjection:
    """The cache reads/writes the live calls would get.

    `recorded`: the table whose cache columns say which traces use the 1h TTL and which agents cache (the
    `recorded` settings; default `replay.base`). `pristine`: use the recorded content and models instead of what
    earlier policies made of them (the counterfactual that explains their effect)."""
    state, skipped = _call_state(replay, pristine)
    n = len(state.rows)
    read, write, write_1h = np.zeros(n), np.zeros(n), np.zeros(n)
    storage: dict[str, Any] = {}
    if n:
        prefixes = build_prefixes(replay, state, config)
        calls = replay.calls
        start = calls["start"].to_numpy()[state.rows]
        end = calls["end"].to_numpy()[state.rows]
        end = np.where(np.isfinite(end) & (end >= start), end, start)
        anth = (state.family == "anthropic") & _caching_agents(config, replay, state, recorded)
        if anth.any() and config.anthropic.breakpoints:
            ttl_min = _anthropic_ttl(config, replay, state, recorded)
            r, w = _anthropic(config, prefixes, state, start, end, ttl_min, np.flatnonzero(anth))
            read[anth], write[anth] = r, w
            write_1h[anth] = np.where(ttl_min[anth] == 60.0, w, 0.0)
        read, write = _automatic(config, prefixes, state, start, end, read, write)
        if config.gemini.explicit:
            storage = _gemini_explicit(config, prefixes, state, start, read)
    # never more cache than input (float noise of the scaled tokens)
    read = np.minimum(read, state.input)
    write = np.minimum(write, state.input - read)
    write_1h = np.minimum(write_1h, write)
    return CacheProjection(state.rows, state.family, read, write, write_1h, skipped, storage)


def _call_state(replay: Replay, pristine: bool) -> tuple[_CallState, dict[str, int]]:
    calls = replay.calls
    live = replay.live
    base = replay.base
    origin = calls["origin"].to_numpy()
    if pristine:
        provider = _strings(base["provider"])[origin]
        model = calls["recorded_model"].to_numpy()
    else:
        provider, model = calls["provider"].to_numpy(), calls["model"].to_numpy()
    pair = _codes(provider, model)
    families = _per_code(pair, lambda i: rules.family(provider[i], model[i]))
    scale = replay.content_scale()
    checks = {
        "added by an earlier policy": calls["added_by"].to_numpy() != "",
        "of a provider whose caching is not modeled": pd.isna(families),
        "without logged content": ~calls["has_content"].to_numpy() | ~np.isfinite(scale[origin]),
        "without a start time": np.isnan(calls["start"].to_numpy()),
        "without an input token count": np.isnan(calls["input_tokens"].to_numpy()),
    }
    ok = live.copy()
    skipped: dict[str, int] = {}
    for reason, bad in checks.items():
        count = int(np.sum(ok & bad))
        if count:
            skipped[reason] = count
        ok &= ~bad
    rows = np.flatnonzero(ok)
    seg = replay.segments()
    if pristine:
        inputs = pc.cast(base["input_tokens"], pa.float64()).to_numpy(zero_copy_only=False)[origin[rows]]
        kept = seg["tokens"].to_numpy()
        changed = np.zeros(len(rows), dtype=bool)
    else:
        inputs = calls["input_tokens"].to_numpy()[rows]
        kept = seg["kept"].to_numpy()
        changed = calls["content_changed"].to_numpy()[rows].astype(bool)
    fam, name, codes = families[rows], model[rows], pair[rows]
    return (
        _CallState(
            rows,
            origin[rows],
            provider[rows],
            name,
            fam.astype(object),
            inputs,
            kept,
            changed,
            _per_code(codes, lambda i: float(rules.minimum_tokens(fam[i], str(name[i])))).astype(np.float64),
            _per_code(codes, lambda i: rules.automatic_caching(fam[i], str(name[i]))).astype(bool),
            _per_code(codes, lambda i: rules.bills_writes(fam[i], str(name[i]))).astype(bool),
        ),
        skipped,
    )


def _strings(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A string column as a numpy object array (None where null)."""
    out: np.ndarray = column.to_numpy(zero_copy_only=False).astype(object)
    return out


def _codes(*columns: np.ndarray) -> np.ndarray:
    """Dense int64 codes of the rows' value combinations (None is a value like any other)."""
    combined = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(np.asarray(column, dtype=object), use_na_sentinel=False)
        combined = combined * max(len(uniques), 1) + codes
    out, _ = pd.factorize(combined)
    return np.asarray(out, dtype=np.int64)


def _per_code(codes: np.ndarray, value: Callable[[int], Any]) -> np.ndarray:
    """`value(i)` evaluated once per distinct code (at its first row `i`) and spread over the rows."""
    if not len(codes):
        return np.array([], dtype=object)
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    lookup = np.empty(len(first), dtype=object)
    lookup[:] = [value(i) for i in first.tolist()]
    out: np.ndarray = lookup[inverse]
    return out


# ------------------------------------------------------------------ prefixes

_B = np.uint64(0x100000001B3)
"""Odd base of the rolling prefix hash (mod 2**64); its inverse restarts the hash at each call."""
_B_INV = np.uint64(pow(int(_B), -1, 2**64))
_SYSTEM_TAG = np.uint64(1 << 62)
_SUMMARY_SALT = np.uint64(0x5EED5EED5EED5EED)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 of each value: spreads small integer codes over 64 bits (uint64 arithmetic wraps)."""
    x = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: np.ndarray = x ^ (x >> np.uint64(31))
    return out


def _powers(base: np.uint64, n: int) -> np.ndarray:
    values = np.full(n, base, dtype=np.uint64)
    if n:
        values[0] = 1
    out: np.ndarray = np.cumprod(values, dtype=np.uint64)
    return out


@dataclass
class Prefixes:
    """Every block boundary of every evaluated call, calls one after the other (`offsets`, `counts`)."""

    offsets: np.ndarray
    counts: np.ndarray
    keys: np.ndarray
    """uint64: hash of the prefix up to the boundary, mixed with the call's cache context (provider, model, scope)."""
    tokens: np.ndarray
    """Billed tokens of the prefix up to and including the boundary."""
    last_tools: np.ndarray
    """Per call, local index of the boundary after the tool definitions (-1: none); likewise the system prompt."""
    last_system: np.ndarray


def build_prefixes(replay: Replay, state: _CallState, config: PromptCacheConfig) -> Prefixes:
    """The prefix hash and billed tokens at every block boundary of the evaluated calls (vectorized)."""
    seg = replay.segments()
    n_calls = len(state.rows)
    slot = np.full(replay.base.num_rows, -1, dtype=np.int64)
    slot[state.origin] = np.arange(n_calls)
    e_all = slot[seg["call"].to_numpy()]
    scale = replay.content_scale()[state.origin]
    in_calls = e_all >= 0
    sent = np.bincount(e_all[in_calls], weights=state.kept[in_calls], minlength=n_calls) * scale
    kind_all = seg["kind"].to_numpy()
    idx = np.flatnonzero(in_calls & (kind_all != "framing"))
    idx = idx[np.argsort(e_all[idx], kind="stable")]
    e = e_all[idx]
    kind = kind_all[idx]
    ident = _identities(replay, state, config, idx, e, kind)
    kept = state.kept[idx]
    removed = (kept <= 0) & (seg["tokens"].to_numpy()[idx] > 0) & state.changed[e]
    has_runs = np.bincount(e[removed], minlength=n_calls) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        extra = np.where(has_runs, np.maximum(state.input - sent, 0.0), 0.0)
        growth = np.where(has_runs | (sent <= 0), 1.0, state.input / sent)
    tokens = kept * (scale * growth)[e]
    ident, tokens, kind, e = _collapse_removed_runs(ident, tokens, kind, e, removed, extra)
    counts = np.bincount(e, minlength=n_calls)
    offsets = np.cumsum(counts) - counts
    local = np.arange(len(e)) - offsets[e]
    hashes = _rolling_hash(ident, offsets, e)
    keys = _mix(hashes ^ _context_salt(replay, state, config)[e])
    cum = np.cumsum(tokens)
    before = np.where(offsets > 0, cum[np.maximum(offsets - 1, 0)], 0.0) if len(cum) else np.zeros(n_calls)
    last_tools = np.full(n_calls, -1, dtype=np.int64)
    last_system = np.full(n_calls, -1, dtype=np.int64)
    np.maximum.at(last_tools, e[kind == "tools"], local[kind == "tools"])
    np.maximum.at(last_system, e[kind == "system"], local[kind == "system"])
    return Prefixes(offsets, counts, keys, cum - before[e], last_tools, last_system)


def _identities(
    replay: Replay, state: _CallState, config: PromptCacheConfig, idx: np.ndarray, e: np.ndarray, kind: np.ndarray
) -> np.ndarray:
    """A 64-bit identity per block: its content hash, or its agent for a system prompt under `stable_system`;
    a block shortened by an earlier policy is new content (identity mixed with its kept tokens)."""
    seg = replay.segments()
    ident = _mix(seg["hash"].to_numpy()[idx].astype(np.uint64))
    if config.stable_system:
        agents = _codes(replay.calls["agent"].to_numpy()[state.rows])
        system = kind == "system"
        ident[system] = _mix(agents[e[system]].astype(np.uint64) | _SYSTEM_TAG)
    kept = state.kept[idx]
    shortened = (kept > 0) & (kept < seg["tokens"].to_numpy()[idx] - 0.5)
    ident[shortened] = _mix(ident[shortened] ^ _mix(np.round(kept[shortened]).astype(np.uint64)))
    return ident


def _collapse_removed_runs(
    ident: np.ndarray, tokens: np.ndarray, kind: np.ndarray, e: np.ndarray, removed: np.ndarray, extra: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Replace each run of segments an earlier policy removed by one new block (a summary or a placeholder):
    its identity comes from what it replaces, and the call's input tokens beyond its kept segments (the
    summary) sit in the first such block of the call."""
    if not removed.any():
        return ident, tokens, kind, e
    same_call_next = np.append(e[1:] == e[:-1], False)
    prev_removed = np.insert(removed[:-1] & (e[1:] == e[:-1]), 0, False)
    run_start = removed & ~prev_removed
    run_last = removed & ~(np.append(removed[1:], False) & same_call_next)
    starts = np.flatnonzero(run_start)
    sums = np.add.reduceat(np.where(removed, ident, np.uint64(0)), starts)
    ident, tokens, kind = ident.copy(), tokens.copy(), kind.copy()
    last = np.flatnonzero(run_last)
    ident[last] = _mix(sums ^ _SUMMARY_SALT)
    first_of_call = np.ones(len(starts), dtype=bool)
    first_of_call[1:] = e[starts[1:]] != e[starts[:-1]]
    tokens[last] = np.where(first_of_call, extra[e[last]], 0.0)
    kind[last] = "summary"
    keep = ~removed | run_last
    return ident[keep], tokens[keep], kind[keep], e[keep]


def _rolling_hash(ident: np.ndarray, offsets: np.ndarray, e: np.ndarray) -> np.ndarray:
    """sum_i ident_i * B**i over each call's blocks up to each boundary, i counted from the call's first block:
    one global cumsum, then each call's part shifted back with the inverse powers (uint64 arithmetic wraps)."""
    n = len(ident)
    weighted = np.cumsum(ident * _powers(_B, n), dtype=np.uint64)
    first = offsets[e]
    before = np.where(first > 0, weighted[np.maximum(first - 1, 0)], np.uint64(0)).astype(np.uint64)
    out: np.ndarray = (weighted - before) * _powers(_B_INV, n)[first]
    return out


def _context_salt(replay: Replay, state: _CallState, config: PromptCacheConfig) -> np.ndarray:
    """Per call, a 64-bit code of who can read its entries: provider, model and the scope value."""
    calls = replay.calls
    if config.scope == "tenant":
        scope = calls["tenant"].to_numpy()[state.rows]
    elif config.scope == "trace":
        scope = calls["trace_id"].to_numpy()[state.rows]
    else:
        scope = np.full(len(state.rows), "", dtype=object)
    return _mix(_codes(state.provider, state.model, scope).astype(np.uint64) + np.uint64(1 << 40))


# ------------------------------------------------------------------ Anthropic: explicit breakpoints


def _anthropic_ttl(
    config: PromptCacheConfig, replay: Replay, state: _CallState, recorded: pa.Table | None
) -> np.ndarray:
    """Per evaluated call, the TTL (minutes) of the entries it writes."""
    ttl = config.anthropic.ttl
    if ttl != "recorded":
        return np.full(len(state.rows), rules.ANTHROPIC_TTL_MINUTES[ttl])
    table = replay.base if recorded is None else recorded
    wrote_1h = pc.fill_null(table["cache_write_1h_tokens"], 0).to_numpy(zero_copy_only=False) > 0
    traces = np.unique(_strings(table["trace_id"])[wrote_1h].astype(str))
    mine = replay.calls["trace_id"].to_numpy()[state.rows].astype(str)
    return np.where(np.isin(mine, traces), rules.ANTHROPIC_TTL_MINUTES["1h"], rules.ANTHROPIC_TTL_MINUTES["5m"])


def _caching_agents(
    config: PromptCacheConfig, replay: Replay, state: _CallState, recorded: pa.Table | None
) -> np.ndarray:
    """Per evaluated call: does its agent send Anthropic breakpoints (`anthropic.agents`)?"""
    chosen = config.anthropic.agents
    if chosen == "all":
        return np.ones(len(state.rows), dtype=bool)
    if chosen == "recorded":
        table = replay.base if recorded is None else recorded
        used = np.zeros(table.num_rows, dtype=bool)
        for name in ("cache_read_tokens", "cache_write_tokens"):
            used |= pc.fill_null(table[name], 0).to_numpy(zero_copy_only=False) > 0
        provider, model = _strings(table["provider"]), _strings(table["model"])
        family = _per_code(_codes(provider, model), lambda i: rules.family(provider[i], model[i]))
        chosen = np.unique(_strings(table["agent"])[used & (family == "anthropic")].astype(str)).tolist()
    agents = replay.calls["agent"].to_numpy()[state.rows].astype(str)
    out: np.ndarray = np.isin(agents, np.array(chosen, dtype=str))
    return out


def _breakpoints(config: PromptCacheConfig, prefixes: Prefixes, calls: np.ndarray) -> list[list[int]]:
    """Per call of `calls`, the local boundary indices carrying a breakpoint, ascending; -1 fills (absent or
    repeated)."""
    columns = []
    for where in config.anthropic.breakpoints:
        if where == "tools":
            columns.append(prefixes.last_tools[calls])
        elif where == "system":
            columns.append(prefixes.last_system[calls])
        else:
            columns.append(prefixes.counts[calls] - 1)
    matrix = np.sort(np.stack(columns, axis=1), axis=1)
    matrix[:, 1:][matrix[:, 1:] == matrix[:, :-1]] = -1
    out: list[list[int]] = matrix.tolist()
    return out


def _anthropic(
    config: PromptCacheConfig,
    prefixes: Prefixes,
    state: _CallState,
    start: np.ndarray,
    end: np.ndarray,
    ttl_min: np.ndarray,
    which: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Reads and writes (tokens) of the calls `which`, walked in time order against one dict of entries.

    An entry (prefix key -> expiry, readable from) is written at a breakpoint whose prefix reaches the model's
    minimum and is not already readable; a breakpoint reads the longest live entry among itself and the 20
    boundaries before it. Billing follows the docs' positions: read A = the longest hit, write = last cacheable
    breakpoint - A. Every use (read or write) sets the entry's expiry to start + TTL.
    """
    # a call whose whole prefix is below its model's minimum neither reads nor writes: left out of the walk
    last = prefixes.tokens[np.maximum(prefixes.offsets + prefixes.counts - 1, 0)] if len(prefixes.tokens) else 0.0
    able = np.flatnonzero((prefixes.counts > 0) & (last >= state.minimum))
    walked = np.intersect1d(which, able)
    order = walked[np.lexsort((state.rows[walked], start[walked]))]
    member = np.isin(np.arange(len(state.rows)), walked)
    boundaries = np.repeat(member, prefixes.counts)
    keys, tokens = prefixes.keys[boundaries].tolist(), prefixes.tokens[boundaries].tolist()
    counts = np.where(member, prefixes.counts, 0)
    offsets = (np.cumsum(counts) - counts)[order].tolist()
    calls = zip(
        offsets,
        start[order].tolist(),
        end[order].tolist(),
        (ttl_min[order] * rules.MINUTE_US).tolist(),
        state.minimum[order].tolist(),
        _breakpoints(config, prefixes, order),
        strict=True,
    )
    lookback = rules.ANTHROPIC_LOOKBACK_BLOCKS
    entries: dict[int, tuple[float, float]] = {}
    read, write = [0.0] * len(order), [0.0] * len(order)
    for k, (base, t, finish, ttl, minimum, marks) in enumerate(calls):
        bps = [b for b in marks if b >= 0]
        if not bps:
            continue
        hit, floor = -1, bps[-1] + 1
        for b in reversed(bps):
            for j in range(min(b, floor - 1), max(b - lookback, 0) - 1, -1):
                found = entries.get(keys[base + j])
                if found is not None and found[1] <= t < found[0] and tokens[base + j] >= minimum:
                    hit = j
                    break
            if hit >= 0:
                break
            floor = max(b - lookback, 0)
        expiry = t + ttl
        top = -1
        for b in [*bps, hit] if hit >= 0 else bps:
            key = keys[base + b]
            old = entries.get(key)
            alive = old is not None and t < old[0]
            if b <= hit:
                if alive:
                    entries[key] = (max(old[0], expiry), old[1])  # type: ignore[index]
            elif tokens[base + b] >= minimum:
                top = b
                readable = min(old[1], finish) if alive else finish  # type: ignore[index]
                entries[key] = (max(old[0], expiry) if alive else expiry, readable)  # type: ignore[index]
        read[k] = tokens[base + hit] if hit >= 0 else 0.0
        if top > hit:
            write[k] = tokens[base + top] - read[k]
    # back from time order to the order of `which` (calls left out of the walk: zero)
    position = np.full(len(state.rows), len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    return np.append(read, 0.0)[position[which]], np.append(write, 0.0)[position[which]]


# ------------------------------------------------------------------ automatic caching (OpenAI, Gemini implicit)


@dataclass
class _Streaks:
    """Uses of the same cache key in time order, cut into streaks (a streak = one life of the entry)."""

    order: np.ndarray
    """Sorting of the uses by key, then start, then replay order."""
    new: np.ndarray
    """In sorted order: the use starts a streak (nothing to read: it writes the entry)."""
    hit: np.ndarray
    """In the input order: the use reads an entry a previous use of its streak made readable."""


def _streaks(
    keys: np.ndarray, t: np.ndarray, end: np.ndarray, order: np.ndarray, idle: np.ndarray, life: np.ndarray
) -> _Streaks:
    """Every use of a prefix refreshes it (a miss writes it, a hit reads it): the entry lives while the gaps
    between uses stay below `idle` and its age below `life` (microseconds), and is readable from the earliest
    end of a use of its streak. Vectorized; only streaks older than their lifetime are walked one use at a time."""
    s = np.lexsort((order, t, keys))
    k, ts, en, gap, cap = keys[s], t[s], end[s], idle[s], life[s]
    new = np.ones(len(s), dtype=bool)
    new[1:] = (k[1:] != k[:-1]) | (ts[1:] - ts[:-1] >= gap[1:])
    streak = np.cumsum(new) - 1
    first = ts[np.flatnonzero(new)][streak]
    inclusive = pd.Series(en).groupby(streak).cummin().to_numpy()
    readable_from = np.full(len(s), np.inf)
    readable_from[1:] = inclusive[:-1]
    readable_from[new] = np.inf
    hit_sorted = ~new & (readable_from <= ts)
    too_old = np.unique(streak[ts - first >= cap])
    if len(too_old):
        _relive(np.flatnonzero(np.isin(streak, too_old)).tolist(), ts, en, cap, new, hit_sorted)
    hit = np.empty(len(s), dtype=bool)
    hit[s] = hit_sorted
    return _Streaks(s, new, hit)


def _relive(rows: list[int], ts: np.ndarray, en: np.ndarray, cap: np.ndarray, new: np.ndarray, hit: np.ndarray) -> None:
    """Walk the streaks that outlive the maximum lifetime: the entry is evicted and rewritten at the first use
    past it (in place on the sorted flags)."""
    born, min_end = 0.0, np.inf
    for i in rows:
        if new[i] or ts[i] - born >= cap[i]:
            new[i], hit[i] = True, False
            born, min_end = ts[i], en[i]
        else:
            hit[i] = min_end <= ts[i]
            min_end = min(min_end, en[i])


def _automatic(
    config: PromptCacheConfig,
    prefixes: Prefixes,
    state: _CallState,
    start: np.ndarray,
    end: np.ndarray,
    read: np.ndarray,
    write: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """OpenAI and Gemini implicit caching: a call reads the longest of its prefixes an earlier call sent and left
    readable (OpenAI: from 1,024 tokens, in 128-token steps); GPT-5.6+ also bill the rest of the prefix as written."""
    auto = state.automatic
    if not auto.any():
        return read, write
    minimum = state.minimum
    openai = state.family == "openai"
    minute = rules.MINUTE_US
    if config.openai.retention == "24h":
        idle_openai = life_openai = rules.OPENAI_RETENTION_MINUTES["24h"] * minute
    else:
        idle_openai = config.openai.in_memory_minutes * minute
        life_openai = rules.OPENAI_RETENTION_MINUTES["in_memory"] * minute
    idle = np.where(openai, idle_openai, config.gemini.implicit_minutes * minute)
    life = np.where(openai, life_openai, np.inf)
    call = np.repeat(np.arange(len(state.rows)), prefixes.counts)
    use = np.flatnonzero(auto[call] & (prefixes.tokens >= minimum[call]))
    c = call[use]
    found = _streaks(prefixes.keys[use], start[c], end[c], state.rows[c], idle[c], life[c])
    longest = np.zeros(len(state.rows))
    np.maximum.at(longest, c[found.hit], prefixes.tokens[use][found.hit])
    step = np.where(openai, float(rules.OPENAI_INCREMENT), 1.0)
    hits = np.floor(longest / step) * step
    hits = np.where(hits >= minimum, hits, 0.0)
    read = np.where(auto, hits, read)
    last = np.where(prefixes.counts > 0, prefixes.tokens[np.maximum(prefixes.offsets + prefixes.counts - 1, 0)], 0.0)
    full = np.floor(last / step) * step
    writes = np.where(state.bills_writes & auto & (full >= minimum), np.maximum(full - read, 0.0), 0.0)
    return read, np.where(auto, writes, write)


def _gemini_explicit(
    config: PromptCacheConfig, prefixes: Prefixes, state: _CallState, start: np.ndarray, read: np.ndarray
) -> dict[str, Any]:
    """Explicit Gemini caches of tools + system prompt: created by the first call needing one (that call pays the
    prefix at the input price, the creation), read by the next ones while its TTL (extended on use) runs; storage
    billed per token-hour. Updates `read` in place; returns the storage figures."""
    static = np.maximum(prefixes.last_tools, prefixes.last_system)
    minimum = state.minimum
    at = prefixes.offsets + np.maximum(static, 0)
    size = np.where(static >= 0, prefixes.tokens[np.minimum(at, max(len(prefixes.tokens) - 1, 0))], 0.0)
    which = np.flatnonzero((state.family == "google") & (static >= 0) & (size >= minimum) & (size > 0))
    if not len(which):
        return {}
    ttl = config.gemini.explicit_ttl_minutes * rules.MINUTE_US
    t = start[which]
    found = _streaks(
        prefixes.keys[at[which]], t, t, state.rows[which], np.full(len(which), ttl), np.full(len(which), np.inf)
    )
    read[which] = np.where(found.hit, np.maximum(read[which], size[which]), read[which])
    sorted_t, new = t[found.order], found.new
    streak = np.cumsum(new) - 1
    born = sorted_t[new]
    last = pd.Series(sorted_t).groupby(streak).max().to_numpy()
    hours = (last + ttl - born) / (60 * rules.MINUTE_US)
    tokens = size[which][found.order][new]
    models = np.array(state.model, dtype=object)[which][found.order][new]
    rates = np.array([rules.storage_rate(str(m)) or np.nan for m in models], dtype=np.float64)
    token_hours = tokens * hours
    return {
        "caches_created": int(new.sum()),
        "token_hours": float(token_hours.sum()),
        "storage_usd": float(np.nansum(token_hours * rates) / 1_000_000),
        "unpriced_models": sorted({str(m) for m, r in zip(models, rates, strict=True) if np.isnan(r)}),
        "ttl_minutes": config.gemini.explicit_ttl_minutes,
    }


# ------------------------------------------------------------------ what the policy reports


def setting_assumptions(config: PromptCacheConfig) -> list[str]:
    anth, oai = config.anthropic, config.openai
    ttl = {"recorded": "the TTL each trace's recorded writes used (5m when none was 1h)"}.get(anth.ttl, anth.ttl)
    where = ", ".join(anth.breakpoints) or "none"
    who = anth.agents if isinstance(anth.agents, str) else ", ".join(anth.agents)
    idle = oai.retention == "in_memory"
    shared = "by all calls of a provider and model" if config.scope == "global" else f"per {config.scope}"
    out = [
        f"Anthropic requests of agents {who} carry breakpoints after: {where}; entries live {ttl}, refreshed "
        "on every use.",
        f"OpenAI retention {oai.retention}"
        + (f" (evicted after {oai.in_memory_minutes:g} idle minutes, 1 hour at most)." if idle else "."),
        f"Cache entries are shared {shared}.",
    ]
    if config.stable_system:
        out.append("What-if: each agent's system prompt is treated as one stable content across all its calls.")
    return out


def _skipped_sentences(skipped: dict[str, int]) -> list[str]:
    why = {
        "added by an earlier policy": "their request content is not logged",
        "of a provider whose caching is not modeled": "no cache rules for their provider/model",
        "without logged content": "a prefix cannot be compared without the request's content",
        "without a start time": "cache hits depend on the time between calls",
        "without an input token count": "their input size is unknown",
    }
    return [
        f"{count} call(s) {reason}: cache columns kept as they were ({why[reason]})."
        for reason, count in skipped.items()
    ]


def _price_rows(replay: Replay, rows: np.ndarray, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """cost_total and cost_cache_saved (USD, NaN if unpriced) of the calls `rows` with some columns replaced."""
    calls = replay.calls
    table = replay.base.take(pa.array(calls["origin"].to_numpy()[rows], type=pa.int64()))
    values: dict[str, np.ndarray] = {
        name: calls[name].to_numpy()[rows] for name in ("provider", "model", "service_tier", "input_tokens")
    }
    values.update(columns)
    for name, column in values.items():
        if name in ("provider", "model", "service_tier"):
            array = pa.array(column, type=pa.string(), from_pandas=True)
        else:
            floats = np.asarray(column, dtype=np.float64)
            array = pa.array(np.round(np.nan_to_num(floats)).astype(np.int64), mask=np.isnan(floats))
        table = table.set_column(table.schema.get_field_index(name), name, array)
    priced = price_table(table, replay.book).table
    total, saved = (pc.fill_null(priced[name], np.nan).to_numpy(zero_copy_only=False) for name in _COSTS)
    return total, saved


_COSTS = ("cost_total", "cost_cache_saved")


def _cache_columns(projection: CacheProjection, pick: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
    return {
        "cache_read_tokens": projection.read[pick],
        "cache_write_tokens": projection.write[pick],
        "cache_write_1h_tokens": projection.write_1h[pick],
    }


def _details(
    config: PromptCacheConfig, replay: Replay, projection: CacheProjection, before: dict[str, np.ndarray]
) -> dict[str, Any]:
    rows = projection.rows
    inputs = replay.calls["input_tokens"].to_numpy()[rows]
    by_family: dict[str, Any] = {}
    for fam in sorted({str(f) for f in projection.family}):
        m = projection.family == fam
        by_family[fam] = {
            "calls": int(m.sum()),
            "calls_reading": int((projection.read[m] > 0).sum()),
            "input_tokens": float(inputs[m].sum()),
            "cache_read_tokens": float(projection.read[m].sum()),
            "cache_write_tokens": float(projection.write[m].sum()),
            "cache_write_1h_tokens": float(projection.write_1h[m].sum()),
            "before_cache_read_tokens": float(np.nansum(before["cache_read_tokens"][m])),
            "before_cache_write_tokens": float(np.nansum(before["cache_write_tokens"][m])),
        }
    details: dict[str, Any] = {"mode": "simulate", "calls_evaluated": int(len(rows)), "by_provider": by_family}
    if projection.storage:
        details["gemini_explicit"] = projection.storage
    changes = _prefix_changes(config, replay, projection)
    if changes:
        details["prefix_changes"] = changes
    details["rules"] = rules.rules_summary()
    return details


def _prefix_changes(config: PromptCacheConfig, replay: Replay, projection: CacheProjection) -> dict[str, Any]:
    """What earlier policies did to the cache: the calls whose prefix they changed (content shortened or
    summarized, model routed), replayed once more as recorded, and the cache savings compared."""
    calls = replay.calls
    rows = projection.rows
    content = calls["content_changed"].to_numpy()[rows].astype(bool)
    routed = calls["model"].to_numpy()[rows] != calls["recorded_model"].to_numpy()[rows]
    if not (content | routed).any():
        return {}
    pristine = project(config, replay, pristine=True)
    position = pd.Series(np.arange(len(pristine.rows)), index=pristine.rows)
    changed = np.flatnonzero((content | routed) & np.isin(rows, pristine.rows))
    if not len(changed):
        return {}
    other = position.loc[rows[changed]].to_numpy()
    subset = rows[changed]
    base = replay.base
    origin = calls["origin"].to_numpy()[subset]
    recorded = {
        "provider": _strings(base["provider"])[origin],
        "model": calls["recorded_model"].to_numpy()[subset],
        "input_tokens": pc.cast(base["input_tokens"], pa.float64()).to_numpy(zero_copy_only=False)[origin],
    }
    now_cost, now_saved = _price_rows(replay, subset, _cache_columns(projection, changed))
    then_cost, then_saved = _price_rows(replay, subset, {**recorded, **_cache_columns(pristine, other)})
    saving_then, saving_now = float(np.nansum(then_saved)), float(np.nansum(now_saved))
    content_saving = float(np.nansum((then_cost + then_saved) - (now_cost + now_saved)))
    lost = saving_then - saving_now
    return {
        "calls": int(len(changed)),
        "calls_content_changed": int(content[changed].sum()),
        "calls_routed": int(routed[changed].sum()),
        "calls_losing_cache_reads": int((projection.read[changed] < pristine.read[other] - 0.5).sum()),
        "cache_read_tokens": float(projection.read[changed].sum()),
        "cache_read_tokens_unchanged": float(pristine.read[other].sum()),
        "cache_write_tokens": float(projection.write[changed].sum()),
        "cache_write_tokens_unchanged": float(pristine.write[other].sum()),
        "usd_cache_saving": saving_now,
        "usd_cache_saving_unchanged": saving_then,
        "usd_cache_saving_lost": lost,
        "usd_saved_by_changes_uncached": content_saving,
        "usd_net_saving_with_cache": content_saving - lost,
        "explanation": (
            f"On {len(changed)} call(s) whose prefix an earlier policy changed (content shortened or summarized: "
            f"{int(content[changed].sum())}, routed to another model: {int(routed[changed].sum())}), the changes "
            f"save ${content_saving:,.4f} at uncached prices; but prompt caching saved ${saving_then:,.4f} on these "
            f"calls as recorded and saves ${saving_now:,.4f} after the changes (less content, broken prefixes, cold "
            f"caches), so with caching the changes save ${content_saving - lost:,.4f}"
            + (" — a net loss." if lost > content_saving else ".")
        ),
    }
