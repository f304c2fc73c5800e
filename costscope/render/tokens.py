"""Renderers of `costscope tokens` (pure functions of a TokensReport) and the composition lines of `analyze`."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import orjson
from rich import box
from rich.table import Table

from ..report import TokensReport
from .fmt import MISSING, key_text, pct, plain_console, tokens, usd
from .json import _round_floats

MAX_MISMATCH_ROWS = 20


def _ratio(value: float | None) -> str:
    return MISSING if value is None else f"{value:.3f}"


def composition_line(summary: dict[str, Any]) -> str:
    """One sentence for `analyze`: the biggest input kinds and what re-sent context cost."""
    parts = [f"{s['kind']} {pct(s['share'])}" for s in summary["segments"] if s["kind"] != "output"]
    carry = summary["context_carry"]
    line = f"Input composition ({summary['calls_with_content']} calls with content): " + ", ".join(parts)
    line += f"; re-sent system prompts and tool results: {tokens(carry['tokens'])} tokens, {usd(carry['cost_usd'])}"
    if summary["usage_mismatches"]:
        line += f"; {summary['usage_mismatches']} usage mismatches (costscope tokens lists them)"
    return line


def _new_table(title: str) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)


def _composition_table(title: str, segments: list[dict[str, Any]]) -> Table:
    table = _new_table(title)
    table.add_column("segment", no_wrap=True)
    for name in ("tokens", "share", "recounted", "cost", "cost share"):
        table.add_column(name, justify="right", no_wrap=True)
    for s in segments:
        table.add_row(
            s["kind"], tokens(s["tokens"]), pct(s["share"]), tokens(s["recounted_tokens"]), usd(s["cost_usd"]),
            pct(s["cost_share"]),
        )  # fmt: skip
    return table


def _groups_table(report: TokensReport) -> Table:
    c = report.composition
    kinds = [s["kind"] for s in c.overall["segments"] if s["kind"] != "output"]
    table = _new_table("Input by " + ", ".join(c.by) + " (share of tokens)")
    table.add_column(", ".join(c.by), overflow="fold", max_width=24)
    table.add_column("input", justify="right", no_wrap=True)
    table.add_column("cost", justify="right", no_wrap=True)
    for kind in kinds:
        table.add_column(kind.replace("tool_result", "tool res"), justify="right", no_wrap=True)
    for g in c.groups:
        share = {s["kind"]: s["share"] for s in g["segments"]}
        table.add_row(
            key_text(g["key"]), tokens(g["input_tokens"]), usd(g["input_cost_usd"]), *(pct(share.get(k)) for k in kinds)
        )
    return table


def _reconciliation_table(report: TokensReport) -> Table:
    table = _new_table("Reported / recounted input tokens, per model")
    table.add_column("model", overflow="fold", max_width=26)
    table.add_column("tokenizer", overflow="fold", max_width=26)
    for name in ("calls", "median", "p5", "p95"):
        table.add_column(name, justify="right", no_wrap=True)
    for r in report.composition.reconciliation:
        table.add_row(
            r["model"], r["tokenizer"], str(r["reconciled_calls"]), _ratio(r["ratio_median"]), _ratio(r["ratio_p5"]),
            _ratio(r["ratio_p95"]),
        )  # fmt: skip
    return table


def _mismatch_table(report: TokensReport) -> Table:
    rows = report.composition.mismatches
    table = _new_table(f"Usage mismatches ({report.composition.mismatch_count})")
    table.add_column("where", overflow="fold", max_width=30)
    table.add_column("reason", no_wrap=True)
    for name in ("reported", "recounted", "ratio"):
        table.add_column(name, justify="right", no_wrap=True)
    for m in rows[:MAX_MISMATCH_ROWS]:
        table.add_row(
            f"{m['source']}:{m['line']}", m["reason"], tokens(m["reported_input_tokens"]),
            tokens(m["recounted_input_tokens"]), _ratio(m["ratio"]),
        )  # fmt: skip
    if len(rows) > MAX_MISMATCH_ROWS:
        table.caption = f"{len(rows) - MAX_MISMATCH_ROWS} more (--format json lists all)"
    return table


def _carry_tables(report: TokensReport) -> list[Table]:
    carry = report.composition.carry
    by_tool = _new_table("Context carry: re-sent tool results, per tool")
    by_tool.add_column("tool", overflow="fold", max_width=28)
    for name in ("re-sends", "tokens", "cost"):
        by_tool.add_column(name, justify="right", no_wrap=True)
    for r in carry["by_tool"]:
        by_tool.add_row(r["tool"], str(r["resends"]), tokens(r["tokens"]), usd(r["cost_usd"]))
    by_agent = _new_table("Context carry per agent")
    by_agent.add_column("agent", overflow="fold", max_width=24)
    by_agent.add_column("re-sent", no_wrap=True)
    for name in ("re-sends", "tokens", "cost"):
        by_agent.add_column(name, justify="right", no_wrap=True)
    for r in carry["by_agent"]:
        by_agent.add_row(r["agent"], r["kind"], str(r["resends"]), tokens(r["tokens"]), usd(r["cost_usd"]))
    items = _new_table("Costliest re-sent contents")
    items.add_column("first sent", overflow="fold", max_width=30)
    items.add_column("kind", overflow="fold", max_width=18)
    for name in ("tokens", "re-sends", "carried", "cost"):
        items.add_column(name, justify="right", no_wrap=True)
    for r in carry["top_items"]:
        kind = r["kind"] + (f" {r['tool']}" if r["tool"] else "")
        items.add_row(
            r["first_sent"], kind, tokens(r["tokens"]), str(r["resends"]), tokens(r["carried_tokens"]),
            usd(r["carried_cost_usd"]),
        )  # fmt: skip
    return [t for t in (by_tool, by_agent, items) if t.row_count]


def headline(report: TokensReport) -> list[str]:
    c = report.composition
    carry = c.carry
    d = c.dedup
    lines = [
        f"{c.calls_with_content} of {c.calls} LLM calls carry their request content; "
        f"counted with {', '.join(c.tokenizers) or MISSING}; input scaled to the reported usage per call.",
        f"Re-sent system prompts and tool results: {tokens(carry['tokens'])} tokens "
        f"({pct(carry['share_of_input_tokens'])} of input), {usd(carry['cost_usd'])} "
        f"({pct(carry['share_of_input_cost'])} of input cost).",
    ]
    if d["ratio"] is not None:
        lines.append(
            f"Distinct content: {d['distinct_segments']:,} of {d['segments']:,} segments, "
            f"{d['distinct_chars']:,} of {d['chars']:,} characters ({d['ratio']:.1f}x re-sent)."
        )
    return lines


def render_tokens_table(report: TokensReport, width: int = 80) -> str:
    buffer = io.StringIO()
    console = plain_console(buffer, width)
    for line in headline(report):
        console.print(line, markup=False)
    c = report.composition
    console.print(_composition_table("Input composition (calibrated tokens) and output", c.overall["segments"]))
    if c.groups:
        console.print(_groups_table(report))
    console.print(_reconciliation_table(report))
    if c.mismatches:
        console.print(_mismatch_table(report))
    for table in _carry_tables(report):
        console.print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def render_tokens_json(report: TokensReport, width: int = 80) -> str:
    return orjson.dumps(_round_floats(report.to_dict()), option=orjson.OPT_INDENT_2).decode() + "\n"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    return out + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows] + [""]


def render_tokens_markdown(report: TokensReport, width: int = 80) -> str:
    c = report.composition
    lines = ["## costscope tokens", ""] + [f"- {line}" for line in headline(report)] + [""]
    lines += ["### Input composition", ""]
    lines += _md_table(
        ["segment", "tokens", "share", "recounted", "cost", "cost share"],
        [
            [s["kind"], str(s["tokens"]), pct(s["share"]), str(s["recounted_tokens"]), usd(s["cost_usd"]),
             pct(s["cost_share"])]
            for s in c.overall["segments"]
        ],
    )  # fmt: skip
    lines += ["### Reported / recounted input, per model", ""]
    lines += _md_table(
        ["model", "tokenizer", "calls", "median", "p5", "p95"],
        [
            [r["model"], r["tokenizer"], str(r["reconciled_calls"]), _ratio(r["ratio_median"]), _ratio(r["ratio_p5"]),
             _ratio(r["ratio_p95"])]
            for r in c.reconciliation
        ],
    )  # fmt: skip
    if c.mismatches:
        lines += [f"### Usage mismatches ({c.mismatch_count})", ""]
        lines += _md_table(
            ["where", "reason", "reported", "recounted", "ratio"],
            [
                [f"{m['source']}:{m['line']}", m["reason"], str(m["reported_input_tokens"]),
                 str(m["recounted_input_tokens"]), _ratio(m["ratio"])]
                for m in c.mismatches[:MAX_MISMATCH_ROWS]
            ],
        )  # fmt: skip
    if c.carry["by_tool"]:
        lines += ["### Context carry per tool", ""]
        lines += _md_table(
            ["tool", "re-sends", "tokens", "cost"],
            [[r["tool"], str(r["resends"]), str(r["tokens"]), usd(r["cost_usd"])] for r in c.carry["by_tool"]],
        )
    return "\n".join(lines).rstrip() + "\n"


TOKENS_RENDERERS: dict[str, Callable[[TokensReport, int], str]] = {
    "table": render_tokens_table,
    "json": render_tokens_json,
    "markdown": render_tokens_markdown,
}
