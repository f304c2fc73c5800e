"""Renderers of `costscope forecast` (table, markdown, json): pure functions of `Forecast.to_dict()`."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from rich import box
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..forecast import Forecast
from .fmt import MISSING, pct, plain_console, tokens, usd
from .json import render_json as _render_json_dict

HEADER = ["scenario", "per trace", "per month", "interval", "saved / month"]


def _count(value: float | None) -> str:
    if value is None:
        return MISSING
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:,.3g}{suffix}"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"


def money(value: float | None) -> str:
    """USD for monthly figures: whole dollars from $100 up, cents from $1, else as the other renderers."""
    if value is not None and abs(value) >= 100:
        return f"${value:,.0f}" if value >= 0 else f"-${-value:,.0f}"
    if value is not None and abs(value) >= 1:
        return f"${value:,.2f}" if value >= 0 else f"-${-value:,.2f}"
    return usd(value)


def _range(low: float | None, high: float | None) -> str:
    return f"{money(low)} – {money(high)}"


def headline(data: dict[str, Any]) -> list[str]:
    v, s, b = data["volume"], data["sample"], data["bootstrap"]
    source = "the inputs' observed rate" if v["source"] == "observed" else "--volume"
    per_month = "" if v["period"] == "month" else f" = {_count(v['traces_per_month'])} traces/month"
    lines = [f"Forecast at {v['text']}{per_month} ({source})"]
    sample = f"{s['priced_traces']:,} priced traces of {s['traces']:,}"
    if s["first_start"]:
        sample += f", {s['first_start'][:10]} to {s['last_start'][:10]} ({s['span_days']:.1f} days"
        rate = s["observed_traces_per_month"]
        sample += f"; observed rate {_count(rate)} traces/month)" if rate else ")"
    lines.append(sample + f". Prices: {', '.join(data['prices']['sources'])}.")
    lines.append(
        f"Interval: {b['confidence'] * 100:g}% percentile bootstrap of the mean cost per trace "
        f"({b['resamples']:,} resamples, seed {b['seed']})."
    )
    return lines


def projection_rows(data: dict[str, Any]) -> list[list[str]]:
    rows = []
    for p in data["projections"]:
        saved = MISSING
        if "saved_monthly_usd" in p:
            saved = (
                f"{money(p['saved_monthly_usd'])} ({_range(p['saved_monthly_low_usd'], p['saved_monthly_high_usd'])})"
            )
        rows.append(
            [
                p["scenario"],
                usd(p["cost_per_trace_mean_usd"]),
                money(p["monthly_usd"]),
                _range(p["monthly_low_usd"], p["monthly_high_usd"]),
                saved,
            ]
        )
    return rows


def self_host_lines(sh: dict[str, Any], volume_text: str) -> list[str]:
    throughput = (
        f"{sh['tokens_per_second']:,g} tokens/s" if sh["unit"] == "tokens" else f"{sh['calls_per_hour']:,g} calls/h"
    )
    lines = [
        f"Slice {', '.join(sh['models'])}: {sh['calls_per_trace']:.3g} calls and "
        f"{tokens(round(sh['tokens_per_trace']))} tokens per trace, API cost {usd(sh['api_cost_per_trace_usd'])} "
        f"per trace ({pct(sh['share_of_spend'])} of spend)"
        + (f"; {sh['unpriced_calls']:,} of its calls are unpriced" if sh["unpriced_calls"] else ""),
        f"At {volume_text}: API {money(sh['api_monthly_usd'])} a month "
        f"({_range(sh['api_monthly_low_usd'], sh['api_monthly_high_usd'])}) vs self-hosting "
        f"{money(sh['self_host_monthly_usd'])} ({sh['gpus']} GPU × ${sh['gpu_hourly_usd']:,g}/h × 730.5 h): "
        + (
            f"saves {money(sh['saving_monthly_usd'])} a month"
            if sh["saving_monthly_usd"] > 0
            else f"costs {money(-sh['saving_monthly_usd'])} more a month"
        ),
        f"GPUs needed: {sh['gpus_needed']} for {_count(sh['demand_per_month'])} {sh['unit']}/month; one GPU serves "
        f"{_count(sh['capacity_per_gpu_month'])} {sh['unit']}/month at {throughput} and "
        f"{sh['utilization'] * 100:g}% utilization",
    ]
    if sh["break_even_traces_per_month"] is None:
        served = (sh["traces_per_gpu_month"] or 0.0) * sh["api_cost_per_trace_usd"]
        lines.append(
            f"Break-even: none. A fully used GPU replaces {money(served)} of API calls a month and costs "
            f"{money(sh['gpu_month_usd'])}"
        )
    else:
        fleet = f"{sh['gpu_count']} GPU" + ("s" if sh["gpu_count"] != 1 else "")
        lines.append(
            f"Break-even: {_count(sh['break_even_traces_per_month'])} traces/month with {fleet} "
            f"(one GPU serves {_count(sh['traces_per_gpu_month'])} traces/month; more traffic needs more GPUs)"
        )
    return lines


def render_table(forecast: Forecast, width: int = 80) -> str:
    data = forecast.to_dict()
    buffer = io.StringIO()
    console = plain_console(buffer, width)
    for line in headline(data):
        console.print(line, markup=False)
    table = Table(title="Monthly cost", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    table.add_column(HEADER[0], overflow="fold", max_width=24)
    for name in HEADER[1:]:
        table.add_column(name, justify="right", no_wrap=name != "saved / month")
    for row in projection_rows(data):
        table.add_row(*row)
    console.print(table)
    if data["self_host"] is not None:
        console.print("Self-hosting", markup=False)
        for line in self_host_lines(data["self_host"], data["volume"]["text"]):
            console.print(Padding(Text(line), (0, 0, 0, 2)))
    console.print("Assumptions", markup=False)
    for a in data["assumptions"]:
        console.print(Padding(Text(f"- {a}"), (0, 0, 0, 2)))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(forecast: Forecast, width: int = 80) -> str:
    data = forecast.to_dict()
    lines = ["## costscope forecast", ""] + [f"- {line}" for line in headline(data)] + [""]
    lines += ["| " + " | ".join(HEADER) + " |", "|---|" + "---:|" * (len(HEADER) - 1)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in projection_rows(data)] + [""]
    if data["self_host"] is not None:
        lines += ["### Self-hosting", ""]
        lines += [f"- {_md_cell(line)}" for line in self_host_lines(data["self_host"], data["volume"]["text"])]
        lines.append("")
    lines += ["<details><summary>Assumptions</summary>", ""] + [f"- {a}" for a in data["assumptions"]]
    lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def render_json(forecast: Forecast, width: int = 80) -> str:
    return _render_json_dict(forecast, width)


FORECAST_RENDERERS: dict[str, Callable[[Forecast, int], str]] = {
    "table": render_table,
    "json": render_json,
    "markdown": render_markdown,
}
