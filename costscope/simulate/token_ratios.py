"""Billed input tokens per counted token, per model: what re-tokenizing a routed call multiplies by.

Models of one tokenizer family count the same text alike; across families the ratio comes, in order, from the
policy's `input_token_ratios`, the median reported/recounted scale of the model's (or its family's) calls in the
data, a documented family default, or 1.0 — each with its basis, for the report.
"""

from __future__ import annotations

import fnmatch
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from genai_prices import data_snapshot

from ..tokens import native_encoding
from .replay import Replay

DEFAULT_RATIOS: dict[str, tuple[float, str]] = {
    "claude": (1.2, "Claude's tokenizer counts about 16-30% more tokens than OpenAI's on the same English and code"),
    "claude-opus-4-7": (1.55, "Claude Opus 4.7's tokenizer counts about 30% more tokens than earlier Claude models"),
    "o200k": (1.0, "o200k_base counts English text about like cl100k_base"),
    "cl100k": (1.0, "the model's own encoding"),
    "gemini": (1.0, "no published ratio for Gemini's tokenizer"),
}
"""Billed tokens per cl100k_base token by tokenizer family, when the data shows none. Sources: PROVIDERS.md §7
(VentureBeat May 2025: Claude 3.5 +16% English, +21% math, +30% Python vs GPT-4o; Anthropic's Opus 4.7 token
counting doc: "approximately 30 percent more tokens")."""


def tokenizer_family(model: str | None) -> str | None:
    """The tokenizer family of a model name: models of one family count the same text alike (None: unknown)."""
    name = (model or "").lower().rsplit("/", 1)[-1]
    if "claude-opus-4-7" in name:
        return "claude-opus-4-7"
    if "claude" in name:
        return "claude"
    if "gemini" in name:
        return "gemini"
    encoding = native_encoding(name)
    if encoding is None:
        return None
    return "cl100k" if encoding == "cl100k_base" else "o200k"


@cache
def genai_identity(provider: str | None, model: str) -> tuple[str, str] | None:
    """genai-prices' (provider id, model id) for a logged model name: equal for aliases and dated snapshots."""
    snapshot = data_snapshot.get_snapshot()
    for provider_id in ([provider] if provider else []) + [None]:
        try:
            found_provider, info = snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError:
            continue
        return found_provider.id, info.id
    return None


def canonical(provider: str | None, model: str | None) -> str:
    """`provider/model` as genai-prices names it (aliases and dated snapshots alike), else as logged."""
    identity = genai_identity(provider, model) if model else None
    return "/".join(identity) if identity else f"{provider}/{model}"


def per_distinct(values: pd.Series | np.ndarray, function: Any) -> np.ndarray:
    """`function` of each value, computed once per distinct value (object array out; None for missing)."""
    codes, uniques = pd.factorize(values)
    results = np.array([function(u) for u in uniques] + [function(None)], dtype=object)
    out: np.ndarray = results[codes]
    return out


class Ratios:
    """Billed input tokens per counted token (cl100k_base offline), per model: what re-tokenization multiplies by.

    Looked up in order: the overrides (`input_token_ratios`); the median reported/recounted scale of that model's
    calls with content in the data; the median of its tokenizer family in the data; a documented family default;
    1.0."""

    def __init__(self, overrides: dict[str, float], replay: Replay) -> None:
        """`overrides`: ratios by model glob (the policy's `input_token_ratios`), tried first."""
        self.overrides = overrides
        self.scale = replay.content_scale()
        base = replay.base
        models, providers = base["model"].to_pandas(), base["provider"].to_pandas()
        usable = np.isfinite(self.scale) & (self.scale > 0)
        usable &= pc.fill_null(pc.equal(base["usage_source"], "reported"), False).to_numpy(zero_copy_only=False)
        frame = pd.DataFrame(
            {
                "canonical": per_pair(providers[usable], models[usable], canonical),
                "family": per_distinct(models[usable], tokenizer_family),
                "scale": self.scale[usable],
            }
        )
        self.by_model = _medians(frame, "canonical")
        self.by_family = _medians(frame, "family")
        self.used: dict[str, dict[str, Any]] = {}

    def ratio(self, provider: str | None, model: str | None) -> float:
        """The ratio of one model (remembered with its basis for the report)."""
        label = model or "(no model)"
        if label not in self.used:
            self.used[label] = self._lookup(provider, model)
        value: float = self.used[label]["ratio"]
        return value

    def _lookup(self, provider: str | None, model: str | None) -> dict[str, Any]:
        for pattern, value in self.overrides.items():
            if model and fnmatch.fnmatchcase(model, pattern):
                return {"ratio": value, "basis": f"input_token_ratios {pattern!r}", "assumed": False}
        identity, family = canonical(provider, model), tokenizer_family(model)
        if identity in self.by_model:
            median, size = self.by_model[identity]
            return {"ratio": median, "basis": f"median over {size} calls in the data", "assumed": False}
        if family in self.by_family:
            median, size = self.by_family[family]
            return {"ratio": median, "basis": f"median over {size} {family}-family calls in the data", "assumed": False}
        if family in DEFAULT_RATIOS:
            value, why = DEFAULT_RATIOS[family]
            return {"ratio": value, "basis": f"default for the {family} family: {why}", "assumed": family != "cl100k"}
        return {"ratio": 1.0, "basis": "no known ratio: counted like cl100k_base", "assumed": True}


def _medians(frame: pd.DataFrame, key: str) -> dict[str, tuple[float, int]]:
    """Median content scale and number of calls per value of `key`."""
    agg = frame.dropna(subset=[key]).groupby(key)["scale"].agg(["median", "size"])
    return {str(k): (float(m), int(n)) for k, m, n in agg.itertuples()}


def per_pair(providers: pd.Series | np.ndarray, models: pd.Series | np.ndarray, function: Any) -> np.ndarray:
    """`function(provider, model)` computed once per distinct pair."""
    p_codes, p_uniques = pd.factorize(providers)
    m_codes, m_uniques = pd.factorize(models)
    width = len(m_uniques) + 1
    pair_codes, pairs = pd.factorize((p_codes.astype(np.int64) + 1) * width + m_codes + 1)
    results = []
    for pair in pairs:
        p, m = divmod(int(pair), width)
        results.append(function(p_uniques[p - 1] if p else None, m_uniques[m - 1] if m else None))
    out: np.ndarray = np.array(results, dtype=object)[pair_codes]
    return out
