"""Building hand-made traces for the simulator's tests: rows in, a priced `Replay` out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from costscope.pricing import PriceBook, price_table
from costscope.schema import batch_from_rows
from costscope.simulate.engine import make_template
from costscope.simulate.replay import Replay

T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> int:
    """Microseconds since the epoch, `seconds` after T0 (the step table's time unit)."""
    return int((T0 + timedelta(seconds=seconds)).timestamp() * 1_000_000)


def segment(kind: str, key: str, tokens: int, tool: str | None = None, chars: int | None = None) -> dict[str, Any]:
    """One input segment; `key` stands for its content (equal keys = equal content)."""
    return {
        "kind": kind,
        "hash": key,
        "chars": chars if chars is not None else tokens * 4,
        "tokens": tokens,
        "tool": tool,
    }


def call(**fields: Any) -> dict[str, Any]:
    """One LLM call row with sensible defaults (an OpenAI gpt-4.1 call of 1000 in / 100 out at T0)."""
    row: dict[str, Any] = {
        "source": "test.jsonl",
        "line": 1,
        "kind": "llm",
        "trace_id": "t1",
        "provider": "openai",
        "model": "gpt-4.1",
        "input_tokens": 1000,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cache_write_1h_tokens": 0,
        "output_tokens": 100,
        "reasoning_tokens": 0,
        "usage_source": "reported",
        "start": at(0),
    }
    row.update(fields)
    if isinstance(row.get("start"), int | float) and row["start"] < 10**12:
        row["start"] = at(row["start"])
    if isinstance(row.get("end"), int | float) and row["end"] < 10**12:
        row["end"] = at(row["end"])
    return row


def table(rows: list[dict[str, Any]], book: PriceBook | None = None) -> pa.Table:
    """The priced step table of `rows` (line numbers follow the list order unless given)."""
    for i, row in enumerate(rows, start=1):
        row.setdefault("line", i)
    batch = batch_from_rows(rows)
    return price_table(pa.Table.from_batches([batch]), book or PriceBook.from_file(None)).table


def replay(rows: list[dict[str, Any]], book: PriceBook | None = None) -> Replay:
    """A fresh replay of `rows` (in the order given: tests list calls in replay order)."""
    book = book or PriceBook.from_file(None)
    return make_template(table(rows, book), book).fork()


def cost(t: pa.Table) -> float:
    """Total cost_total of a priced table (USD)."""
    return float(sum(v for v in t["cost_total"].to_pylist() if v is not None))
