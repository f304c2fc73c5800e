"""The command line: typer options -> one api call -> render -> exit code. No pandas here."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import io, runcache
from .errors import ConfigError, CostscopeError
from .lazy import LazyModule
from .runcache import default_cache_dir

if TYPE_CHECKING:
    from . import api
    from .steps import Filters
else:
    api = LazyModule("costscope.api")

# Each command imports what only it needs (simulation, findings, baselines, checks) where it runs, so that
# `analyze` starts without them.

app = typer.Typer(
    name="costscope",
    help="Where the money goes in LLM agent traces, what a change would save, and a CI cost gate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(part.strip() for value in values or [] for part in value.split(",") if part.strip())


def _width() -> int:
    columns = os.environ.get("COLUMNS")
    if columns and columns.isdigit():
        return int(columns)
    return shutil.get_terminal_size((80, 24)).columns if sys.stdout.isatty() else 80


def _fail(exc: CostscopeError) -> typer.Exit:
    typer.echo(f"Error: {exc.message}", err=True)
    if exc.hint:
        typer.echo(f"Hint: {exc.hint}", err=True)
    return typer.Exit(exc.exit_code)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"costscope {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """costscope: cost analysis for LLM agent traces."""


def _inputs(paths: list[str] | None, claude: bool, codex: bool) -> list[str]:
    """PATH arguments plus the default log locations asked for with --claude / --codex."""
    found = list(paths or [])
    if claude:
        found += io.existing_dirs(io.claude_log_dirs(), "Claude Code logs", "CLAUDE_CONFIG_DIR")
    if codex:
        found += io.existing_dirs(io.codex_log_dirs(), "Codex CLI sessions", "CODEX_HOME")
    if not found:
        raise ConfigError("no input given", hint="pass trace files or directories, - for stdin, or --claude/--codex")
    return found


@contextmanager
def _progress() -> Iterator[Callable[[int, int], None] | None]:
    """A transient progress bar on stderr when it is a terminal (parsing progress, in bytes)."""
    if not sys.stderr.isatty() or os.environ.get("CI"):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        "parsing", BarColumn(), DownloadColumn(), TimeRemainingColumn(), transient=True, console=Console(stderr=True)
    ) as bar:
        task = bar.add_task("parsing", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


PathsArgument = Annotated[
    list[str] | None, typer.Argument(help="Trace files, directories (recursive), globs, or - for stdin.")
]


@contextmanager
def _busy(message: str) -> Iterator[None]:
    """A transient spinner on stderr while a long step after parsing runs (a terminal only, never in CI)."""
    if not sys.stderr.isatty() or os.environ.get("CI"):
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


ClaudeOption = Annotated[bool, typer.Option("--claude", help="Also read Claude Code's logs (CLAUDE_CONFIG_DIR).")]
CodexOption = Annotated[bool, typer.Option("--codex", help="Also read Codex CLI's sessions (CODEX_HOME).")]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="Parse every file afresh (skip the parse cache).")]
InputsArgument = Annotated[
    list[str], typer.Argument(help="Trace files, directories (recursive), globs, or - for stdin.")
]
PricesOption = Annotated[str | None, typer.Option(help="YAML price file adding or overriding model prices.")]
FormatInOption = Annotated[str | None, typer.Option("--format-in", help="Force the input format.")]
StrictOption = Annotated[bool, typer.Option(help="Fail on the first unusable record instead of skipping it.")]
SinceOption = Annotated[str | None, typer.Option(help="Only calls at or after this UTC date/time.")]
UntilOption = Annotated[str | None, typer.Option(help="Only calls before this UTC date/time.")]
ModelOption = Annotated[list[str] | None, typer.Option("--model", help="Only these models (glob patterns).")]
AgentOption = Annotated[list[str] | None, typer.Option("--agent", help="Only these agents (glob patterns).")]


class EngineName(StrEnum):
    local = "local"
    dask = "dask"


EngineOption = Annotated[
    EngineName,
    typer.Option(
        "--engine",
        help="Where a dataset (costscope convert) is processed: local (this process, part by part) or dask "
        "(a Dask cluster; pip install 'costscope[dask]').",
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(help="Dask scheduler of a running cluster, e.g. tcp://10.0.0.5:8786 (default: a local cluster)."),
]


@app.command()
def analyze(
    paths: PathsArgument = None,
    claude: ClaudeOption = False,
    codex: CodexOption = False,
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            help="Group by model, provider, agent, trace, tenant, operation, day, week, month "
            "(comma-separated or repeated). Default: model.",
        ),
    ] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="How many costliest traces and steps to list.")] = 5,
    since: SinceOption = None,
    until: UntilOption = None,
    model: ModelOption = None,
    agent: AgentOption = None,
    prices: PricesOption = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.table,
    format_in: FormatInOption = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Also write the priced step table (.parquet or .jsonl).")
    ] = None,
    strict: StrictOption = False,
    no_cache: NoCacheOption = False,
    findings: Annotated[
        bool,
        typer.Option("--findings", help="Also list the cost leaks, with dollars at stake and the policy fixing each."),
    ] = False,
    engine: EngineOption = EngineName.local,
    scheduler: SchedulerOption = None,
    staged: Annotated[
        bool | None,
        typer.Option(
            "--staged/--in-memory",
            help="Read the inputs in memory bounded by chunk sizes, through a temporary directory (same report), or "
            "all at once in memory. Default: staged from 1 GiB of input.",
        ),
    ] = None,
) -> None:
    """Where does the money go? Cost per model, agent, trace, tenant and day from reported usage."""
    options = _options(
        _split(by) or ("model",), top, _filters(since, until, model, agent), prices, format_in, strict, no_cache
    )
    options = replace(options, staged=staged)
    watched: list[str] | None = None
    try:
        inputs = _inputs(paths, claude, codex)
        dataset = api.dataset_input(inputs, engine.value, scheduler)
        if dataset is not None:
            if output or findings:
                raise ConfigError(
                    f"{'--output' if output else '--findings'} is not available on a dataset yet",
                    hint="run analyze on the trace files for it",
                )
            with _busy("analyzing the dataset"):
                report = api.analyze_dataset(dataset, options, engine.value, scheduler)
        else:
            expanded = io.expand_paths(inputs, stdin=sys.stdin.buffer)
            if api.runs_staged(expanded, options, "--output" if output else "--findings" if findings else None):
                with _progress() as progress:
                    report, watched = api.analyze_staged(expanded, options, progress)
            else:
                steps = _priced_steps(inputs, options, expanded)
                watched = steps.load.watched
                if output:
                    api.write_steps(steps.table, output)
                report = api.build_report(steps, options, _find_options() if findings else None)
    except CostscopeError as exc:
        raise _fail(exc) from None
    recordable = dataset is None and not output
    from .render import RENDERERS

    _emit(
        RENDERERS[output_format.value](report, _width()), report, _watched(watched, prices, claude, codex, recordable)
    )


def _find_options(**settings: Any) -> Any:
    from .findings import FindOptions

    return FindOptions(**settings)


def _filters(since: str | None, until: str | None, model: list[str] | None, agent: list[str] | None) -> Filters:
    from .steps import Filters

    return Filters(since=since, until=until, models=_split(model), agents=_split(agent))


def _options(
    by: tuple[str, ...],
    top: int,
    filters: Filters,
    prices: str | None,
    format_in: str | None,
    strict: bool,
    no_cache: bool,
) -> api.AnalyzeOptions:
    cache_dir = None if no_cache else default_cache_dir()
    return api.AnalyzeOptions(
        by=by, top=top, filters=filters, prices=prices, format_in=format_in, strict=strict, cache_dir=cache_dir
    )


def _priced_steps(
    paths: list[str], options: api.AnalyzeOptions, expanded: io.Expanded | None = None
) -> api.PricedSteps:
    with _progress() as progress:
        return api.load_priced_steps(paths, options, sys.stdin.buffer, progress, expanded)


def _tell(inputs: dict[str, Any], warnings: list[str]) -> None:
    """Skipped records and warnings go to stderr, so that stdout carries only the report."""
    typer.echo(_notices(inputs, warnings), err=True, nl=False)


def _notices(inputs: dict[str, Any], warnings: list[str]) -> str:
    lines = [f"skipped {example}" for example in inputs["skipped_examples"]]
    lines += [f"Warning: {warning}" for warning in warnings]
    return "".join(f"{line}\n" for line in lines)


def _watched(
    inputs: list[str] | None, prices: str | None, claude: bool, codex: bool, recordable: bool = True
) -> list[str] | None:
    """Every path a report depends on (for the run cache): the paths its inputs depend on (`LoadResult.watched`)
    and the options' own; None when they cannot be listed."""
    if not recordable or inputs is None:
        return None
    paths = list(inputs)
    if prices:
        paths.append(prices)
    if claude:
        paths += [str(p) for p in io.claude_log_dirs()]
    if codex:
        paths += [str(p) for p in io.codex_log_dirs()]
    return paths


