"""`costscope forecast`: what a month of traffic would cost, from the cost per trace of the traces read.

The monthly cost is the mean cost per trace times the traces per month, with a percentile-bootstrap interval of
that mean (traces resampled with replacement from a fixed seed, so the same input gives the same answer). Policy
files are replayed (api.build_simulation) and their joint projection forecast the same way, resampled together
with the recorded traces so the saving has an interval of its own. The self-hosting break-even compares the API
cost of a slice of calls (by model) with GPUs rented by the hour.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import __version__, api
from . import attribution as attr
from .errors import ConfigError, InputError
from .steps import matching

FORECAST_VERSION = 1
DAYS_PER_MONTH = 365.25 / 12
HOURS_PER_MONTH = 24 * DAYS_PER_MONTH
"""730.5: a GPU rented for a month is paid every hour of it."""
PERIOD_DAYS = {"hour": 1 / 24, "day": 1.0, "week": 7.0, "month": DAYS_PER_MONTH, "year": 365.25}
RESAMPLES = 2000
SEED = 20_261_126
MIN_RESAMPLES = 200
DRAW_BUDGET = 50_000_000
"""Traces drawn in all (resamples x traces): 2,000 resamples up to 25,000 traces, fewer above (a few seconds)."""
_CHUNK_DRAWS = 4_000_000
"""Trace draws per bootstrap chunk (resamples x traces), so memory stays bounded."""
_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9}
_VOLUME = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*([kmb]?)\s*(?:/\s*([a-z]+))?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Volume:
    traces: float
    """Traces per `period`."""
    period: str
    source: str = "given"
    """`given` (--volume) or `observed` (the inputs' own rate)."""

    @property
    def per_month(self) -> float:
        return self.traces * DAYS_PER_MONTH / PERIOD_DAYS[self.period]

    @classmethod
    def parse(cls, text: str) -> Volume:
        """`100000/month`, `100k/month`, `3,000/day`, `1.5M/week`; a bare number is per month."""
        match = _VOLUME.match(text)
        period = (match.group(3) or "month").lower() if match else ""
        if match and period.endswith("s"):
            period = period[:-1]
        if not match or period not in PERIOD_DAYS:
            raise ConfigError(
                f"--volume {text!r}: expected traces per period", hint="e.g. --volume 100000/month, 3k/day, 20k/week"
            )
        value = float(match.group(1).replace(",", "").replace("_", "")) * _SUFFIX[match.group(2).lower()]
        if value <= 0:
            raise ConfigError(f"--volume {text!r}: the number of traces must be positive")
        return cls(value, period)

    def text(self) -> str:
        count = f"{self.traces:,.0f}" if self.traces == round(self.traces) else f"{self.traces:,.2f}"
        return f"{count} traces/{self.period}"


@dataclass(frozen=True)
class SelfHost:
    """A slice of calls (by model glob) moved to GPUs rented by the hour."""

    models: tuple[str, ...]
    gpu_hourly_usd: float
    gpu_count: int = 1
    """The smallest fleet kept running (more GPUs are added when the slice needs them)."""
    tokens_per_second: float | None = None
    """Sustained throughput of one GPU over the slice's input + output tokens."""
    calls_per_hour: float | None = None
    """Alternatively, calls one GPU completes per hour."""
    utilization: float = 0.5
    """Average load as a share of that throughput (traffic is bursty: a fleet is sized for its peaks)."""

    @classmethod
    def from_options(
        cls,
        models: list[str] | None,
        gpu_hourly: float | None,
        gpu_count: int,
        throughput: float | None,
        calls_per_hour: float | None,
        utilization: float,
    ) -> SelfHost | None:
        """The self-hosting question when `--slice-model` or `--gpu-hourly` is given; None when neither is."""
        if not models and gpu_hourly is None:
            return None
        if not models:
            raise ConfigError("--gpu-hourly needs the slice it would serve", hint="add --slice-model 'gpt-4o-mini*'")
        if gpu_hourly is None or gpu_hourly <= 0:
            raise ConfigError("--slice-model needs --gpu-hourly USD (the price of one GPU per hour)")
        if (throughput is None) == (calls_per_hour is None):
            raise ConfigError(
                "give the GPU's throughput as --throughput TOKENS_PER_SECOND or --calls-per-hour N (one of them)"
            )
        for name, value in (("--throughput", throughput), ("--calls-per-hour", calls_per_hour)):
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive")
        if gpu_count < 1:
            raise ConfigError("--gpu-count must be at least 1")
        if not 0 < utilization <= 1:
            raise ConfigError("--utilization must be in (0, 1]", hint="e.g. 0.5 for an average load of half the peak")
        return cls(tuple(models), gpu_hourly, gpu_count, throughput, calls_per_hour, utilization)

    @property
    def unit(self) -> str:
        return "tokens" if self.tokens_per_second is not None else "calls"

    @property
    def capacity_per_gpu(self) -> float:
        """Tokens (or calls) one GPU serves in a month at the given utilization."""
        per_hour = self.tokens_per_second * 3600 if self.tokens_per_second is not None else self.calls_per_hour
        return float(per_hour or 0.0) * HOURS_PER_MONTH * self.utilization

    @property
    def gpu_month_usd(self) -> float:
        return self.gpu_hourly_usd * HOURS_PER_MONTH


@dataclass(frozen=True)
class ForecastSettings:
    volume: Volume | None = None
    """None: the inputs' observed rate."""
    confidence: float = 0.95
    resamples: int = RESAMPLES
    seed: int = SEED
    self_host: SelfHost | None = None

    def __post_init__(self) -> None:
        if not 0 < self.confidence < 1:
            raise ConfigError("--confidence must be between 0 and 1", hint="e.g. 0.95")


@dataclass
class Forecast:
    inputs: dict[str, Any]
    volume: dict[str, Any]
    sample: dict[str, Any]
    bootstrap: dict[str, Any]
    projections: list[dict[str, Any]]
    self_host: dict[str, Any] | None
    assumptions: list[str]
    price_sources: list[str]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of `costscope forecast --format json` (field names are a public interface)."""
        return {
            "costscope_version": __version__,
            "forecast_version": FORECAST_VERSION,
            "inputs": self.inputs,
            "volume": self.volume,
            "sample": self.sample,
            "bootstrap": self.bootstrap,
            "projections": self.projections,
            "self_host": self.self_host,
            "assumptions": self.assumptions,
            "prices": {"sources": self.price_sources},
            "warnings": self.warnings,
        }


# ---------------------------------------------------------------- per-trace figures


def _per_trace(calls: pa.Table, traces: pa.Array, value: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Sum of `value` per trace, aligned with `traces` (0 where a trace has no row or only nulls)."""
    sums = pa.table({"trace_id": calls["trace_id"], "v": value}).group_by("trace_id", use_threads=False)
    sums = sums.aggregate([("v", "sum")])
    index = pc.index_in(sums["trace_id"], value_set=traces)
    found = pc.is_valid(index).to_numpy(zero_copy_only=False)
    positions = pc.fill_null(index, 0).to_numpy(zero_copy_only=False)[found]
    out = np.zeros(len(traces))
    out[positions] = pc.fill_null(sums["v_sum"], 0).to_numpy(zero_copy_only=False).astype(np.float64)[found]
    return out


def priced_traces(calls: pa.Table) -> pa.Array:
    """Traces with at least one priced call, sorted (the sample every figure is taken over)."""
    per_trace = attr.trace_costs(calls)
    if per_trace.num_rows == 0:
        return pa.array([], pa.string())
    priced = per_trace.filter(pc.greater(per_trace["cost_total_count"], 0))
    return pc.unique(priced["trace_id"].drop_null()).sort()


def trace_cost(calls: pa.Table, traces: pa.Array) -> np.ndarray:
    """Cost (USD) of each trace in `traces` over its priced calls."""
    return _per_trace(calls, traces, calls["cost_total"])


# ---------------------------------------------------------------- bootstrap


def bootstrap_means(columns: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """`resamples` x columns means of traces drawn with replacement, the same draws for every column (paired).

    `columns` is columns x traces. Draws come from a raw PCG64 stream (which numpy keeps stable across versions),
    mapped to a trace by the high 32 bits times n; each resample's mean is its draw counts times the values.
    """
    n = columns.shape[1]
    bits = np.random.PCG64(seed)
    out = np.empty((resamples, columns.shape[0]))
    chunk = max(1, _CHUNK_DRAWS // max(n, 1))
    for start in range(0, resamples, chunk):
        count = min(chunk, resamples - start)
        draws = (((bits.random_raw(count * n) >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32)).astype(np.intp)
        counts = np.stack([np.bincount(row, minlength=n) for row in draws.reshape(count, n)])
        out[start : start + count] = counts.astype(np.float64) @ columns.T / n
    return out


def resamples_for(traces: int, wanted: int = RESAMPLES) -> int:
    """`wanted` resamples, fewer for very large samples (at most DRAW_BUDGET draws, never below MIN_RESAMPLES)."""
    return min(wanted, max(MIN_RESAMPLES, DRAW_BUDGET // max(traces, 1)))


def _interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return float(low), float(high)


# ---------------------------------------------------------------- the forecast


def observed_volume(calls: pa.Table, traces: pa.Array) -> tuple[Volume | None, dict[str, Any]]:
    """The inputs' own rate: (traces - 1) over the time from the first trace's start to the last's, per month."""
    per_trace = attr.trace_costs(calls)
    starts = per_trace.filter(pc.is_in(per_trace["trace_id"], value_set=traces))["start_min"]
    dated = starts.drop_null()
    first, last = (pc.min(dated).as_py(), pc.max(dated).as_py()) if len(dated) else (None, None)
    span_days = (last - first).total_seconds() / 86400 if first is not None and last is not None else 0.0
    info = {
        "first_start": first.strftime("%Y-%m-%dT%H:%M:%SZ") if first else None,
        "last_start": last.strftime("%Y-%m-%dT%H:%M:%SZ") if last else None,
        "span_days": span_days,
        "observed_traces_per_month": (len(dated) - 1) / span_days * DAYS_PER_MONTH if span_days >= 1 else None,
    }
    rate = info["observed_traces_per_month"]
    return (Volume(rate, "month", "observed") if rate else None), info


def _projection(
    label: str, source: str | None, costs: np.ndarray, means: np.ndarray, volume: float, confidence: float
) -> dict[str, Any]:
    low, high = _interval(means, confidence)
    return {
        "scenario": label,
        "source": source,
        "cost_per_trace_mean_usd": float(costs.mean()),
        "cost_per_trace_p50_usd": float(np.percentile(costs, 50)),
        "cost_per_trace_p95_usd": float(np.percentile(costs, 95)),
        "monthly_usd": float(costs.mean()) * volume,
        "monthly_low_usd": low * volume,
        "monthly_high_usd": high * volume,
    }


def _slice_mask(calls: pa.Table, models: tuple[str, ...]) -> pa.Array:
    return pa.array(matching(calls["model"], models), pa.bool_())


def self_host_figures(
    sh: SelfHost, calls: pa.Table, traces: pa.Array, volume: float, api_means: np.ndarray, confidence: float
) -> dict[str, Any]:
    """API cost of the slice at `volume` traces/month vs the GPUs it would take, and the break-even volume.

    With `a` the slice's API cost per trace, `K` the traces one GPU serves in a month and `H` a GPU-month: when
    a*K < H a fully loaded GPU costs more than the API traffic it replaces, so there is no break-even; otherwise
    the minimum fleet of N GPUs breaks even at N*H/a traces per month. `api_means` are the bootstrap means of the
    slice's cost per trace."""
    sliced = calls.filter(_slice_mask(calls, sh.models))
    if sliced.num_rows == 0:
        known = sorted({m for m in calls["model"].to_pylist() if m})
        raise InputError(
            f"no LLM call matches --slice-model {', '.join(sh.models)}",
            hint="models in the inputs: " + ", ".join(known[:8]) + (" …" if len(known) > 8 else ""),
        )
    ones = pa.array(np.ones(sliced.num_rows))
    tokens_col = pc.add(pc.fill_null(sliced["input_tokens"], 0), pc.fill_null(sliced["output_tokens"], 0))
    calls_per_trace = float(_per_trace(sliced, traces, ones).mean())
    tokens_per_trace = float(_per_trace(sliced, traces, tokens_col).mean())
    a = float(trace_cost(sliced, traces).mean())
    demand = (tokens_per_trace if sh.unit == "tokens" else calls_per_trace) * volume
    needed = math.ceil(demand / sh.capacity_per_gpu) if demand > 0 else 0
    fleet = max(sh.gpu_count, needed)
    per_trace_demand = demand / volume
    traces_per_gpu = sh.capacity_per_gpu / per_trace_demand if per_trace_demand > 0 else None
    breaks_even = a > 0 and (traces_per_gpu is None or a * traces_per_gpu >= sh.gpu_month_usd)
    api_low, api_high = _interval(api_means * volume, confidence)
    return {
        "models": list(sh.models),
        "calls_per_trace": calls_per_trace,
        "tokens_per_trace": tokens_per_trace,
        "api_cost_per_trace_usd": a,
        "unpriced_calls": sliced.num_rows - int(pc.count(sliced["cost_total"]).as_py()),
        "unit": sh.unit,
        "tokens_per_second": sh.tokens_per_second,
        "calls_per_hour": sh.calls_per_hour,
        "utilization": sh.utilization,
        "capacity_per_gpu_month": sh.capacity_per_gpu,
        "gpu_hourly_usd": sh.gpu_hourly_usd,
        "gpu_month_usd": sh.gpu_month_usd,
        "demand_per_month": demand,
        "gpu_count": sh.gpu_count,
        "gpus_needed": needed,
        "gpus": fleet,
        "api_monthly_usd": a * volume,
        "api_monthly_low_usd": api_low,
        "api_monthly_high_usd": api_high,
        "self_host_monthly_usd": fleet * sh.gpu_month_usd,
        "saving_monthly_usd": a * volume - fleet * sh.gpu_month_usd,
        "traces_per_gpu_month": traces_per_gpu,
        "break_even_traces_per_month": sh.gpu_count * sh.gpu_month_usd / a if breaks_even else None,
    }


ASSUMPTIONS = [
    "The coming traffic looks like the traces read: the same mix of tasks, agents, models and trace lengths.",
    "A month is 365.25 / 12 = 30.44 days; prices are those of the price data at each recorded call's time.",
    "The interval is a percentile bootstrap of the mean cost per trace (traces resampled with replacement): it "
    "covers the sampling noise of the traces read, not a change of mix, of volume or of prices.",
    "A trace's cost counts its priced calls; traces without any priced call are left out (their cost is unknown).",
]
SELF_HOST_ASSUMPTIONS = [
    "Self-hosting: GPUs are paid every hour of the month (730.5 h) at --gpu-hourly, at least --gpu-count of them, "
    "more when the slice needs them at the given throughput and utilization.",
    "The self-hosted model matches the API model's quality and token counts; engineering, operations, storage, "
    "egress and idle redundancy are not counted.",
]


def build(steps: api.PricedSteps, settings: ForecastSettings, policies: list[str] | None = None) -> Forecast:
    """The forecast of the priced inputs at `settings.volume`, and with each policy file's joint projection."""
    calls = attr.llm_calls(steps.table)
    traces = priced_traces(calls)
    if len(traces) == 0:
        raise InputError("no priced trace in the inputs: nothing to forecast", hint="add missing models with --prices")
    observed, sample = observed_volume(calls, traces)
    volume = settings.volume or observed
    if volume is None:
        raise ConfigError("the inputs span less than a day: give the traffic to forecast", hint="--volume 100000/month")
    columns = [trace_cost(calls, traces)]
    labels: list[tuple[str, str | None]] = [("recorded", None)]
    inputs, warnings = api.notes(steps)
    if policies:
        simulation, projected = api.build_simulation(steps, list(policies))
        for scenario, table in zip(simulation.scenarios, projected, strict=True):
            columns.append(trace_cost(attr.llm_calls(table), traces))
            labels.append((scenario["name"], scenario["source"]))
    sh = settings.self_host
    if sh is not None:
        columns.append(trace_cost(calls.filter(_slice_mask(calls, sh.models)), traces))
    resamples = resamples_for(len(traces), settings.resamples)
    means = bootstrap_means(np.vstack(columns), resamples, settings.seed)
    per_month = volume.per_month
    projections: list[dict[str, Any]] = []
    for i, (label, source) in enumerate(labels):
        row = _projection(label, source, columns[i], means[:, i], per_month, settings.confidence)
        if i:
            saved = (means[:, 0] - means[:, i]) * per_month
            low, high = _interval(saved, settings.confidence)
            row |= {
                "saved_monthly_usd": projections[0]["monthly_usd"] - row["monthly_usd"],
                "saved_monthly_low_usd": low,
                "saved_monthly_high_usd": high,
            }
        projections.append(row)
    self_host = None
    assumptions = list(ASSUMPTIONS)
    if sh is not None:
        self_host = self_host_figures(sh, calls, traces, per_month, means[:, -1], settings.confidence)
        total = float(columns[0].mean())
        self_host["share_of_spend"] = self_host["api_cost_per_trace_usd"] / total if total else None
        assumptions += SELF_HOST_ASSUMPTIONS
    return Forecast(
        inputs=inputs,
        volume={**asdict(volume), "traces_per_month": per_month, "text": volume.text()},
        sample={"traces": int(pc.count_distinct(calls["trace_id"]).as_py()), "priced_traces": len(traces), **sample},
        bootstrap={"resamples": resamples, "seed": settings.seed, "confidence": settings.confidence},
        projections=projections,
        self_host=self_host,
        assumptions=assumptions,
        price_sources=steps.book.sources,
        warnings=warnings,
    )
