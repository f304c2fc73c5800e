"""What each evaluated call sends to the prompt cache: its state, and its prefix of content blocks.

Every live call that logged its request is cut into a prefix of content blocks (its segments in prompt order:
tools, system, then the messages; the `framing` segment, a few tokens of chat overhead per message that the
recount puts last, is left out of the prefix). Each block boundary carries a 64-bit key (a rolling hash of the
whole prefix up to it, mixed with who can read the entry) and the billed tokens up to it (recounted tokens x the
call's reported/recounted scale). Computed for all calls at once with numpy; `cache_walk` walks them in time order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import cache_rules as rules
from .replay import Replay

Scope = Literal["global", "tenant", "trace"]


@dataclass
class CallState:
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


def call_state(replay: Replay, pristine: bool) -> tuple[CallState, dict[str, int]]:
    """The live calls the policy can evaluate (`pristine`: as recorded, before earlier policies), and per reason the
    number of live calls it cannot."""
    calls = replay.calls
    live = replay.live
    base = replay.base
    origin = calls["origin"].to_numpy()
    if pristine:
        provider = strings_of(base["provider"])[origin]
        model = calls["recorded_model"].to_numpy()
    else:
        provider, model = calls["provider"].to_numpy(), calls["model"].to_numpy()
    pair = value_codes(provider, model)
    families = per_code(pair, lambda i: rules.family(provider[i], model[i]))
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
        CallState(
            rows,
            origin[rows],
            provider[rows],
            name,
            fam.astype(object),
            inputs,
            kept,
            changed,
            per_code(codes, lambda i: float(rules.minimum_tokens(fam[i], str(name[i])))).astype(np.float64),
            per_code(codes, lambda i: rules.automatic_caching(fam[i], str(name[i]))).astype(bool),
            per_code(codes, lambda i: rules.bills_writes(fam[i], str(name[i]))).astype(bool),
        ),
        skipped,
    )


def strings_of(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A string column as a numpy object array (None where null)."""
    out: np.ndarray = column.to_numpy(zero_copy_only=False).astype(object)
    return out


def value_codes(*columns: np.ndarray) -> np.ndarray:
    """Dense int64 codes of the rows' value combinations (None is a value like any other)."""
    combined = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(np.asarray(column, dtype=object), use_na_sentinel=False)
        combined = combined * max(len(uniques), 1) + codes
    out, _ = pd.factorize(combined)
    return np.asarray(out, dtype=np.int64)


def per_code(codes: np.ndarray, value: Callable[[int], Any]) -> np.ndarray:
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


def build_prefixes(replay: Replay, state: CallState, scope: Scope, stable_system: bool) -> Prefixes:
    """The prefix hash and billed tokens at every block boundary of the evaluated calls (vectorized).

    `scope`: who shares an entry besides the provider and model; `stable_system`: each agent's system prompts count
    as one content (the `prompt_cache` settings of the same names)."""
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
    ident = _identities(replay, state, stable_system, idx, e, kind)
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
    keys = _mix(hashes ^ _context_salt(replay, state, scope)[e])
    cum = np.cumsum(tokens)
    before = np.where(offsets > 0, cum[np.maximum(offsets - 1, 0)], 0.0) if len(cum) else np.zeros(n_calls)
    last_tools = np.full(n_calls, -1, dtype=np.int64)
    last_system = np.full(n_calls, -1, dtype=np.int64)
    np.maximum.at(last_tools, e[kind == "tools"], local[kind == "tools"])
    np.maximum.at(last_system, e[kind == "system"], local[kind == "system"])
    return Prefixes(offsets, counts, keys, cum - before[e], last_tools, last_system)


def _identities(
    replay: Replay, state: CallState, stable_system: bool, idx: np.ndarray, e: np.ndarray, kind: np.ndarray
) -> np.ndarray:
    """A 64-bit identity per block: its content hash, or its agent for a system prompt under `stable_system`;
    a block shortened by an earlier policy is new content (identity mixed with its kept tokens)."""
    seg = replay.segments()
    ident = _mix(seg["hash"].to_numpy()[idx].astype(np.uint64))
    if stable_system:
        agents = value_codes(replay.calls["agent"].to_numpy()[state.rows])
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


def _context_salt(replay: Replay, state: CallState, scope: Scope) -> np.ndarray:
    """Per call, a 64-bit code of who can read its entries: provider, model and the scope value."""
    calls = replay.calls
    if scope == "tenant":
        shared = calls["tenant"].to_numpy()[state.rows]
    elif scope == "trace":
        shared = calls["trace_id"].to_numpy()[state.rows]
    else:
        shared = np.full(len(state.rows), "", dtype=object)
    return _mix(value_codes(state.provider, state.model, shared).astype(np.uint64) + np.uint64(1 << 40))
