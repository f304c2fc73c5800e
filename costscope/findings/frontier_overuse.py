"""Frontier-model overuse: large models answering calls a small one would do, judged by what they produce.

Calls are grouped by (agent, operation, model). A group on a large model (one `downgrades` maps to a cheaper
sibling) whose outputs are nearly all short is a simple operation: classify, route, call a tool, extract a
field. Its short calls are what routing to the cheaper model would move.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
import pandas as pd

from .base import Calls, Finding, costliest_first, count, usd

KIND = "frontier_overuse"

DOWNGRADES: tuple[tuple[str, str | None], ...] = (
    ("*mini*", None),
    ("*nano*", None),
    ("*haiku*", None),
    ("*flash*", None),
    ("*lite*", None),
    ("claude-opus-*", "claude-haiku-4-5"),
    ("claude-sonnet-*", "claude-haiku-4-5"),
    ("claude-3-opus*", "claude-haiku-4-5"),
    ("claude-3-5-sonnet*", "claude-haiku-4-5"),
    ("claude-3-7-sonnet*", "claude-haiku-4-5"),
    ("gpt-5*", "gpt-5-mini"),
    ("gpt-4.1*", "gpt-4.1-mini"),
    ("gpt-4o*", "gpt-4o-mini"),
    ("gpt-4-turbo*", "gpt-4o-mini"),
    ("o1*", "o4-mini"),
    ("o3*", "o4-mini"),
    ("gemini-*-pro*", "gemini-2.5-flash"),
)
"""(model glob, cheaper model of the same provider) pairs, first match wins; None marks a model already small."""


@dataclass(frozen=True)
class Params:
    short_output_tokens: int = 256
    """An output of at most this many tokens (reasoning included) is short."""
    min_short_share: float = 0.8
    """A group whose share of short calls is at least this is a simple operation."""
    min_calls: int = 5
    """Groups with fewer calls are not judged."""
    escalation_rate: float = 0.1
    """Share of the moved calls assumed to fail on the small model and be re-run on the large one."""
    downgrades: tuple[tuple[str, str | None], ...] = DOWNGRADES


def cheaper_model(model: str, downgrades: tuple[tuple[str, str | None], ...] = DOWNGRADES) -> str | None:
    """The cheaper sibling `downgrades` names for `model`, None when it is already small or unknown."""
    return next((target for glob, target in downgrades if fnmatchcase(model, glob)), None)


def detect(calls: Calls, params: Params) -> Finding | None:
    model = calls.text("model")
    codes, names = pd.factorize(pd.Series(model, dtype=object))
    targets = np.array([cheaper_model(str(m), params.downgrades) for m in names] + [None], dtype=object)
    target = targets[codes]
    candidate = np.flatnonzero(pd.notna(target) & ~np.isnan(calls.cost))
    if not len(candidate):
        return None
    group = ["agent", "operation", "model"]
    frame = pd.DataFrame(
        {
            "row": candidate,
            "agent": calls.text("agent")[candidate],
            "operation": calls.text("operation")[candidate],
            "model": model[candidate],
            "target": target[candidate],
            "short": calls.output[candidate] <= params.short_output_tokens,
        }
    )
    groups = frame.groupby(group, sort=True)["short"].agg(["size", "mean"]).reset_index()
    simple = groups[(groups["size"] >= params.min_calls) & (groups["mean"] >= params.min_short_share)][group]
    moved = frame[frame["short"]].merge(simple, on=group, sort=False)
    if moved.empty:
        return None
    moved["saved"] = _saving(calls, moved["row"].to_numpy(), moved["target"].to_numpy(), params.escalation_rate)
    per_group = moved.groupby([*group, "target"], sort=True).agg(saved=("saved", "sum"), calls=("row", "size"))
    per_group = per_group[per_group["saved"] > 0].reset_index().sort_values("saved", ascending=False, kind="stable")
    if per_group.empty:
        return None
    moved = moved.merge(per_group[group], on=group, sort=False)
    rows, saved = moved["row"].to_numpy(), moved["saved"].to_numpy()
    at_stake = float(per_group["saved"].sum())
    records = [{str(k): v for k, v in g.items()} for g in per_group.to_dict("records")]
    described = "; ".join(
        f"{_who(g['agent'], g['operation'])} on {g['model']} → {g['target']} ({count(g['calls'], 'call')})"
        for g in records
    )
    ordered = costliest_first(rows, saved)
    notes = [f"{model[r]}, {calls.output[r]:,.0f} output tokens" for r in ordered[: calls.max_evidence]]
    return Finding(
        kind=KIND,
        title="Frontier model on simple calls",
        usd_at_stake=at_stake,
        basis=f"per short-output call (≤ {params.short_output_tokens} tokens) of a group whose calls are "
        f"≥ {params.min_short_share:.0%} short: (1 − {params.escalation_rate:g}) × (its cost − its cost on the "
        f"cheaper model with every input token uncached) − {params.escalation_rate:g} × that cheaper cost "
        "(escalated calls pay both)",
        evidence=calls.evidence(ordered, notes),
        detail=f"{count(len(rows), 'call')} on large models produced short outputs in groups that almost only do that: "
        f"{described}; routing them saves about {usd(at_stake)}.",
        policy={"routing": _policy(records, params)},
        calls=len(rows),
        traces=int(len(np.unique(calls.trace[rows]))),
        figures={
            "groups": [
                {
                    "agent": g["agent"] or None,
                    "operation": g["operation"] or None,
                    "model": g["model"],
                    "to": g["target"],
                    "calls": int(g["calls"]),
                    "usd_at_stake": float(g["saved"]),
                }
                for g in records
            ],
        },
    )


def _saving(calls: Calls, rows: np.ndarray, target: np.ndarray, escalation: float) -> np.ndarray:
    """Per moved call: the expected saving of routing it to `target` billed with a cold cache."""
    model = calls.text("model")
    model[rows] = target
    zero = calls.cache_read.copy()
    zero[rows] = 0.0
    write = calls.cache_write.copy()
    write[rows] = 0.0
    cold = {"cache_read_tokens": zero, "cache_write_tokens": write, "cache_write_1h_tokens": write}
    cheaper = calls.reprice(model=list(model), **cold)[rows]
    cost = calls.cost[rows]
    saved: np.ndarray = (1 - escalation) * (cost - cheaper) - escalation * cheaper
    return np.where(np.isnan(cheaper), 0.0, saved)


def _who(agent: str, operation: str) -> str:
    return " / ".join(v for v in (agent, operation) if v) or "(no agent)"


def _policy(groups: list[dict[str, Any]], params: Params) -> dict[str, Any]:
    """Routing rules moving exactly the counted calls: the group's short-output calls."""
    rules = []
    for g in groups:
        when: dict[str, Any] = {key: g[key] for key in ("agent", "operation") if g[key]}
        when.update({"model": g["model"], "output_tokens_max": params.short_output_tokens})
        rules.append({"name": f"{_who(g['agent'], g['operation'])} to {g['target']}", "when": when, "to": g["target"]})
    return {"rules": rules, "escalation_rate": params.escalation_rate}
