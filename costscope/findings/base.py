"""What every detector shares: the finding record, the LLM calls in trace order, each call's per-token rates,
and the repricing of hypothetical token columns (so "what it would cost" uses the same prices as the report)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from ..attribution import llm_calls
from ..composition import Exploded, explode
from ..parsers.segments import HISTORY, OUTPUT, TOOL_RESULT
from ..pricing import PriceBook, price_table

ROW = "__row"
"""Column added to the calls so that segment rows (composition's `Exploded`) map back to them."""
TURN_KINDS = (HISTORY, TOOL_RESULT)
"""Segment kinds that make up the conversation so far (what grows step over step)."""


@dataclass(frozen=True)
class Finding:
    """One cost leak: what it is, what it costs, where it shows, and the policy that would fix it."""

    kind: str
    """Detector name, e.g. `uncached_prefix`."""
    title: str
    usd_at_stake: float
    """USD that fixing it would plausibly save over the analyzed traces: a conservative estimate, see `basis`."""
    basis: str
    """How `usd_at_stake` was computed, in words."""
    evidence: tuple[str, ...]
    """Up to a handful of `source:line trace#step` strings, costliest first."""
    detail: str
    """One sentence with the figures behind the finding."""
    policy: dict[str, Any] | None = None
    """The policy-file mapping that fixes it, under its policy key (e.g. `{"truncation": {"max_tokens": 1000}}`),
    or None when no policy applies."""
    calls: int = 0
    """LLM calls concerned."""
    traces: int = 0
    """Traces concerned."""
    figures: dict[str, Any] = field(default_factory=dict)
    """Detector-specific numbers (JSON-serializable), for `--format json` and the HTML report."""

    @property
    def policy_key(self) -> str | None:
        return next(iter(self.policy), None) if self.policy else None

    def policy_yaml(self) -> str | None:
        """The policy snippet as YAML text (a valid policy-file fragment), or None."""
        if not self.policy:
            return None
        return yaml.safe_dump(self.policy, sort_keys=False, default_flow_style=False, allow_unicode=True)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`findings: [...]` in the analyze report; the HTML report reads the same keys)."""
        return {
            "kind": self.kind,
            "title": self.title,
            "usd_at_stake": self.usd_at_stake,
            "basis": self.basis,
            "calls": self.calls,
            "traces": self.traces,
            "evidence": list(self.evidence),
            "detail": self.detail,
            "policy_key": self.policy_key,
            "policy": self.policy_yaml(),
            "figures": self.figures,
        }


@dataclass(frozen=True)
class Rates:
    """Per call, USD per token of each billing bucket at the call's own price entry and tier (NaN: unpriced)."""

    input: np.ndarray
    cache_read: np.ndarray
    cache_write: np.ndarray
    output: np.ndarray


def _floats(table: pa.Table, name: str, fill: float = 0.0) -> np.ndarray:
    values: np.ndarray = pc.fill_null(pc.cast(table[name], pa.float64()), fill).to_numpy(zero_copy_only=False)
    return values