def _emit(text: str, report: Any, watched: list[str] | None) -> None:
    """Print a report (notices to stderr) and let a run begun by the entry point record it."""
    notices = _notices(report.inputs, report.warnings)
    typer.echo(notices, err=True, nl=False)
    typer.echo(text, nl=False)
    run = runcache.current()
    if run is not None and watched is not None:
        run.record(watched, text, notices)


class TokensFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


@app.command()
def tokens(
    paths: PathsArgument = None,
    claude: ClaudeOption = False,
    codex: CodexOption = False,
    by: Annotated[
        list[str] | None,
        typer.Option("--by", help="Also show the composition per agent, model, trace, ... (comma-separated)."),
    ] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="How many costliest re-sent contents to list.")] = 10,
    since: SinceOption = None,
    until: UntilOption = None,
    model: ModelOption = None,
    agent: AgentOption = None,
    prices: PricesOption = None,
    output_format: Annotated[TokensFormat, typer.Option("--format", "-f", help="Output format.")] = TokensFormat.table,
    format_in: FormatInOption = None,
    strict: StrictOption = False,
    no_cache: NoCacheOption = False,
) -> None:
    """What the input tokens are made of (system, tools, history, user, tool results), whether the logged usage
    agrees with a recount, and what re-sent context costs."""
    options = _options(_split(by), top, _filters(since, until, model, agent), prices, format_in, strict, no_cache)
    try:
        steps = _priced_steps(_inputs(paths, claude, codex), options)
        report = api.build_tokens_report(steps, options)
    except CostscopeError as exc:
        raise _fail(exc) from None
    from .render.tokens import TOKENS_RENDERERS

    _emit(
        TOKENS_RENDERERS[output_format.value](report, _width()),
        report,
        _watched(steps.load.watched, prices, claude, codex),
    )


