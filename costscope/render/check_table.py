"""The default human view of `check`: the verdict, the checks, and why the cost changed, in 80 columns."""

from __future__ import annotations

import io

from rich import box
from rich.table import Table

from ..check import CheckResult
from .check_text import STATUS_TEXT, change, driver, headline, interval, label, shown_rows, signed_usd, value, why
from .fmt import plain_console, usd


def _table(title: str) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)


def _checks(result: CheckResult) -> Table:
    rows, hidden = shown_rows(result)
    confidence = f"{result.settings.confidence * 100:g}% CI"
    limit = result.overall.limit
    table = _table("Checks" + (f" (limit {limit})" if limit else ""))
    table.add_column("check", overflow="fold", min_width=21, max_width=28)
    for name in ("baseline", "current", "change", confidence, "result"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            label(result, row),
            value(result, row.baseline, row),
            value(result, row.current, row),
            change(result, row),
            interval(result, row, sep="…"),
            STATUS_TEXT[row.status],
        )
    if hidden:
        table.caption = f"{hidden} more groups within the limits (--format json lists all)"
    return table


def _explanation(result: CheckResult) -> Table:
    x = result.explanation
    table = _table("Why the mean cost per trace changed")
    table.add_column("factor", overflow="fold", max_width=30)
    for name in ("baseline", "current", "USD/trace"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_row("price", "", "", signed_usd(x.price_usd))
    for e in x.effects:
        table.add_row(e.label, driver(e.name, e.baseline), driver(e.name, e.current), signed_usd(e.usd))
    table.add_row("total", usd(x.baseline_usd), usd(x.current_usd), signed_usd(x.change_usd))
    return table


def _movers(result: CheckResult) -> Table:
    table = _table("Biggest movers (cost per trace)")
    table.add_column("group", overflow="fold", max_width=36)
    for name in ("baseline", "current", "change"):
        table.add_column(name, justify="right", no_wrap=True)
    for movers in result.movers.values():
        for m in movers:
            table.add_row(f"{m.dimension} {m.key}", usd(m.baseline_usd), usd(m.current_usd), signed_usd(m.change_usd))
    return table


def render_check_table(result: CheckResult, width: int = 80) -> str:
    buffer = io.StringIO()
    console = plain_console(buffer, width)
    console.print(headline(result), markup=False)
    console.print(_checks(result))
    console.print(why(result), markup=False)
    console.print(_explanation(result))
    if any(result.movers.values()):
        console.print(_movers(result))
    for note in result.notes:
        console.print(f"Note: {note}", markup=False)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
