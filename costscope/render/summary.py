"""The headline sentences shared by the table and markdown renderers."""

from __future__ import annotations

from typing import Any

from ..report import Report
from .fmt import pct, tokens, usd


def headline(report: Report) -> list[str]:
    t = report.totals
    inputs = report.inputs
    lines = [
        f"{len(inputs['files'])} files ({', '.join(f'{k}: {v}' for k, v in inputs['formats'].items())}), "
        f"{inputs['records_read']} records, {inputs['records_skipped']} skipped",
        f"Total {usd(t['cost_usd'])} for {t['calls']} LLM calls ({t['priced_calls']} priced)",
        f"Input {tokens(t['input_tokens'])} tokens (uncached {tokens(t['uncached_input_tokens'])}, "
        f"cache read {tokens(t['cache_read_tokens'])}, cache write {tokens(t['cache_write_tokens'])}); "
        f"output {tokens(t['output_tokens'])} (reasoning {tokens(t['reasoning_tokens'])})",
        f"Spend: input {usd(t['cost_input_usd'])}, cache read {usd(t['cost_cache_read_usd'])}, "
        f"cache write {usd(t['cost_cache_write_usd'])}, output {usd(t['cost_output_usd'])}"
        + (f", per-call fees {usd(t['cost_request_usd'])}" if t["cost_request_usd"] else ""),
    ]
    d = report.traces
    if d["traces"]:
        lines.append(
            f"Per trace ({_traces_text(d)}): mean {usd(d['mean_usd'])}, p50 {usd(d['p50_usd'])}, "
            f"p95 {usd(d['p95_usd'])}, max {usd(d['max_usd'])}"
        )
    c = report.concentration
    if c["top3_steps_share"] is not None:
        text = f"The 3 costliest steps of each trace hold {pct(c['top3_steps_share'])} of spend"
        if c["top3_agents_share"] is not None:
            text += f"; the top 3 agents hold {pct(c['top3_agents_share'])}"
        lines.append(text)
    cache = report.cache
    if cache["hit_ratio"] is not None:
        lines.append(
            f"Cache hit ratio {pct(cache['hit_ratio'])} of input; caching saved {usd(cache['saved_usd'])} "
            f"(without caching: {usd(cache['cost_without_cache_usd'])})"
        )
    r = report.reported
    for label, n, claimed, computed in (
        ("calls", r["calls_with_reported_cost"], r["calls_reported_usd"], r["calls_computed_usd"]),
        ("session totals", r["rollups"], r["rollups_reported_usd"], r["rollups_computed_usd"]),
    ):
        if n:
            delta = f" ({(computed - claimed) / claimed * 100:+.1f}%)" if claimed and computed is not None else ""
            lines.append(f"The logs claim {usd(claimed)} for {n} {label}; computed {usd(computed)}{delta}")
    lines.append("Prices: " + ", ".join(report.price_sources))
    return lines


def _traces_text(d: dict[str, Any]) -> str:
    if d["priced_traces"] == d["traces"]:
        return f"{d['traces']} traces"
    return f"{d['priced_traces']} priced of {d['traces']} traces"
