"""The state a replay carries from policy to policy: the calls as they would be made, and their content.

A `Replay` starts as a copy of the recorded LLM calls (one row of `calls` per call, in replay order: by
trace, then start time, then file and line) and each policy of the stack rebuilds it in turn: it may change
a call's model, tokens or service tier, add calls that did not exist (a summarizer call, an escalation
re-run), or mark a call as not made (served from a response cache, cut by a budget). The projected step
table is then priced by the same code as `analyze`.

Token columns are float64 while the replay runs (scaling makes fractions) and rounded once, in `projected`.
Times are float64 microseconds since the epoch (exact below 2**53), NaN when the log had none.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..pricing import PriceBook, price_table
from ..schema import STEP_SCHEMA, TOKEN_COLUMNS, UsageSource

TEXT_COLUMNS = (
    "trace_id",
    "agent",
    "tenant",
    "operation",
    "provider",
    "model",
    "service_tier",
    "usage_source",
    "tokenizer",
    "request_hash",
    "prompt_text",
    "output_text",
)
"""Columns copied from the step table as Python objects (str or None)."""
CONTENT_COLUMNS = ("segments", "prompt_text", "output_text")
"""Columns a projection leaves null unless asked for (they are large and nothing priced reads them)."""
CHANGEABLE = ("agent", "operation", "provider", "model", "service_tier", "usage_source", *TOKEN_COLUMNS)
"""Columns a policy may change and `projected` writes back into the step table."""


@dataclass
class Outcome:
    """What one policy reports besides the money: its assumptions, quality-risk figures and details."""

    assumptions: list[str] = field(default_factory=list)
    risks: dict[str, float | int] = field(default_factory=dict)
    """Quality-risk indicators, e.g. share of calls moved to a smaller model (0..1) or traces cut (count)."""
    details: dict[str, Any] = field(default_factory=dict)
    """Policy-specific figures (cache hit rates, thresholds crossed, ...), JSON-serializable."""
    not_evaluated: list[str] = field(default_factory=list)
    """What the policy could not evaluate on this data, and why (instead of guessing)."""


class Replay:
    """The calls of one replay, mutable by the policies in stack order."""

    def __init__(self, base: pa.Table, book: PriceBook) -> None:
        """`base`: the recorded, priced LLM calls (STEP_SCHEMA), already in replay order."""
        self.base = base
        self.book = book
        self.outcomes: dict[str, Outcome] = defaultdict(Outcome)
        self.calls = _calls_frame(base)
        self._segments: pd.DataFrame | None = None

    def fork(self) -> Replay:
        """A fresh replay of the same recorded calls (the frames are built once and copied, not rebuilt)."""
        other = Replay.__new__(Replay)
        other.base = self.base
        other.book = self.book
        other.outcomes = defaultdict(Outcome)
        other.calls = self.calls.copy()
        other._segments = None
        if self._segments is not None:
            other._segments = self._segments.copy(deep=False)
            other._segments["kept"] = self._segments["kept"].to_numpy().copy()
        return other

    # ------------------------------------------------------------------ views

    @property
    def live(self) -> np.ndarray:
        """Mask of the calls still made (not served from a cache, not cut by a budget)."""
        mask: np.ndarray = (self.calls["dropped_by"] == "").to_numpy()
        return mask

    def segments(self) -> pd.DataFrame:
        """The input segments of the recorded calls that logged their request, one row per segment.

        Columns: `call` (row of `base`), `pos` (order in the prompt), `kind`, `hash` (int64 code, equal for
        equal content anywhere), `tokens` (recounted, float64, uncalibrated), `tool`, and `kept`: the tokens
        of the segment the rebuilt call still sends (policies lower it). Output segments are not included.
        Built once, on first use; calls without content have no rows.
        """
        if self._segments is None:
            self._segments = _segments_frame(self.base)
        return self._segments

    def content_scale(self) -> np.ndarray:
        """Per call of `base`: reported input tokens per recounted input token (NaN without content).

        A change of `d` recounted tokens in a call's segments changes its billed input by `d * scale`.
        """
        seg = self.segments()
        sums = np.bincount(seg["call"].to_numpy(), weights=seg["tokens"].to_numpy(), minlength=self.base.num_rows)
        reported = pc.fill_null(self.base["input_tokens"], 0).to_numpy().astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale: np.ndarray = np.where(sums > 0, reported / sums, np.nan)
        return scale

    # ------------------------------------------------------------------ changes

    def sync_content(self) -> np.ndarray:
        """Rewrite the input tokens of the recorded calls from their segments' `kept` tokens.

        Called by the policies that shorten content (truncation, compression) once they have lowered `kept`.
        Input removed is billed at the call's reported/recounted scale; the recorded cache reads and writes
        shrink in the same proportion (stated as an assumption by those policies: the prompt-cache policy
        models the cache itself when enabled). Returns, per recorded call, the billed input tokens removed.
        """
        seg = self.segments()
        n = self.base.num_rows
        calls = seg["call"].to_numpy()
        full = np.bincount(calls, weights=seg["tokens"].to_numpy(), minlength=n)
        kept = np.bincount(calls, weights=seg["kept"].to_numpy(), minlength=n)
        scale = self.content_scale()
        removed: np.ndarray = np.where(np.isfinite(scale), (full - kept) * np.nan_to_num(scale), 0.0)
        recorded = pc.fill_null(self.base["input_tokens"], 0).to_numpy().astype(np.float64)
        rows = (self.calls["added_by"] == "").to_numpy()
        origin = self.calls["origin"].to_numpy()[rows]
        new_input = np.maximum(recorded[origin] - removed[origin], 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(recorded[origin] > 0, new_input / recorded[origin], 1.0)
        recorded_columns = {
            name: pc.cast(self.base[name], pa.float64()).to_numpy(zero_copy_only=False)
            for name in ("cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens")
        }
        input_known = ~np.isnan(self.calls["input_tokens"].to_numpy()[rows])
        index = np.flatnonzero(rows)
        self.calls.loc[index, "input_tokens"] = np.where(input_known, new_input, np.nan)
        for name, values in recorded_columns.items():
            self.calls.loc[index, name] = values[origin] * ratio
        self.calls.loc[index, "content_changed"] = removed[origin] > 0
        return removed

    def add_calls(self, rows: pd.DataFrame, policy: str) -> None:
        """Append calls a policy creates. `rows` has the columns of `calls` (missing ones are copied from the
        recorded call named by `origin`); they are marked `added_by = policy`."""
        rows = rows.copy()
        for name in self.calls.columns:
            if name not in rows.columns:
                rows[name] = self.calls[name].to_numpy()[rows["origin"].to_numpy()]
        rows["added_by"] = policy
        rows["dropped_by"] = ""
        self.calls = pd.concat([self.calls, rows[self.calls.columns]], ignore_index=True)

    def drop(self, mask: np.ndarray, policy: str) -> None:
        """Mark the live calls under `mask` as not made, by `policy`."""
        target = mask & self.live
        self.calls.loc[target, "dropped_by"] = policy

    # ------------------------------------------------------------------ pricing

    def projected(self, content: bool = False) -> pa.Table:
        """The calls still made, as a step table (STEP_SCHEMA, costs not filled yet).

        `content=False` leaves `segments`, `prompt_text` and `output_text` null: pricing and the report do not
        read them, and taking them is most of the cost of a projection. `content=True` keeps them for the calls
        whose content is unchanged (for `--output`)."""
        live = self.live
        frame = self.calls[live]
        origin = frame["origin"].to_numpy()
        source = self.base if content else self.base.drop_columns(list(CONTENT_COLUMNS))
        table = source.take(pa.array(origin, type=pa.int64()))
        if not content:
            for name in CONTENT_COLUMNS:
                table = table.append_column(STEP_SCHEMA.field(name), pa.nulls(len(frame), STEP_SCHEMA.field(name).type))
            table = table.select(list(STEP_SCHEMA.names))
        for name in CHANGEABLE:
            values = frame[name].to_numpy()
            if name in TOKEN_COLUMNS:
                floats = values.astype(np.float64)
                array = pa.array(np.round(floats), mask=np.isnan(floats)).cast(pa.int64())
            else:
                array = pa.array(values, type=pa.string(), from_pandas=True)
            table = table.set_column(table.schema.get_field_index(name), name, array)
        added = frame["added_by"].to_numpy() != ""
        changed = added | frame["content_changed"].to_numpy()
        if content and changed.any():
            # a rebuilt call's segments no longer describe what it sends
            segments = pc.if_else(
                pa.array(changed), pa.nulls(len(frame), STEP_SCHEMA.field("segments").type), table["segments"]
            )
            table = table.set_column(table.schema.get_field_index("segments"), "segments", segments)
        if added.any():
            # an added call gets its own identity, so that re-reading the projection keeps it
            ids = [
                f"{rid or 'call'}#{by}{i}" if by else rid
                for i, (rid, by) in enumerate(
                    zip(table["record_id"].to_pylist(), frame["added_by"].tolist(), strict=True)
                )
            ]
            table = table.set_column(table.schema.get_field_index("record_id"), "record_id", pa.array(ids, pa.string()))
        return table

    def price(self, content: bool = False) -> pa.Table:
        """The projected step table with its costs (see `projected` for `content`)."""
        return price_table(self.projected(content), self.book).table

    def live_costs(self) -> np.ndarray:
        """cost_total of each call of `calls` (USD; 0 for calls not made, NaN for unpriced ones).

        Prices the whole projection once: for policies that decide on money (budgets)."""
        priced = self.price()
        costs = np.zeros(len(self.calls))
        costs[self.live] = pc.fill_null(priced["cost_total"], np.nan).to_numpy(zero_copy_only=False)
        return costs


def _calls_frame(base: pa.Table) -> pd.DataFrame:
    n = base.num_rows
    data: dict[str, Any] = {"origin": np.arange(n, dtype=np.int64)}
    for name in TEXT_COLUMNS:  # object arrays (None for null), not inferred string dtypes
        data[name] = pd.Series(base[name].to_numpy(zero_copy_only=False), dtype=object)
    for name in TOKEN_COLUMNS:
        data[name] = pc.cast(base[name], pa.float64()).to_numpy(zero_copy_only=False)
    for name in ("start", "end"):
        data[name] = pc.cast(pc.cast(base[name], pa.int64()), pa.float64()).to_numpy(zero_copy_only=False)
    data["step"] = pc.fill_null(base["step"], -1).to_numpy(zero_copy_only=False).astype(np.int64)
    data["has_content"] = ~pc.is_null(base["segments"]).to_numpy(zero_copy_only=False)
    data["recorded_model"] = data["model"].copy()
    data["content_changed"] = np.zeros(n, dtype=bool)
    data["added_by"] = np.full(n, "", dtype=object)
    data["dropped_by"] = np.full(n, "", dtype=object)
    frame = pd.DataFrame(data)
    frame["usage_source"] = frame["usage_source"].where(frame["usage_source"].notna(), UsageSource.REPORTED.value)
    return frame


def _segments_frame(base: pa.Table) -> pd.DataFrame:
    column = base["segments"].combine_chunks() if base.num_rows else pa.array([], STEP_SCHEMA.field("segments").type)
    lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(column)
    call = np.repeat(np.arange(base.num_rows, dtype=np.int64), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    pos = np.arange(len(call), dtype=np.int64) - starts
    kinds = flat.field("kind").to_numpy(zero_copy_only=False).astype(object)
    codes, _ = pd.factorize(flat.field("hash").to_numpy(zero_copy_only=False))
    frame = pd.DataFrame(
        {
            "call": call,
            "pos": pos,
            "kind": kinds,
            "hash": codes.astype(np.int64),
            "tokens": pc.fill_null(flat.field("tokens"), 0).to_numpy(zero_copy_only=False).astype(np.float64),
            "tool": flat.field("tool").to_numpy(zero_copy_only=False).astype(object),
        }
    )
    frame = frame[frame["kind"] != "output"].reset_index(drop=True)
    frame["kept"] = frame["tokens"].copy()
    return frame
