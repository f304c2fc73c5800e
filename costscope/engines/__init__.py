"""analyze, simulate, baseline and check on a dataset (`costscope convert`), unit by unit, on an engine.

A dataset is read in work units: groups of files, each holding whole traces (`dataset.plan_units`). Every unit
runs the library's own functions (`partials.py`) and the client combines their partial figures (`merge.py`). An
engine only decides where units run: `local` runs them one after the other in this process (memory: one unit),
`dask` on a Dask cluster (`dask_engine.py`, the optional `costscope[dask]` extra). Both run the same functions on
the same units and combine them in unit order, so they give identical reports.

The replay of `simulate` carries state: each policy declares how far (`policy_scope`), and units follow the
widest scope of the enabled policies: `trace` (state within a trace) -> units of whole traces of at most
`unit_rows` rows; `tenant` (e.g. a tenant's monthly budget) -> one unit per tenant with all its days; `global`
(e.g. a cache shared by every tenant) -> one unit holding the whole dataset: the local engine runs it, the dask
engine refuses it rather than split a state that must stay whole.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from .. import api, dataset, money
from .. import attribution as attr
from .. import check as checks
from ..api import AnalyzeOptions, PricedSteps
from ..baseline import Baseline
from ..check_config import CheckSettings
from ..errors import ConfigError, CostscopeError, InputError
from ..pricing import PriceBook
from ..report import Report
from ..schema import empty_table
from ..simulate.policy_file import Scenario, with_value
from ..simulate.registry import BY_NAME
from ..simulate.report import SimulationReport
from ..simulate.session import Recorded, Sweep, load_scenarios, simulate_recorded
from ..steps import LoadResult
from . import merge, partials
from .partials import Task

__all__ = ["ENGINES", "Engine", "LocalEngine", "analyze", "baseline", "check", "open_engine", "simulate"]

ENGINES = ("local", "dask")
UNIT_ROWS = 500_000
"""Most rows per work unit when units may be cut anywhere between traces (memory per worker ~ 2 KiB per row)."""
T = TypeVar("T")
R = TypeVar("R")
Scope = Literal["trace", "tenant", "global"]
SCOPES: tuple[Scope, ...] = ("trace", "tenant", "global")


def _known_scope(name: str, config: Any) -> Scope | None:
    """The scope of built-in policies, read from their code, until each module declares `scope(config)`.

    truncation and compression change each call from its own trace; budgets pool a tenant's calls by month;
    batching groups calls of one tenant. Data-wide statistics make a policy global whatever its `scope` setting:
    routing's tokenizer ratios (medians over all calls), the semantic response cache's IDF (fitted on every prompt),
    and the prompt cache's `agents: recorded` (the agents whose calls anywhere used the cache). None: the policy's
    own `scope` setting decides (the caches), else global."""
    if name in ("truncation", "compression"):
        return "trace"
    if name == "budget":
        return "tenant" if getattr(config, "tenants", None) is not None else "trace"
    if name == "batching":
        return "tenant" if getattr(config, "group_size", None) is not None else "trace"
    if name == "response_cache" and getattr(config, "mode", None) == "semantic":
        return "global"
    if name == "prompt_cache" and getattr(getattr(config, "anthropic", None), "agents", None) == "recorded":
        return "global"
    if name == "routing":
        return "global"
    return None


class Engine(Protocol):
    name: str

    def map(self, fn: Callable[[T], R], items: Sequence[T], labels: Sequence[str]) -> list[R]:
        """`[fn(item) for item in items]`, in order; raises if any item fails (nothing partial is returned)."""
        ...

    def close(self) -> None: ...


class LocalEngine:
    """Every unit in this process, one after the other."""

    name = "local"

    def map(self, fn: Callable[[T], R], items: Sequence[T], labels: Sequence[str]) -> list[R]:
        return [fn(item) for item in items]

    def close(self) -> None:
        pass


@contextmanager
def open_engine(name: str = "local", scheduler: str | None = None, workers: int | None = None) -> Iterator[Engine]:
    """The engine called `name`; `scheduler` (dask only) is the address of a running cluster, e.g.
    tcp://10.0.0.5:8786, else a local cluster of `workers` processes (default: one per core) is started."""
    engine: Engine
    if name == "local":
        if scheduler is not None:
            raise ConfigError("--scheduler is for the dask engine", hint="add --engine dask")
        engine = LocalEngine()
    elif name == "dask":
        try:
            from .dask_engine import DaskEngine
        except ImportError as exc:
            raise ConfigError(
                f"the dask engine needs Dask ({exc.name or 'distributed'} is not installed)",
                hint="pip install 'costscope[dask]'",
            ) from None
        engine = DaskEngine(scheduler, workers)
    else:
        close = difflib.get_close_matches(name, ENGINES, n=1)
        raise ConfigError(
            f"unknown engine {name!r}", hint=(f"did you mean {close[0]}? " if close else "") + "engines: local, dask"
        )
    try:
        yield engine
    finally:
        engine.close()


