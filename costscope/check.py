"""`costscope check`: compare a run with its baseline, decide pass or fail, and explain the change.

A limit (`max_increase`, `max_increase_usd`) is exceeded when the point estimate of the chosen metric goes
over it. With at least `min_traces` traces on both sides the decision is noise-aware: the check fails only
when, in addition, the percentile-bootstrap confidence interval of the difference (current - baseline; the
traces of each side resampled with replacement 10,000 times, fewer above 2,000 traces, from a fixed seed)
lies above zero. Otherwise the excess is reported as within run-to-run noise and passes. With fewer traces
the point estimates decide, and the result says so. Per-group rows (`by`) compare each group's share of a
trace (0 in traces without it), so they add up to the whole. `max_cost_per_trace` is an absolute budget on
the current run's point estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, BinaryIO, Literal

import numpy as np

from . import __version__
from . import baseline as baselines
from .api import AnalyzeOptions
from .baseline import Baseline, UnpricedModel
from .check_config import DEFAULT_MAX_INCREASE, METRICS, CheckSettings
from .check_explain import Explanation, explain
from .errors import ConfigError, InputError

CHECK_VERSION = 1
RESAMPLES = 10_000
MIN_RESAMPLES = 2_000
DRAW_BUDGET = 20_000_000
SEED = 20_261_126
_CHUNK_CELLS = 4_000_000
"""Bootstrap draws per chunk (resamples x traces x columns), so memory stays bounded."""


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOISE = "noise"
    """Over a limit, but the confidence interval of the difference includes no change: passes."""


@dataclass(frozen=True)
class Row:
    """One comparison: the whole run (`scope` all), one group (`scope` agent/model/operation), or the budget."""

    scope: str
    key: str | None
    baseline: float
    current: float
    ci: tuple[float, float] | None
    """Confidence interval of current - baseline, in metric units; None when too few traces."""
    limit: str
    """The limits as text, e.g. `+10% or +$0.05`; empty when the row has none."""
    status: Status
    exceeded: tuple[str, ...] = ()

    @property
    def change(self) -> float:
        return self.current - self.baseline

    @property
    def relative(self) -> float | None:
        return self.change / self.baseline if self.baseline > 0 else None

    def to_dict(self) -> dict[str, Any]:
        ci = None
        if self.ci is not None:
            low, high = self.ci
            ci = {
                "low": low,
                "high": high,
                "relative_low": low / self.baseline if self.baseline > 0 else None,
                "relative_high": high / self.baseline if self.baseline > 0 else None,
            }
        return {
            "scope": self.scope,
            "key": self.key,
            "baseline": self.baseline,
            "current": self.current,
            "change": self.change,
            "relative_change": self.relative,
            "ci": ci,
            "limit": self.limit or None,
            "exceeded": list(self.exceeded),
            "status": self.status.value,
        }


@dataclass(frozen=True)
class Mover:
    dimension: str
    key: str
    baseline_usd: float
    current_usd: float
    """The group's cost per trace (its cost over all traces of the run)."""

    @property
    def change_usd(self) -> float:
        return self.current_usd - self.baseline_usd


@dataclass(frozen=True)
class RunInfo:
    costscope_version: str
    price_sources: list[str]
    files: int
    traces: int
    calls: int
    priced_calls: int
    cost_usd: float | None

    @classmethod
    def of(cls, run: Baseline) -> RunInfo:
        t = run.totals
        files = len(run.inputs.files)
        return cls(run.costscope_version, run.price_sources, files, t.traces, t.calls, t.priced_calls, t.cost_usd)


