"""Renderers of the simulation report (table, markdown, json): pure functions of `SimulationReport.to_dict()`."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from rich import box
from rich.table import Table

from ..simulate.report import SimulationReport
from .fmt import MISSING, plain_console, tokens, usd
from .json import render_json as _render_json_dict

Rows = list[list[str]]


def _pct_points(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1f}%"


def _figure(name: str, value: Any) -> str:
    """A risk or detail value: shares and rates as %, counts as integers, money as USD."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if "_share" in name or name.endswith("_rate"):
        return f"{value * 100:.1f}%"
    if name.endswith("_usd"):
        return usd(float(value))
    if isinstance(value, int) or (abs(value) >= 1000 and float(value).is_integer()):
        return f"{int(value):,}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _technique(run: dict[str, Any], joint: str) -> str:
    if run["technique"] == joint and len(run["policies"]) > 1:
        return f"joint ({len(run['policies'])} policies)"
    return str(run["technique"])


def headline(data: dict[str, Any]) -> str:
    base = data["baseline"]
    return (
        f"Recorded: {base['calls']:,} calls in {base['traces']:,} traces, {usd(base['cost_usd'])} "
        f"({base['calls_with_content']:,} calls with request content). Prices: {', '.join(data['prices']['sources'])}."
    )


def runs_rows(scenario: dict[str, Any]) -> Rows:
    rows = []
    for run in scenario["runs"]:
        rows.append(
            [
                _technique(run, scenario["joint"]),
                f"{run['calls_after']:,}",
                tokens(run["input_tokens_after"]),
                usd(run["cost_before_usd"]),
                usd(run["cost_after_usd"]),
                usd(run["saved_usd"]),
                _pct_points(run["saved_pct"]),
            ]
        )
    return rows


RUNS_HEADER = ["technique", "calls", "input", "before", "after", "saved", "saved %"]


def by_rows(run: dict[str, Any], key: str) -> Rows:
    return [
        [
            MISSING if row[key] is None else str(row[key]),
            f"{row['calls_before']:,} → {row['calls_after']:,}",
            usd(row["cost_before_usd"]),
            usd(row["cost_after_usd"]),
            usd(row["saved_usd"]),
            _pct_points(row["saved_pct"]),
        ]
        for row in run[f"by_{key}"]
    ]


def interaction_line(scenario: dict[str, Any]) -> str | None:
    parts = scenario["sum_of_parts_saved_usd"]
    if parts is None:
        return None
    joint = scenario["runs"][-1]["saved_usd"]
    return (
        f"Joint saving {usd(joint)} vs {usd(parts)} if the techniques' savings were added: they act on the same "
        f"tokens (a truncated result cannot also be compressed; a routed call is cached on a cold model), so only "
        f"the joint replay is the projection."
    )


def risk_lines(scenario: dict[str, Any]) -> list[str]:
    return [f"{name}: {_figure(name, value)}" for name, value in scenario["risks"].items()]


def detail_lines(run: dict[str, Any]) -> list[str]:
    """The scalar details each policy reported in a run (nested ones are in the JSON output)."""
    out = []
    for policy, outcome in run["outcomes"].items():
        scalars = [(k, v) for k, v in outcome["details"].items() if isinstance(v, int | float | str | bool)]
        if scalars:
            out.append(f"{policy}: " + ", ".join(f"{k} {_figure(k, v)}" for k, v in scalars))
    if run["calls_added"]:
        out.append("calls added: " + ", ".join(f"{k} {v:,}" for k, v in run["calls_added"].items()))
    if run["calls_not_made"]:
        out.append("calls not made: " + ", ".join(f"{k} {v:,}" for k, v in run["calls_not_made"].items()))
    return out


def sweep_rows(sweep: dict[str, Any]) -> tuple[list[str], Rows]:
    risk_names = list(dict.fromkeys(k for p in sweep["points"] for k in p["risks"]))
    short = [name.rsplit(".", 1)[-1] for name in risk_names]
    labels = short if len(set(short)) == len(short) else risk_names
    header = [sweep["key"], "cost after", "saved", "saved %", *labels]
    rows = [
        [
            str(p["value"]),
            usd(p["cost_after_usd"]),
            usd(p["saved_usd"]),
            _pct_points(p["saved_pct"]),
            *(_figure(k, p["risks"][k]) if k in p["risks"] else MISSING for k in risk_names),
        ]
        for p in sweep["points"]
    ]
    return header, rows


