"""Where the money goes: totals, group-bys, the per-trace distribution, top-N and concentration.

Every figure is a column operation over the priced step table; sums of unpriced calls stay null.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import money
from .errors import InputError
from .schema import TOKEN_COLUMNS, Kind, empty_table, row_run

GROUP_KEYS: dict[str, str] = {
    "model": "model",
    "provider": "provider",
    "agent": "agent",
    "trace": "trace_id",
    "tenant": "tenant",
    "operation": "operation",
    "day": "%Y-%m-%d",
    "week": "%G-W%V",
    "month": "%Y-%m",
}
TIME_KEYS = ("day", "week", "month")
MONEY = {
    "cost_usd": "cost_total",
    "cost_input_usd": "cost_input",
    "cost_cache_read_usd": "cost_cache_read",
    "cost_cache_write_usd": "cost_cache_write",
    "cost_output_usd": "cost_output",
    "cost_request_usd": "cost_request",
    "cache_saved_usd": "cost_cache_saved",
}


def reported_costs(table: pa.Table, calls: pa.Table | None = None, exact: bool = False) -> dict[str, Any]:
    """Costs the logs claim next to what costscope computes for the same calls.

    Per-call claims (`reported_cost_usd` on LLM rows) are compared with those calls' computed cost;
    roll-ups (`kind = rollup`, e.g. a session's total) with the computed cost of their traces. `calls`: the LLM
    rows of `table`, when the caller has them already; `exact`: dollar sums as `money.Exact`.
    """
    calls = llm_calls(table) if calls is None else calls
    claimed = calls.filter(pc.is_valid(calls["reported_cost_usd"]))
    rollups = table.filter(pc.equal(table["kind"], Kind.ROLLUP.value))
    rollups = rollups.filter(pc.is_valid(rollups["reported_cost_usd"]))
    rolled_traces = pc.unique(rollups["trace_id"])
    in_rolled = calls.filter(pc.is_in(calls["trace_id"], value_set=rolled_traces))
    sums = {
        "calls_with_reported_cost": claimed.num_rows,
        "calls_reported_usd": money.exact_sum(claimed["reported_cost_usd"]),
        "calls_computed_usd": money.exact_sum(claimed["cost_total"]),
        "rollups": rollups.num_rows,
        "rollups_reported_usd": money.exact_sum(rollups["reported_cost_usd"]),
        "rollups_computed_usd": money.exact_sum(in_rolled["cost_total"]),
    }
    return sums if exact else money.floats(sums)


def llm_calls(table: pa.Table) -> pa.Table:
    """The LLM-call rows (the table itself when it has no other kind: filtering copies every column)."""
    is_llm = pc.equal(table["kind"], Kind.LLM.value).to_numpy(zero_copy_only=False)
    run = row_run(is_llm)  # `steps.order_steps` puts the calls first, as one run
    if run is not None:
        return table.slice(run[0], run[1] - run[0])
    return table.filter(pa.array(is_llm))


def check_keys(by: list[str]) -> None:
    for key in by:
        if key not in GROUP_KEYS:
            raise InputError(f"cannot group by {key!r}", hint="choose from " + ", ".join(GROUP_KEYS))


def with_keys(table: pa.Table, by: list[str]) -> tuple[pa.Table, list[str]]:
    """The table with one column per group key (time keys derived from `start`, UTC)."""
    check_keys(by)
    columns = []
    for key in by:
        name = f"key:{key}"
        if key in TIME_KEYS:
            values = pc.strftime(table["start"], format=GROUP_KEYS[key])
        else:
            values = table[GROUP_KEYS[key]]
        table = table.append_column(name, values)
        columns.append(name)
    return table, columns


def group_ids(table: pa.Table, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(each row's group among the distinct combinations of `keys`, from 0; each group's first row). Nulls are a
    value of their own; no keys: one group."""
    if not keys:
        return np.zeros(table.num_rows, dtype=np.int64), np.zeros(min(1, table.num_rows), dtype=np.int64)
    combined = np.zeros(table.num_rows, dtype=np.int64)
    span = 1
    for key in keys:
        encoded = pc.dictionary_encode(table[key]).combine_chunks()
        codes = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy(zero_copy_only=False).astype(np.int64)
        if span * (len(encoded.dictionary) + 1) >= 1 << 62:  # renumber densely before the codes could overflow
            uniques, combined = np.unique(combined, return_inverse=True)
            span = len(uniques)
        combined = combined * (len(encoded.dictionary) + 1) + codes
        span *= len(encoded.dictionary) + 1
    _, first, ids = np.unique(combined, return_index=True, return_inverse=True)
    return ids.reshape(-1), first


def _present(column: pa.ChunkedArray) -> np.ndarray:
    present: np.ndarray = pc.is_valid(column).to_numpy(zero_copy_only=False).astype(np.float64)
    return present


def _aggregated(calls: pa.Table, ids: np.ndarray, groups: int, exact: bool) -> list[dict[str, Any]]:
    """Per group (`group_ids`): calls, priced calls, calls without usage, token sums and exact dollar sums (as
    `money.Exact` with `exact`, else floats), as `totals` gives them."""
    count = np.bincount(ids, minlength=groups)
    priced = np.rint(np.bincount(ids, weights=_present(calls["cost_total"]), minlength=groups)).astype(np.int64)
    usage = np.rint(np.bincount(ids, weights=_present(calls["usage_source"]), minlength=groups)).astype(np.int64)
    tokens = {
        name: money.group_counts(ids, pc.fill_null(calls[name], 0).to_numpy(zero_copy_only=False), groups)
        for name in TOKEN_COLUMNS
    }
    dollars = {
        out: money.group_sums(ids, pc.fill_null(calls[col], np.nan).to_numpy(zero_copy_only=False), groups)
        for out, col in MONEY.items()
    }
    rows = []
    for g in range(groups):
        sums = {out: dollars[out][g] for out in MONEY}
        tokens_g = {name: int(tokens[name][g]) for name in TOKEN_COLUMNS}
        rows.append(
            {
                "calls": int(count[g]),
                "priced_calls": int(priced[g]),
                "calls_without_usage": int(count[g] - usage[g]),
                **tokens_g,
                "uncached_input_tokens": tokens_g["input_tokens"]
                - tokens_g["cache_read_tokens"]
                - tokens_g["cache_write_tokens"],
                **(sums if exact else money.floats(sums)),
            }
        )
    return rows


def total_of(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The totals of the calls in `groups` (of `groups(..., exact=True)`, every call in one group): their figures
    added up, dollars as floats. The same as `totals` of those calls, without reading them again."""
    if not groups:
        return totals(empty_table())
    summed = money.add_fields([{k: v for k, v in group.items() if k != "key"} for group in groups])
    return money.floats(summed)  # type: ignore[no-any-return]


def totals(calls: pa.Table, exact: bool = False) -> dict[str, Any]:
    """Totals over all LLM calls; cost sums cover the priced calls (null when none is priced). Dollar sums are
    exact sums (`money`), as floats, or with `exact` as `money.Exact` (for adding up parts' totals)."""
    return _aggregated(calls, np.zeros(calls.num_rows, dtype=np.int64), 1, exact)[0]


def groups(calls: pa.Table, by: list[str], exact: bool = False) -> list[dict[str, Any]]:
    """One entry per distinct key combination, costliest first (ties by key), each with the totals' fields."""
    keyed, key_columns = with_keys(calls, by)
    if not keyed.num_rows:
        return []
    ids, first = group_ids(keyed, key_columns)
    keys = keyed.select(key_columns).take(pa.array(first)).to_pylist()
    figures = _aggregated(calls, ids, len(first), exact)
    out = [
        {"key": {k: key[c] for k, c in zip(by, key_columns, strict=True)}, **f}
        for key, f in zip(keys, figures, strict=True)
    ]
    out.sort(key=group_order)
    return out


def group_order(group: dict[str, Any]) -> tuple[float, list[str]]:
    """Costliest first, ties by key."""
    cost = money.floats(group["cost_usd"]) or 0.0
    return -cost, [("" if v is None else str(v)) for v in group["key"].values()]


def trace_costs(calls: pa.Table) -> pa.Table:
    """Per trace: calls, tokens, cost (priced calls only), first start, agents."""
    return calls.group_by(["trace_id"], use_threads=False).aggregate(
        [
            ([], "count_all"),
            ("cost_total", "sum"),
            ("cost_total", "count"),
            ("input_tokens", "sum"),
            ("output_tokens", "sum"),
            ("start", "min"),
            ("tenant", "min"),
            ("agent", "distinct"),
        ]
    )


def distribution(per_trace: pa.Table) -> dict[str, Any]:
    """Cost per trace over the traces with at least one priced call: mean, p50, p95 and max (USD,
    linear-interpolated percentiles). A trace whose every call is unpriced has an unknown cost, not $0."""
    priced = per_trace.filter(pc.greater(per_trace["cost_total_count"], 0)) if per_trace.num_rows else per_trace
    costs = priced["cost_total_sum"].to_numpy(zero_copy_only=False) if priced.num_rows else []
    if len(costs) == 0:
        return {
            "traces": per_trace.num_rows,
            "priced_traces": 0,
            "mean_usd": None,
            "p50_usd": None,
            "p95_usd": None,
            "max_usd": None,
        }
    return {
        "traces": per_trace.num_rows,
        "priced_traces": len(costs),
        "mean_usd": (money.total(costs) or 0.0) / len(costs),  # an exact sum: the same mean in any order
        "p50_usd": float(np.percentile(costs, 50)),
        "p95_usd": float(np.percentile(costs, 95)),
        "max_usd": float(np.max(costs)),
    }


def top_traces(per_trace: pa.Table, n: int) -> list[dict[str, Any]]:
    if n <= 0 or per_trace.num_rows == 0:
        return []
    ordered = per_trace.sort_by([("cost_total_sum", "descending"), ("trace_id", "ascending")]).slice(0, n)
    out = []
    for row in ordered.to_pylist():
        start = row["start_min"]
        out.append(
            {
                "trace_id": row["trace_id"],
                "calls": int(row["count_all"]),
                "cost_usd": row["cost_total_sum"],
                "input_tokens": int(row["input_tokens_sum"] or 0),
                "output_tokens": int(row["output_tokens_sum"] or 0),
                "start": start.strftime("%Y-%m-%dT%H:%M:%SZ") if start is not None else None,
                "tenant": row["tenant_min"],
                "agents": sorted(a for a in row["agent_distinct"] if a is not None),
            }
        )
    return out


STEP_FIELDS = (
    "trace_id",
    "step",
    "agent",
    "model",
    "input_tokens",
    "cache_read_tokens",
    "output_tokens",
    "cost_total",
    "source",
    "line",
)


def top_steps(calls: pa.Table, n: int) -> list[dict[str, Any]]:
    if n <= 0 or calls.num_rows == 0:
        return []
    keys = [("cost_total", "descending"), ("trace_id", "ascending"), ("step", "ascending")]
    # the positions of the n costliest priced steps without sorting them all (the keys leave no ties), then of
    # unpriced ones (null costs sort last) if short; only those n rows are copied out of every column
    sort_by = calls.select([name for name, _ in keys])
    if pc.sum(pc.is_valid(sort_by["cost_total"])).as_py() >= n:
        chosen = pc.select_k_unstable(sort_by, k=n, sort_keys=keys)
    else:
        chosen = pc.sort_indices(sort_by, sort_keys=keys)[:n]
    rows: list[dict[str, Any]] = calls.select(list(STEP_FIELDS)).take(chosen).sort_by(keys).to_pylist()
    for row in rows:
        row["cost_usd"] = row.pop("cost_total")
    return rows


def top3_step_share(calls: pa.Table) -> float | None:
    """Share of spend in each trace's three costliest steps, over all traces (cost-weighted)."""
    top, total = top3_step_usd(calls)
    return share(top, total)


def share(part: money.Exact | None, whole: money.Exact | None) -> float | None:
    """part / whole, of exact sums (None without a positive whole; an unknown part is a share of 0)."""
    if whole is None or whole.units <= 0:
        return None
    return (part.units if part is not None else 0) / whole.units


def top3_step_usd(calls: pa.Table) -> tuple[money.Exact | None, money.Exact | None]:
    """Dollars in each trace's three costliest steps, and in all priced steps (exact sums; None when none is)."""
    priced = pc.is_valid(calls["cost_total"]).to_numpy(zero_copy_only=False)
    if not priced.any():
        return None, None
    # numbers, then the priced rows: filtering the trace ids would copy their strings
    cost = pc.fill_null(calls["cost_total"], 0.0).to_numpy()[priced]
    traces = value_ranks(calls["trace_id"])[priced]
    order = np.lexsort((-cost, traces))  # by trace, then costliest first
    codes, cost = traces[order], cost[order]
    position = np.arange(len(codes))
    first = np.ones(len(codes), dtype=bool)
    first[1:] = codes[1:] != codes[:-1]
    rank = position - np.maximum.accumulate(np.where(first, position, 0))
    return money.exact_sum(cost[rank < 3]), money.exact_sum(cost)


def value_ranks(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Each value's rank among the column's distinct values in sort order (nulls after all), so that rows sort by
    these numbers as they would by the values: string sorts become one numpy sort."""
    if pa.types.is_dictionary(column.type):  # already encoded (its dictionary may hold a value twice)
        encoded = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        distinct = pc.count_distinct(encoded.dictionary).as_py()
        rank_of_code = np.append(value_ranks(encoded.dictionary), distinct)
        ranks_: np.ndarray = rank_of_code[pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy()]
        return ranks_
    encoded = pc.dictionary_encode(column)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    size = len(encoded.dictionary)
    rank_of_code = np.empty(size + 1, dtype=np.int64)
    rank_of_code[pc.sort_indices(encoded.dictionary).to_numpy()] = np.arange(size)
    rank_of_code[size] = size
    ranks: np.ndarray = rank_of_code[pc.fill_null(encoded.indices, size).to_numpy()]
    return ranks


def top_share(group_rows: list[dict[str, Any]], n: int = 3) -> float | None:
    """Share of priced spend in the `n` costliest groups."""
    costs = [g["cost_usd"] or 0.0 for g in group_rows]
    total = sum(costs)
    return sum(sorted(costs, reverse=True)[:n]) / total if total > 0 else None
