"""The library facade the CLI and Python users call. Nothing here prints."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from . import attribution as attr
from . import money
from .composition import analyze_composition
from .errors import ConfigError, InputError
from .io import Expanded, expand_paths
from .pricing import PriceBook, PricingResult, price_table, report_order
from .report import Report, TokensReport
from .schema import DATASET_MANIFEST, UsageSource
from .steps import Filters, LoadResult, load_steps

# Simulation, findings, suggestions and datasets are imported where used: `analyze` starts without them.
if TYPE_CHECKING:
    from .baseline import Baseline
    from .check import CheckResult
    from .check_config import CheckSettings
    from .convert import ConvertOptions, ConvertResult
    from .findings import FindOptions
    from .findings.base import Finding
    from .simulate.report import SimulationReport
    from .suggest import Suggestion

__all__ = [
    "AnalyzeOptions",
    "ConvertOptions",
    "analyze",
    "analyze_dataset",
    "baseline_dataset",
    "check_dataset",
    "convert",
    "load_priced_steps",
    "simulate",
    "simulate_dataset",
    "suggest",
    "tokens",
    "write_steps",
]


def __getattr__(name: str) -> object:
    """`ConvertOptions` is exported, and imported on first use (datasets are not needed to analyze)."""
    if name == "ConvertOptions":
        from .convert import ConvertOptions

        return ConvertOptions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class AnalyzeOptions:
    by: tuple[str, ...] = ()
    top: int = 5
    filters: Filters = Filters()
    prices: str | None = None
    format_in: str | None = None
    strict: bool = False
    cache_dir: Path | None = None
    """Directory of the incremental parse cache; None parses every file afresh."""
    staged: bool | None = None
    """`analyze` in memory bounded by chunk sizes (`costscope.staged`); None: from `staged.STAGED_FROM_BYTES`."""


@dataclass
class PricedSteps:
    load: LoadResult
    pricing: PricingResult
    book: PriceBook

    @property
    def table(self) -> pa.Table:
        return self.pricing.table

    @cached_property
    def calls(self) -> pa.Table:
        """The LLM-call rows, filtered once (each filter copies every column)."""
        return attr.llm_calls(self.table)


def load_priced_steps(
    paths: list[str],
    options: AnalyzeOptions = AnalyzeOptions(),
    stdin: BinaryIO | None = None,
    progress: Callable[[int, int], None] | None = None,
    expanded: Expanded | None = None,
) -> PricedSteps:
    """Read, filter and price the inputs: the step table every command starts from (`expanded`: `paths` already
    expanded by `io.expand_paths`)."""
    attr.check_keys(list(options.by))
    book = PriceBook.from_file(options.prices)  # a price file's mistakes are told before the inputs are read
    loaded = load_steps(
        paths,
        expanded=expanded,
        format_in=options.format_in,
        strict=options.strict,
        stdin=stdin,
        cache_dir=options.cache_dir,
        progress=progress,
        meanwhile=PriceBook.preload,  # genai-prices' data (0.2 s to import and load) while the files are parsed
    )
    before = loaded.table.num_rows
    loaded.table = options.filters.apply(loaded.table)
    loaded.filtered_out = before - loaded.table.num_rows
    return PricedSteps(loaded, price_table(loaded.table, book), book)


def write_steps(table: pa.Table, path: str) -> None:
    """Write the priced step table as Parquet (`.parquet`) or native JSON Lines (`.jsonl`)."""
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        pq.write_table(table, path, compression="zstd")
    elif path.endswith((".jsonl", ".ndjson")):
        from .parsers.native import write_jsonl

        write_jsonl(table, path)
    else:
        raise ConfigError(f"cannot write steps to {Path(path).name}", hint="use a .parquet or .jsonl file name")


def _inputs(loaded: LoadResult) -> dict[str, object]:
    formats: dict[str, int] = {}
    for f in loaded.files:
        formats[f.format] = formats.get(f.format, 0) + 1
    return {
        "files": [{"path": f.name, "format": f.format, "records": f.records, "rows": f.rows} for f in loaded.files],
        "formats": dict(sorted(formats.items())),
        "records_read": sum(f.records for f in loaded.files),
        "records_skipped": loaded.skips.total,
        "skipped_reasons": dict(sorted(loaded.skips.counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "skipped_examples": list(loaded.skips.examples),
        "ignored_files": loaded.ignored,
        "duplicates_dropped": loaded.dropped_count,
        "duplicate_examples": loaded.duplicates[:5],
        "filtered_out": loaded.filtered_out,
    }


def _warnings(steps: PricedSteps, totals: dict[str, object]) -> list[str]:
    out = []
    loaded, pricing = steps.load, steps.pricing
    if loaded.skips.total:
        out.append(f"{loaded.skips.total} records skipped (see inputs.skipped_reasons)")
    if loaded.duplicates:
        out.append(
            f"{loaded.dropped_count} records repeat a response id already read and were counted once "
            f"(first: {loaded.duplicates[0]})"
        )
    for u in pricing.unpriced:
        out.append(
            f"unpriced model {u.model or '(none)'} ({u.provider or 'unknown provider'}): {u.calls} calls "
            f"not in the total; {u.hint}"
        )
    recounted = int(pc.sum(pc.equal(steps.table["usage_source"], UsageSource.RECOUNTED.value)).as_py() or 0)
    if recounted:
        out.append(
            f"{recounted} calls report no usage: billed from the recount of their content (usage_source = recounted)"
        )
    if totals["calls_without_usage"]:
        out.append(f"{totals['calls_without_usage']} calls report no usage: their cost is unknown, not zero")
    if pricing.undated_calls:
        out.append(f"{pricing.undated_calls} calls have no timestamp: priced at the latest prices in the table")
    for model in pricing.unused_rules:
        out.append(f"price rule {model!r} matched no call")
    if loaded.notes.get("empty files"):
        out.append(f"{loaded.notes['empty files']} empty files")
    return out


def analyze(paths: list[str], options: AnalyzeOptions = AnalyzeOptions(), stdin: BinaryIO | None = None) -> Report:
    """Where the money goes: a Report over the inputs (see `Report.to_dict` for the JSON contract), in memory or
    staged (`options.staged`)."""
    expanded = expand_paths(paths, stdin=stdin)
    if runs_staged(expanded, options):
        return analyze_staged(expanded, options)[0]
    steps = load_priced_steps(paths, options, stdin, expanded=expanded)
    return build_report(steps, options)


def runs_staged(expanded: Expanded, options: AnalyzeOptions, rows_needed: str | None = None) -> bool:
    """Whether `analyze` of `expanded` runs staged (see `staged.chosen`; `rows_needed`: an option that needs every
    row in memory, e.g. `--output`)."""
    from .staged import chosen

    return chosen(expanded, options, rows_needed)


def analyze_staged(
    expanded: Expanded, options: AnalyzeOptions, progress: Callable[[int, int], None] | None = None
) -> tuple[Report, list[str] | None]:
    """`analyze` in memory bounded by chunk sizes, not by the input (`costscope.staged`): the report, and the paths
    it depends on."""
    attr.check_keys(list(options.by))
    from . import staged

    return staged.analyze(expanded, options, progress)


def _find(steps: PricedSteps, options: FindOptions) -> list[Finding]:
    from .findings import find

    return find(steps, options)


def build_report(steps: PricedSteps, options: AnalyzeOptions, findings: FindOptions | None = None) -> Report:
    """The analysis report; with `findings` options, also the cost leaks (`Report.findings`)."""
    calls = steps.calls
    by_agent = attr.groups(calls, ["agent"], exact=True)
    totals = attr.total_of(by_agent)  # exact sums: the agents' figures add up to the totals
    agent_groups = money.floats(by_agent)
    per_trace = attr.trace_costs(calls)
    cost = totals["cost_usd"]
    input_tokens = totals["input_tokens"]
    no_cache_cost = (cost or 0.0) + (totals["cache_saved_usd"] or 0.0)
    composition = analyze_composition(calls, [], 0)
    return Report(
        inputs=_inputs(steps.load),
        totals=totals,
        by=list(options.by),
        groups=attr.groups(calls, list(options.by)) if options.by else [],
        traces=attr.distribution(per_trace),
        top_traces=attr.top_traces(per_trace, options.top),
        top_steps=attr.top_steps(calls, options.top),
        concentration={
            "top3_steps_share": attr.top3_step_share(calls),
            "top3_agents_share": attr.top_share([g for g in agent_groups if g["key"]["agent"] is not None]),
        },
        cache={
            "hit_ratio": totals["cache_read_tokens"] / input_tokens if input_tokens else None,
            "write_ratio": totals["cache_write_tokens"] / input_tokens if input_tokens else None,
            "saved_usd": totals["cache_saved_usd"],
            "cost_without_cache_usd": no_cache_cost if cost is not None else None,
        },
        reported=attr.reported_costs(steps.table, calls),
        prices=report_order(steps.pricing.entries),
        price_sources=steps.book.sources,
        unpriced=steps.pricing.unpriced,
        warnings=_warnings(steps, totals),
        composition=composition.summary() if composition is not None else None,
        findings=_find(steps, findings) if findings is not None else None,
    )


def tokens(paths: list[str], options: AnalyzeOptions = AnalyzeOptions(), stdin: BinaryIO | None = None) -> TokensReport:
    """What the input tokens are made of and whether the logged usage agrees (`options.by` groups, `top` items)."""
    steps = load_priced_steps(paths, options, stdin)
    return build_tokens_report(steps, options)


def build_tokens_report(steps: PricedSteps, options: AnalyzeOptions) -> TokensReport:
    composition = analyze_composition(steps.table, list(options.by), options.top)
    if composition is None:
        raise InputError(
            "no LLM call in the inputs carries its request content",
            hint="costscope tokens reads request/response logs that include the request body "
            '({"request": {...}, "response": {...}} per line)',
        )
    totals = attr.totals(steps.calls)
    return TokensReport(composition, _inputs(steps.load), _warnings(steps, totals))


def simulate(
    paths: list[str],
    policies: list[str],
    options: AnalyzeOptions = AnalyzeOptions(),
    sweep: str | None = None,
    backtest: bool = False,
    stdin: BinaryIO | None = None,
) -> SimulationReport:
    """What a change would save: the inputs replayed under each policy file (see `SimulationReport.to_dict`)."""
    steps = load_priced_steps(paths, options, stdin)
    return build_simulation(steps, policies, sweep, backtest)[0]


def build_simulation(
    steps: PricedSteps,
    policies: list[str],
    sweep: str | None = None,
    backtest: bool = False,
    content: bool = False,
) -> tuple[SimulationReport, list[pa.Table]]:
    """The simulation report and each scenario's joint projected step table (priced; `content` keeps the
    segments and texts of the calls the policies left unchanged, for writing the projection)."""
    from .simulate.session import Recorded, Sweep, load_scenarios, simulate_recorded

    scenarios = load_scenarios(policies)
    sweep_spec = Sweep.parse(sweep) if sweep else None
    totals = attr.totals(steps.calls)
    recorded = Recorded(steps.table, steps.book, _inputs(steps.load), _warnings(steps, totals), steps.pricing.unpriced)
    return simulate_recorded(recorded, scenarios, sweep_spec, backtest, content)


def suggest(
    paths: list[str],
    options: AnalyzeOptions = AnalyzeOptions(),
    find_options: FindOptions | None = None,
    stdin: BinaryIO | None = None,
) -> Suggestion:
    """The cost leaks in the inputs and the policy file (YAML text) fixing them, for `simulate`."""
    return build_suggestion(load_priced_steps(paths, options, stdin), find_options)


def build_suggestion(steps: PricedSteps, find_options: FindOptions | None = None) -> Suggestion:
    """The cost leaks in the priced steps and the policy file fixing them (see `costscope.suggest`)."""
    from . import suggest as suggestions

    return suggestions.build_suggestion(steps, find_options)


def notes(steps: PricedSteps) -> tuple[dict[str, object], list[str]]:
    """What was read (`inputs`) and the warnings about it, for commands that build no Report."""
    return _inputs(steps.load), _warnings(steps, attr.totals(steps.calls))


def policy_schema_json() -> str:
    """The JSON Schema of version-1 policy files, as published in `schemas/policy-v1.json`."""
    from .simulate.policy_file import policy_json_schema

    return json.dumps(policy_json_schema(), indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------- datasets (costscope convert) and engines


def convert(
    paths: list[str],
    out: str,
    options: ConvertOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ConvertResult:
    """Write the inputs' step table as a Parquet dataset partitioned by day and tenant (re-runs append new inputs)."""
    from .convert import ConvertOptions
    from .convert import convert as convert_dataset

    return convert_dataset(paths, out, options or ConvertOptions(), progress)


