"""The default human view: rich tables that fit 80 columns and carry no colour when piped."""

from __future__ import annotations

import io

from rich import box
from rich.table import Table

from ..report import Report
from .findings import findings_table
from .fmt import MISSING, key_text, pct, plain_console, tokens, usd
from .summary import headline
from .tokens import composition_line


def _groups_table(report: Report) -> Table:
    total = report.totals["cost_usd"] or 0.0
    table = Table(title="By " + ", ".join(report.by), box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    widest = max((len(key_text(g["key"])) for g in report.groups), default=10)
    table.add_column(", ".join(report.by), overflow="fold", min_width=min(widest, 28), max_width=28)
    for name in ("calls", "input", "cached", "output", "cost", "share"):
        table.add_column(name, justify="right", no_wrap=True)
    for g in report.groups:
        cached = g["cache_read_tokens"] / g["input_tokens"] if g["input_tokens"] else None
        share = (g["cost_usd"] / total) if (g["cost_usd"] is not None and total) else None
        table.add_row(
            key_text(g["key"]),
            str(g["calls"]),
            tokens(g["input_tokens"]),
            pct(cached),
            tokens(g["output_tokens"]),
            usd(g["cost_usd"]),
            pct(share),
        )
    return table


def _top_traces_table(report: Report) -> Table:
    table = Table(title="Costliest traces", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    table.add_column("trace", overflow="fold", max_width=28)
    table.add_column("agents", overflow="fold", max_width=20)
    for name in ("calls", "input", "cost"):
        table.add_column(name, justify="right", no_wrap=True)
    for t in report.top_traces:
        table.add_row(
            t["trace_id"],
            ", ".join(t["agents"]) or MISSING,
            str(t["calls"]),
            tokens(t["input_tokens"]),
            usd(t["cost_usd"]),
        )
    return table


def _top_steps_table(report: Report) -> Table:
    table = Table(title="Costliest steps", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    widest = max((len(s["model"] or "") for s in report.top_steps), default=10)
    table.add_column("trace#step", overflow="fold", max_width=24)
    table.add_column("model", overflow="fold", min_width=min(widest, 26), max_width=26)
    for name in ("input", "output", "cost"):
        table.add_column(name, justify="right", no_wrap=True)
    for s in report.top_steps:
        table.add_row(
            f"{s['trace_id']}#{s['step']}",
            s["model"] or MISSING,
            tokens(s["input_tokens"]),
            tokens(s["output_tokens"]),
            usd(s["cost_usd"]),
        )
    return table


def _unpriced_table(report: Report) -> Table:
    table = Table(title="Unpriced models (not in the total)", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    table.add_column("model", overflow="fold", max_width=30)
    table.add_column("calls", justify="right")
    table.add_column("input", justify="right")
    table.add_column("hint", overflow="fold")
    for u in report.unpriced:
        table.add_row(u.model or MISSING, str(u.calls), tokens(u.input_tokens), u.hint or "")
    return table


def render_table(report: Report, width: int = 80) -> str:
    buffer = io.StringIO()
    console = plain_console(buffer, width)
    for line in headline(report):
        console.print(line, markup=False)
    if report.groups:
        console.print(_groups_table(report))
    if report.top_traces:
        console.print(_top_traces_table(report))
    if report.top_steps:
        console.print(_top_steps_table(report))
    if report.unpriced:
        console.print(_unpriced_table(report))
    if report.composition is not None:
        console.print(composition_line(report.composition), markup=False)
    text = "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
    if report.findings is not None:
        text += "\n" + findings_table(report.findings, width)
    return text
