"""The providers' prompt caches walked over the calls' prefixes in time order: reads and writes per call.

Anthropic: explicit breakpoints, the 20-block lookback, minimums, TTL refreshed on use, entries readable only once
the writing call has answered (a walk, one call at a time). OpenAI and Gemini implicit: automatic caching of every
prefix from the model's minimum, kept while used (vectorized streaks). Gemini explicit caches with their storage.
The rules' figures are data in `cache_rules`; `prompt_cache` turns its settings into the arguments here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import cache_rules as rules
from .cache_prefix import CallState, Prefixes

# ------------------------------------------------------------------ Anthropic: explicit breakpoints


def _breakpoints(breakpoints: Sequence[str], prefixes: Prefixes, calls: np.ndarray) -> list[list[int]]:
    """Per call of `calls`, the local boundary indices carrying a breakpoint, ascending; -1 fills (absent or
    repeated)."""
    columns = []
    for where in breakpoints:
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


def anthropic(
    breakpoints: Sequence[str],
    prefixes: Prefixes,
    state: CallState,
    start: np.ndarray,
    end: np.ndarray,
    ttl_min: np.ndarray,
    which: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Reads and writes (tokens) of the calls `which`, walked in time order against one dict of entries; each
    request puts its `breakpoints` (tools, system, last_message) on its prefix, `ttl_min` is per call (minutes).

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
        _breakpoints(breakpoints, prefixes, order),
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


@dataclass(frozen=True)
class Lifetimes:
    """How long automatic cache entries live (minutes): evicted after `idle` minutes unused, `life` at most."""

    openai_idle: float
    openai_life: float
    gemini_idle: float


def automatic(
    lifetimes: Lifetimes,
    prefixes: Prefixes,
    state: CallState,
    start: np.ndarray,
    end: np.ndarray,
    read: np.ndarray,
    write: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """OpenAI and Gemini implicit caching: a call reads the longest of its prefixes an earlier call sent and left
    readable (OpenAI: from 1,024 tokens, in 128-token steps); GPT-5.6+ also bill the rest of the prefix as written.
    The reads and writes of the other calls are kept from `read` and `write`."""
    auto = state.automatic
    if not auto.any():
        return read, write
    minimum = state.minimum
    openai = state.family == "openai"
    minute = rules.MINUTE_US
    idle = np.where(openai, lifetimes.openai_idle * minute, lifetimes.gemini_idle * minute)
    life = np.where(openai, lifetimes.openai_life * minute, np.inf)
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


def gemini_explicit(
    ttl_minutes: float, prefixes: Prefixes, state: CallState, start: np.ndarray, read: np.ndarray
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
    ttl = ttl_minutes * rules.MINUTE_US
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
        "ttl_minutes": ttl_minutes,
    }