def dataset_input(paths: list[str], engine: str = "local", scheduler: str | None = None) -> str | None:
    """The dataset directory when `paths` is one, else None (trace files); `--engine dask` needs a dataset."""
    if engine == "local" and scheduler is None and not any((Path(p) / DATASET_MANIFEST).is_file() for p in paths):
        return None  # plain trace files: no need to load the engines
    from . import engines

    return engines.dataset_input(paths, engine, scheduler)


def analyze_dataset(
    path: str, options: AnalyzeOptions = AnalyzeOptions(), engine: str = "local", scheduler: str | None = None
) -> Report:
    """`analyze` of a dataset, part by part on the local or the dask engine (identical reports)."""
    from . import engines

    return engines.analyze(path, options, engine, scheduler)


def simulate_dataset(
    path: str,
    policies: list[str],
    options: AnalyzeOptions = AnalyzeOptions(),
    sweep: str | None = None,
    backtest: bool = False,
    engine: str = "local",
    scheduler: str | None = None,
) -> SimulationReport:
    """`simulate` of a dataset: each part replayed whole (parts follow the policies' state scope)."""
    from . import engines

    return engines.simulate(path, policies, options, sweep, backtest, engine, scheduler)


def baseline_dataset(
    path: str, options: AnalyzeOptions = AnalyzeOptions(), engine: str = "local", scheduler: str | None = None
) -> tuple[Baseline, list[str]]:
    """The baseline of a dataset and the run's warnings."""
    from . import engines

    return engines.baseline(path, options, engine, scheduler)


def check_dataset(
    path: str, settings: CheckSettings, engine: str = "local", scheduler: str | None = None
) -> CheckResult:
    """`costscope check` with the current run read from a dataset."""
    from . import engines

    return engines.check(path, settings, engine, scheduler)
