"""Combining the partial figures of work units (`partials.py`) into the reports the library builds from one table.

Exact where the figure allows it, because a trace is never split between units: counts and token sums are added, and
so are `analyze`'s dollar sums, held exactly (`money.Exact`) until the report is made, so that its report is the
one-table report to the last digit (the baseline's and the simulation's dollars to floating-point rounding, far
below a cent); the cost-per-trace distribution and the top-N lists are computed from the gathered per-trace costs
and per-unit top-N candidates; the composition's mismatch count uses each model's median over the gathered ratios.
Simulation outcomes (a policy's risks and details) are combined by the policy's own `merge_outcomes` when it has
one, else by the documented generic rule of `merge_outcome`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa

from .. import __version__
from .. import attribution as attr
from ..baseline import (
    BASELINE_VERSION,
    BUCKETS,
    DIMENSIONS,
    Baseline,
    FileSummary,
    GroupSummary,
    Inputs,
    ModelUsage,
    TokenizerNote,
    Totals,
    TraceSample,
    _usd,
    per_trace_stats,
    unpriced_models,
)
from ..composition import CARRIED_KINDS, MIN_CALLS_FOR_MEDIAN, OVER_REPORTED, UNDER_REPORTED, KindSums, segment_summary
from ..dataset import Manifest
from ..money import Exact, add, add_fields, floats
from ..pricing import PriceBook, PricingResult, Unpriced, report_order
from ..schema import UsageSource, empty_table
from ..simulate.engine import JOINT, with_savings
from .outcomes import merge_outcome, merge_value
from .partials import AnalyzePart, BaselinePart, CompositionPart, Read

# ---------------------------------------------------------------- reading and pricing


def pricing(reads: list[Read], book: PriceBook) -> PricingResult:
    """The pricing facts of every unit as one PricingResult; its table holds only the recounted calls' marker
    (`usage_source`), which is all the run's warnings read from it."""
    unpriced: dict[tuple[str | None, str | None], Unpriced] = {}
    matched: set[int] = set()
    for read in reads:
        for u in read.pricing.unpriced:
            known = unpriced.get((u.provider, u.model))
            unpriced[(u.provider, u.model)] = (
                u
                if known is None
                else Unpriced(
                    u.provider,
                    u.model,
                    known.calls + u.calls,
                    known.input_tokens + u.input_tokens,
                    known.output_tokens + u.output_tokens,
                    u.hint,
                )  # fmt: skip
            )
        matched |= read.matched_rules
    recounted = sum(r.recounted for r in reads)
    marker = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(recounted, dtype=np.int8)), pa.array([UsageSource.RECOUNTED.value])
    )
    return PricingResult(
        pa.table({"usage_source": marker}),
        report_order(entry for read in reads for entry in read.pricing.entries),
        sorted(unpriced.values(), key=lambda u: (-u.calls, u.model or "", u.provider or "")),
        sum(r.pricing.undated_calls for r in reads),
        [rule.model for i, rule in enumerate(book.rules) if i not in matched],
    )


def totals(reads: list[Read]) -> dict[str, Any]:
    """`attribution.totals` over all units (their exact dollar sums added, then made floats)."""
    return floats(add_fields([r.totals for r in reads])) if reads else attr.totals(empty_table())


# ---------------------------------------------------------------- analyze


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "key"}


