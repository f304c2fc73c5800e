"""Uncached static prefixes: the same tool definitions and system prompt sent again and again with no cache read.

The static prefix of a call is the leading run of its `tools` and `system` segments (prompt order). Calls of the
same model and provider whose prefixes are identical (same hashes in the same order) form a group; a call of a
group that read nothing from the cache, with a prefix at least as long as the model's minimum cacheable length,
is *uncached*. It would have read the prefix from the cache had the previous call of its group started within
the cache's time-to-live, and written it otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..parsers.segments import SYSTEM, TOOLS
from ..simulate import cache_rules
from .base import Calls, Finding, costliest_first, count, duration, run_position, usd

KIND = "uncached_prefix"


@dataclass(frozen=True)
class Params:
    model_minimums: tuple[tuple[str, int], ...] = ()
    """(model glob, minimum cacheable tokens) pairs overriding the providers' documented minimums, first match
    wins; by default the prompt-cache simulator's table (`costscope.simulate.cache_rules`) decides."""
    min_prefix_tokens: int = 1024
    """Minimum for models of a provider whose caching rules are not known."""
    ttl_seconds: float = 300.0
    """How long a cached prefix lives after its last use (default: five minutes, Anthropic's default TTL and
    OpenAI's in-memory idle window)."""


def detect(calls: Calls, params: Params) -> Finding | None:
    x = calls.content
    if not len(x.parent):
        return None
    call = calls.segment_call
    static = np.isin(x.kind, (TOOLS, SYSTEM))
    leading = static & (_within_call_cumsum(~static, call) == 0)
    prefix = np.bincount(call[leading], weights=x.calibrated[leading], minlength=calls.n)
    key = _prefix_keys(calls, call[leading], x.hash.filter(pa.array(leading)))
    model, provider = calls.text("model"), calls.text("provider")
    family = _families(model, provider)
    minimum = _minimums(model, family, params)
    prefix = np.minimum(prefix, calls.input)
    priced = ~np.isnan(calls.cost)
    uncached = (key != "") & (prefix >= minimum) & (calls.cache_read == 0) & priced
    if not uncached.any():
        return None
    group_key = (pd.Series(model) + "\x1f" + pd.Series(provider) + "\x1f" + pd.Series(key)).to_numpy()
    hit = _would_hit(calls, group_key, key != "", params.ttl_seconds)
    rows = np.flatnonzero(uncached)
    saved = _saving(calls, rows, prefix[rows], hit[rows])
    groups, inverse = np.unique(group_key[rows], return_inverse=True)
    per_group = np.bincount(inverse, weights=saved, minlength=len(groups))
    hits_per_group = np.bincount(inverse, weights=hit[rows].astype(float), minlength=len(groups))
    worth = (per_group > 0) & (hits_per_group > 0)
    chosen = worth[inverse]
    rows, saved = rows[chosen], saved[chosen]
    at_stake = float(per_group[worth].sum())
    if at_stake <= 0:
        return None
    hits = rows[hit[rows]]
    ordered = costliest_first(np.arange(len(rows)), saved)
    notes = [
        f"{prefix[rows[i]]:,.0f} prefix tokens, {'cache hit' if hit[rows[i]] else 'cache write'}"
        for i in ordered[: calls.max_evidence]
    ]
    traces = int(len(np.unique(calls.trace[rows])))
    ttl = duration(params.ttl_seconds)
    uncached_tokens = float(prefix[rows].sum())
    return Finding(
        kind=KIND,
        title="Static prompt prefix sent without caching",
        usd_at_stake=at_stake,
        basis=f"calls within {ttl} of the previous call with the same prefix: prefix tokens × (input rate − "
        "cache-read rate); the other calls pay the cache-write premium on the prefix (prefix tokens × (cache-write "
        "rate − input rate)); summed per prefix, prefixes that would not pay off left out",
        evidence=calls.evidence(rows[ordered], notes),
        detail=f"{count(int(worth.sum()), 'static prefix', 'static prefixes')} (tool definitions and system prompt) "
        f"were sent {count(len(rows), 'time')} "
        f"without a cache read ({uncached_tokens:,.0f} tokens); {len(hits)} of those calls came within {ttl} of the "
        f"previous one and would have read the cache, saving {usd(at_stake)} net of cache writes.",
        policy=policy(params, sorted({str(f) for f in family[rows] if f})),
        calls=len(rows),
        traces=traces,
        figures={
            "prefixes": int(worth.sum()),
            "uncached_calls": len(rows),
            "would_hit_calls": len(hits),
            "uncached_prefix_tokens": round(uncached_tokens),
            "ttl_seconds": params.ttl_seconds,
        },
    )


