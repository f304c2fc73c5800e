"""Redundant calls: the same request (byte-identical body: model, messages, settings) sent again within a window.

A response cache keyed on the request would have answered the repeats without a call, so their whole cost is at
stake: the repeats counted are those within the window of the call that stored the response (a cache entry is not
extended by its hits, as in the response_cache policy). Calls that did not log their request body cannot be
compared and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from .base import Calls, Finding, costliest_first, count, duration, usd

KIND = "redundant_calls"


@dataclass(frozen=True)
class Params:
    window_seconds: float = 3600.0
    """A call repeats an earlier one when the identical request was sent at most this many seconds before it,
    counted from the call a cache would have stored (default one hour: the time-to-live the fix suggests)."""
    scope: Literal["trace", "tenant", "global"] = "tenant"
    """Who may share a cached response, as in the response_cache policy: the same trace, the same tenant (calls
    without a tenant share one), or everyone."""


def detect(calls: Calls, params: Params) -> Finding | None:
    hashes = calls.text("request_hash")
    known = (hashes != "") & ~np.isnan(calls.start_s)
    rows = np.flatnonzero(known)
    if len(rows) < 2:
        return None
    request, _ = pd.factorize(pd.Series(hashes[rows], dtype=object))
    if params.scope == "trace":
        scope = calls.trace[rows]
    elif params.scope == "tenant":
        scope = pd.factorize(pd.Series(calls.text("tenant", "\x00")[rows], dtype=object))[0]
    else:
        scope = np.zeros(len(rows), dtype=np.int64)
    codes = request.astype(np.int64) * (int(scope.max()) + 1) + scope
    order = np.lexsort((rows, calls.start_s[rows], codes))
    rows, codes = rows[order], codes[order]
    start = calls.start_s[rows]
    same = np.r_[False, codes[1:] == codes[:-1]]
    # a run is a chain of identical requests each at most the window after the one before; the run's first call
    # stores the response, and the calls within the window of it are served (later ones may be too: not counted)
    chained = same & (np.r_[np.inf, np.diff(start)] <= params.window_seconds)
    position = np.arange(len(rows))
    stored = np.maximum.accumulate(np.where(chained, 0, position))
    repeat = chained & (start - start[stored] <= params.window_seconds)
    repeats = rows[repeat]
    cost = np.nan_to_num(calls.cost[repeats])
    at_stake = float(cost.sum())
    if not len(repeats) or at_stake <= 0:
        return None
    first = rows[stored[repeat]]
    ordered = costliest_first(np.arange(len(repeats)), cost)
    sources = calls.table["source"].to_numpy(zero_copy_only=False)
    lines = calls.table["line"].to_numpy(zero_copy_only=False)
    notes = [f"repeats {sources[first[i]]}:{lines[first[i]]}" for i in ordered[: calls.max_evidence]]
    distinct = int(len(np.unique(codes[repeat])))
    traces = int(len(np.unique(calls.trace[repeats])))
    window = duration(params.window_seconds)
    shared = {"trace": "the same trace", "tenant": "the same tenant", "global": "anyone"}[params.scope]
    return Finding(
        kind=KIND,
        title="Identical requests sent again",
        usd_at_stake=at_stake,
        basis=f"cost of every call whose identical request ({shared}) was sent at most {window} before it by a call "
        "that was not itself a repeat (a response cache would have answered it)",
        evidence=calls.evidence(repeats[ordered], notes),
        detail=f"{count(len(repeats), 'call')} repeat one of {count(distinct, 'request')} sent at most {window} "
        f"before, in {count(traces, 'trace')}; they cost {usd(at_stake)}.",
        policy=policy(params),
        calls=len(repeats),
        traces=traces,
        figures={
            "repeated_calls": len(repeats),
            "distinct_requests": distinct,
            "window_seconds": params.window_seconds,
        },
    )


def policy(params: Params) -> dict[str, Any]:
    return {"response_cache": {"mode": "exact", "scope": params.scope, "ttl": ttl_text(params.window_seconds)}}


def ttl_text(seconds: float) -> str | int:
    """A response-cache `ttl`: `1h`, `30m`, or whole seconds."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return max(int(np.ceil(seconds)), 1)
