"""Why the mean cost per trace changed: price changes versus usage changes, split by an index method.

The baseline keeps, per model, the tokens and cost of each billing bucket (uncached input, cache read,
cache write, output), hence its effective rates. With them:

* **price effect** = current cost - current usage billed at the baseline's effective rates (a Paasche
  price index: what the same usage would have cost before). A bucket or model the baseline never used
  has no baseline rate; its current rate is used, so it counts as usage, not price.
* **usage effect** = current usage at baseline rates - baseline cost, split exactly (no residual) with the
  log-mean Divisia index (LMDI-I) over models, writing each model's cost per trace at baseline rates as

      calls per trace x model share of calls x tokens per call x cost per token

  and the cost per token as (its value at the baseline's cache hit ratio) x (the cache hit ratio's effect).
  The factors give the rows calls per trace, model mix, tokens per call, cache hit ratio, and "output share &
  cache writes" (what remains: the output/input mix and cache writes). A model on one side only moves the
  model mix.

All figures are USD per trace over the priced calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .baseline import BUCKETS, Baseline, ModelUsage

EFFECTS = {
    "calls_per_trace": "calls per trace",
    "tokens_per_call": "tokens per call",
    "model_mix": "model mix",
    "cache_hit_ratio": "cache hit ratio",
    "other": "output share & cache writes",
}
ModelKey = tuple[str | None, str]


@dataclass(frozen=True)
class Effect:
    name: str
    usd: float
    """USD per trace this factor adds (negative: saves)."""
    baseline: float | None = None
    current: float | None = None
    """The factor's value on each side, where it has one (calls per trace, tokens per call, hit ratio)."""

    @property
    def label(self) -> str:
        return EFFECTS[self.name]


@dataclass(frozen=True)
class ModelChange:
    provider: str | None
    model: str
    baseline_usd: float
    current_usd: float
    price_usd: float
    usage_usd: float


@dataclass(frozen=True)
class Explanation:
    baseline_usd: float
    current_usd: float
    price_usd: float
    effects: tuple[Effect, ...]
    models: tuple[ModelChange, ...]

    @property
    def change_usd(self) -> float:
        return self.current_usd - self.baseline_usd

    @property
    def usage_usd(self) -> float:
        return sum(e.usd for e in self.effects)


def _rate(model: ModelUsage | None, bucket: str) -> float | None:
    if model is None or model.tokens(bucket) <= 0:
        return None
    return model.cost_usd[bucket] / model.tokens(bucket)


def _baseline_rates(base: ModelUsage | None, cur: ModelUsage) -> dict[str, float]:
    """USD per token per bucket: the baseline's, else the current one's, else plain input, else 0."""
    rates: dict[str, float] = {}
    for bucket in BUCKETS:
        chain = (_rate(base, bucket), _rate(cur, bucket), _rate(base, "input"), _rate(cur, "input"))
        rates[bucket] = next((r for r in chain if r is not None), 0.0)
    return rates


def _cost(rates: dict[str, float], input_tokens: float, read: float, write: float, output: float) -> float:
    uncached = input_tokens - read - write
    return (
        uncached * rates["input"] + read * rates["cache_read"] + write * rates["cache_write"] + output * rates["output"]
    )


def _log_mean(a: float, b: float) -> float:
    return a if math.isclose(a, b, rel_tol=1e-15, abs_tol=0.0) else (a - b) / (math.log(a) - math.log(b))


def _tokens(m: ModelUsage) -> int:
    return m.input_tokens + m.output_tokens


def _hit_ratio(models: list[ModelUsage]) -> float | None:
    total = sum(m.input_tokens for m in models)
    return sum(m.cache_read_tokens for m in models) / total if total else None


def explain(base: Baseline, cur: Baseline) -> Explanation:
    """Decompose the change in mean cost per trace (both runs need at least one trace)."""
    nb, nc = max(base.totals.traces, 1), max(cur.totals.traces, 1)
    b_models: dict[ModelKey, ModelUsage] = {(m.provider, m.model): m for m in base.models}
    c_models: dict[ModelKey, ModelUsage] = {(m.provider, m.model): m for m in cur.models}
    calls_b, calls_c = sum(m.calls for m in base.models), sum(m.calls for m in cur.models)
    tokens_b, tokens_c = sum(map(_tokens, base.models)), sum(map(_tokens, cur.models))
    sums = dict.fromkeys(EFFECTS, 0.0)
    price = 0.0
    changes = []
    for key in sorted(set(b_models) | set(c_models), key=lambda k: (k[1], k[0] or "")):
        b, c = b_models.get(key), c_models.get(key)
        vb = b.cost_total / nb if b is not None else 0.0
        vc = 0.0
        model_price = 0.0
        if c is not None:
            rates = _baseline_rates(b, c)
            at_base = _cost(rates, c.input_tokens, c.cache_read_tokens, c.cache_write_tokens, c.output_tokens)
            vc = at_base / nc
            model_price = (c.cost_total - at_base) / nc
            price += model_price
        if b is not None and c is not None and vb > 0 and vc > 0:
            weight = _log_mean(vc, vb)
            sums["calls_per_trace"] += weight * math.log((calls_c / nc) / (calls_b / nb))
            sums["model_mix"] += weight * math.log((c.calls / calls_c) / (b.calls / calls_b))
            sums["tokens_per_call"] += weight * math.log((_tokens(c) / c.calls) / (_tokens(b) / b.calls))
            per_token_b, per_token_c = vb * nb / _tokens(b), vc * nc / _tokens(c)
            hit = b.cache_read_tokens / b.input_tokens if b.input_tokens else 0.0
            read = max(0.0, min(hit * c.input_tokens, c.input_tokens - c.cache_write_tokens))
            at_base_hit = _cost(rates, c.input_tokens, read, c.cache_write_tokens, c.output_tokens) / _tokens(c)
            if at_base_hit > 0:
                sums["cache_hit_ratio"] += weight * math.log(per_token_c / at_base_hit)
                sums["other"] += weight * math.log(at_base_hit / per_token_b)
            else:
                sums["other"] += weight * math.log(per_token_c / per_token_b)
        else:
            sums["model_mix"] += vc - vb
        changes.append(
            ModelChange(
                provider=key[0],
                model=key[1],
                baseline_usd=vb,
                current_usd=(c.cost_total / nc) if c is not None else 0.0,
                price_usd=model_price,
                usage_usd=vc - vb,
            )
        )
    drivers: dict[str, tuple[float | None, float | None]] = {
        "calls_per_trace": (calls_b / nb, calls_c / nc),
        "tokens_per_call": (tokens_b / calls_b if calls_b else None, tokens_c / calls_c if calls_c else None),
        "cache_hit_ratio": (_hit_ratio(base.models), _hit_ratio(cur.models)),
    }
    effects = tuple(Effect(name, usd, *drivers.get(name, (None, None))) for name, usd in sums.items())
    changes.sort(key=lambda m: (-abs(m.current_usd - m.baseline_usd), m.model))
    return Explanation(
        baseline_usd=sum(m.cost_total for m in base.models) / nb,
        current_usd=sum(m.cost_total for m in cur.models) / nc,
        price_usd=price,
        effects=effects,
        models=tuple(changes),
    )
