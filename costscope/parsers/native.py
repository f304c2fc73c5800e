"""costscope's own flat JSON Lines: one step-table row per line, keys = column names.

Written by `costscope analyze --output steps.jsonl`; it round-trips the step table exactly. Hand-written
files need only `model` and the token columns: `source`/`line` default to the file and line,
`kind` to `llm`, and `usage_source` to `reported` when any token column is present.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from ..io import InputFile
from ..schema import STEP_SCHEMA, TOKEN_COLUMNS, Kind, UsageSource
from .base import ParseContext, RecordError, RowBuffer, first_object, text_or_none, timestamp_us, token_count
from .usage import Usage

NAME = "native"
_KNOWN = set(STEP_SCHEMA.names)
_TEXT = tuple(f.name for f in STEP_SCHEMA if pa.types.is_string(f.type) and f.name not in ("source", "price_ref"))


def _row(obj: Any, source: str, lineno: int) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - _KNOWN)
    if unknown:
        raise RecordError(f"unknown column {unknown[0]!r}")
    row: dict[str, Any] = {name: text_or_none(obj.get(name)) for name in _TEXT}
    row["source"] = text_or_none(obj.get("source")) or source
    line = obj.get("line")
    row["line"] = token_count(line, "line") if line is not None else lineno
    step = obj.get("step")
    row["step"] = token_count(step, "step") if step is not None else None
    row["kind"] = row["kind"] or Kind.LLM.value
    row["start"] = timestamp_us(obj.get("start"))
    row["end"] = timestamp_us(obj.get("end"))
    tags = obj.get("tags")
    if tags is not None and not isinstance(tags, dict):
        raise RecordError("tags must be an object")
    row["tags"] = sorted((str(k), str(v)) for k, v in tags.items()) if tags else None
    counts = {name: token_count(obj.get(name), name) for name in TOKEN_COLUMNS}
    Usage(**counts)  # validates the inclusive-bucket invariants
    row.update(counts)
    if row["usage_source"] is None and any(v is not None for v in counts.values()):
        row["usage_source"] = UsageSource.REPORTED.value
    row["segments"] = _segments(obj.get("segments"))
    cost = obj.get("reported_cost_usd")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int | float) or cost < 0):
        raise RecordError(f"reported_cost_usd is not a non-negative number: {cost!r}")
    row["reported_cost_usd"] = float(cost) if cost is not None else None
    return row


_SEGMENT_KEYS = {"kind": str, "hash": str, "chars": int, "tokens": int, "tool": str}


def _segments(value: Any) -> list[dict[str, Any]] | None:
    """The `segments` column as written by `--output steps.jsonl` (kind, hash, chars, tokens, tool per item)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise RecordError("segments must be a list")
    for item in value:
        if not isinstance(item, dict) or not set(item) <= set(_SEGMENT_KEYS):
            raise RecordError("a segment must be an object with kind, hash, chars, tokens and tool")
        for key, kind in _SEGMENT_KEYS.items():
            if item.get(key) is not None and (not isinstance(item[key], kind) or isinstance(item[key], bool)):
                raise RecordError(f"segment {key} is not a {kind.__name__}: {item[key]!r}")
    return value


class NativeParser:
    name = NAME
    splittable = True
    description = "costscope step-table JSON Lines (written by --output steps.jsonl)"
    sniffs_first_lines = True
    """Its sniff reads only the first `base.SNIFF_LINES` lines (see `parsers.detect`)."""

    def sniff(self, prefix: bytes) -> bool:
        obj = first_object(prefix)
        return obj is not None and set(obj) <= _KNOWN and ("kind" in obj or {"model", "input_tokens"} <= set(obj))

    def parse(self, source: InputFile, ctx: ParseContext, *, forced: bool) -> Iterator[pa.RecordBatch]:
        buffer = RowBuffer(ctx.batch_rows)
        for _, row in ctx.records_of(source, lambda obj, lineno: _row(obj, source.name, lineno)):
            if (batch := buffer.add(row)) is not None:
                yield batch
        if (batch := buffer.flush()) is not None:
            yield batch


def _iso(micros: int | None) -> str | None:
    if micros is None:
        return None
    seconds, frac = divmod(micros, 1_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:06d}Z"


def write_jsonl(table: pa.Table, path: str) -> None:
    """Write the step table as native JSON Lines, one row per line, keys in schema order, nulls omitted."""
    columns = STEP_SCHEMA.names
    with open(path, "wb") as fh:
        for batch in table.select(columns).to_batches(max_chunksize=65_536):
            data = batch.to_pydict()
            data["start"] = [_iso(v) for v in batch.column("start").cast(pa.int64()).to_pylist()]
            data["end"] = [_iso(v) for v in batch.column("end").cast(pa.int64()).to_pylist()]
            data["tags"] = [dict(t) if t else None for t in data["tags"]]
            for i in range(batch.num_rows):
                obj = {c: data[c][i] for c in columns if data[c][i] is not None}
                fh.write(orjson.dumps(obj) + b"\n")
