"""Monthly budgets per tenant, walked like a gateway would: in time order, alert at levels of the budget, switch
calls to a cheaper model, then block them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import pandas as pd
from genai_prices import data_snapshot
from pydantic import Field, model_validator

from ..errors import ConfigError
from ..pricing import UNDATED_PRICE_TIME
from .budget_spend import Work, ordered, share, spent_before
from .policy import Settings
from .replay import Replay

NO_TENANT_NOTE = "calls without a tenant are under no tenant budget (they are not pooled into one)"

Usd = Annotated[float, Field(gt=0)]
Level = Annotated[float, Field(gt=0, le=10)]


class BudgetTenants(Settings):
    """Monthly budgets per tenant (calendar months, UTC), with alert levels and the actions a gateway takes."""

    default_monthly_usd: Usd | None = Field(
        default=None, description="Monthly budget (USD) of every tenant not listed in `per_tenant`; null: none."
    )
    per_tenant: dict[str, Usd] = Field(default_factory=dict, description="Monthly budget (USD) by tenant name.")
    alerts: list[Level] = Field(
        default_factory=lambda: [0.5, 0.8, 0.95, 1.0],
        description="Alert levels as shares of the budget; the report says when each would have been crossed.",
    )
    switch_at: Level | None = Field(
        default=0.8,
        description="From this share of the budget spent, calls go to `switch_to`; null: never switch.",
    )
    switch_to: str | None = Field(
        default=None, description="The cheaper model calls switch to (as the price book knows it); null: no switch."
    )
    switch_provider: str | None = Field(
        default=None,
        description="Provider of `switch_to` (default: the provider the data names with that model, else the one "
        "genai-prices lists it under, else each call keeps its provider).",
    )
    block_at: Level | None = Field(
        default=1.0, description="From this share of the budget spent, calls are blocked (not made); null: never."
    )

    @model_validator(mode="after")
    def _some_budget(self) -> BudgetTenants:
        if self.default_monthly_usd is None and not self.per_tenant:
            raise ValueError("give default_monthly_usd, per_tenant or both")
        if len(set(self.alerts)) != len(self.alerts):
            raise ValueError("alert levels must be distinct")
        return self

    def budget_of(self, tenant: str) -> float | None:
        return self.per_tenant.get(tenant, self.default_monthly_usd)


@dataclass
class _Months:
    """The budgeted calls in spend order, with their tenant-month and its budget."""

    rows: np.ndarray
    """Rows of `calls`, ordered by tenant-month then start."""
    group: np.ndarray
    """Per ordered row: index of its tenant-month in `labels`."""
    labels: pd.DataFrame
    """One row per tenant-month: tenant, month (YYYY-MM), budget_usd; sorted by tenant then month."""

    def budget(self) -> np.ndarray:
        values: np.ndarray = self.labels["budget_usd"].to_numpy()[self.group]
        return values


def _months(tenants: BudgetTenants, replay: Replay, outcome_notes: list[str]) -> _Months:
    """The live calls under a tenant budget with a timestamp, grouped by tenant and calendar month (UTC)."""
    calls = replay.calls
    live = replay.live
    start = calls["start"].to_numpy()
    codes, names = pd.factorize(calls["tenant"].to_numpy(dtype=object))
    budgets = np.array([np.nan if (b := tenants.budget_of(str(name))) is None else b for name in names] + [np.nan])
    named = live & (codes >= 0)
    budgeted = live & ~np.isnan(budgets[codes])
    timed = budgeted & np.isfinite(start)
    if (live & ~named).any():
        outcome_notes.append(f"{int((live & ~named).sum())} {NO_TENANT_NOTE}")
    if (budgeted & ~timed).any():
        outcome_notes.append(
            f"{int((budgeted & ~timed).sum())} budgeted calls have no timestamp: no month to count them in, so they "
            "are never switched or blocked"
        )
    rows = np.flatnonzero(timed)
    month = start[rows].astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
    # tenant-months numbered in (tenant name, month) order, so the details list is sorted
    rank = np.empty(len(names), dtype=np.int64)
    rank[np.argsort(np.asarray(names, dtype=str), kind="stable")] = np.arange(len(names))
    key = rank[codes[rows]] * (1 << 32) + (month - month.min() if len(month) else month)
    _, group = np.unique(key, return_inverse=True)
    first = np.unique(group, return_index=True)[1]
    labels = pd.DataFrame(
        {
            "tenant": np.asarray(names, dtype=object)[codes[rows[first]]],
            "month": month[first].astype("datetime64[M]").astype(str),
            "budget_usd": budgets[codes[rows[first]]],
        }
    )
    order = ordered(group, start[rows])
    return _Months(rows[order], group[order].astype(np.int64), labels)


def tenant_budgets(tenants: BudgetTenants, replay: Replay, work: Work, policy: str) -> None:
    """Walk every tenant-month in time order: switch from `switch_at`, block from `block_at`, note the alerts (in
    the outcome of `policy`, which also marks the blocked calls)."""
    outcome = replay.outcomes[policy]
    target = _Target.of(tenants, replay)
    months = _months(tenants, replay, outcome.not_evaluated)
    budget = months.budget()
    costs = work.costs[months.rows]
    switched = np.zeros(len(months.rows), dtype=bool)
    if target is not None and tenants.switch_at is not None:
        switched = spent_before(months.group, costs) >= tenants.switch_at * budget
        switched &= ~target.already(replay.calls, months.rows)
    if target is not None and switched.any():
        costs, switched = _switch(target, replay, months.rows, switched, costs, policy)
        outcome.assumptions.append(_switch_assumption(target.model))
    spent = spent_before(months.group, costs)
    blocked = spent >= tenants.block_at * budget if tenants.block_at is not None else np.zeros_like(switched)
    if target is not None:
        target.restore(replay.calls, months.rows[blocked & switched])
    drop = np.zeros(len(replay.calls), dtype=bool)
    drop[months.rows[blocked]] = True
    replay.drop(drop, policy)
    outcome.assumptions.append(
        "A tenant's monthly budget (calendar month, UTC) is checked before each call against what the tenant has "
        "spent so far that month, in time order: the call that crosses a level is made and the action applies from "
        f"the next call; {NO_TENANT_NOTE}."
    )
    live_calls = float(work.live.sum())
    outcome.risks["calls_blocked_share"] = share(float(blocked.sum()), live_calls)
    outcome.risks["calls_switched_share"] = share(float((switched & ~blocked).sum()), live_calls)
    outcome.details["tenants"] = _month_details(tenants, replay, months, work, costs, switched, blocked)


@dataclass
class _Target:
    """The cheaper model switched calls go to, and what they were on before (to undo a switch)."""

    model: str
    provider: str | None
    saved: pd.DataFrame | None = None

    @classmethod
    def of(cls, tenants: BudgetTenants, replay: Replay) -> _Target | None:
        """The configured target; a model the price book does not know at all is a configuration error."""
        if tenants.switch_to is None:
            return None
        provider = _target_provider(tenants, replay)
        providers = [provider] if provider else [*sorted(set(replay.calls["provider"].dropna())), None]
        if all(replay.book.resolve(p, tenants.switch_to, None, UNDATED_PRICE_TIME) is None for p in providers):
            suggestion = replay.book.suggest(tenants.switch_to)
            raise ConfigError(
                f"budget: no price for switch_to model {tenants.switch_to!r}"
                + (f" (provider {provider})" if provider else ""),
                hint=(f"did you mean {suggestion}? " if suggestion else "") + "or add it to a price file (--prices)",
            )
        return cls(tenants.switch_to, provider)

    def already(self, calls: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        """Per row: the call is on the target already (nothing to switch)."""
        same: np.ndarray = calls["model"].to_numpy(dtype=object)[rows] == self.model
        if self.provider is not None:
            same &= calls["provider"].to_numpy(dtype=object)[rows] == self.provider
        return same

    def move(self, calls: pd.DataFrame, rows: np.ndarray) -> None:
        self.saved = calls[["model", "provider"]].iloc[rows].copy()
        calls.loc[rows, "model"] = self.model
        if self.provider is not None:
            calls.loc[rows, "provider"] = self.provider

    def restore(self, calls: pd.DataFrame, rows: np.ndarray) -> None:
        """Put `rows` (switched before) back on the model they were on."""
        if self.saved is not None and len(rows):
            calls.loc[rows, ["model", "provider"]] = self.saved.loc[rows].to_numpy()


def _switch(
    target: _Target, replay: Replay, rows: np.ndarray, switched: np.ndarray, costs: np.ndarray, policy: str
) -> tuple[np.ndarray, np.ndarray]:
    """Move the switched calls to the target and price them there; a call the price book cannot price on it at its
    date keeps its model (and is reported). Returns the costs per ordered row and the calls switched."""
    calls = replay.calls
    moved = rows[switched]
    target.move(calls, moved)
    priced = _costs_of(replay, moved, policy)
    missing = np.isnan(priced) & ~np.isnan(calls["input_tokens"].to_numpy()[moved])
    if missing.any():
        target.restore(calls, moved[missing])
        replay.outcomes[policy].not_evaluated.append(
            f"{int(missing.sum())} calls past the switch level were not switched: the price book has no price for "
            f"{target.model} with their provider at their date"
        )
    out, done = costs.copy(), switched.copy()
    positions = np.flatnonzero(switched)
    out[positions[~missing]] = np.nan_to_num(priced[~missing])
    done[positions[missing]] = False
    return out, done


def _costs_of(replay: Replay, rows: np.ndarray, policy: str) -> np.ndarray:
    """cost_total (USD) of the live calls `rows`, pricing only them: the others are hidden for the time of the
    pricing (the replay's `live_costs` prices every live call)."""
    calls = replay.calls
    saved = calls["dropped_by"].copy()
    hidden = np.ones(len(calls), dtype=bool)
    hidden[rows] = False
    calls.loc[hidden & (saved == "").to_numpy(), "dropped_by"] = f"{policy} (pricing apart)"
    try:
        costs: np.ndarray = replay.live_costs()[rows]
    finally:
        calls["dropped_by"] = saved
    return costs


def _target_provider(tenants: BudgetTenants, replay: Replay) -> str | None:
    """The provider switched calls go to: as configured, else the one the data names most with the model (ties:
    alphabetical), else genai-prices' provider of the model, else None (calls keep theirs)."""
    if tenants.switch_provider is not None or tenants.switch_to is None:
        return tenants.switch_provider
    models = replay.base["model"].to_numpy(zero_copy_only=False).astype(object)
    seen = pd.Series(replay.base["provider"].to_numpy(zero_copy_only=False).astype(object)[models == tenants.switch_to])
    counts = seen.dropna().value_counts()
    if len(counts):
        return str(min(counts.index[counts == counts.max()]))
    try:
        found, _ = data_snapshot.get_snapshot().find_provider_model(tenants.switch_to, None, None, None)
    except LookupError:
        return None
    return str(found.id)


def _switch_assumption(model: str) -> str:
    return (
        f"Past the switch level a call goes to {model} with its recorded tokens: the answer is assumed as "
        "good and as long, the cheaper model's tokenizer is not re-applied, and its cache reads are kept as if that "
        "model's cache were as warm."
    )


def _iso(microseconds: float) -> str:
    stamp = np.datetime64(int(microseconds), "us")
    return str(np.datetime_as_string(stamp, unit="ms")) + "Z"


def _first_time(group: np.ndarray, mask: np.ndarray, start: np.ndarray, groups: int) -> list[str | None]:
    """Per tenant-month: the start (ISO UTC) of its first ordered row under `mask`, None if there is none."""
    out: list[str | None] = [None] * groups
    positions = np.flatnonzero(mask)
    first = np.unique(group[positions], return_index=True)
    for g, p in zip(first[0].tolist(), positions[first[1]].tolist(), strict=True):
        out[g] = _iso(start[p])
    return out


def _month_details(
    tenants: BudgetTenants,
    replay: Replay,
    months: _Months,
    work: Work,
    costs: np.ndarray,
    switched: np.ndarray,
    blocked: np.ndarray,
) -> dict[str, Any]:
    """Per tenant-month: budget, spend without and with the budget, switched and blocked calls, crossing times.

    `costs` are per ordered row after the switch; blocked calls are valued at their cost before this policy."""
    n = len(months.labels)
    made = costs * ~blocked
    start = replay.calls["start"].to_numpy()[months.rows]
    group = months.group
    budget = months.budget()
    reached = spent_before(group, made) + made
    crossings = {
        f"{level * 100:g}%": _first_time(group, ~blocked & (reached >= level * budget), start, n)
        for level in tenants.alerts
    }
    without = np.bincount(group, weights=work.costs[months.rows], minlength=n)
    with_budget = np.bincount(group, weights=made, minlength=n)
    switched_made = switched & ~blocked
    calls = np.bincount(group, minlength=n)
    calls_switched = np.bincount(group, weights=switched_made, minlength=n)
    calls_blocked = np.bincount(group, weights=blocked, minlength=n)
    switched_from = _first_time(group, switched_made, start, n)
    blocked_from = _first_time(group, blocked, start, n)
    labels = months.labels
    rows = [
        {
            "tenant": tenant,
            "month": month,
            "budget_usd": float(usd),
            "calls": int(calls[g]),
            "spent_without_budget_usd": float(without[g]),
            "spent_with_budget_usd": float(with_budget[g]),
            "calls_switched": int(calls_switched[g]),
            "calls_blocked": int(calls_blocked[g]),
            "alerts": {level: times[g] for level, times in crossings.items()},
            "switched_from": switched_from[g],
            "blocked_from": blocked_from[g],
        }
        for g, (tenant, month, usd) in enumerate(
            zip(labels["tenant"].tolist(), labels["month"].tolist(), labels["budget_usd"].tolist(), strict=True)
        )
    ]
    return {
        "alerts": list(tenants.alerts),
        "switch_at": tenants.switch_at if tenants.switch_to is not None else None,
        "switch_to": tenants.switch_to,
        "block_at": tenants.block_at,
        "calls_switched": int(switched_made.sum()),
        "calls_blocked": int(blocked.sum()),
        "usd_blocked": float(work.costs[months.rows][blocked].sum()),
        "months": rows,
    }