@app.command()
def simulate(
    paths: PathsArgument = None,
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", "-p", help="Policy file (YAML); repeat to compare several side by side."),
    ] = None,
    sweep: Annotated[
        str | None,
        typer.Option(help="Rerun the first policy file over values of one setting: key=v1,v2,... (joint replay)."),
    ] = None,
    backtest: Annotated[
        bool,
        typer.Option(help="Replay the prompt cache with the recorded cache fields stripped; compare with the record."),
    ] = False,
    claude: ClaudeOption = False,
    codex: CodexOption = False,
    since: SinceOption = None,
    until: UntilOption = None,
    model: ModelOption = None,
    agent: AgentOption = None,
    prices: PricesOption = None,
    output_format: Annotated[TokensFormat, typer.Option("--format", "-f", help="Output format.")] = TokensFormat.table,
    format_in: FormatInOption = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Also write the joint projected step table (.parquet or .jsonl)."),
    ] = None,
    strict: StrictOption = False,
    no_cache: NoCacheOption = False,
    engine: EngineOption = EngineName.local,
    scheduler: SchedulerOption = None,
) -> None:
    """What would a change save? Replay the traces under routing, caching, compression, truncation, batching and
    budget policies: each technique alone and jointly, with assumptions and quality risks."""
    options = _options((), 0, _filters(since, until, model, agent), prices, format_in, strict, no_cache)
    try:
        if output and len(policy or []) > 1:
            raise ConfigError("--output writes one projection: give one --policy with it")
        inputs = _inputs(paths, claude, codex)
        dataset = api.dataset_input(inputs, engine.value, scheduler)
        if dataset is not None:
            if output:
                raise ConfigError("--output is not available on a dataset yet", hint="run simulate on trace files")
            with _busy("replaying the policies"):
                report = api.simulate_dataset(dataset, policy or [], options, sweep, backtest, engine.value, scheduler)
        else:
            steps = _priced_steps(inputs, options)
            with _busy("replaying the policies"):
                report, projected = api.build_simulation(steps, policy or [], sweep, backtest, content=bool(output))
            if output:
                api.write_steps(projected[0], output)
    except CostscopeError as exc:
        raise _fail(exc) from None
    _tell(report.inputs, report.warnings)
    from .render.simulate import SIMULATE_RENDERERS

    typer.echo(SIMULATE_RENDERERS[output_format.value](report, _width()), nl=False)


