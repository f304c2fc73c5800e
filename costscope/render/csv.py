"""`--format csv`: one row per group (or one totals row), exact tokens and USD."""

from __future__ import annotations

import csv
import io

from ..report import Report

FIELDS = (
    "calls",
    "priced_calls",
    "input_tokens",
    "uncached_input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "cost_input_usd",
    "cost_cache_read_usd",
    "cost_cache_write_usd",
    "cost_output_usd",
    "cost_request_usd",
    "cache_saved_usd",
)


def render_csv(report: Report, width: int = 80) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    keys = report.by or ["total"]
    writer.writerow([*keys, *FIELDS])
    rows = report.groups if report.by else [{"key": {"total": "all"}, **report.totals}]
    for group in rows:
        values = [group[f] for f in FIELDS]
        writer.writerow(
            [("" if v is None else v) for v in group["key"].values()]
            + [("" if v is None else (f"{v:.9f}" if isinstance(v, float) else v)) for v in values]
        )
    return buffer.getvalue()