def dataset_input(paths: list[str], engine: str = "local", scheduler: str | None = None) -> str | None:
    """The dataset directory when `paths` is one (None for trace files read the usual way); `--engine dask` or
    `--scheduler` on anything but one dataset is a usage error."""
    datasets = [p for p in paths if dataset.is_dataset(p)]
    if datasets and len(paths) > 1:
        raise ConfigError("give one dataset directory, and no other input with it", hint=f"e.g. {datasets[0]}")
    if datasets:
        return datasets[0]
    if engine != "local" or scheduler is not None:
        raise ConfigError(
            f"--engine {engine} reads a dataset, not trace files",
            hint="convert them first: costscope convert PATH... -o DATASET/, then pass DATASET/",
        )
    return None


# ---------------------------------------------------------------- one call per command


def analyze(path: str, options: AnalyzeOptions, engine: str = "local", scheduler: str | None = None) -> Report:
    with open_engine(engine, scheduler) as runner:
        return analyze_dataset(path, options, runner)


def baseline(
    path: str, options: AnalyzeOptions, engine: str = "local", scheduler: str | None = None
) -> tuple[Baseline, list[str]]:
    with open_engine(engine, scheduler) as runner:
        return baseline_dataset(path, options, runner)


def check(
    path: str, settings: CheckSettings, engine: str = "local", scheduler: str | None = None
) -> checks.CheckResult:
    with open_engine(engine, scheduler) as runner:
        return check_dataset(path, settings, runner)


def simulate(
    path: str,
    policies: list[str],
    options: AnalyzeOptions,
    sweep: str | None = None,
    backtest: bool = False,
    engine: str = "local",
    scheduler: str | None = None,
) -> SimulationReport:
    with open_engine(engine, scheduler) as runner:
        return simulate_dataset(path, policies, options, runner, sweep, backtest)


# ---------------------------------------------------------------- the runs


def _tasks(path: str, units: list[dataset.Unit], options: AnalyzeOptions, book: PriceBook, **extra: Any) -> list[Task]:
    return [Task(str(path), unit, options.filters, book, options.by, options.top, **extra) for unit in units]


def _run(engine: Engine, fn: Callable[[Task], R], tasks: list[Task]) -> list[R]:
    """Every unit's result, checked: one per unit, each having read the rows the manifest lists."""
    results = engine.map(fn, tasks, [t.unit.label for t in tasks])
    if len(results) != len(tasks):
        raise CostscopeError(f"{len(results)} of {len(tasks)} parts of the dataset returned a result: no report")
    for task, result in zip(tasks, results, strict=True):
        read: partials.Read = result.read  # type: ignore[attr-defined]
        if read.rows != task.unit.rows:
            raise InputError(f"{task.unit.label}: {read.rows} rows read, the manifest lists {task.unit.rows}")
    return results


def _facts(
    path: str, manifest: dataset.Manifest, reads: list[partials.Read], book: PriceBook, pruned: int
) -> tuple[PricedSteps, dict[str, Any]]:
    """What the reports' inputs and warnings are made from, for the whole dataset, and the totals."""
    loaded = dataset.load_result(path, manifest, empty_table(), pruned + sum(r.filtered_out for r in reads))
    return PricedSteps(loaded, merge.pricing(reads, book), book), merge.totals(reads)