def backtest_rows(backtest: dict[str, Any]) -> tuple[list[str], Rows]:
    """Predicted vs actual cache figures, overall (per-trace rows are in the JSON output)."""
    overall = backtest.get("overall", backtest)
    header = ["figure", "actual", "predicted", "error"]
    rows = []
    for name in ("cache_read_tokens", "cache_write_tokens", "usd"):
        actual, predicted = overall.get(f"actual_{name}"), overall.get(f"predicted_{name}")
        if actual is None and predicted is None:
            continue
        fmt: Callable[[Any], str] = usd if name == "usd" else (lambda v: tokens(None if v is None else int(v)))
        error = (predicted - actual) / actual * 100 if actual else None
        rows.append([name, fmt(actual), fmt(predicted), MISSING if error is None else f"{error:+.1f}%"])
    return header, rows


# ---------------------------------------------------------------- table


def _rich_table(title: str, header: list[str], rows: Rows, first_width: int = 28) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for i, name in enumerate(header):
        if i == 0:
            table.add_column(name, overflow="fold", max_width=first_width, min_width=min(len(name), first_width))
        else:
            table.add_column(name, justify="right", min_width=min(len(name), 10))
    for row in rows:
        table.add_row(*row)
    return table


def render_table(report: SimulationReport, width: int = 80) -> str:
    data = report.to_dict()
    buffer = io.StringIO()
    console = plain_console(buffer, width)
    console.print(headline(data))
    for scenario in data["scenarios"]:
        console.print()
        enabled = ", ".join(scenario["policies"]) or "no policy enabled: the record replayed unchanged"
        console.print(f"Scenario {scenario['name']} ({scenario['source']}): {enabled}")
        console.print(_rich_table("Savings, each technique alone and jointly", RUNS_HEADER, runs_rows(scenario)))
        if line := interaction_line(scenario):
            console.print(line)
        joint = scenario["runs"][-1]
        header = ["", "calls", "before", "after", "saved", "saved %"]
        console.print(_rich_table("Joint, by agent", ["agent", *header[1:]], by_rows(joint, "agent")))
        console.print(_rich_table("Joint, by model", ["model", *header[1:]], by_rows(joint, "model")))
        for title, lines in (
            ("Quality risk", risk_lines(scenario)),
            ("What the replay did", detail_lines(joint)),
            ("Assumptions", scenario["assumptions"]),
            ("Not evaluated", scenario["not_evaluated"]),
        ):
            if lines:
                console.print(title)
                for line in lines:
                    console.print(f"  - {line}")
    if data["sweep"]:
        header, rows = sweep_rows(data["sweep"])
        console.print()
        console.print(
            _rich_table(f"Sweep of {data['sweep']['key']} ({data['sweep']['scenario']}, joint)", header, rows)
        )
    if data["backtest"]:
        header, rows = backtest_rows(data["backtest"])
        console.print()
        console.print(_rich_table("Backtest: prompt cache predicted vs recorded", header, rows))
    return buffer.getvalue()


# ---------------------------------------------------------------- markdown


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: Rows) -> list[str]:
    rule = "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"
    return [
        "| " + " | ".join(header) + " |",
        rule,
        *("| " + " | ".join(_escape(c) for c in r) + " |" for r in rows),
        "",
    ]


def render_markdown(report: SimulationReport, width: int = 80) -> str:
    data = report.to_dict()
    lines = ["## costscope simulation", "", headline(data), ""]
    for scenario in data["scenarios"]:
        lines += [f"### {scenario['name']}", ""]
        if scenario["description"]:
            lines += [scenario["description"], ""]
        lines += _md_table(RUNS_HEADER, runs_rows(scenario))
        if line := interaction_line(scenario):
            lines += [line, ""]
        joint = scenario["runs"][-1]
        header = ["calls", "before", "after", "saved", "saved %"]
        lines += ["**Joint, by agent**", ""] + _md_table(["agent", *header], by_rows(joint, "agent"))
        lines += ["**Joint, by model**", ""] + _md_table(["model", *header], by_rows(joint, "model"))
        for title, items in (
            ("Quality risk", risk_lines(scenario)),
            ("What the replay did", detail_lines(joint)),
            ("Assumptions", scenario["assumptions"]),
            ("Not evaluated", scenario["not_evaluated"]),
        ):
            if items:
                lines += [f"**{title}**", "", *(f"- {_escape(i)}" for i in items), ""]
    if data["sweep"]:
        header, rows = sweep_rows(data["sweep"])
        lines += [f"### Sweep of {data['sweep']['key']}", ""] + _md_table(header, rows)
    if data["backtest"]:
        header, rows = backtest_rows(data["backtest"])
        lines += ["### Backtest: prompt cache predicted vs recorded", ""] + _md_table(header, rows)
    lines += [f"> Warning: {_escape(w)}" for w in data["warnings"]]
    return "\n".join(lines).rstrip("\n") + "\n"


def render_json(report: SimulationReport, width: int = 80) -> str:
    return _render_json_dict(report, width)


SIMULATE_RENDERERS: dict[str, Callable[[SimulationReport, int], str]] = {
    "table": render_table,
    "json": render_json,
    "markdown": render_markdown,
}
