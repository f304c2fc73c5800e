"""The baseline of `costscope check`: a versioned summary of one run's cost, with the samples statistics need.

`summarize` turns a priced step table into a `Baseline`; the check summarizes the current run the same way
and compares the two. Besides totals and per-group figures, a baseline keeps one sample per trace (for the
bootstrap) and per-model token totals with their cost per bucket (for the price-versus-usage decomposition).
Money is float USD rounded to nano-dollars here, so an unchanged run compares as exactly equal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import __version__
from . import attribution as attr
from .api import AnalyzeOptions, PricedSteps, build_report, load_priced_steps
from .errors import ConfigError
from .pricing import Unpriced
from .schema import UsageSource

BASELINE_VERSION: Literal[1] = 1
DIMENSIONS = ("agent", "model", "operation")
"""The groupings a baseline keeps (and so the keys `check --by` accepts)."""
NONE_KEY = "(none)"
"""The group key of calls that name no agent, model or operation."""
BUCKETS = ("input", "cache_read", "cache_write", "output")
"""Billing buckets of the decomposition; `input` is the uncached input, `cache_write` both TTLs."""


def _usd(value: float | None) -> float:
    return round(float(value or 0.0), 9) + 0.0


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stats(_Frozen):
    """A per-trace distribution: mean, linear-interpolated p50 and p95, max."""

    mean: float
    p50: float
    p95: float
    max: float


class FileSummary(_Frozen):
    path: str
    format: str
    records: int
    rows: int


class Inputs(_Frozen):
    files: list[FileSummary]
    records_read: int
    records_skipped: int
    duplicates_dropped: int


class TokenizerNote(_Frozen):
    """Where the token counts come from: the logs' reported usage, or a recount where usage was missing."""

    usage: Literal["reported", "mixed"]
    recounted_calls: int
    encodings: list[str]


class Totals(_Frozen):
    traces: int
    calls: int
    priced_calls: int
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_usd: float | None = Field(description="USD over the priced calls; null when no call is priced")


class TraceSample(_Frozen):
    """One trace: cost (USD, priced calls), tokens (input + output), calls, and each group's share of it."""

    trace_id: str
    cost_usd: float
    tokens: int
    calls: int
    unpriced_calls: int
    groups: dict[str, dict[str, tuple[float, int]]] = Field(
        description="dimension -> key -> (cost_usd, tokens) of this trace's calls in that group"
    )


class GroupSummary(_Frozen):
    key: str
    traces: int = Field(description="traces with at least one call in the group")
    calls: int
    priced_calls: int
    input_tokens: int
    cache_read_tokens: int
    output_tokens: int
    cost_usd: float
    cost_per_trace_usd: float = Field(description="the group's cost over all traces of the run")


class ModelUsage(_Frozen):
    """The priced calls of one model: tokens and cost per bucket, hence its effective rates."""

    provider: str | None
    model: str
    calls: int
    input_tokens: int = Field(description="all input, cached included")
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    cost_usd: dict[str, float] = Field(description="USD per bucket: input (uncached), cache_read, cache_write, output")
    rates_usd_per_mtok: dict[str, float | None] = Field(description="effective USD per million tokens per bucket")

    def tokens(self, bucket: str) -> int:
        if bucket == "input":
            return self.input_tokens - self.cache_read_tokens - self.cache_write_tokens
        count: int = getattr(self, f"{bucket}_tokens")
        return count

    @property
    def cost_total(self) -> float:
        return sum(self.cost_usd.values())


class UnpricedModel(_Frozen):
    provider: str | None
    model: str | None
    calls: int
    input_tokens: int
    output_tokens: int


class Baseline(_Frozen):
    """The baseline file (`costscope baseline -o FILE`); field names are a public interface."""

    baseline_version: Literal[1]
    costscope_version: str
    price_sources: list[str]
    tokenizer: TokenizerNote
    inputs: Inputs
    totals: Totals
    per_trace: dict[str, Stats] = Field(description="cost_usd, tokens and calls per trace")
    groups: dict[str, list[GroupSummary]]
    models: list[ModelUsage]
    unpriced_models: list[UnpricedModel]
    traces: list[TraceSample]

    def costs(self) -> np.ndarray:
        return np.array([t.cost_usd for t in self.traces], dtype=np.float64)

    def priced(self) -> np.ndarray:
        """Traces with at least one priced call: the others have an unknown cost, left out of cost figures."""
        return np.array([t.unpriced_calls < t.calls for t in self.traces], dtype=bool)

    def tokens(self) -> np.ndarray:
        return np.array([t.tokens for t in self.traces], dtype=np.float64)

    def group_matrix(self, dimension: str, keys: list[str], field: Literal[0, 1]) -> np.ndarray:
        """Traces x keys: each group's cost (field 0) or tokens (field 1) in each trace, 0 where absent."""
        index = {k: i for i, k in enumerate(keys)}
        out = np.zeros((len(self.traces), len(keys)), dtype=np.float64)
        for row, trace in enumerate(self.traces):
            for key, pair in trace.groups.get(dimension, {}).items():
                if key in index:
                    out[row, index[key]] = pair[field]
        return out


