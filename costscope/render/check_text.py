"""Sentences and cells shared by the `check` renderers (all rounding happens here)."""

from __future__ import annotations

from ..check import CheckResult, Row, Status
from ..check_config import METRICS
from .fmt import MISSING, pct, tokens, usd

STATUS_TEXT = {Status.PASS: "pass", Status.FAIL: "FAIL", Status.NOISE: "noise"}
MAX_GROUP_ROWS = 10
"""Group rows shown besides the failing and noisy ones."""


def signed_usd(value: float) -> str:
    """A change in USD: cents as usual, fractions of a cent to the micro-dollar, `$0` when none."""
    size = abs(value)
    if size < 5e-7:
        return "$0"
    text = usd(size) if size >= 0.01 else f"${size:.6f}"
    return ("-" if value < 0 else "+") + text


def signed_pct(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:+.1f}%"


def value(result: CheckResult, amount: float, row: Row | None = None) -> str:
    """A metric value: USD, or tokens for tokens_per_trace (budget rows are always USD)."""
    if result.settings.money or (row is not None and row.scope == "budget"):
        return usd(amount)
    return tokens(round(amount))


def change(result: CheckResult, row: Row) -> str:
    """The relative change, or the absolute one when the baseline is zero."""
    if row.relative is not None:
        return signed_pct(row.relative)
    if result.settings.money or row.scope == "budget":
        return signed_usd(row.change)
    return f"{round(row.change):+d}"


def interval(result: CheckResult, row: Row, sep: str = " to ") -> str:
    """The confidence interval of the change, relative to the baseline where it is not zero."""
    if row.ci is None:
        return MISSING
    low, high = row.ci
    if row.baseline > 0:
        return f"{signed_pct(low / row.baseline)}{sep}{signed_pct(high / row.baseline)}"
    if result.settings.money:
        return f"{signed_usd(low)}{sep}{signed_usd(high)}"
    return f"{round(low):+d}{sep}{round(high):+d}"


def label(result: CheckResult, row: Row) -> str:
    if row.scope == "all":
        return METRICS[result.settings.metric]
    if row.scope == "budget":
        return f"budget ({result.settings.budget_stat})"
    return f"{row.scope} {row.key}"


def shown_rows(result: CheckResult) -> tuple[list[Row], int]:
    """The rows a human view lists (whole run, failing and noisy groups, the top others, budget) and how
    many group rows within the limits it leaves out."""
    groups = [r for r in result.rows if r.scope not in ("all", "budget")]
    flagged = [r for r in groups if r.status is not Status.PASS]
    others = [r for r in groups if r.status is Status.PASS]
    rest = [r for r in result.rows if r.scope == "budget"]
    return [result.overall, *flagged, *others[:MAX_GROUP_ROWS], *rest], max(0, len(others) - MAX_GROUP_ROWS)


def _describe(result: CheckResult, row: Row) -> str:
    if row.scope == "budget":
        s = result.settings
        return f"cost per trace ({s.budget_stat}) {usd(row.current)} is over the budget of ${s.max_cost_per_trace:g}"
    moved = f"{value(result, row.baseline, row)} → {value(result, row.current, row)} ({change(result, row)}"
    if row.ci is not None:
        moved += f", {result.settings.confidence * 100:g}% CI {interval(result, row)}"
    return f"{label(result, row)} {moved})"


def verdict(result: CheckResult) -> str:
    """The one-line verdict, without a pass/fail marker: what moved, against which limit, and whether it fails."""
    overall = result.overall
    text = _describe(result, overall)
    failures = result.failures
    if overall.status is Status.FAIL:
        text += f" exceeds {' and '.join(overall.exceeded)}"
    elif overall.status is Status.NOISE:
        text += f" is over {' and '.join(overall.exceeded)} but within run-to-run noise"
    elif overall.limit:
        text += f"; limit {overall.limit}"
    others = [r for r in failures if r is not overall]
    if others:
        named = [
            f"{label(result, r)} {change(result, r)}" if r.scope != "budget" else _describe(result, r)
            for r in others[:3]
        ]
        more = f" and {len(others) - 3} more" if len(others) > 3 else ""
        text += "; failing: " + ", ".join(named) + more
    if result.unpriced_fails:
        names = [f"{u.model or '(none)'} ({side})" for side, us in result.unpriced.items() for u in us]
        text += "; unpriced models: " + ", ".join(names)
    if not result.bootstrap:
        text += " (too few traces for a confidence interval: point estimates decided)"
    return text


def headline(result: CheckResult) -> str:
    return f"costscope check {'passed' if result.passed else 'failed'}: {verdict(result)}"


def why(result: CheckResult) -> str:
    """One sentence: the change in mean cost per trace, split into price and the largest usage factors."""
    x = result.explanation
    # below a nano-dollar is float noise from summing the same costs in another order, not a change
    if all(abs(v) < 1e-9 for v in (x.change_usd, x.price_usd, *(e.usd for e in x.effects))):
        return "The mean cost per trace did not change."
    biggest = sorted(
        (e for e in x.effects if abs(e.usd) >= 0.005 * max(abs(x.change_usd), 1e-12)), key=lambda e: -abs(e.usd)
    )
    parts = ", ".join(f"{e.label} {signed_usd(e.usd)}" for e in biggest[:3])
    return (
        f"Mean cost per trace {signed_usd(x.change_usd)}: price {signed_usd(x.price_usd)}, "
        f"usage {signed_usd(x.usage_usd)}" + (f" ({parts})" if parts else "") + "."
    )


def driver(name: str, amount: float | None) -> str:
    if amount is None:
        return ""
    if name == "cache_hit_ratio":
        return pct(amount)
    if name == "tokens_per_call":
        return tokens(round(amount))
    return f"{amount:.2f}"