class Calls:
    """The priced LLM calls in trace order (trace, start, source, line), with the columns detectors need as arrays."""

    def __init__(self, table: pa.Table, book: PriceBook, max_evidence: int = 5) -> None:
        calls = llm_calls(table)
        own = pc.binary_join_element_wise(calls["source"], pc.cast(calls["line"], pa.string()), ":")
        calls = calls.set_column(
            calls.schema.get_field_index("trace_id"), "trace_id", pc.coalesce(calls["trace_id"], own)
        )
        calls = calls.sort_by(
            [("trace_id", "ascending"), ("start", "ascending"), ("source", "ascending"), ("line", "ascending")]
        )
        self.table: pa.Table = calls.append_column(ROW, pa.array(np.arange(calls.num_rows, dtype=np.int64)))
        self.book = book
        self.max_evidence = max_evidence
        self.n = calls.num_rows
        encoded = pc.dictionary_encode(calls["trace_id"]).combine_chunks()
        self.trace: np.ndarray = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        """Per call: its trace's code (calls of a trace are contiguous)."""
        self.trace_names: list[str] = encoded.dictionary.to_pylist()
        self.cost = _floats(calls, "cost_total", np.nan)
        """USD, NaN for unpriced calls."""
        self.input = _floats(calls, "input_tokens")
        self.cache_read = _floats(calls, "cache_read_tokens")
        self.cache_write = _floats(calls, "cache_write_tokens")
        self.output = _floats(calls, "output_tokens")
        start = pc.fill_null(pc.cast(pc.cast(calls["start"], pa.int64()), pa.float64()), np.nan)
        self.start_s: np.ndarray = start.to_numpy(zero_copy_only=False) / 1e6
        """Seconds since the epoch, NaN when the log had no time."""

    def text(self, name: str, fill: str = "") -> np.ndarray:
        """A string column as an object array (`fill` for nulls)."""
        return np.array(pc.fill_null(self.table[name], fill).to_pylist(), dtype=object)

    @cached_property
    def content(self) -> Exploded:
        """One row per segment of the calls that logged their request (calibrated tokens, prefix-aware USD)."""
        return explode(self.table)

    @cached_property
    def segment_call(self) -> np.ndarray:
        """Per segment row of `content`: the index of its call in this table."""
        rows: np.ndarray = self.content.calls[ROW].to_numpy(zero_copy_only=False)[self.content.parent]
        return rows

    @cached_property
    def is_input_segment(self) -> np.ndarray:
        mask: np.ndarray = self.content.kind != OUTPUT
        return mask

    @cached_property
    def rates(self) -> Rates:
        """Each call's per-token rates, found by repricing it with all its input in one bucket (same tier)."""
        tokens = np.maximum(self.input, 1.0)
        zero = np.zeros(self.n)

        def priced(**columns: np.ndarray) -> pa.Table:
            return self._priced({"input_tokens": tokens, "cache_write_1h_tokens": zero, **columns})

        plain = priced(cache_read_tokens=zero, cache_write_tokens=zero, output_tokens=np.ones(self.n))
        read = priced(cache_read_tokens=tokens, cache_write_tokens=zero, output_tokens=zero)
        write = priced(cache_read_tokens=zero, cache_write_tokens=tokens, output_tokens=zero)
        return Rates(
            _floats(plain, "cost_input", np.nan) / tokens,
            _floats(read, "cost_cache_read", np.nan) / tokens,
            _floats(write, "cost_cache_write", np.nan) / tokens,
            _floats(plain, "cost_output", np.nan),
        )

    def reprice(self, **columns: np.ndarray | list[Any]) -> np.ndarray:
        """cost_total (USD, NaN when unpriced) of every call with some columns replaced: token columns as float
        arrays (rounded), `model` / `provider` as lists of strings."""
        return _floats(self._priced(columns), "cost_total", np.nan)

    def _priced(self, columns: dict[str, Any]) -> pa.Table:
        table = self.table
        for name, values in columns.items():
            kind = table.schema.field(name).type
            array = pa.array(np.round(values).astype(np.int64)) if kind == pa.int64() else pa.array(values, kind)
            table = table.set_column(table.schema.get_field_index(name), name, array)
        return price_table(table, self.book).table

    def evidence(self, rows: np.ndarray, note: list[str] | None = None) -> tuple[str, ...]:
        """`source:line trace#step` of the first `max_evidence` of `rows` (callers order them), with optional
        notes appended in parentheses."""
        chosen = [int(r) for r in rows[: self.max_evidence]]
        if not chosen:
            return ()
        fields = self.table.select(["source", "line", "trace_id", "step"]).take(pa.array(chosen)).to_pylist()
        out = []
        for i, row in enumerate(fields):
            step = f"#{row['step']}" if row["step"] is not None else ""
            text = f"{row['source']}:{row['line']} {row['trace_id']}{step}"
            if note is not None and i < len(note) and note[i]:
                text += f" ({note[i]})"
            out.append(text)
        return tuple(out)


def costliest_first(rows: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """`rows` ordered by descending `weight` (NaN last), ties in table order: the evidence order."""
    rows = np.asarray(rows, dtype=np.int64)
    order = np.lexsort((rows, -np.nan_to_num(weight, nan=-np.inf)))
    result: np.ndarray = rows[order]
    return result


def per_trace_sum(calls: Calls, values: np.ndarray) -> np.ndarray:
    """Sum of `values` per trace code (NaN treated as 0)."""
    sums: np.ndarray = np.bincount(calls.trace, weights=np.nan_to_num(values), minlength=len(calls.trace_names))
    return sums


def run_position(keys: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal consecutive `keys` (0 for the first of a run)."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    position = np.arange(n, dtype=np.int64)
    first = np.r_[True, keys[1:] != keys[:-1]]
    result: np.ndarray = position - np.maximum.accumulate(np.where(first, position, 0))
    return result


def usd(value: float) -> str:
    """Dollars in a detail sentence (4 decimals below $1, cents above)."""
    return f"${value:,.2f}" if abs(value) >= 1 else f"${value:.4f}"


def duration(seconds: float) -> str:
    """A time span in a sentence: `1 h`, `5 min`, `90 s`."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`1 trace`, `3 traces`."""
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"
