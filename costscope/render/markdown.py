"""`--format markdown`: the same story as the table, for PR comments and notebooks."""

from __future__ import annotations

import re

from ..report import Report
from .findings import findings_markdown
from .fmt import MISSING, key_text, pct, tokens, usd
from .summary import headline
from .tokens import composition_line


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_NUMBER = re.compile(r"^[-$\d.,%kMG—]+$")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A GitHub table; columns whose every cell is a number, amount or share are right-aligned."""
    numeric = [bool(rows) and all(_NUMBER.match(row[i]) for row in rows) for i in range(len(header))]
    rule = "|" + "|".join("---:" if right else "---" for right in numeric) + "|"
    out = ["| " + " | ".join(header) + " |", rule]
    out += ["| " + " | ".join(_escape(c) for c in row) + " |" for row in rows]
    return out + [""]


def render_markdown(report: Report, width: int = 80) -> str:
    lines = ["## costscope analysis", ""]
    lines += [f"- {line}" for line in headline(report)] + [""]
    total = report.totals["cost_usd"] or 0.0
    if report.groups:
        lines += [f"### By {', '.join(report.by)}", ""]
        rows = []
        for g in report.groups:
            share = g["cost_usd"] / total if g["cost_usd"] is not None and total else None
            rows.append(
                [
                    key_text(g["key"]),
                    str(g["calls"]),
                    str(g["input_tokens"]),
                    str(g["cache_read_tokens"]),
                    str(g["output_tokens"]),
                    usd(g["cost_usd"]),
                    pct(share),
                ]
            )
        lines += _table([", ".join(report.by), "calls", "input", "cache read", "output", "cost", "share"], rows)
    if report.top_traces:
        lines += ["### Costliest traces", ""]
        lines += _table(
            ["trace", "agents", "calls", "input", "cost"],
            [
                [
                    t["trace_id"],
                    ", ".join(t["agents"]) or MISSING,
                    str(t["calls"]),
                    tokens(t["input_tokens"]),
                    usd(t["cost_usd"]),
                ]
                for t in report.top_traces
            ],
        )
    if report.top_steps:
        lines += ["### Costliest steps", ""]
        lines += _table(
            ["trace#step", "model", "input", "output", "cost", "at"],
            [
                [
                    f"{s['trace_id']}#{s['step']}",
                    s["model"] or MISSING,
                    tokens(s["input_tokens"]),
                    tokens(s["output_tokens"]),
                    usd(s["cost_usd"]),
                    f"{s['source']}:{s['line']}",
                ]
                for s in report.top_steps
            ],
        )
    if report.unpriced:
        lines += ["### Unpriced models (not in the total)", ""]
        lines += _table(
            ["model", "provider", "calls", "input", "hint"],
            [
                [u.model or MISSING, u.provider or MISSING, str(u.calls), str(u.input_tokens), u.hint or ""]
                for u in report.unpriced
            ],
        )
    if report.composition is not None:
        lines += ["### Input composition", ""]
        lines += _table(
            ["segment", "tokens", "share", "cost"],
            [
                [s["kind"], str(s["tokens"]), pct(s["share"]), usd(s["cost_usd"])]
                for s in report.composition["segments"]
            ],
        )
        lines += [composition_line(report.composition), ""]
    if report.findings is not None:
        lines += findings_markdown(report.findings)
    if report.warnings:
        lines += ["### Warnings", ""] + [f"- {w}" for w in report.warnings] + [""]
    return "\n".join(lines).rstrip() + "\n"