def analyze_dataset(path: str, options: AnalyzeOptions, engine: Engine, unit_rows: int = UNIT_ROWS) -> Report:
    """`api.analyze` of a dataset, unit by unit."""
    attr.check_keys(list(options.by))
    book = PriceBook.from_file(options.prices)
    manifest = dataset.read_manifest(path)
    units, pruned = dataset.plan_units(manifest, "rows", unit_rows, options.filters)
    parts = _run(engine, partials.analyze_unit, _tasks(path, units, options, book))
    loaded = dataset.load_result(path, manifest, empty_table(), pruned + sum(p.read.filtered_out for p in parts))
    return analyze_report(parts, loaded, options, book)


def analyze_report(
    parts: list[partials.AnalyzePart], loaded: LoadResult, options: AnalyzeOptions, book: PriceBook
) -> Report:
    """`api.build_report`'s report from the partial figures of units holding whole traces; `loaded` tells what was
    read (its table is not used)."""
    reads = [p.read for p in parts]
    steps, totals = PricedSteps(loaded, merge.pricing(reads, book), book), merge.totals(reads)
    agent_groups = merge.groups([p.agent_groups for p in parts])
    cost, input_tokens = totals["cost_usd"], totals["input_tokens"]
    top_traces = merge.candidates([p.top_traces for p in parts])
    top_steps = merge.candidates([p.top_steps for p in parts])
    return Report(
        inputs=api._inputs(steps.load),
        totals=totals,
        by=list(options.by),
        groups=merge.groups([p.groups for p in parts]) if options.by else [],
        traces=attr.distribution(merge.per_trace(parts)),
        top_traces=attr.top_traces(top_traces, options.top) if top_traces is not None else [],
        top_steps=attr.top_steps(top_steps, options.top) if top_steps is not None else [],
        concentration={
            "top3_steps_share": merge.top3_share(parts),
            "top3_agents_share": attr.top_share([g for g in agent_groups if g["key"]["agent"] is not None]),
        },
        cache={
            "hit_ratio": totals["cache_read_tokens"] / input_tokens if input_tokens else None,
            "write_ratio": totals["cache_write_tokens"] / input_tokens if input_tokens else None,
            "saved_usd": totals["cache_saved_usd"],
            "cost_without_cache_usd": (cost or 0.0) + (totals["cache_saved_usd"] or 0.0) if cost is not None else None,
        },
        reported=merge.reported(parts),
        prices=steps.pricing.entries,
        price_sources=book.sources,
        unpriced=steps.pricing.unpriced,
        warnings=api._warnings(steps, totals),
        composition=merge.composition([p.composition for p in parts]),
    )


def baseline_dataset(
    path: str, options: AnalyzeOptions, engine: Engine, unit_rows: int = UNIT_ROWS
) -> tuple[Baseline, list[str]]:
    """`baseline.create` of a dataset: the summary and the run's warnings."""
    book = PriceBook.from_file(options.prices)
    manifest = dataset.read_manifest(path)
    units, pruned = dataset.plan_units(manifest, "rows", unit_rows, options.filters)
    parts = _run(engine, partials.baseline_unit, _tasks(path, units, options, book))
    steps, totals = _facts(path, manifest, [p.read for p in parts], book, pruned)
    return merge.baseline(parts, manifest, steps.pricing.unpriced, book), api._warnings(steps, totals)


def check_dataset(path: str, settings: CheckSettings, engine: Engine) -> checks.CheckResult:
    """`check.run` with the current run read from a dataset."""
    base, baseline_file = checks.read_baseline(settings)
    current, warnings = baseline_dataset(path, AnalyzeOptions(prices=settings.prices), engine)
    return checks.compare(base, current, settings, baseline_file=baseline_file, warnings=warnings)