@app.command()
def suggest(
    paths: PathsArgument = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Where to write the policy file (YAML; - for stdout).")
    ] = "costscope-policy.yaml",
    min_usd: Annotated[
        float, typer.Option("--min-usd", min=0, help="Leave out findings with less at stake (USD).")
    ] = 0.0,
    claude: ClaudeOption = False,
    codex: CodexOption = False,
    since: SinceOption = None,
    until: UntilOption = None,
    model: ModelOption = None,
    agent: AgentOption = None,
    prices: PricesOption = None,
    format_in: FormatInOption = None,
    strict: StrictOption = False,
    no_cache: NoCacheOption = False,
) -> None:
    """Find the cost leaks and write the policy file that fixes them; `costscope simulate PATH --policy FILE` then
    says what it would save."""
    options = _options((), 0, _filters(since, until, model, agent), prices, format_in, strict, no_cache)
    try:
        inputs = _inputs(paths, claude, codex)
        steps = _priced_steps(inputs, options)
        suggestion = api.build_suggestion(steps, _find_options(min_usd=min_usd))
        if output != "-":
            _write_text(output, suggestion.text)
    except CostscopeError as exc:
        raise _fail(exc) from None
    _tell(*api.notes(steps))
    if output == "-":
        typer.echo(suggestion.text, nl=False)
        return
    fixed = [f for f in suggestion.findings if f.policy_key in suggestion.policies]
    if not fixed:
        typer.echo(f"Wrote {output}: no finding has a policy fix, so it enables no policy", err=True)
        return
    typer.echo(
        f"Wrote {output}: {', '.join(suggestion.policies)} for {len(fixed)} of {len(suggestion.findings)} findings "
        f"(${suggestion.usd_at_stake:,.2f} at stake, overlapping). What it saves: "
        f"costscope simulate {' '.join(inputs)} --policy {output}",
        err=True,
    )


def _write_text(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc


@app.command()
def convert(
    paths: InputsArgument,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Dataset directory (created; a re-run appends only new inputs).")
    ],
    format_in: FormatInOption = None,
    strict: StrictOption = False,
) -> None:
    """Write the step table as a Parquet dataset partitioned by day and tenant: the fast path for repeated analysis
    and the input of --engine dask."""
    try:
        with _progress() as progress:
            result = api.convert(paths, output, api.ConvertOptions(format_in=format_in, strict=strict), progress)
    except CostscopeError as exc:
        raise _fail(exc) from None
    for warning in result.warnings:
        typer.echo(f"Warning: {warning}", err=True)
    m = result.manifest
    typer.echo(
        f"{output}: {result.inputs_added} new inputs ({result.inputs_unchanged} already converted), "
        f"{result.rows_added:+,} rows; {m.calls:,} LLM calls in {m.traces:,} traces, {len(m.partitions):,} partitions",
        err=True,
    )


@app.command("policy-schema")
def policy_schema() -> None:
    """Print the JSON Schema of policy files (version 1), for editors and CI validation."""
    typer.echo(api.policy_schema_json(), nl=False)


class CheckFormat(StrEnum):
    table = "table"
    markdown = "markdown"
    json = "json"


@app.command()
def baseline(
    paths: InputsArgument,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Where to write the baseline (JSON; - for stdout).")
    ] = "costscope-baseline.json",
    prices: PricesOption = None,
    format_in: FormatInOption = None,
    strict: StrictOption = False,
    engine: EngineOption = EngineName.local,
    scheduler: SchedulerOption = None,
) -> None:
    """Record a run's cost per trace, agent, model and operation as the baseline 'costscope check' compares with."""
    from . import baseline as baselines

    options = api.AnalyzeOptions(prices=prices, format_in=format_in, strict=strict)
    try:
        dataset = api.dataset_input(paths, engine.value, scheduler)
        if dataset is not None:
            with _busy("summarizing the dataset"):
                summary, warnings = api.baseline_dataset(dataset, options, engine.value, scheduler)
        else:
            with _progress() as progress:
                summary, warnings = baselines.create(paths, options, sys.stdin.buffer, progress)
        if output != "-":
            baselines.write(summary, output)
    except CostscopeError as exc:
        raise _fail(exc) from None
    for warning in warnings:
        typer.echo(f"Warning: {warning}", err=True)
    if output == "-":
        typer.echo(baselines.to_json(summary), nl=False)
        return
    t = summary.totals
    cost = "no priced call" if t.cost_usd is None else f"${t.cost_usd:,.4f}"
    typer.echo(f"Wrote {output}: {t.traces} traces, {t.calls} LLM calls, {cost}", err=True)


