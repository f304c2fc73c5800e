"""Usage mismatches: calls whose logged input disagrees with the recount of their content (see `costscope tokens`).

Not a saving: the dollars at stake are the part of the computed cost the recount cannot confirm, in either
direction (an instrumentation that drops cache tokens under-reports; hidden provider prompts over-report).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..composition import reconciliation
from .base import Calls, Finding, costliest_first, count, usd

KIND = "usage_mismatch"


@dataclass(frozen=True)
class Params:
    """The thresholds are the reconciliation's (`costscope.composition`: UNDER_REPORTED, OVER_REPORTED,
    PLACEHOLDER_MAX_TOKENS); nothing to tune here."""


def detect(calls: Calls, params: Params) -> Finding | None:
    x = calls.content
    if not x.calls.num_rows:
        return None
    _, listed, total = reconciliation(x)
    if not total:
        return None
    frame = pd.DataFrame(listed)
    rows = calls.table.select(["source", "line"]).to_pandas()
    rows["row"] = np.arange(calls.n)
    frame = frame.merge(rows, on=["source", "line"], how="left", sort=False).drop_duplicates(["source", "line"])
    row = frame["row"].to_numpy(dtype=np.int64)
    expected = frame["recounted_input_tokens"].to_numpy(dtype=float) * frame["expected_ratio"].to_numpy(dtype=float)
    unconfirmed = np.abs(frame["reported_input_tokens"].to_numpy(dtype=float) - expected)
    dollars = np.nan_to_num(unconfirmed * calls.rates.input[row])
    at_stake = float(dollars.sum())
    reasons = frame["reason"].value_counts().sort_index()
    ordered = costliest_first(np.arange(len(row)), dollars)
    notes = [
        f"{frame['reason'].iat[i]}: reported {frame['reported_input_tokens'].iat[i]:,}, recount "
        f"{frame['recounted_input_tokens'].iat[i]:,}"
        for i in ordered[: calls.max_evidence]
    ]
    kinds = ", ".join(f"{n} {reason}" for reason, n in reasons.items())
    listed_note = f" (the first {len(row)} listed)" if len(row) < total else ""
    return Finding(
        kind=KIND,
        title="Logged usage disagrees with the recount",
        usd_at_stake=at_stake,
        basis="|reported input − recount × the model's median reported/recounted ratio| tokens × the call's "
        f"uncached input rate, over the mismatched calls{listed_note}: the part of the cost the recount does not "
        "confirm (not a saving)",
        evidence=calls.evidence(row[ordered], notes),
        detail=f"{count(total, 'call')} report an input the recount does not support ({kinds}); {usd(at_stake)} of "
        "their cost is unconfirmed: check the instrumentation before trusting these calls' figures.",
        policy=None,
        calls=int(total),
        traces=int(len(np.unique(calls.trace[row]))),
        figures={"mismatches": int(total), "by_reason": {str(k): int(v) for k, v in reasons.items()}},
    )