def _stats(values: np.ndarray, money: bool) -> Stats:
    if len(values) == 0:
        return Stats(mean=0.0, p50=0.0, p95=0.0, max=0.0)
    figures = [np.mean(values), np.percentile(values, 50), np.percentile(values, 95), np.max(values)]
    rounded = [_usd(v) if money else round(float(v), 6) for v in figures]
    return Stats(mean=rounded[0], p50=rounded[1], p95=rounded[2], max=rounded[3])


def _key_column(calls: pa.Table, dimension: str) -> pa.ChunkedArray:
    return pc.fill_null(calls[attr.GROUP_KEYS[dimension]], NONE_KEY)


def _traces(calls: pa.Table) -> list[TraceSample]:
    per_trace = calls.group_by(["trace_id"], use_threads=False).aggregate(
        [
            ([], "count_all"),
            ("cost_total", "sum"),
            ("cost_total", "count"),
            ("input_tokens", "sum"),
            ("output_tokens", "sum"),
        ]
    )
    shares: dict[str, dict[str, dict[str, tuple[float, int]]]] = {}
    for dimension in DIMENSIONS:
        keyed = calls.select(["trace_id", "cost_total", "input_tokens", "output_tokens"]).append_column(
            "key", _key_column(calls, dimension)
        )
        grouped = keyed.group_by(["trace_id", "key"], use_threads=False).aggregate(
            [("cost_total", "sum"), ("input_tokens", "sum"), ("output_tokens", "sum")]
        )
        for row in grouped.to_pylist():
            tokens = int(row["input_tokens_sum"] or 0) + int(row["output_tokens_sum"] or 0)
            by_dim = shares.setdefault(row["trace_id"], {}).setdefault(dimension, {})
            by_dim[row["key"]] = (_usd(row["cost_total_sum"]), tokens)
    out = []
    for row in per_trace.to_pylist():
        trace_id = row["trace_id"]
        groups = {d: dict(sorted(v.items())) for d, v in sorted(shares.get(trace_id, {}).items())}
        out.append(
            TraceSample(
                trace_id=trace_id,
                cost_usd=_usd(row["cost_total_sum"]),
                tokens=int(row["input_tokens_sum"] or 0) + int(row["output_tokens_sum"] or 0),
                calls=int(row["count_all"]),
                unpriced_calls=int(row["count_all"]) - int(row["cost_total_count"]),
                groups=groups,
            )
        )
    return sorted(out, key=lambda t: t.trace_id)


def _groups(calls: pa.Table, dimension: str, traces: int) -> list[GroupSummary]:
    keyed = calls.append_column("key", _key_column(calls, dimension))
    grouped = keyed.group_by(["key"], use_threads=False).aggregate(
        [([], "count_all"), ("cost_total", "count"), ("cost_total", "sum"), ("trace_id", "count_distinct")]
        + [(name, "sum") for name in ("input_tokens", "cache_read_tokens", "output_tokens")]
    )
    out = [
        GroupSummary(
            key=row["key"],
            traces=int(row["trace_id_count_distinct"]),
            calls=int(row["count_all"]),
            priced_calls=int(row["cost_total_count"]),
            input_tokens=int(row["input_tokens_sum"] or 0),
            cache_read_tokens=int(row["cache_read_tokens_sum"] or 0),
            output_tokens=int(row["output_tokens_sum"] or 0),
            cost_usd=_usd(row["cost_total_sum"]),
            cost_per_trace_usd=_usd((row["cost_total_sum"] or 0.0) / traces) if traces else 0.0,
        )
        for row in grouped.to_pylist()
    ]
    return sorted(out, key=lambda g: (-g.cost_usd, g.key))


_MODEL_COST = {
    "input": "cost_input",
    "cache_read": "cost_cache_read",
    "cache_write": "cost_cache_write",
    "output": "cost_output",
}