def groups(parts: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """`attribution.groups` over all units: same keys added up, costliest first (ties by key)."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rows in parts:
        for row in rows:
            key = tuple(row["key"].values())
            known = merged.get(key)
            merged[key] = (
                dict(row) if known is None else {"key": known["key"], **add_fields([_figures(known), _figures(row)])}
            )
    out: list[dict[str, Any]] = floats(list(merged.values()))
    out.sort(key=attr.group_order)
    return out


def per_trace(parts: list[AnalyzePart]) -> pa.Table:
    """What `attribution.distribution` reads: one row per trace (the priced ones with their cost)."""
    costs = np.concatenate([p.trace_costs for p in parts]) if parts else np.zeros(0)
    unpriced = sum(p.traces for p in parts) - len(costs)
    return pa.table(
        {
            "cost_total_sum": np.concatenate([costs, np.zeros(unpriced)]),
            "cost_total_count": np.concatenate([np.ones(len(costs), np.int64), np.zeros(unpriced, np.int64)]),
        }
    )


def candidates(tables: list[pa.Table]) -> pa.Table | None:
    tables = [t for t in tables if t.num_rows]
    return pa.concat_tables(tables) if tables else None


def top3_share(parts: list[AnalyzePart]) -> float | None:
    top = [p.top3[0] for p in parts if p.top3[0] is not None]
    total = [p.top3[1] for p in parts if p.top3[1] is not None]
    return attr.share(sum(top, Exact(0)), sum(total, Exact(0))) if total else None


def reported(parts: list[AnalyzePart]) -> dict[str, Any]:
    """`attribution.reported_costs` over all units."""
    if not parts:
        return attr.reported_costs(empty_table())
    sums: dict[str, Any] = floats(add_fields([p.reported for p in parts]))
    return sums


def composition(parts: list[CompositionPart | None]) -> dict[str, Any] | None:
    """`Composition.summary()` of all units (None when no call carries content)."""
    present = [p for p in parts if p is not None]
    if not present:
        return None
    kinds: dict[str, KindSums] = {}
    for part in present:
        for kind, sums in part.kinds.items():
            known = kinds.get(kind)
            kinds[kind] = sums if known is None else (
                known[0] + sums[0], known[1] + sums[1], add(known[2], sums[2]), known[3] + sums[3]
            )  # fmt: skip
    segments, _, _ = segment_summary(kinds)
    return {
        "calls_with_content": sum(p.calls_with_content for p in present),
        "tokenizers": sorted(set().union(*(p.tokenizers for p in present))),
        "segments": segments,
        "context_carry": _carry(present),
        "usage_mismatches": _mismatches(present),
    }


def _carry(parts: list[CompositionPart]) -> dict[str, Any]:
    def summary(name: str) -> dict[str, Any]:
        rows = [p.carry[name] for p in parts]
        usd = [r[2] for r in rows if r[2] is not None]
        return {
            "resends": sum(r[0] for r in rows),
            "tokens": round(sum((r[1] for r in rows), Exact(0)).value),
            "cost_usd": sum(usd, Exact(0)).value if usd else None,
        }

    total_tokens = sum((p.input_tokens for p in parts), Exact(0)).value
    total_usd = sum((p.input_usd for p in parts), Exact(0)).value
    carried = summary("all")
    return {
        **carried,
        "share_of_input_tokens": carried["tokens"] / total_tokens if total_tokens else None,
        "share_of_input_cost": (carried["cost_usd"] or 0.0) / total_usd if total_usd else None,
        "by_kind": [{"kind": k, **summary(k)} for k in CARRIED_KINDS],
    }


def _mismatches(parts: list[CompositionPart]) -> int:
    """Calls flagged by `composition.reconciliation`: placeholders, and usable ratios outside the model's band."""
    flagged = sum(p.placeholders for p in parts)
    for model in sorted({m for p in parts for m in p.ratios}):
        values = np.concatenate([p.ratios[model] for p in parts if model in p.ratios])
        reference = float(np.median(values)) if len(values) >= MIN_CALLS_FOR_MEDIAN else 1.0
        flagged += int(((values < UNDER_REPORTED * reference) | (values > OVER_REPORTED * reference)).sum())
    return flagged


# ---------------------------------------------------------------- baseline


def baseline(parts: list[BaselinePart], manifest: Manifest, unpriced: list[Unpriced], book: PriceBook) -> Baseline:
    """`baseline.summarize` of all units: trace samples gathered, groups and models added up by key."""
    summaries = [p.summary for p in parts]
    traces: list[TraceSample] = sorted((t for s in summaries for t in s.traces), key=lambda t: t.trace_id)
    priced_traces = sum(t.unpriced_calls < t.calls for t in traces)
    costs = [s.totals.cost_usd for s in summaries if s.totals.cost_usd is not None]
    token_fields = ("calls", "priced_calls", "input_tokens", "cache_read_tokens", "cache_write_tokens")
    recounted = sum(s.tokenizer.recounted_calls for s in summaries)
    return Baseline(
        baseline_version=BASELINE_VERSION,
        costscope_version=__version__,
        price_sources=book.sources,
        tokenizer=TokenizerNote(
            usage="mixed" if recounted else "reported",
            recounted_calls=recounted,
            encodings=sorted({e for s in summaries for e in s.tokenizer.encodings}),
        ),
        inputs=Inputs(
            files=[FileSummary(path=i.name, format=i.format, records=i.records, rows=i.rows) for i in manifest.inputs],
            records_read=sum(i.records for i in manifest.inputs),
            records_skipped=sum(manifest.skipped_reasons.values()),
            duplicates_dropped=manifest.duplicates_dropped,
        ),
        totals=Totals(
            traces=len(traces),
            **{f: sum(getattr(s.totals, f) for s in summaries) for f in token_fields},
            output_tokens=sum(s.totals.output_tokens for s in summaries),
            reasoning_tokens=sum(s.totals.reasoning_tokens for s in summaries),
            cost_usd=_usd(sum(costs)) if costs else None,
        ),
        per_trace=per_trace_stats(traces),
        groups={d: _baseline_groups([s.groups.get(d, []) for s in summaries], priced_traces) for d in DIMENSIONS},
        models=_models([s.models for s in summaries]),
        unpriced_models=unpriced_models(unpriced),
        traces=traces,
    )


def _baseline_groups(parts: list[list[GroupSummary]], priced_traces: int) -> list[GroupSummary]:
    merged: dict[str, dict[str, Any]] = {}
    for rows in parts:
        for g in rows:
            row = g.model_dump()
            known = merged.get(g.key)
            merged[g.key] = row if known is None else {"key": g.key, **add_fields([_figures(known), _figures(row)])}
    out = []
    for row in merged.values():
        cost = _usd(row["cost_usd"])
        per_trace = _usd(cost / priced_traces) if priced_traces else 0.0
        out.append(GroupSummary.model_validate({**row, "cost_usd": cost, "cost_per_trace_usd": per_trace}))
    return sorted(out, key=lambda g: (-g.cost_usd, g.key))


def _models(parts: list[list[ModelUsage]]) -> list[ModelUsage]:
    merged: dict[tuple[str | None, str], dict[str, Any]] = {}
    for rows in parts:
        for m in rows:
            row = m.model_dump()
            known = merged.get((m.provider, m.model))
            if known is None:
                merged[(m.provider, m.model)] = row
                continue
            for name in ("calls", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens"):
                known[name] += row[name]
            known["cost_usd"] = {b: _usd(known["cost_usd"][b] + row["cost_usd"][b]) for b in known["cost_usd"]}
    out = []
    for row in merged.values():
        model = ModelUsage.model_validate({**row, "rates_usd_per_mtok": {}})
        rates = {
            b: (round(model.cost_usd[b] / model.tokens(b) * 1e6, 9) if model.tokens(b) > 0 else None) for b in BUCKETS
        }
        out.append(model.model_copy(update={"rates_usd_per_mtok": rates}))
    return sorted(out, key=lambda m: (-m.cost_total, m.model, m.provider or ""))


# ---------------------------------------------------------------- simulate


_RUN_LISTS = ("technique", "policies", "calls_added", "calls_not_made", "by_agent", "by_model", "outcomes")
_SAVED = ("saved_usd", "saved_pct")


def money(rows: list[dict[str, Any]], skip: tuple[str, ...]) -> dict[str, Any]:
    """The before/after figures of `engine.money_summary` added up; saved and saved % from the sums."""
    out = {k: v for k, v in rows[0].items() if k not in skip}
    for name in [k for k in out if k not in _SAVED]:
        out[name] = rows[0][name]
        for row in rows[1:]:
            out[name] = add(out[name], row[name])
    saved = out["cost_before_usd"] - out["cost_after_usd"]
    out["saved_usd"] = saved
    out["saved_pct"] = (100.0 * saved / out["cost_before_usd"]) if out["cost_before_usd"] else None
    return out


def money_by(parts: list[list[dict[str, Any]]], key: str) -> list[dict[str, Any]]:
    """`engine.money_by` over all units."""
    rows: dict[Any, dict[str, Any]] = {}
    for part in parts:
        for r in part:
            known = rows.get(r[key])
            fields = ("calls_before", "calls_after", "cost_before_usd", "cost_after_usd")
            rows[r[key]] = (
                {key: r[key], **{f: r[f] for f in fields}}
                if known is None
                else {key: r[key], **{f: add(known[f], r[f]) for f in fields}}
            )
    return with_savings(list(rows.values()), key)


def run(runs: list[dict[str, Any]], weights: list[int], units: str) -> dict[str, Any]:
    """One row of a scenario (`report.run_dict`) over all units."""
    first = runs[0]
    added: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    for r in runs:
        added.update(r["calls_added"])
        dropped.update(r["calls_not_made"])
    return {
        "technique": first["technique"],
        "policies": first["policies"],
        **money(runs, _RUN_LISTS),
        "calls_added": dict(sorted(added.items())),
        "calls_not_made": dict(sorted(dropped.items())),
        "by_agent": money_by([r["by_agent"] for r in runs], "agent"),
        "by_model": money_by([r["by_model"] for r in runs], "model"),
        "outcomes": {
            name: merge_outcome(name, [r["outcomes"][name] for r in runs], weights, units) for name in first["outcomes"]
        },
    }


def scenario(parts: list[dict[str, Any]], weights: list[int], units: str) -> dict[str, Any]:
    """`report.scenario_dict` over all units."""
    first = parts[0]
    runs = [run([p["runs"][i] for p in parts], weights, units) for i in range(len(first["runs"]))]
    joint = runs[-1]
    alone = [r for r in runs if r["technique"] != JOINT]
    outcomes = [o for r in runs for o in r["outcomes"].values()]
    return {
        "name": first["name"],
        "source": first["source"],
        "description": first["description"],
        "policies": first["policies"],
        "runs": runs,
        "joint": joint["technique"],
        "sum_of_parts_saved_usd": sum(r["saved_usd"] for r in alone) if len(alone) > 1 else None,
        "assumptions": list(dict.fromkeys(a for o in outcomes for a in o["assumptions"])),
        "not_evaluated": list(dict.fromkeys(n for o in outcomes for n in o["not_evaluated"])),
        "risks": {f"{name}.{k}": v for name, o in joint["outcomes"].items() for k, v in o["risks"].items()},
    }


def sweep(parts: list[dict[str, Any]], weights: list[int]) -> dict[str, Any]:
    """`report.sweep_dict` over all units (risks combined by the generic rule)."""
    first = parts[0]
    points = []
    for i, point in enumerate(first["points"]):
        rows = [p["points"][i] for p in parts]
        risks = merge_value("risks", [r["risks"] for r in rows], weights, frozenset())
        points.append({"value": point["value"], **money(rows, ("value", "risks")), "risks": risks})
    return {"scenario": first["scenario"], "key": first["key"], "points": points}
