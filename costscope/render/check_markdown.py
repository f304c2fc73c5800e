"""`check --format markdown`: a PR comment (and the GitHub step summary): verdict line, table, details."""

from __future__ import annotations

from pathlib import Path

from ..check import CheckResult
from ..check_config import METRICS
from .check_text import STATUS_TEXT, change, driver, headline, interval, label, shown_rows, signed_usd, value, why
from .fmt import MISSING, usd


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """A GitHub table whose first `left` columns are left-aligned and the rest right-aligned."""
    rule = "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"
    out = ["| " + " | ".join(header) + " |", rule]
    return out + ["| " + " | ".join(_escape(c) for c in row) + " |" for row in rows] + [""]


def _checks(result: CheckResult) -> list[str]:
    rows, hidden = shown_rows(result)
    confidence = f"{result.settings.confidence * 100:g}% CI"
    cells = [
        [
            label(result, row),
            value(result, row.baseline, row),
            value(result, row.current, row),
            change(result, row),
            interval(result, row),
            row.limit or MISSING,
            ("**FAIL**" if row.status.value == "fail" else STATUS_TEXT[row.status]),
        ]
        for row in rows
    ]
    lines = _table(["check", "baseline", "current", "change", confidence, "limit", "result"], cells)
    if hidden:
        lines[-1:] = [f"{hidden} more groups are within the limits.", ""]
    return lines


def _explanation(result: CheckResult) -> list[str]:
    x = result.explanation
    rows = [["price", "", "", signed_usd(x.price_usd)]]
    rows += [[e.label, driver(e.name, e.baseline), driver(e.name, e.current), signed_usd(e.usd)] for e in x.effects]
    rows.append(["**total**", usd(x.baseline_usd), usd(x.current_usd), signed_usd(x.change_usd)])
    lines = ["#### Price versus usage (mean cost per trace)", ""]
    lines += _table(["factor", "baseline", "current", "USD per trace"], rows)
    movers = [m for ms in result.movers.values() for m in ms]
    if movers:
        lines += ["#### Biggest movers (cost per trace)", ""]
        lines += _table(
            ["group", "baseline", "current", "change"],
            [
                [f"{m.dimension} {m.key}", usd(m.baseline_usd), usd(m.current_usd), signed_usd(m.change_usd)]
                for m in movers
            ],
        )
    models = [m for m in x.models if m.baseline_usd or m.current_usd][:10]
    if models:
        lines += ["#### By model (cost per trace)", ""]
        lines += _table(
            ["model", "baseline", "current", "price", "usage"],
            [
                [m.model, usd(m.baseline_usd), usd(m.current_usd), signed_usd(m.price_usd), signed_usd(m.usage_usd)]
                for m in models
            ],
        )
    return lines


def _runs(result: CheckResult) -> list[str]:
    b, c = result.baseline, result.current
    rows = [
        ["traces", str(b.traces), str(c.traces)],
        ["LLM calls (priced)", f"{b.calls} ({b.priced_calls})", f"{c.calls} ({c.priced_calls})"],
    ]
    for name, (base, cur) in result.metrics.items():
        money = name != "tokens_per_trace"
        rows.append([METRICS[name], usd(base) if money else f"{base:,.0f}", usd(cur) if money else f"{cur:,.0f}"])
    rows.append(["prices", ", ".join(b.price_sources), ", ".join(c.price_sources)])
    lines = _table(["", f"baseline ({Path(result.baseline_file).name})", "current"], rows)
    unpriced = [(side, u) for side, us in result.unpriced.items() for u in us]
    if unpriced:
        lines += ["#### Unpriced models (not in any cost)", ""]
        lines += _table(
            ["side", "model", "calls"], [[side, u.model or MISSING, str(u.calls)] for side, u in unpriced], left=2
        )
    return lines


def render_check_markdown(result: CheckResult, width: int = 80) -> str:
    mark = "✅" if result.passed else "❌"
    first, _, rest = headline(result).partition(": ")
    lines = [f"{mark} **{first}**: {rest}", ""]
    lines += _checks(result)
    lines += [why(result), ""]
    lines += ["<details><summary>Why the cost changed</summary>", ""] + _explanation(result) + ["</details>", ""]
    lines += ["<details><summary>Runs, metrics and notes</summary>", ""] + _runs(result)
    lines += [f"- {n}" for n in result.notes] + ([""] if result.notes else [])
    lines += ["</details>", ""]
    return "\n".join(lines).rstrip() + "\n"
