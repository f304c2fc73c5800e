"""Combining one policy's outcome (assumptions, risks, details, notes) over the units a dataset was replayed in.

Money, calls and tokens of a simulation add up exactly (`merge.py`); a policy's own figures need to know what
each one means. A policy module that defines `merge_outcomes(parts: list[Outcome]) -> Outcome` combines its
outcomes itself (exact); otherwise `merge_outcome` applies a generic rule and says so in the outcome.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, get_args

import numpy as np
from pydantic import BaseModel

from ..simulate.registry import BY_NAME
from ..simulate.replay import Outcome

MAX_NOTES = 20
SHARE_WORDS = ("share", "rate", "ratio", "pct", "percent", "fraction", "mean", "average", "median", "p50", "p95")
"""Numeric outcome fields whose name contains one of these are averages of the units (weighted by their recorded
calls); other numbers are added."""


def merge_outcome(name: str, parts: list[dict[str, Any]], weights: list[int], units: str) -> dict[str, Any]:
    """One policy's outcome over all units: the policy's `merge_outcomes(list[Outcome]) -> Outcome` when its module
    defines one (exact), else the generic rule: assumptions and notes listed once each, config values kept, counts
    and sums added, shares and rates averaged weighted by the units' recorded calls, list items with the same
    labels combined. The generic rule says so in the outcome's assumptions."""
    if len(parts) == 1:
        return parts[0]
    module = BY_NAME.get(name)
    hook = getattr(module, "merge_outcomes", None)
    if callable(hook):
        merged: Outcome = hook([Outcome(**p) for p in parts])
        return asdict(merged)
    settings = _setting_names(getattr(module, "Config", None))
    notes = list(dict.fromkeys(n for p in parts for n in p["not_evaluated"]))
    if len(notes) > MAX_NOTES:
        notes = [*notes[:MAX_NOTES], f"... and {len(notes) - MAX_NOTES} more notes from other parts of the dataset"]
    assumptions = list(dict.fromkeys(a for p in parts for a in p["assumptions"]))
    assumptions.append(
        f"Replayed in {len(parts)} {units}; the {name} figures of the parts were combined: counts and sums added, "
        "shares and rates averaged weighted by recorded calls, distinct counts added (an upper bound)."
    )
    return {
        "assumptions": assumptions,
        "risks": merge_value("risks", [p["risks"] for p in parts], weights, frozenset()),
        "details": merge_value("details", [p["details"] for p in parts], weights, settings),
        "not_evaluated": notes,
    }


def _setting_names(model: Any) -> frozenset[str]:
    """Names of a policy's settings at any depth (values echoed in its details are kept, not added)."""
    names: set[str] = set()
    pending = [model]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, type) and issubclass(current, BaseModel):
            for name, info in current.model_fields.items():
                names.add(name)
                pending.append(info.annotation)
        else:
            pending.extend(get_args(current))
    return frozenset(names)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def merge_value(name: str, values: list[Any], weights: list[int], settings: frozenset[str]) -> Any:
    """The generic combination of one outcome field over units (see `merge_outcome`)."""
    if all(_number(v) for v in values):
        if name in settings:
            return values[0]
        if any(word in name.lower() for word in SHARE_WORDS):
            total = sum(weights)
            if total <= 0:
                return float(np.mean(values))
            return float(sum(v * w for v, w in zip(values, weights, strict=True)) / total)
        return sum(values)
    if all(isinstance(v, dict) for v in values):
        keys = list(dict.fromkeys(k for v in values for k in v))
        out = {}
        for key in keys:
            present = [(v[key], w) for v, w in zip(values, weights, strict=True) if key in v]
            out[key] = merge_value(str(key), [p[0] for p in present], [p[1] for p in present], settings)
        return out
    if all(isinstance(v, list) for v in values):
        items = [(item, w) for v, w in zip(values, weights, strict=True) for item in v]
        if items and all(isinstance(i, dict) for i, _ in items):
            return _merge_items(items)
        try:
            return list(dict.fromkeys(i for i, _ in items))
        except TypeError:
            return [i for i, _ in items]
    if all(v == values[0] for v in values):
        return values[0]
    return next((v for v in values if v is not None), None)


def _merge_items(items: list[tuple[dict[str, Any], int]]) -> list[dict[str, Any]]:
    """List entries with the same non-numeric fields (e.g. one per tool) combined into one."""
    groups: dict[str, list[tuple[dict[str, Any], int]]] = {}
    for item, weight in items:
        label = repr(sorted((k, repr(v)) for k, v in item.items() if not _number(v)))
        groups.setdefault(label, []).append((item, weight))
    return [merge_value("item", [i for i, _ in group], [w for _, w in group], frozenset()) for group in groups.values()]