def _models(calls: pa.Table) -> list[ModelUsage]:
    priced = calls.filter(pc.is_valid(calls["cost_total"]))
    grouped = priced.group_by(["provider", "model"], use_threads=False).aggregate(
        [([], "count_all")]
        + [(name, "sum") for name in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")]
        + [(column, "sum") for column in _MODEL_COST.values()]
    )
    out = []
    for row in grouped.to_pylist():
        usage: dict[str, Any] = {
            "provider": row["provider"],
            "model": row["model"],
            "calls": int(row["count_all"]),
            **{f"{b}_tokens": int(row[f"{b}_tokens_sum"] or 0) for b in ("input", "cache_read", "cache_write")},
            "output_tokens": int(row["output_tokens_sum"] or 0),
            "cost_usd": {b: _usd(row[f"{c}_sum"]) for b, c in _MODEL_COST.items()},
            "rates_usd_per_mtok": {},
        }
        model = ModelUsage.model_validate(usage)
        rates = {
            b: (round(model.cost_usd[b] / model.tokens(b) * 1e6, 9) if model.tokens(b) > 0 else None) for b in BUCKETS
        }
        out.append(model.model_copy(update={"rates_usd_per_mtok": rates}))
    return sorted(out, key=lambda m: (-m.cost_total, m.model, m.provider or ""))


def _tokenizer(calls: pa.Table) -> TokenizerNote:
    recounted = calls.filter(pc.equal(calls["usage_source"], UsageSource.RECOUNTED.value))
    if recounted.num_rows == 0:
        return TokenizerNote(usage="reported", recounted_calls=0, encodings=[])
    from .tokens import tokenizer_for

    models = pc.unique(recounted["model"]).to_pylist()
    return TokenizerNote(
        usage="mixed",
        recounted_calls=recounted.num_rows,
        encodings=sorted({tokenizer_for(m).label for m in models}),
    )


def per_trace_stats(traces: list[TraceSample]) -> dict[str, Stats]:
    """Cost, token and call distributions over the traces."""
    return {
        # a trace whose every call is unpriced has an unknown cost, not $0 (as in analyze)
        "cost_usd": _stats(np.array([t.cost_usd for t in traces if t.unpriced_calls < t.calls]), money=True),
        "tokens": _stats(np.array([t.tokens for t in traces], dtype=np.float64), money=False),
        "calls": _stats(np.array([t.calls for t in traces], dtype=np.float64), money=False),
    }


def unpriced_models(unpriced: list[Unpriced]) -> list[UnpricedModel]:
    return [
        UnpricedModel(
            provider=u.provider,
            model=u.model,
            calls=u.calls,
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
        )
        for u in unpriced
    ]


def summarize(steps: PricedSteps) -> Baseline:
    """The baseline of a priced run (also how `check` summarizes the current run)."""
    calls = attr.llm_calls(steps.table)
    totals = attr.totals(calls)
    traces = _traces(calls) if calls.num_rows else []
    priced_traces = sum(t.unpriced_calls < t.calls for t in traces)
    loaded = steps.load
    return Baseline(
        baseline_version=BASELINE_VERSION,
        costscope_version=__version__,
        price_sources=steps.book.sources,
        tokenizer=_tokenizer(calls),
        inputs=Inputs(
            files=[FileSummary(path=f.name, format=f.format, records=f.records, rows=f.rows) for f in loaded.files],
            records_read=sum(f.records for f in loaded.files),
            records_skipped=loaded.skips.total,
            duplicates_dropped=loaded.dropped_count,
        ),
        totals=Totals(
            traces=len(traces),
            calls=totals["calls"],
            priced_calls=totals["priced_calls"],
            **{k: totals[k] for k in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")},
            reasoning_tokens=totals["reasoning_tokens"],
            cost_usd=_usd(totals["cost_usd"]) if totals["cost_usd"] is not None else None,
        ),
        per_trace=per_trace_stats(traces),
        groups={d: _groups(calls, d, priced_traces) if calls.num_rows else [] for d in DIMENSIONS},
        models=_models(calls),
        unpriced_models=unpriced_models(steps.pricing.unpriced),
        traces=traces,
    )


def create(
    paths: list[str],
    options: AnalyzeOptions | None = None,
    stdin: BinaryIO | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Baseline, list[str]]:
    """Read and price `paths` and summarize them; also returns the run's warnings (skips, unpriced models)."""
    options = options or AnalyzeOptions()
    steps = load_priced_steps(paths, options, stdin, progress)
    return summarize(steps), build_report(steps, options).warnings


def to_json(baseline: Baseline) -> str:
    """Indented JSON with one line per trace sample, so that a committed baseline diffs readably."""
    data = baseline.model_dump(mode="json")
    traces = data.pop("traces")
    head = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    if not traces:
        return head[:-2] + ',\n  "traces": []\n}\n'
    lines = ",\n".join("    " + orjson.dumps(t).decode() for t in traces)
    return head[:-2] + ',\n  "traces": [\n' + lines + "\n  ]\n}\n"


def write(baseline: Baseline, path: str | Path) -> None:
    try:
        Path(path).write_text(to_json(baseline), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the baseline {path}: {exc.strerror}") from exc


def read(path: str | Path) -> Baseline:
    """Load and validate a baseline file; errors name the file, the key and what to do."""
    name = str(path)
    rebuild = "make it with: costscope baseline PATH... -o " + Path(name).name
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the baseline {name}: {exc.strerror}", hint=rebuild) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name}:{exc.lineno}: the baseline is not valid JSON: {exc.msg}", hint=rebuild) from exc
    if not isinstance(data, dict) or "baseline_version" not in data:
        raise ConfigError(f"{name}: not a costscope baseline (no baseline_version)", hint=rebuild)
    if data["baseline_version"] != BASELINE_VERSION:
        raise ConfigError(
            f"{name}: baseline version {data['baseline_version']!r}; this costscope reads version {BASELINE_VERSION}",
            hint=rebuild,
        )
    try:
        return Baseline.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{name}: baseline: {key}: {message}{more}", hint=rebuild) from exc
