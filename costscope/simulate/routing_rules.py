"""Which calls a routing rule selects: its conditions and their vectorized matching (first matching rule wins)."""

from __future__ import annotations

import fnmatch
import re
from functools import cached_property
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from .policy import Settings
from .replay import Replay

Patterns = str | list[str]


class RoutingWhen(Settings):
    """Conditions of one rule: every condition given must hold (none given: every call matches)."""

    agent: Patterns | None = Field(default=None, description="Agent names (glob patterns, case-sensitive); any.")
    operation: Patterns | None = Field(default=None, description="Operation names (glob patterns); any.")
    tenant: Patterns | None = Field(default=None, description="Tenant names (glob patterns); any.")
    model: Patterns | None = Field(default=None, description="The call's current model (glob patterns); any.")
    step_min: int | None = Field(default=None, ge=1, description="First position in the trace (1 = first LLM call).")
    step_max: int | None = Field(default=None, ge=1, description="Last position in the trace (inclusive).")
    input_tokens_min: int | None = Field(default=None, ge=0, description="Least input tokens (as sent at this point).")
    input_tokens_max: int | None = Field(default=None, ge=0, description="Most input tokens (inclusive).")
    output_tokens_min: int | None = Field(default=None, ge=0, description="Least recorded output tokens.")
    output_tokens_max: int | None = Field(default=None, ge=0, description="Most recorded output tokens (inclusive).")
    keywords: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None,
        min_length=1,
        description="Words or phrases, any of which must appear (whole word, any case; in the first 512 characters "
        "of a user message).",
    )
    keywords_in: Literal["last_user", "task", "either"] = Field(
        default="last_user",
        description="Where keywords are looked for: `last_user` (the latest user message up to this call), "
        "`task` (the trace's first user message) or `either`.",
    )

    @model_validator(mode="after")
    def _ordered_bounds(self) -> RoutingWhen:
        for name in ("step", "input_tokens", "output_tokens"):
            low, high = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
            if low is not None and high is not None and low > high:
                raise ValueError(f"{name}_min ({low}) is above {name}_max ({high})")
        return self

    @property
    def uses_output(self) -> bool:
        return self.output_tokens_min is not None or self.output_tokens_max is not None


class _Context:
    """What the rules look up, built on first use: each text column factorized once; per recorded call (row of
    `base`), its position among its trace's LLM calls in replay order (1 = first), the trace's task (its first
    user message) and the latest user message so far."""

    def __init__(self, replay: Replay) -> None:
        self._base = replay.base
        self._calls = replay.calls
        self._distinct: dict[str, tuple[np.ndarray, list[str]]] = {}

    def glob(self, column: str, patterns: Patterns) -> np.ndarray:
        """Calls whose `column` matches one of the glob patterns (case-sensitive, as `--model`/`--agent`);
        a missing value never matches. Each column is factorized once for all rules."""
        if column not in self._distinct:
            codes, distinct = pd.factorize(self._calls[column])
            self._distinct[column] = (codes, [str(u) for u in distinct])
        codes, uniques = self._distinct[column]
        wanted = [patterns] if isinstance(patterns, str) else patterns
        hits = np.array([any(fnmatch.fnmatchcase(u, p) for p in wanted) for u in uniques] + [False])
        selected: np.ndarray = hits[codes]
        return selected

    @cached_property
    def _trace(self) -> np.ndarray:
        codes: np.ndarray = pd.factorize(self._base["trace_id"].to_pandas(), use_na_sentinel=False)[0]
        return codes

    @cached_property
    def position(self) -> np.ndarray:
        position: np.ndarray = (pd.Series(self._trace).groupby(self._trace).cumcount() + 1).to_numpy()
        return position

    @cached_property
    def task(self) -> pd.Series:
        first: pd.Series = self._base["prompt_text"].to_pandas().groupby(self._trace).transform("first")
        return first

    @cached_property
    def last_user(self) -> pd.Series:
        latest: pd.Series = self._base["prompt_text"].to_pandas().groupby(self._trace).ffill()
        return latest


def _keyword_pattern(words: list[str]) -> re.Pattern[str]:
    """Any of `words` as a whole word or phrase (runs of spaces match any whitespace), in any case."""
    parts = [r"\s+".join(re.escape(part) for part in word.split()) for word in words]
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


def _contains(texts: pd.Series | np.ndarray, pattern: re.Pattern[str]) -> np.ndarray:
    """Texts with a match of `pattern` (a missing text has none); each distinct text searched once."""
    codes, uniques = pd.factorize(texts)
    hits = np.array([pattern.search(text) is not None for text in uniques] + [False])
    found: np.ndarray = hits[codes]
    return found


def column_values(calls: pd.DataFrame, name: str, rows: np.ndarray) -> np.ndarray:
    """A text column of `calls` at `rows`, as Python objects (None where missing)."""
    return _objects(calls[name].take(rows))


def _objects(values: pd.Series) -> np.ndarray:
    """A text Series as an object array with None (not NaN) where missing."""
    out: np.ndarray = values.to_numpy(dtype=object, copy=True)
    out[values.isna().to_numpy()] = None
    return out


def _within(values: np.ndarray, low: int | None, high: int | None) -> np.ndarray:
    mask = np.ones(len(values), dtype=bool)
    if low is not None:
        mask &= values >= low
    if high is not None:
        mask &= values <= high
    return mask


def _rule_mask(when: RoutingWhen, calls: pd.DataFrame, context: _Context, candidates: np.ndarray) -> np.ndarray:
    """Calls among `candidates` that meet every condition of `when` (keywords last: the only costly test)."""
    mask = candidates.copy()
    for column in ("agent", "operation", "tenant", "model"):
        patterns = getattr(when, column)
        if patterns is not None:
            mask &= context.glob(column, patterns)
    origin = calls["origin"].to_numpy()
    if when.step_min is not None or when.step_max is not None:
        mask &= _within(context.position[origin], when.step_min, when.step_max)
    mask &= _within(calls["input_tokens"].to_numpy(), when.input_tokens_min, when.input_tokens_max)
    mask &= _within(calls["output_tokens"].to_numpy(), when.output_tokens_min, when.output_tokens_max)
    if when.keywords and mask.any():
        rows = np.flatnonzero(mask)
        pattern = _keyword_pattern(when.keywords)
        found = np.zeros(len(rows), dtype=bool)
        if when.keywords_in in ("last_user", "either"):
            own = column_values(calls, "prompt_text", rows)
            latest = _objects(context.last_user.take(origin[rows]))
            found |= _contains(np.where(pd.isna(own), latest, own), pattern)
        if when.keywords_in in ("task", "either"):
            found |= _contains(context.task.take(origin[rows]), pattern)
        mask[rows] = found
    return mask


def first_matches(rules: list[RoutingWhen], replay: Replay) -> np.ndarray:
    """Per call: the index of the first rule (conditions) it matches, -1 for none (only live calls are routed)."""
    context = _Context(replay)
    open_ = replay.live.copy()
    rule_of = np.full(len(replay.calls), -1, dtype=np.int64)
    for index, when in enumerate(rules):
        mask = _rule_mask(when, replay.calls, context, open_)
        rule_of[mask] = index
        open_ &= ~mask
    return rule_of