def policy(params: Params, families: list[str]) -> dict[str, Any]:
    """Prompt caching for every agent, with the cache lifetime the dollars assumed, for the providers concerned."""
    minutes = min(max(params.ttl_seconds / 60.0, 1.0), 60.0)
    settings: dict[str, Any] = {"mode": "simulate", "scope": "global"}
    if "anthropic" in families:
        settings["anthropic"] = {"ttl": "1h" if params.ttl_seconds > 300 else "5m", "agents": "all"}
    if "openai" in families:
        settings["openai"] = {"in_memory_minutes": minutes}
    if "google" in families:
        settings["gemini"] = {"implicit_minutes": minutes}
    return {"prompt_cache": settings}


def _within_call_cumsum(values: np.ndarray, call: np.ndarray) -> np.ndarray:
    """Inclusive running sum of `values` within each call's segments (segments of a call are contiguous)."""
    total = np.cumsum(values.astype(np.int64))
    first = np.r_[True, call[1:] != call[:-1]] if len(call) else np.zeros(0, bool)
    before = np.where(first, total - values.astype(np.int64), 0)
    result: np.ndarray = total - np.maximum.accumulate(before)
    return result


def _prefix_keys(calls: Calls, call: np.ndarray, hashes: pa.Array) -> np.ndarray:
    """Per call: its leading static segments' hashes joined in prompt order ("" when it has none)."""
    keys = np.full(calls.n, "", dtype=object)
    if not len(call):
        return keys
    table = pa.table({"call": call, "hash": hashes})
    lists = table.group_by("call", use_threads=False).aggregate([("hash", "list")])
    keys[lists["call"].to_numpy()] = np.array(pc.binary_join(lists["hash_list"], "|").to_pylist(), dtype=object)
    return keys


def _families(model: np.ndarray, provider: np.ndarray) -> np.ndarray:
    """Per call: whose caching rules apply (`anthropic`, `openai`, `google`, or "" when not known)."""
    pairs = pd.Series(model, dtype=object) + "\x1f" + pd.Series(provider, dtype=object)
    codes, names = pd.factorize(pairs)
    found = []
    for name in names:
        model_name, provider_name = str(name).split("\x1f")
        found.append(cache_rules.family(provider_name or None, model_name or None) or "")
    result: np.ndarray = np.array([*found, ""], dtype=object)[codes]
    return result


def _minimums(model: np.ndarray, family: np.ndarray, params: Params) -> np.ndarray:
    """Per call: the shortest prefix its provider caches (tokens)."""
    pairs = pd.Series(model, dtype=object) + "\x1f" + pd.Series(family, dtype=object)
    codes, names = pd.factorize(pairs)
    table = []
    for name in names:
        model_name, rules = str(name).split("\x1f")
        override = next((m for glob, m in params.model_minimums if fnmatchcase(model_name, glob)), None)
        known = cache_rules.minimum_tokens(rules, model_name) if rules else params.min_prefix_tokens
        table.append(override if override is not None else known)
    result: np.ndarray = np.array([*table, params.min_prefix_tokens], dtype=np.float64)[codes]
    return result


def _would_hit(calls: Calls, group_key: np.ndarray, has_prefix: np.ndarray, ttl: float) -> np.ndarray:
    """Per call: the previous call with the same prefix (any cache state) started at most `ttl` seconds before."""
    rows = np.flatnonzero(has_prefix & ~np.isnan(calls.start_s))
    hit = np.zeros(calls.n, dtype=bool)
    if not len(rows):
        return hit
    codes, _ = pd.factorize(pd.Series(group_key[rows], dtype=object))
    order = np.lexsort((rows, calls.start_s[rows], codes))
    rows, codes = rows[order], codes[order]
    gap = np.r_[np.inf, np.diff(calls.start_s[rows])]
    hit[rows] = (run_position(codes) > 0) & (gap <= ttl)
    return hit


def _saving(calls: Calls, rows: np.ndarray, prefix: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """Per uncached call: its cost minus its cost with the prefix read from (hit) or written to (miss) the cache."""
    read, write = calls.cache_read.copy(), calls.cache_write.copy()
    write_1h = np.array(pc.fill_null(calls.table["cache_write_1h_tokens"], 0).to_numpy(), dtype=np.float64)
    recorded_write = write[rows]
    read[rows] = np.where(hit, prefix, 0.0)
    write[rows] = np.where(hit, np.maximum(recorded_write - prefix, 0.0), np.maximum(recorded_write, prefix))
    write_1h[rows] = np.minimum(write_1h[rows], write[rows])
    after = calls.reprice(cache_read_tokens=read, cache_write_tokens=write, cache_write_1h_tokens=write_1h)
    saved: np.ndarray = np.nan_to_num(calls.cost[rows] - after[rows])
    return saved