def simulate_dataset(
    path: str,
    policies: list[str],
    options: AnalyzeOptions,
    engine: Engine,
    sweep: str | None = None,
    backtest: bool = False,
    unit_rows: int = UNIT_ROWS,
) -> SimulationReport:
    """`api.simulate` of a dataset: each unit replayed whole (units follow the policies' scope), runs combined."""
    if backtest:
        raise ConfigError("--backtest is not available on a dataset yet", hint="run it on the trace files")
    scenarios = load_scenarios(policies)
    sweep_spec = Sweep.parse(sweep) if sweep else None
    book = PriceBook.from_file(options.prices)
    manifest = dataset.read_manifest(path)
    scope, why = replay_scope(scenarios, sweep_spec, manifest)
    if scope == "global" and engine.name != "local":
        raise ConfigError(
            f"{why}: the replay cannot be split across workers without changing its result",
            hint="run it with --engine local (one process, the whole dataset in memory), or scope the policy to "
            "tenants or traces",
        )
    grouping: dataset.Grouping = {"trace": "rows", "tenant": "tenant", "global": "all"}[scope]  # type: ignore[assignment]
    units, pruned = dataset.plan_units(manifest, grouping, unit_rows, options.filters)
    tasks = _tasks(path, units, options, book, scenarios=tuple(scenarios), sweep=sweep_spec)
    parts = _run(engine, partials.simulate_unit, tasks)
    steps, totals = _facts(path, manifest, [p.read for p in parts], book, pruned)
    inputs, warnings = api._inputs(steps.load), api._warnings(steps, totals)
    live = [p for p in parts if p.scenarios is not None and p.baseline is not None]
    if not live:
        recorded = Recorded(empty_table(), book, inputs, warnings, steps.pricing.unpriced)
        return simulate_recorded(recorded, scenarios, sweep_spec)[0]
    weights = [p.calls for p in live]
    words = {"trace": "parts of whole traces", "tenant": "tenants (each with all its days)", "global": "part"}[scope]
    report = SimulationReport(
        inputs=inputs,
        baseline=money.add_fields([p.baseline for p in live if p.baseline is not None]),
        scenarios=[
            merge.scenario([p.scenarios[i] for p in live if p.scenarios is not None], weights, words)
            for i in range(len(scenarios))
        ],
        price_sources=book.sources,
        unpriced=steps.pricing.unpriced,
        warnings=warnings,
    )
    if sweep_spec is not None:
        report.sweep = merge.sweep([p.sweep for p in live if p.sweep is not None], weights)
    return report


# ---------------------------------------------------------------- replay scope


def policy_scope(name: str, config: Any) -> Scope:
    """How far a policy's replay state reaches: its module's `scope(config)` or `SCOPE` when declared, else what
    `_known_scope` read from the code, else the config's own `scope` setting (the caches), else `global`."""
    module = BY_NAME.get(name)
    declared = getattr(module, "scope", None)
    value = declared(config) if callable(declared) else getattr(module, "SCOPE", None)
    if value is None:
        value = _known_scope(name, config)
    if value is None:
        value = getattr(config, "scope", None)
    return value if value in SCOPES else "global"


def replay_scope(scenarios: list[Scenario], sweep: Sweep | None, manifest: dataset.Manifest) -> tuple[Scope, str]:
    """The widest scope of every enabled policy (sweep values included) and the policy that sets it."""
    variants = list(scenarios)
    if sweep is not None:
        variants += [with_value(scenarios[0], sweep.key, v) for v in sweep.values]
    widest: Scope = "trace"
    why = "every policy keeps its state within a trace"
    for scenario in variants:
        for name, config in scenario.policies:
            scope = policy_scope(name, config)
            if SCOPES.index(scope) > SCOPES.index(widest):
                reach = "all traces" if scope == "global" else "the traces of each tenant"
                widest, why = scope, f"policy {name} ({Path(scenario.source).name}) keeps state across {reach}"
    if widest == "tenant" and manifest.mixed_tenant_traces:
        return "global", f"{why}, and {manifest.mixed_tenant_traces} traces of the dataset name several tenants"
    return widest, why
