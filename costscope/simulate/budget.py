"""Enforce limits like a gateway: per-trace caps; tenant monthly budgets that alert, switch model, then block."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from .budget_spend import Work, ordered, share, spent_before, work_before
from .budget_tenants import BudgetTenants, Usd, tenant_budgets
from .policy import Settings
from .replay import Replay

NAME = "budget"


class BudgetTraceCap(Settings):
    """Caps on one trace's cumulative spend, in replay order (the crossing call is made, the rest of the trace is
    cut)."""

    max_tokens: int | None = Field(
        default=None, ge=1, description="Most input plus output tokens one trace may use; null: no token cap."
    )
    max_usd: Usd | None = Field(default=None, description="Most USD one trace may cost; null: no dollar cap.")

    @model_validator(mode="after")
    def _some_cap(self) -> BudgetTraceCap:
        if self.max_tokens is None and self.max_usd is None:
            raise ValueError("give max_tokens, max_usd or both")
        return self


class BudgetConfig(Settings):
    """Settings of the budget policy."""

    per_trace: BudgetTraceCap | None = Field(default=None, description="Caps per trace; null: none.")
    tenants: BudgetTenants | None = Field(default=None, description="Monthly budgets per tenant; null: none.")

    @model_validator(mode="after")
    def _something(self) -> BudgetConfig:
        if self.per_trace is None and self.tenants is None:
            raise ValueError("give per_trace, tenants or both")
        return self


Config = BudgetConfig


def apply(config: BudgetConfig, replay: Replay) -> None:
    """Cut traces over their cap, then walk each tenant's month in time order (alerts, switch, block)."""
    outcome = replay.outcomes[NAME]
    work = work_before(replay, NAME)
    if config.per_trace is not None:
        cut = _trace_caps(config.per_trace, replay, work)
        replay.drop(cut, NAME)
        outcome.details["per_trace"] = _cut_details(config.per_trace, replay, cut, work)
        outcome.assumptions.append(
            "A trace cap is checked before each call against what the trace has used so far: the call that crosses "
            "the cap is made (its cost is only known once it returns) and every later call of the trace is cut. The "
            "agent is assumed to stop there; its work after the cut is reported as cut, not redone."
        )
    if config.tenants is not None:
        tenant_budgets(config.tenants, replay, work, NAME)
    dropped = (replay.calls["dropped_by"] == NAME).to_numpy()
    outcome.risks["traces_cut"] = int(len(np.unique(work.traces[dropped])))
    outcome.risks["calls_cut_share"] = share(float(dropped.sum()), float(work.live.sum()))


# ---------------------------------------------------------------------------------------------- trace caps


def _trace_caps(cap: BudgetTraceCap, replay: Replay, work: Work) -> np.ndarray:
    """Per call: cut, because its trace had used up a cap before it."""
    rows = np.flatnonzero(replay.live)
    order = rows[ordered(work.traces[rows], replay.calls["start"].to_numpy()[rows])]
    keys = work.traces[order]
    over = np.zeros(len(order), dtype=bool)
    if cap.max_tokens is not None:
        over |= spent_before(keys, work.tokens[order]) >= cap.max_tokens
    if cap.max_usd is not None:
        over |= spent_before(keys, work.costs[order]) >= cap.max_usd
    cut = np.zeros(len(replay.calls), dtype=bool)
    cut[order[over]] = True
    return cut


def _cut_details(cap: BudgetTraceCap, replay: Replay, cut: np.ndarray, work: Work) -> dict[str, Any]:
    codes = work.traces
    traces = pd.DataFrame(
        {"trace": replay.calls["trace_id"].to_numpy(dtype=object)[cut], "usd": work.costs[cut], "code": codes[cut]}
    )
    by_trace = traces.groupby("code", sort=False).agg(
        trace=("trace", "first"), usd=("usd", "sum"), calls=("usd", "size")
    )
    by_trace = by_trace.sort_values(["usd", "trace"], ascending=[False, True], na_position="last").head(20)
    return {
        "max_tokens": cap.max_tokens,
        "max_usd": cap.max_usd,
        "traces": int(len(np.unique(codes[work.live]))),
        "traces_cut": int(len(np.unique(codes[cut]))),
        "calls_cut": int(cut.sum()),
        "tokens_cut": float(work.tokens[cut].sum()),
        "tokens_cut_share": share(work.tokens[cut].sum(), work.tokens[work.live].sum()),
        "usd_cut": float(work.costs[cut].sum()),
        "usd_cut_share": share(work.costs[cut].sum(), work.costs[work.live].sum()),
        "largest_cuts": [
            {"trace_id": trace, "calls_cut": int(n), "usd_cut": float(usd)}
            for trace, n, usd in zip(
                by_trace["trace"].tolist(), by_trace["calls"].tolist(), by_trace["usd"].tolist(), strict=True
            )
        ],
    }
