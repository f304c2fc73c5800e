"""The step table: one row per LLM call (or tool/agent span), declared once.

Token buckets are *inclusive*, as in OpenTelemetry GenAI, OpenInference and genai-prices:
`input_tokens` counts every input token, cached ones included; `cache_read_tokens` and
`cache_write_tokens` are subsets of it; `cache_write_1h_tokens` is the part of the writes with a
one-hour TTL (the rest are 5-minute writes); `output_tokens` includes `reasoning_tokens`.
Uncached input is derived (`input - cache_read - cache_write`), never stored.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SCHEMA_VERSION = 1
DATASET_MANIFEST = "costscope-dataset.json"
"""The file that makes a directory a costscope dataset (`costscope convert`)."""


class Kind(StrEnum):
    LLM = "llm"
    """One billed model call: the only kind whose tokens and costs are summed."""
    TOOL = "tool"
    """A tool execution (name in `tool`), for per-tool views; carries no usage."""
    AGENT = "agent"
    """An agent span (name in `agent`); its usage, if any, is a roll-up of its children and never summed."""
    ROLLUP = "rollup"
    """A summary the log itself wrote (a session `result`, a trajectory's `model_stats`): kept only as
    `reported_cost_usd` for comparison with the computed cost of its trace, never added to its parts."""


class UsageSource(StrEnum):
    REPORTED = "reported"
    RECOUNTED = "recounted"


_UTC_TS = pa.timestamp("us", tz="UTC")

IDENTITY_FIELDS = [
    pa.field("source", pa.string(), nullable=False),
    pa.field("line", pa.int64(), nullable=False),
    pa.field("format", pa.string()),
    pa.field("record_id", pa.string()),
    pa.field("trace_id", pa.string()),
    pa.field("span_id", pa.string()),
    pa.field("parent_id", pa.string()),
    pa.field("step", pa.int32()),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("agent", pa.string()),
    pa.field("tenant", pa.string()),
    pa.field("operation", pa.string()),
    pa.field("tool", pa.string()),
    pa.field("tags", pa.map_(pa.string(), pa.string())),
]
TIME_FIELDS = [pa.field("start", _UTC_TS), pa.field("end", _UTC_TS)]
MODEL_FIELDS = [
    pa.field("provider", pa.string()),
    pa.field("model", pa.string()),
    pa.field("service_tier", pa.string()),
]
TOKEN_COLUMNS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)
USAGE_FIELDS = [pa.field(name, pa.int64()) for name in TOKEN_COLUMNS] + [
    pa.field("usage_source", pa.string()),
    pa.field("reported_cost_usd", pa.float64()),
]
SEGMENT_TYPE = pa.struct(
    [
        pa.field("kind", pa.string()),
        pa.field("hash", pa.string()),
        pa.field("chars", pa.int64()),
        pa.field("tokens", pa.int64()),
        pa.field("tool", pa.string()),
    ]
)
"""One part of a call's input or output: `kind` (system, tools, history, user, tool_result, framing, output),
a hash of its content (the same text has the same hash in every call), its length in characters, its token
count with the row's `tokenizer` (uncalibrated), and the tool name for tool results and tool calls."""
CONTENT_FIELDS = [
    pa.field("request_hash", pa.string()),
    pa.field("segments", pa.list_(SEGMENT_TYPE)),
    pa.field("tokenizer", pa.string()),
    pa.field("prompt_text", pa.string()),
    pa.field("output_text", pa.string()),
]
TEXT_KEEP_CHARS = 512
"""`prompt_text` is the call's new user input (its `user` segments) and `output_text` its response text, each cut
to its first TEXT_KEEP_CHARS characters: kept for keyword routing and the semantic response cache (and its
false-hit estimate), where a hash will not do."""
COST_COLUMNS = ("cost_input", "cost_cache_read", "cost_cache_write", "cost_output", "cost_request", "cost_total")
"""USD; `cost_request` is a fixed fee per call (a few providers charge one), `cost_total` the sum of the rest."""
COST_FIELDS = [
    pa.field("price_ref", pa.string()),
    *(pa.field(name, pa.float64()) for name in COST_COLUMNS),
    pa.field("cost_cache_saved", pa.float64()),
]

STEP_SCHEMA = pa.schema(
    IDENTITY_FIELDS + TIME_FIELDS + MODEL_FIELDS + USAGE_FIELDS + CONTENT_FIELDS + COST_FIELDS,
    metadata={"costscope.schema_version": str(SCHEMA_VERSION)},
)
COLUMNS: tuple[str, ...] = tuple(STEP_SCHEMA.names)
PARSED_COLUMNS: tuple[str, ...] = tuple(f.name for f in STEP_SCHEMA if f.name not in {f.name for f in COST_FIELDS})


_PARSED_NAMES = frozenset(PARSED_COLUMNS)


def batch_from_rows(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    """A record batch in STEP_SCHEMA from row dicts (missing keys are null); cost columns are null.

    Built column by column (a list per column, then one `pa.array`), which is several times faster than
    `RecordBatch.from_pylist` on this wide schema; a column no row has is all nulls without a list."""
    present: set[str] = set()
    for row in rows:
        present.update(row)
    arrays = []
    for f in STEP_SCHEMA:
        if f.name in present and f.name in _PARSED_NAMES:
            name = f.name
            arrays.append(pa.array([row.get(name) for row in rows], type=f.type))
        else:
            arrays.append(nulls(len(rows), f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=STEP_SCHEMA)


def empty_of(schema: pa.Schema) -> pa.Table:
    """A table of `schema` with no rows. (`Schema.empty_table` imports pandas, 0.2 s and 40 MiB: importing this
    module should not; pyarrow imports it when it first converts Python values, if a run gets there.)"""
    return pa.Table.from_batches([], schema=schema)


_EMPTY = empty_of(STEP_SCHEMA)


def empty_table() -> pa.Table:
    """A STEP_SCHEMA table with no rows (shared: Arrow tables are immutable)."""
    return _EMPTY


DICTIONARY_COLUMNS = (
    "source",
    "format",
    "trace_id",
    "kind",
    "agent",
    "tenant",
    "operation",
    "tool",
    "provider",
    "model",
    "service_tier",
    "usage_source",
    "tokenizer",
)
"""Columns of few distinct values (a file's rows share one source, tenant and trace), dictionary-encoded while
parsed rows wait to be ordered (`PARSED_SCHEMA`): the source path alone is a fifth of a Claude Code table."""
_DICTIONARY = pa.dictionary(pa.int32(), pa.string())
PARSED_SCHEMA = pa.schema(
    [pa.field(f.name, _DICTIONARY, f.nullable) if f.name in DICTIONARY_COLUMNS else f for f in STEP_SCHEMA],
    metadata=STEP_SCHEMA.metadata,
)
"""STEP_SCHEMA with DICTIONARY_COLUMNS dictionary-encoded: parsed rows between the parsers and `steps.order_steps`
(worker results, the parse cache), which returns STEP_SCHEMA."""


def nulls(length: int, type_: pa.DataType) -> pa.Array:
    """A column of `length` nulls, like `pa.nulls`, whose buffers are all one shared block of zeros (a `bytes`
    object: the system hands it out as untouched zero pages). `pa.nulls` fills a buffer for each array: 1.6 MB
    per 64-bit column of 200,000 rows, 20 MiB for the columns a Claude Code table never fills."""
    if pa.types.is_struct(type_):
        children = [nulls(length, type_.field(i).type) for i in range(type_.num_fields)]
        return pa.StructArray.from_buffers(type_, length, [_zeros(length)], null_count=length, children=children)
    if pa.types.is_map(type_):
        entries = pa.struct([type_.key_field, type_.item_field])
        return pa.Array.from_buffers(
            type_, length, [_zeros(length), _zeros(length)], null_count=length, children=[nulls(0, entries)]
        )
    if pa.types.is_list(type_):
        return pa.Array.from_buffers(
            type_, length, [_zeros(length), _zeros(length)], null_count=length, children=[nulls(0, type_.value_type)]
        )
    if pa.types.is_dictionary(type_):
        return pa.DictionaryArray.from_arrays(nulls(length, type_.index_type), nulls(0, type_.value_type))
    if pa.types.is_string(type_) or pa.types.is_binary(type_):
        return pa.Array.from_buffers(type_, length, [_zeros(length), _zeros(length), _zeros(0)], null_count=length)
    if pa.types.is_primitive(type_) and type_.bit_width <= 64:
        return pa.Array.from_buffers(type_, length, [_zeros(length), _zeros(length)], null_count=length)
    return pa.nulls(length, type_)


def row_run(mask: np.ndarray) -> tuple[int, int] | None:
    """(first, last + 1) of the rows `mask` selects when they are one run of consecutive rows (a slice of the table
    then holds them without a copy); None when they are not, or there are none."""
    at = np.flatnonzero(mask)
    if len(at) == 0 or at[-1] - at[0] + 1 != len(at):
        return None
    return int(at[0]), int(at[-1]) + 1


def with_shared_nulls(table: pa.Table) -> pa.Table:
    """`table` with its columns that are null throughout made anew by `nulls`. For a table mapped from a file: what
    reads such a column later (e.g. a writer) then reads no page of the file's zeros into this process's memory
    (17 columns of a Claude Code table, 20 MiB at 200,000 rows)."""
    for i, column in enumerate(table.columns):
        if column.null_count == len(column) and len(column):
            table = table.set_column(i, table.schema.field(i), nulls(len(column), column.type))
    return table


_ZEROS: list[pa.Buffer] = []


def _zeros(length: int) -> pa.Buffer:
    """Zeros enough for any buffer of `length` values of up to 64 bits (or their offsets), shared."""
    size = (length + 1) * 8
    if not _ZEROS or _ZEROS[0].size < size:
        _ZEROS[:] = [pa.py_buffer(bytes(max(size, 4096)))]
    return _ZEROS[0]


def compact(table: pa.Table) -> pa.Table:
    """A STEP_SCHEMA table in PARSED_SCHEMA (each column's chunks share one dictionary)."""
    arrays = []
    for field in PARSED_SCHEMA:
        column = table[field.name]
        if column.type == field.type:
            arrays.append(column)
        elif column.null_count == len(column):
            arrays.append(nulls(len(column), field.type))
        else:
            arrays.append(pc.dictionary_encode(column))
    return pa.Table.from_arrays(arrays, schema=PARSED_SCHEMA)


def decoded(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A dictionary column decoded to plain values (any other column as it is)."""
    return pc.cast(column, column.type.value_type) if pa.types.is_dictionary(column.type) else column


def conform(table: pa.Table) -> pa.Table:
    """Cast a table read from Parquet or elsewhere to STEP_SCHEMA, adding missing nullable columns."""
    missing_required = [f.name for f in STEP_SCHEMA if not f.nullable and f.name not in table.column_names]
    if missing_required:
        raise ValueError(f"missing required step-table columns: {', '.join(missing_required)}")
    arrays = []
    for field in STEP_SCHEMA:
        if field.name in table.column_names:
            arrays.append(table.column(field.name).cast(field.type))
        else:
            arrays.append(nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(arrays, schema=STEP_SCHEMA)