def _append_step_summary(markdown: str) -> None:
    """On GitHub Actions, add the markdown report to the job summary (GITHUB_STEP_SUMMARY)."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(markdown + "\n")
    except OSError as exc:
        typer.echo(f"Warning: cannot append to GITHUB_STEP_SUMMARY {path}: {exc.strerror}", err=True)


@app.command()
def check(
    paths: InputsArgument,
    baseline_file: Annotated[
        str | None, typer.Option("--baseline", "-b", help="Baseline file written by 'costscope baseline'.")
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="cost_per_trace_mean (default), cost_per_trace_p50, cost_per_trace_p95, total or tokens_per_trace."
        ),
    ] = None,
    max_increase: Annotated[
        str | None, typer.Option("--max-increase", help="Fail above this increase, e.g. 10% (the default limit).")
    ] = None,
    max_increase_usd: Annotated[
        float | None, typer.Option("--max-increase-usd", help="Fail above this increase in USD (cost metrics).")
    ] = None,
    max_cost_per_trace: Annotated[
        float | None, typer.Option("--max-cost-per-trace", help="Budget: fail when cost per trace is above this USD.")
    ] = None,
    by: Annotated[
        list[str] | None, typer.Option("--by", help="Also apply the limits per agent, model or operation.")
    ] = None,
    confidence: Annotated[
        float | None, typer.Option(help="Confidence of the bootstrap interval of the change (default 0.95).")
    ] = None,
    min_traces: Annotated[
        int | None, typer.Option("--min-traces", help="Traces per side needed to use the interval (default 30).")
    ] = None,
    fail_on_unpriced: Annotated[
        bool | None,
        typer.Option("--fail-on-unpriced/--allow-unpriced", help="Fail when either side has unpriced models."),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(help="TOML file with the defaults (else ./costscope.toml [check], ./pyproject.toml)."),
    ] = None,
    output_format: Annotated[CheckFormat, typer.Option("--format", "-f", help="Output format.")] = CheckFormat.table,
    prices: PricesOption = None,
    format_in: FormatInOption = None,
    strict: StrictOption = False,
    engine: EngineOption = EngineName.local,
    scheduler: SchedulerOption = None,
) -> None:
    """Cost regression gate: compare traces with a baseline. Exit 0 pass, 1 regression, 2 usage or input error."""
    from . import check as checks
    from .check_config import load_settings as load_check_settings
    from .render.check_formats import CHECK_RENDERERS

    options = {
        "baseline": baseline_file,
        "metric": metric,
        "max_increase": max_increase,
        "max_increase_usd": max_increase_usd,
        "max_cost_per_trace": max_cost_per_trace,
        "by": _split(by),
        "confidence": confidence,
        "min_traces": min_traces,
        "fail_on_unpriced": fail_on_unpriced,
        "prices": prices,
    }
    try:
        settings = load_check_settings(options, config)
        dataset = api.dataset_input(paths, engine.value, scheduler)
        if dataset is not None:
            with _busy("summarizing the dataset"):
                result = api.check_dataset(dataset, settings, engine.value, scheduler)
        else:
            with _progress() as progress:
                result = checks.run(
                    paths, settings, format_in=format_in, strict=strict, stdin=sys.stdin.buffer, progress=progress
                )
    except CostscopeError as exc:
        raise _fail(exc) from None
    for warning in result.warnings:
        typer.echo(f"Warning: {warning}", err=True)
    typer.echo(CHECK_RENDERERS[output_format.value](result, _width()), nl=False)
    _append_step_summary(CHECK_RENDERERS["markdown"](result, _width()))
    raise typer.Exit(result.exit_code)


# ---------------------------------------------------------------- report (HTML) and forecast


@app.command()
def report(
    paths: PathsArgument = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Where to write the HTML page (- for stdout).")
    ] = "costscope-report.html",
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", "-p", help="Policy file (YAML) whose savings waterfall to add; repeatable."),
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many costliest traces to chart.")] = 10,
    title: Annotated[str | None, typer.Option(help="Page title.")] = None,
    claude: ClaudeOption = False,
    codex: CodexOption = False,
    since: SinceOption = None,
    until: UntilOption = None,
    model: ModelOption = None,
    agent: AgentOption = None,
    prices: PricesOption = None,
    format_in: FormatInOption = None,
    strict: StrictOption = False,
    no_cache: NoCacheOption = False,
) -> None:
    """Write one self-contained HTML page of charts (inline SVG, no script, no network): spend over time by model,
    by agent, token composition, cost per trace, costliest traces and, with --policy, the savings waterfall."""
    from . import htmlreport
    from .render.html import render_html

    options = _options((), top, _filters(since, until, model, agent), prices, format_in, strict, no_cache)
    try:
        steps = _priced_steps(_inputs(paths, claude, codex), options)
        with _busy("replaying the policies" if policy else "charting"):
            data = htmlreport.build(steps, policy or [], top=top, title=title)
        page = render_html(data)
        if output != "-":
            htmlreport.write_html(page, output)
    except CostscopeError as exc:
        raise _fail(exc) from None
    _tell(data.analysis.inputs, data.analysis.warnings)
    if output == "-":
        typer.echo(page, nl=False)
        return
    charts = page.count("<svg ")
    typer.echo(f"Wrote {output}: {charts} charts, {len(page.encode()) / 1024:,.0f} KiB", err=True)


@app.command()
def forecast(
    paths: PathsArgument = None,
    volume: Annotated[
        str | None,
        typer.Option(help="Traces per period to forecast: 100000/month, 3k/day, 20k/week. Default: the inputs' rate."),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", "-p", help="Also forecast with this policy file's joint projection; repeatable."),
    ] = None,
    confidence: Annotated[float, typer.Option(help="Confidence of the bootstrap interval.")] = 0.95,
    slice_model: Annotated[
        list[str] | None,
        typer.Option("--slice-model", help="Self-hosting: the calls it would serve (model glob; repeatable)."),
    ] = None,
    gpu_hourly: Annotated[float | None, typer.Option("--gpu-hourly", help="Self-hosting: USD per GPU-hour.")] = None,
    gpu_count: Annotated[int, typer.Option("--gpu-count", help="Self-hosting: GPUs kept running (minimum).")] = 1,
    throughput: Annotated[
        float | None, typer.Option(help="Self-hosting: tokens/s one GPU sustains (input + output).")
    ] = None,
    calls_per_hour: Annotated[
        float | None, typer.Option("--calls-per-hour", help="Self-hosting: or calls one GPU serves per hour.")
    ] = None,
    utilization: Annotated[float, typer.Option(help="Self-hosting: average load as a share of that throughput.")] = 0.5,
    claude: ClaudeOption = False,
    codex: CodexOption = False,
    since: SinceOption = None,
    until: UntilOption = None,
    model: ModelOption = None,
    agent: AgentOption = None,
    prices: PricesOption = None,
    output_format: Annotated[TokensFormat, typer.Option("--format", "-f", help="Output format.")] = TokensFormat.table,
    format_in: FormatInOption = None,
    strict: StrictOption = False,
    no_cache: NoCacheOption = False,
) -> None:
    """What a month would cost: cost per trace x volume with a bootstrap interval, optionally with policy files,
    and the break-even of self-hosting a slice of calls on rented GPUs."""
    from . import forecast as forecasts
    from .render.forecast import FORECAST_RENDERERS

    options = _options((), 0, _filters(since, until, model, agent), prices, format_in, strict, no_cache)
    try:
        self_host = forecasts.SelfHost.from_options(
            slice_model, gpu_hourly, gpu_count, throughput, calls_per_hour, utilization
        )
        settings = forecasts.ForecastSettings(
            volume=forecasts.Volume.parse(volume) if volume else None, confidence=confidence, self_host=self_host
        )
        steps = _priced_steps(_inputs(paths, claude, codex), options)
        with _busy("replaying the policies" if policy else "resampling"):
            result = forecasts.build(steps, settings, policy or [])
    except CostscopeError as exc:
        raise _fail(exc) from None
    _tell(result.inputs, result.warnings)
    typer.echo(FORECAST_RENDERERS[output_format.value](result, _width()), nl=False)


def main() -> None:
    app()