@dataclass(frozen=True)
class CheckResult:
    settings: CheckSettings
    baseline_file: str
    baseline: RunInfo
    current: RunInfo
    rows: tuple[Row, ...]
    metrics: dict[str, tuple[float, float]]
    """Every metric's (baseline, current) point estimates."""
    explanation: Explanation
    movers: dict[str, tuple[Mover, ...]]
    unpriced: dict[str, tuple[UnpricedModel, ...]]
    resamples: int
    """Bootstrap resamples behind the confidence intervals; 0 when too few traces left it to point estimates."""
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def bootstrap(self) -> bool:
        return self.resamples > 0

    @property
    def unpriced_fails(self) -> bool:
        return self.settings.fail_on_unpriced and any(self.unpriced.values())

    @property
    def passed(self) -> bool:
        return not self.failures and not self.unpriced_fails

    @property
    def failures(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.status is Status.FAIL)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    @property
    def overall(self) -> Row:
        return self.rows[0]

    def to_dict(self) -> dict[str, Any]:
        """The `--format json` contract (field names are a public interface)."""
        s = self.settings
        x = self.explanation
        return {
            "costscope_version": __version__,
            "check_version": CHECK_VERSION,
            "verdict": "pass" if self.passed else "fail",
            "metric": s.metric,
            "confidence": s.confidence,
            "decided_by": "bootstrap" if self.bootstrap else "point_estimate",
            "resamples": self.resamples,
            "limits": {
                "max_increase": s.max_increase,
                "max_increase_usd": s.max_increase_usd,
                "max_cost_per_trace": s.max_cost_per_trace,
                "by": list(s.by),
                "min_traces": s.min_traces,
                "fail_on_unpriced": s.fail_on_unpriced,
            },
            "baseline": {"file": self.baseline_file, **asdict(self.baseline)},
            "current": asdict(self.current),
            "checks": [r.to_dict() for r in self.rows],
            "metrics": {name: {"baseline": b, "current": c} for name, (b, c) in self.metrics.items()},
            "explanation": {
                "baseline_usd": x.baseline_usd,
                "current_usd": x.current_usd,
                "change_usd": x.change_usd,
                "price_usd": x.price_usd,
                "usage_usd": x.usage_usd,
                "usage": {e.name: {"usd": e.usd, "baseline": e.baseline, "current": e.current} for e in x.effects},
                "models": [asdict(m) for m in x.models],
            },
            "movers": {d: [{**asdict(m), "change_usd": m.change_usd} for m in ms] for d, ms in self.movers.items()},
            "unpriced_models": {side: [u.model_dump() for u in us] for side, us in self.unpriced.items()},
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


def _stat(x: np.ndarray, stat: str, axis: int) -> np.ndarray:
    if stat == "mean":
        return np.asarray(x.mean(axis=axis))
    if stat == "sum":
        return np.asarray(x.sum(axis=axis))
    return np.asarray(np.percentile(x, 50 if stat == "p50" else 95, axis=axis))


def resamples_for(traces: int) -> int:
    """10,000 resamples; fewer for large runs (at most DRAW_BUDGET trace draws per side, never below 2,000)."""
    return min(RESAMPLES, max(MIN_RESAMPLES, DRAW_BUDGET // max(traces, 1)))


def _resampled(columns: np.ndarray, count: int, bits: np.random.PCG64, stat: str) -> np.ndarray:
    """`count` bootstrap statistics per column (shape count x columns) of a columns x traces array. Traces are
    drawn with replacement from a raw PCG64 stream, which numpy keeps stable across versions."""
    n = columns.shape[1]
    draws = (bits.random_raw(count * n) % np.uint64(n)).astype(np.intp).reshape(count, n)
    return _stat(columns[:, draws], stat, axis=2).T


def bootstrap_difference(
    base: np.ndarray, cur: np.ndarray, stat: str, confidence: float, resamples: int = RESAMPLES, seed: int = SEED
) -> np.ndarray:
    """Percentile-bootstrap interval of stat(cur) - stat(base) for each column of two traces x columns arrays
    (each side resampled independently): shape (2, columns), lower bounds first."""
    base_t, cur_t = np.ascontiguousarray(base.T), np.ascontiguousarray(cur.T)
    base_bits, cur_bits = np.random.PCG64(seed), np.random.PCG64(seed + 1)
    columns = base.shape[1]
    chunk = max(1, _CHUNK_CELLS // (max(base.shape[0], cur.shape[0]) * columns))
    diffs = np.empty((resamples, columns))
    for start in range(0, resamples, chunk):
        count = min(chunk, resamples - start)
        diffs[start : start + count] = _resampled(cur_t, count, cur_bits, stat) - _resampled(
            base_t, count, base_bits, stat
        )
    alpha = (1 - confidence) / 2
    return np.asarray(np.quantile(diffs, [alpha, 1 - alpha], axis=0))


def _limit_text(s: CheckSettings) -> str:
    parts = []
    if s.max_increase is not None:
        parts.append(f"+{s.max_increase * 100:g}%")
    if s.max_increase_usd is not None:
        parts.append(f"+${s.max_increase_usd:g}")
    return " or ".join(parts)


def _judge(base: float, cur: float, ci: tuple[float, float] | None, s: CheckSettings) -> tuple[Status, tuple[str, ...]]:
    change = cur - base
    exceeded = []
    if s.max_increase is not None and base > 0 and change / base > s.max_increase:
        exceeded.append(f"+{s.max_increase * 100:g}%")
    if s.max_increase_usd is not None and change > s.max_increase_usd:
        exceeded.append(f"+${s.max_increase_usd:g}")
    if not exceeded:
        return Status.PASS, ()
    if ci is None or ci[0] > 0:
        return Status.FAIL, tuple(exceeded)
    return Status.NOISE, tuple(exceeded)


def _columns(run: Baseline, s: CheckSettings, groups: list[tuple[str, str]]) -> np.ndarray:
    """Traces x (whole run, then each group): the per-trace cost or tokens the metric is computed from."""
    field: Literal[0, 1] = 0 if s.money else 1
    whole = run.costs() if s.money else run.tokens()
    parts = [whole[:, None]]
    for dimension in s.by:
        keys = [k for d, k in groups if d == dimension]
        parts.append(run.group_matrix(dimension, keys, field))
    matrix = np.hstack(parts)
    return matrix[run.priced()] if s.money else matrix


def _rows(base: Baseline, cur: Baseline, s: CheckSettings, resamples: int) -> list[Row]:
    groups = [
        (d, key)
        for d in s.by
        for key in sorted({g.key for g in base.groups.get(d, [])} | {g.key for g in cur.groups.get(d, [])})
    ]
    xb, xc = _columns(base, s, groups), _columns(cur, s, groups)
    vb, vc = _stat(xb, s.stat, axis=0), _stat(xc, s.stat, axis=0)
    ci = bootstrap_difference(xb, xc, s.stat, s.confidence, resamples) if resamples else None
    limit = _limit_text(s)
    rows = []
    for i, (scope, key) in enumerate([("all", None), *groups]):
        interval = (float(ci[0, i]), float(ci[1, i])) if ci is not None else None
        status, exceeded = _judge(float(vb[i]), float(vc[i]), interval, s)
        rows.append(Row(scope, key, float(vb[i]), float(vc[i]), interval, limit, status, exceeded))
    rows[1:] = sorted(rows[1:], key=lambda r: (r.status is not Status.FAIL, -r.change, r.scope, r.key or ""))
    if s.max_cost_per_trace is not None:
        b, c = (float(_stat(run.costs()[run.priced()], s.budget_stat, axis=0)) for run in (base, cur))
        status = Status.FAIL if c > s.max_cost_per_trace else Status.PASS
        budget = f"≤ ${s.max_cost_per_trace:g}"
        rows.append(Row("budget", None, b, c, None, budget, status, (budget,) if status is Status.FAIL else ()))
    return rows


def _metrics(base: Baseline, cur: Baseline) -> dict[str, tuple[float, float]]:
    out = {}
    for name in METRICS:
        s = CheckSettings(metric=name)
        pair = tuple(float(_stat(r.costs() if s.money else r.tokens(), s.stat, axis=0)) for r in (base, cur))
        out[name] = (pair[0], pair[1])
    return out


def _movers(base: Baseline, cur: Baseline, dimension: str, top: int = 5) -> tuple[Mover, ...]:
    b = {g.key: g.cost_per_trace_usd for g in base.groups.get(dimension, [])}
    c = {g.key: g.cost_per_trace_usd for g in cur.groups.get(dimension, [])}
    movers = [Mover(dimension, k, b.get(k, 0.0), c.get(k, 0.0)) for k in sorted(set(b) | set(c))]
    movers = [m for m in movers if abs(m.change_usd) >= 1e-9]
    return tuple(sorted(movers, key=lambda m: (-abs(m.change_usd), m.key))[:top])


def _notes(base: Baseline, cur: Baseline, s: CheckSettings, bootstrap: bool, default_limit: bool) -> list[str]:
    notes = []
    if default_limit:
        notes.append(f"no limit configured: using max-increase {DEFAULT_MAX_INCREASE * 100:g}%")
    if not bootstrap:
        notes.append(
            f"too few traces to separate a change from noise (baseline {base.totals.traces}, current "
            f"{cur.totals.traces}; min-traces {s.min_traces}): the point estimates decided, without a confidence "
            "interval"
        )
    if base.price_sources != cur.price_sources:
        notes.append(
            f"prices differ: baseline {', '.join(base.price_sources)}; current {', '.join(cur.price_sources)} "
            "(the price effect shows what that changed)"
        )
    if base.costscope_version != __version__:
        notes.append(f"the baseline was made by costscope {base.costscope_version} (this is {__version__})")
    for label, run in (("baseline", base), ("current", cur)):
        if run.tokenizer.recounted_calls:
            encodings = ", ".join(run.tokenizer.encodings)
            notes.append(
                f"{label}: {run.tokenizer.recounted_calls} calls without reported usage, recounted ({encodings})"
            )
        for u in run.unpriced_models:
            notes.append(f"{label}: unpriced model {u.model or '(none)'}: {u.calls} calls not in any cost")
    return notes


def compare(
    base: Baseline,
    cur: Baseline,
    settings: CheckSettings,
    baseline_file: str = "baseline",
    warnings: tuple[str, ...] | list[str] = (),
) -> CheckResult:
    """Compare the current run's summary with the baseline under `settings`."""
    if base.totals.traces == 0:
        raise ConfigError(f"{baseline_file}: the baseline has no traces", hint="rebuild it from a run with LLM calls")
    if cur.totals.traces == 0:
        raise InputError("the current run has no LLM calls to compare", hint="check the PATH arguments")
    s = settings
    default_limit = s.max_increase is None and s.max_increase_usd is None and s.max_cost_per_trace is None
    if default_limit:
        s = s.model_copy(update={"max_increase": DEFAULT_MAX_INCREASE})
    bootstrap = min(base.totals.traces, cur.totals.traces) >= s.min_traces
    resamples = resamples_for(max(base.totals.traces, cur.totals.traces)) if bootstrap else 0
    return CheckResult(
        settings=s,
        baseline_file=baseline_file,
        baseline=RunInfo.of(base),
        current=RunInfo.of(cur),
        rows=tuple(_rows(base, cur, s, resamples)),
        metrics=_metrics(base, cur),
        explanation=explain(base, cur),
        movers={d: _movers(base, cur, d) for d in ("agent", "model")},
        unpriced={"baseline": tuple(base.unpriced_models), "current": tuple(cur.unpriced_models)},
        resamples=resamples,
        notes=tuple(_notes(base, cur, s, bootstrap, default_limit)),
        warnings=tuple(warnings),
    )


def read_baseline(settings: CheckSettings) -> tuple[Baseline, str]:
    """(the baseline the settings name, its file); a ConfigError when they name none."""
    if settings.baseline is None:
        raise ConfigError(
            "no baseline given",
            hint="pass --baseline FILE (made by 'costscope baseline PATH... -o FILE') or set baseline in "
            "[tool.costscope.check]",
        )
    return baselines.read(settings.baseline), settings.baseline


def run(
    paths: list[str],
    settings: CheckSettings,
    format_in: str | None = None,
    strict: bool = False,
    stdin: BinaryIO | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CheckResult:
    """Read the baseline, read and price the current traces, and compare."""
    base, baseline_file = read_baseline(settings)
    options = AnalyzeOptions(prices=settings.prices, format_in=format_in, strict=strict)
    current, warnings = baselines.create(paths, options, stdin, progress)
    return compare(base, current, settings, baseline_file=baseline_file, warnings=warnings)
