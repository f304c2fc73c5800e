"""The findings in the table and markdown renderers (`costscope analyze --findings`); JSON is `Finding.to_dict`."""

from __future__ import annotations

import io
import textwrap
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table

from .fmt import plain_console, usd

if TYPE_CHECKING:
    from ..findings.base import Finding  # the findings package imports pandas: only an analyze that finds pays

NONE_FOUND = "No cost leak found above the thresholds."
SUGGEST_HINT = "`costscope suggest PATH... -o policy.yaml` writes the fixes as one policy file for `simulate`."


def _summary_table(findings: list[Finding]) -> Table:
    table = Table(
        title=f"Findings ({len(findings)}; their dollars may overlap)",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("finding", overflow="fold", ratio=1)
    for name in ("at stake", "calls", "traces"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("fix", no_wrap=True)
    for i, f in enumerate(findings, start=1):
        table.add_row(str(i), f.title, usd(f.usd_at_stake), f"{f.calls:,}", f"{f.traces:,}", f.policy_key or "—")
    return table


def _wrapped(text: str, width: int, first: str, rest: str) -> list[str]:
    return textwrap.wrap(text, width=width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False)


def findings_table(findings: list[Finding], width: int = 80) -> str:
    """Plain text for the table renderer: a summary table, then each finding's detail, basis, evidence and fix."""
    if not findings:
        return NONE_FOUND + "\n"
    buffer = io.StringIO()
    plain_console(buffer, width).print(_summary_table(findings))
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    for i, f in enumerate(findings, start=1):
        lines.append("")
        lines += _wrapped(f"{i}. {f.title}: {usd(f.usd_at_stake)} ({f.kind})", width, "", "   ")
        lines += _wrapped(f.detail, width, "   ", "   ")
        lines += _wrapped(f"At stake: {f.basis}.", width, "   ", "   ")
        for j, item in enumerate(f.evidence):
            lines += _wrapped(item, width, "   Evidence: " if j == 0 else " " * 13, " " * 15)
        fix = f"policy `{f.policy_key}` (see costscope suggest)" if f.policy_key else "no policy: fix the source"
        lines += _wrapped(f"Fix: {fix}", width, "   ", "   ")
    lines += ["", *_wrapped(SUGGEST_HINT, width, "", "")]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def findings_markdown(findings: list[Finding]) -> list[str]:
    """Markdown lines for the markdown renderer: a table, then one collapsible section per finding with its
    policy snippet."""
    lines = ["### Findings", ""]
    if not findings:
        return [*lines, NONE_FOUND, ""]
    lines += ["| # | finding | at stake | calls | traces | fix |", "|---:|---|---:|---:|---:|---|"]
    for i, f in enumerate(findings, start=1):
        fix = f"`{f.policy_key}`" if f.policy_key else "—"
        lines.append(f"| {i} | {_cell(f.title)} | {usd(f.usd_at_stake)} | {f.calls:,} | {f.traces:,} | {fix} |")
    lines.append("")
    for i, f in enumerate(findings, start=1):
        lines += [f"<details><summary>{i}. {f.title}: {usd(f.usd_at_stake)}</summary>", ""]
        lines += [f.detail, "", f"*At stake:* {f.basis}.", ""]
        lines += [f"- `{item}`" for item in f.evidence]
        snippet = f.policy_yaml()
        if snippet:
            lines += ["", "```yaml", snippet.rstrip("\n"), "```"]
        lines += ["", "</details>", ""]
    lines += [SUGGEST_HINT, ""]
    return lines
