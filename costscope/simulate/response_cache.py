"""Serve repeated requests from a response cache (exact request or similar prompt), with the false hits it causes."""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from . import similarity
from .policy import Settings
from .replay import Replay

NAME = "response_cache"
BLOCK = 256
"""Calls compared with the cache per matrix product (semantic mode)."""
EXAMPLES = 3
"""False hits listed in the details (by file and line, not by content: prompts are user data)."""
_TTL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SCOPES = {
    "trace": "each trace has its own cache",
    "tenant": "each tenant has its own cache",
    "global": "all calls share one cache",
}


class ResponseCacheConfig(Settings):
    """Settings of the response cache (times in seconds unless a unit is given)."""

    mode: Literal["exact", "semantic"] = Field(
        default="exact",
        description="`exact`: a call is served when an identical request (same normalized request hash) is cached; "
        "`semantic`: when a cached prompt is at least `threshold` similar (character n-gram TF-IDF cosine).",
    )
    match_on: Literal["prompt", "task"] = Field(
        default="prompt",
        description="`prompt`: each call is looked up by its request (exact) or its new user message (semantic); "
        "`task`: each trace is looked up by its task (its first user message) and, on a hit, none of its calls "
        "are made (an agent-level cache of whole runs).",
    )
    scope: Literal["trace", "tenant", "global"] = Field(
        default="tenant",
        description="Who shares cache entries: calls of the same `trace`, of the same `tenant` (calls without a "
        "tenant share one cache), or everyone (`global`).",
    )
    ttl: int | str | None = Field(
        default="24h",
        description="How long an entry serves hits after the call that stored it started: seconds, or a number "
        'with a unit ("90s", "30m", "1h", "7d"); null: forever. Hits do not extend it.',
    )
    threshold: float = Field(
        default=0.9,
        ge=0.5,
        le=1.0,
        description="Semantic mode: the least cosine similarity (0.5-1) of two prompts for a hit; 1 serves only "
        "identical prompts (after lowercasing and collapsing whitespace).",
    )
    share_across_models: bool = Field(
        default=False,
        description="false: an entry serves only calls to the same model (as routed); true: any model's calls.",
    )
    max_entries: int | None = Field(
        default=None,
        ge=1,
        description="Most entries one cache (one scope value and model) holds; when full, the least recently used "
        "entry is evicted. null: unbounded.",
    )
    false_hit_below: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="A hit is a false hit when the cached recorded response and the call's own recorded response "
        "have a character n-gram cosine below this (0-1): the cache would have answered differently.",
    )

    @field_validator("ttl")
    @classmethod
    def _ttl_format(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value < 1:
            raise ValueError("ttl must be at least 1 second (null: forever)")
        if isinstance(value, str) and not _TTL.match(value):
            raise ValueError(f'ttl {value!r}: expected seconds or a number with a unit s, m, h or d, e.g. "24h"')
        return value

    @model_validator(mode="after")
    def _task_needs_shared_scope(self) -> ResponseCacheConfig:
        if self.match_on == "task" and self.scope == "trace":
            raise ValueError(
                "match_on: task looks up whole traces, which never repeat within one trace: use scope tenant or global"
            )
        return self

    @property
    def ttl_seconds(self) -> float:
        """The entry lifetime in seconds (inf: forever)."""
        if self.ttl is None:
            return float("inf")
        if isinstance(self.ttl, int):
            return float(self.ttl)
        match = _TTL.match(self.ttl)
        assert match is not None
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


Config = ResponseCacheConfig


@dataclass
class _Lookups:
    """The cache lookups to replay, sorted by cache (scope value and model), then time, then replay order."""

    group: np.ndarray
    """Cache of each lookup (int codes)."""
    time: np.ndarray
    """Start of each lookup (µs)."""
    key: np.ndarray
    """What an entry is found by: the request-hash code (exact, per call) or the normalized-text code."""
    vectors: np.ndarray | None
    """Semantic: the unit vector of each normalized text (row = text code)."""
    text_key: np.ndarray
    """Normalized-text code of each lookup (-1 without text): equal codes are identical texts."""
    request_hash: np.ndarray
    output: np.ndarray
    """Recorded response text (object; None when not logged) of each lookup."""
    lookup_of_row: np.ndarray
    """Per row of `replay.calls`: the lookup it belongs to (-1: none); in task mode every live call of a trace."""
    where: list[Any]
    """Per lookup: the index into `base` of its call (prompt mode) or its trace id (task mode), for examples."""


def apply(config: ResponseCacheConfig, replay: Replay) -> None:
    """Replay the cache over the live recorded calls in time order; drop the calls it would have served."""
    outcome = replay.outcomes[NAME]
    lookups = _lookups(config, replay, outcome.not_evaluated)
    entry, prompt_similarity = _replay_cache(config, lookups)
    hits = np.flatnonzero(entry >= 0)
    served = np.zeros(len(lookups.time) + 1, dtype=bool)
    served[hits] = True
    mask = served[lookups.lookup_of_row]  # -1 reads the last, always False
    replay.drop(mask, NAME)
    response_similarity = similarity.paired(lookups.output[hits], lookups.output[entry[hits]])
    compared = ~np.isnan(response_similarity)
    false = compared & (response_similarity < config.false_hit_below)
    outcome.assumptions.extend(_assumptions(config))
    outcome.risks["hit_rate"] = len(hits) / len(lookups.time) if len(lookups.time) else 0.0
    outcome.risks["false_hits"] = int(false.sum())
    if compared.any() or not len(hits):
        outcome.risks["false_hit_rate"] = float(false.sum() / compared.sum()) if compared.any() else 0.0
    if (~compared).any():
        outcome.not_evaluated.append(
            f"{int((~compared).sum())} of {len(hits)} hits could not be checked for a false hit: the recorded "
            "response text of the call or of the cached entry is missing"
        )
    examples = _examples(hits, entry[hits], prompt_similarity[hits], response_similarity, false)
    outcome.details.update(
        {
            "mode": config.mode,
            "match_on": config.match_on,
            "scope": config.scope,
            "ttl_seconds": None if config.ttl is None else config.ttl_seconds,
            "threshold": config.threshold if config.mode == "semantic" else None,
            "lookups": len(lookups.time),
            "hits": len(hits),
            "hit_rate": outcome.risks["hit_rate"],
            **_hit_kinds(lookups, hits, entry[hits]),
            "calls_not_made": int(mask.sum()),
            "hits_compared": int(compared.sum()),
            "hits_response_differs": int((compared & (response_similarity < 1.0)).sum()),
            "false_hits": int(false.sum()),
            "false_hit_examples": [_example(config, replay, lookups, *example) for example in examples],
        }
    )


# ---------------------------------------------------------------- what is looked up


def _lookups(config: ResponseCacheConfig, replay: Replay, not_evaluated: list[str]) -> _Lookups:
    calls = replay.calls
    exact_calls = config.mode == "exact" and config.match_on == "prompt"
    recorded = replay.live & (calls["added_by"] == "").to_numpy()
    columns = ["tenant", "model", "request_hash", "output_text", "start"] + ([] if exact_calls else ["prompt_text"])
    frame = calls.loc[recorded, columns].assign(
        trace=calls["trace_id"].fillna("\0").to_numpy()[recorded],
        row=np.flatnonzero(recorded),
        where=calls["origin"].to_numpy()[recorded],
    )
    if not exact_calls:
        frame["prompt_text"] = similarity.blank_to_none(frame["prompt_text"])
    if config.match_on == "task":
        frame = _traces(frame)
    frame = _evaluable(config, frame, not_evaluated)
    group = _cache_codes(config, frame)
    order = np.lexsort((np.arange(len(frame)), frame["start"].to_numpy(dtype=np.float64), group))
    frame, group = frame.iloc[order], group[order]
    if exact_calls:
        key = np.asarray(pd.factorize(frame["request_hash"])[0], dtype=np.int64)
        text_key, distinct = np.full(len(frame), -1, dtype=np.int64), list[str]()
    else:
        text_key, distinct = similarity.text_codes(frame["prompt_text"])
        key = text_key
    lookup_of_row = np.full(len(calls), -1, dtype=np.int64)
    if config.match_on == "task":
        index = pd.Series(np.arange(len(frame)), index=frame["trace"].to_numpy())
        found = index.reindex(calls["trace_id"].fillna("\0").to_numpy()).to_numpy(dtype=np.float64)
        lookup_of_row = np.where(replay.live & ~np.isnan(found), np.nan_to_num(found, nan=-1), -1).astype(np.int64)
    else:
        lookup_of_row[frame["row"].to_numpy()] = np.arange(len(frame))
    return _Lookups(
        group=group,
        time=frame["start"].to_numpy(dtype=np.float64),
        key=key,
        vectors=similarity.embed(distinct) if config.mode == "semantic" else None,
        text_key=text_key,
        request_hash=frame["request_hash"].to_numpy(dtype=object),
        output=frame["output_text"].to_numpy(dtype=object),
        lookup_of_row=lookup_of_row,
        where=frame["where"].tolist(),
    )


def _evaluable(config: ResponseCacheConfig, frame: pd.DataFrame, not_evaluated: list[str]) -> pd.DataFrame:
    """The lookups that have a key and a start time; the others are counted in `not_evaluated`."""
    exact_calls = config.mode == "exact" and config.match_on == "prompt"
    keyed = frame["request_hash" if exact_calls else "prompt_text"].notna().to_numpy()
    timed = np.isfinite(frame["start"].to_numpy(dtype=np.float64))
    what = "traces" if config.match_on == "task" else "calls"
    missing = "request hash (the request body was not logged)" if exact_calls else "user message text"
    if config.match_on == "task":
        missing = "task (no call of the trace logged a user message)"
    if (~keyed).any():
        not_evaluated.append(f"{int((~keyed).sum())} of {len(frame)} {what} have no {missing}: never looked up")
    if (keyed & ~timed).any():
        not_evaluated.append(f"{int((keyed & ~timed).sum())} {what} have no start time: never looked up")
    kept: pd.DataFrame = frame[keyed & timed]
    return kept


def _cache_codes(config: ResponseCacheConfig, frame: pd.DataFrame) -> np.ndarray:
    """Per lookup: its cache (scope value, and model unless shared), as compact int codes."""
    scope = {"trace": "trace", "tenant": "tenant", "global": None}[config.scope]
    code = np.zeros(len(frame), dtype=np.int64)
    for column in [scope, None if config.share_across_models else "model"]:
        if column is not None:
            values, distinct = pd.factorize(frame[column].fillna("\0"))
            code = code * (len(distinct) + 1) + values
    return np.asarray(pd.factorize(code)[0], dtype=np.int64)


def _traces(frame: pd.DataFrame) -> pd.DataFrame:
    """One lookup per trace: its task (first user message), start, first call's tenant and model, last answer."""
    by_trace = frame.groupby("trace", sort=True)
    first = by_trace.first()  # the first non-null value of each column, in replay order
    heads = by_trace.head(1).set_index("trace").reindex(first.index)
    return pd.DataFrame(
        {
            "trace": first.index.to_numpy(),
            "tenant": heads["tenant"].to_numpy(),
            "model": heads["model"].to_numpy(),
            "request_hash": None,
            "prompt_text": first["prompt_text"].to_numpy(),
            "output_text": by_trace["output_text"].last().to_numpy(),
            "start": by_trace["start"].min().to_numpy(),
            "where": first.index.to_numpy(),
        }
    )


# ---------------------------------------------------------------- the cache


def _replay_cache(config: ResponseCacheConfig, lookups: _Lookups) -> tuple[np.ndarray, np.ndarray]:
    """Per lookup: the lookup whose stored entry served it (-1: a miss, which stores an entry) and the similarity."""
    n = len(lookups.time)
    entry = np.full(n, -1, dtype=np.int64)
    score = np.zeros(n)
    ttl = config.ttl_seconds * 1e6
    bounded = _cap_binds(lookups, ttl, config.max_entries)
    if lookups.vectors is None:
        # exact: only repeated keys can hit or serve, unless a full cache makes every entry take room
        members = np.flatnonzero(_repeated_keys(lookups) | bounded)
        threshold = None
    else:
        sizes = np.bincount(lookups.group) if n else np.zeros(0, dtype=np.int64)
        members = np.flatnonzero(sizes[lookups.group] > 1)
        threshold = config.threshold
    times, keys, groups = lookups.time.tolist(), lookups.key.tolist(), lookups.group.tolist()
    caps = [config.max_entries if b else None for b in bounded.tolist()]
    cache = _Cache(ttl, None)
    current = -1
    step = BLOCK if threshold is not None else max(len(members), 1)
    for start in range(0, len(members), step):
        block = members[start : start + step]
        first = groups[int(block[0])]
        near: dict[int, list[tuple[int, float]]] = {}
        if threshold is not None:
            stored = cache.stored(times[int(block[0])]) if first == current else []
            near = _candidates(lookups, block, stored, threshold, ttl, caps[int(block[0])] is not None)
        for i in block.tolist():
            if groups[i] != current:
                current, cache = groups[i], _Cache(ttl, caps[i])
            cache.lookup(i, times[i], keys[i], near.get(i, ()), entry, score)
    return entry, score


def _repeated_keys(lookups: _Lookups) -> np.ndarray:
    """Per lookup: another lookup of the same cache has the same key."""
    pairs = pd.DataFrame({"g": lookups.group, "k": lookups.key})
    repeated: np.ndarray = pairs.duplicated(keep=False).to_numpy()
    return repeated


def _cap_binds(lookups: _Lookups, ttl: float, cap: int | None) -> np.ndarray:
    """Per lookup: its cache may ever hold `cap` entries (more lookups than that within one TTL)."""
    bounded = np.zeros(len(lookups.time), dtype=bool)
    if cap is None or not len(bounded):
        return bounded
    sizes = np.bincount(lookups.group)
    starts = np.cumsum(sizes) - sizes
    for g in np.flatnonzero(sizes > cap).tolist():
        times = lookups.time[starts[g] : starts[g] + sizes[g]]
        within = np.arange(len(times)) - np.searchsorted(times, times - ttl, side="left") + 1
        bounded[starts[g] : starts[g] + sizes[g]] = within.max() > cap
    return bounded


class _Cache:
    """The entries of one cache (one scope value and model), replayed lookup by lookup in time order.

    An entry is stored by a miss at its start time and serves lookups until `ttl` µs later (a hit does not extend
    it); with `cap` entries, storing one more evicts the least recently used (stored or hit) entry.
    """

    def __init__(self, ttl: float, cap: int | None) -> None:
        self.ttl = ttl
        self.cap = cap
        self.finite = ttl != float("inf")
        self.alive: OrderedDict[int, float] = OrderedDict()
        """Entry (index of the lookup that stored it) -> store time, least recently used first."""
        self.by_key: dict[int, int] = {}
        self.expiry: deque[int] = deque()

    def stored(self, now: float) -> list[int]:
        """The entries alive at `now`."""
        self.expire(now)
        return list(self.alive)

    def expire(self, now: float) -> None:
        """Forget the entries older than the TTL (they serve nothing and take no room)."""
        while self.expiry:
            first = self.expiry[0]
            stored = self.alive.get(first)
            if stored is not None and now - stored <= self.ttl:
                return
            self.expiry.popleft()
            if stored is not None:
                del self.alive[first]

    def lookup(
        self, i: int, now: float, key: int, near: Iterable[tuple[int, float]], entry: np.ndarray, score: np.ndarray
    ) -> None:
        """Serve lookup `i` from the best alive entry (identical key, else the most similar of `near`) or store it."""
        best, best_score = -1, -1.0
        stored = self.by_key.get(key)
        at = self.alive.get(stored) if stored is not None else None
        if stored is not None and at is not None and now - at <= self.ttl:
            best, best_score = stored, 1.0
        else:
            for e, s in near:
                at = self.alive.get(e)
                if at is not None and now - at <= self.ttl and (s > best_score or (s == best_score and e > best)):
                    best, best_score = e, s
        if best >= 0:
            entry[i], score[i] = best, best_score
            self.alive.move_to_end(best)
            return
        if self.cap is not None:
            if self.finite:
                self.expire(now)
            while len(self.alive) >= self.cap:
                self.alive.popitem(last=False)
        self.alive[i] = now
        self.by_key[key] = i
        if self.finite:
            self.expiry.append(i)


def _candidates(
    lookups: _Lookups, block: np.ndarray, stored: list[int], threshold: float, ttl: float, evicts: bool
) -> dict[int, list[tuple[int, float]]]:
    """Per lookup of `block`: the entries of its cache at least `threshold` similar to it and not expired, stored
    before the block (`stored`, of the block's first cache) or earlier in the block (those only if they missed,
    which the replay checks). Unless the cache `evicts`, an entry stored before the block is still there when a
    lookup of the block comes, so only the best one is kept.

    One matrix product of the block against the stored entries and one against itself: (block + entries) x
    DIMENSIONS multiply-adds per lookup.
    """
    assert lookups.vectors is not None
    queries = lookups.vectors[lookups.key[block]]
    found: dict[int, list[tuple[int, float]]] = {}
    for entries in (np.asarray(stored, dtype=np.int64), block):
        if not len(entries):
            continue
        scores = queries @ lookups.vectors[lookups.key[entries]].T
        hit = (scores >= threshold) & (lookups.group[block][:, None] == lookups.group[entries][None, :])
        hit &= lookups.time[block][:, None] - lookups.time[entries][None, :] <= ttl
        if entries is block:
            hit = np.tril(hit, -1)
            rows, cols = np.nonzero(hit)
        elif not evicts:
            # the best entry per lookup: highest score, then the latest stored
            masked = np.where(hit, scores, -np.inf)
            rows = np.flatnonzero(masked.max(axis=1) > -np.inf)
            top = masked[rows] == masked[rows].max(axis=1)[:, None]
            cols = np.where(top, entries[None, :], -1).argmax(axis=1)
        else:
            rows, cols = np.nonzero(hit)
        for r, e, s in zip(block[rows].tolist(), entries[cols].tolist(), scores[rows, cols].tolist(), strict=True):
            found.setdefault(r, []).append((e, min(s, 1.0)))
    return found


# ---------------------------------------------------------------- what the hits mean


def _hit_kinds(lookups: _Lookups, hits: np.ndarray, entries: np.ndarray) -> dict[str, int]:
    """How alike each hit and its entry were: the same request, the same text, or only a similar text."""
    hashes = pd.Series(lookups.request_hash[hits])
    same_request = (hashes.notna() & (hashes.to_numpy() == lookups.request_hash[entries])).to_numpy()
    same_text = (lookups.text_key[hits] >= 0) & (lookups.text_key[hits] == lookups.text_key[entries])
    return {
        "hits_same_request": int(same_request.sum()),
        "hits_same_text": int((same_text & ~same_request).sum()),
        "hits_similar_text": int((~same_text & ~same_request).sum()),
    }


def _examples(
    hits: np.ndarray, entries: np.ndarray, prompt_score: np.ndarray, output_score: np.ndarray, false: np.ndarray
) -> list[tuple[int, int, float, float]]:
    """The EXAMPLES false hits whose answers differed most (then the earliest): (lookup, entry, scores)."""
    chosen = np.flatnonzero(false)
    chosen = chosen[np.lexsort((chosen, output_score[chosen]))][:EXAMPLES]
    return [(int(hits[k]), int(entries[k]), float(prompt_score[k]), float(output_score[k])) for k in chosen.tolist()]


def _example(
    config: ResponseCacheConfig, replay: Replay, lookups: _Lookups, hit: int, entry: int, prompt: float, output: float
) -> dict[str, Any]:
    """One false hit, by reference (file:line of the calls, or trace ids), not by content: prompts are user data."""

    def label(lookup: int) -> str:
        where = lookups.where[lookup]
        if config.match_on == "task":
            return f"trace {where}"
        return f"{replay.base['source'][where].as_py()}:{replay.base['line'][where].as_py()}"

    return {
        "lookup": label(hit),
        "served_from": label(entry),
        "prompt_similarity": round(prompt, 4),
        "response_similarity": round(output, 4),
    }


def _assumptions(config: ResponseCacheConfig) -> list[str]:
    ttl = (
        "never expire" if config.ttl is None else f"expire {config.ttl} after they are stored (hits do not extend them)"
    )
    out = [
        "A hit returns the cached response instead of making the call: the call costs nothing (no cache or "
        "embedding cost is counted).",
        f"Entries are stored by the call that missed, usable from its start (parallel identical calls are assumed "
        f"to wait for one another), and {ttl}; {_SCOPES[config.scope]}"
        + ("." if config.share_across_models else ", per model (as routed)."),
        "Only recorded calls are looked up and stored; calls added by earlier policies (summaries, escalations) "
        "are always made.",
        "The rest of a trace is replayed as recorded even when a hit would have returned a different answer.",
        f"A false hit is a hit whose cached recorded response and own recorded response (first 512 characters) have "
        f"a character 3-5-gram cosine below {config.false_hit_below}.",
    ]
    if config.mode == "semantic":
        what = "tasks (first user message of each trace)" if config.match_on == "task" else "new user messages"
        out.append(
            f"Prompts match when the cosine of their character 3-5-gram TF-IDF vectors (first 512 characters of the "
            f"{what}, IDF fitted on this run's distinct prompts, hashed to {similarity.DIMENSIONS} dimensions) is at "
            f"least {config.threshold}: a lexical measure, not an embedding model."
        )
    if config.match_on == "prompt" and config.mode == "semantic":
        out.append(
            "A prompt is matched without its conversation: a follow-up such as 'shorter please' matches the "
            "same words in another conversation (the false-hit rate shows what that costs)."
        )
    return out
