"""Reading inputs into one step table: detection, parsing, ordering, step numbers and filters."""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .attribution import value_ranks
from .errors import InputError
from .ingest import parse_files
from .io import Expanded, expand_paths
from .parsers import CACHE_DEPENDENCIES, Skips, get_parser
from .schema import STEP_SCHEMA, decoded, empty_table, nulls

if TYPE_CHECKING:
    from .parse_cache import FileResult


@dataclass(frozen=True)
class FileReport:
    name: str
    format: str
    records: int
    rows: int


@dataclass
class LoadResult:
    table: pa.Table
    files: list[FileReport]
    ignored: list[str]
    skips: Skips
    notes: dict[str, int] = field(default_factory=dict)
    filtered_out: int = 0
    duplicates: list[str] = field(default_factory=list)
    """`file:line` of records dropped as repeats of an already-read response id (in reading order: all of them, or
    the first ones when `duplicates_dropped` says more)."""
    duplicates_dropped: int | None = None
    """How many records were dropped so, when `duplicates` does not list them all."""
    watched: list[str] | None = None
    """Every path the result depends on (see `io.Expanded.watched`), incl. files the parsers consulted."""

    @property
    def dropped_count(self) -> int:
        """Records dropped as repeats of an already-read response id."""
        return len(self.duplicates) if self.duplicates_dropped is None else self.duplicates_dropped


def load_steps(
    paths: list[str],
    *,
    format_in: str | None = None,
    strict: bool = False,
    stdin: BinaryIO | None = None,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    meanwhile: Callable[[], None] | None = None,
    expanded: Expanded | None = None,
) -> LoadResult:
    """Read every input into one step table ordered by trace and time, with step ordinals.

    `cache_dir` enables the incremental cache of parsed files (None: parse everything); `workers` caps
    the parsing processes (default: all cores); `progress(done_bytes, total_bytes)` reports parsing;
    `meanwhile()` is called once, while the files are parsed (see `ingest.parse_files`); `expanded`: the
    inputs when the caller has already expanded `paths` (`io.expand_paths`).
    """
    if expanded is None:
        expanded = expand_paths(paths, stdin=stdin)
    if format_in:
        get_parser(format_in)  # an unknown name is a usage error before any work
    parsed = parse_files(
        expanded.files,
        format_in=format_in,
        strict=strict,
        cache_dir=cache_dir,
        workers=workers,
        progress=progress,
        meanwhile=meanwhile,
    )
    result_ = read_result(parsed.results, expanded, strict)
    keep, duplicates = duplicate_responses(parsed.table)
    ordered = ordered_columns(parsed.table, keep)  # one copy of the rows: deduplicated and ordered at once
    if parsed.saving is not None:
        parsed.saving.wait()  # the parse cache was written meanwhile
    del parsed  # the unordered rows go now: before the ordered copy is decoded (about twice its bytes)
    result_.table = decoded_table(ordered)
    result_.duplicates = duplicates
    return result_


def read_result(results: list[FileResult], expanded: Expanded, strict: bool = False) -> LoadResult:
    """What reading `expanded`'s files gave (each file's result, in order), without rows yet: the files and their
    records, the skips, the notes and the paths a run depends on. Raises the first file's error when no file was
    in a known format."""
    skips = Skips(strict=strict)
    notes: Counter[str] = Counter()
    files: list[FileReport] = []
    unrecognized: list[InputError] = []
    for result in results:
        skips.counts.update(result.skip_counts)
        skips.examples.extend(result.skip_examples[: max(0, skips.max_examples - len(skips.examples))])
        notes.update(result.notes)
        if result.unrecognized is not None:
            unrecognized.append(result.unrecognized)
        files.append(FileReport(result.name, result.format, result.records, result.rows))
    if unrecognized and len(unrecognized) == len(files):
        raise unrecognized[0]
    loaded = LoadResult(empty_table(), files, expanded.ignored, skips, dict(notes))
    if expanded.watched is not None:
        consulted = [str(p) for f in expanded.files if f.path for hook in CACHE_DEPENDENCIES for p in hook(f.path)]
        loaded.watched = expanded.watched + consulted
    return loaded


def drop_duplicate_responses(table: pa.Table) -> tuple[pa.Table, list[str]]:
    """Keep one row per provider response id: a response logged twice was billed once.

    The copy kept is one that reports usage (a streamed response logged chunk by chunk carries it on one
    line only), then the earliest by start time (the original: resumed or forked sessions copy calls into
    later files, sometimes with later timestamps), then the first read. Returns the table and `file:line`
    of every dropped row, so the drop is reported, never silent.
    """
    keep, dropped = duplicate_responses(table)
    return (table if keep is None else table.filter(pa.array(keep))), dropped


def duplicate_responses(table: pa.Table) -> tuple[np.ndarray | None, list[str]]:
    """(rows to keep, or None for all; `file:line` of the others) by `drop_duplicate_responses`' rule."""
    if table.num_rows == 0 or table["record_id"].null_count == table.num_rows:
        return None, []
    encoded = pc.dictionary_encode(table["record_id"]).combine_chunks()
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    n = len(codes)
    start = pc.fill_null(pc.cast(table["start"], pa.int64()), np.iinfo(np.int64).max).to_numpy(zero_copy_only=False)
    without_usage = pc.is_null(table["usage_source"]).to_numpy(zero_copy_only=False)
    order = np.lexsort((np.arange(n), start, without_usage, codes))
    first = np.ones(n, dtype=bool)
    first[1:] = codes[order][1:] != codes[order][:-1]
    keep = np.zeros(n, dtype=bool)
    keep[order[first]] = True
    keep |= codes < 0
    if keep.all():
        return None, []
    dropped = table.select(["source", "line"]).filter(pa.array(~keep)).to_pylist()
    return keep, [f"{row['source']}:{row['line']}" for row in dropped]


def order_steps(table: pa.Table, keep: np.ndarray | None = None) -> pa.Table:
    """Give calls without a trace their own trace id (`source:line`), sort by trace then time, and number steps;
    with `keep` (a mask), only those rows, in the same copy. Takes STEP_SCHEMA or PARSED_SCHEMA (decoded in that
    copy) and returns STEP_SCHEMA.

    The calls come first, then the other rows (tools, agents, roll-ups): each part by trace, then time, then
    source and line. Steps number the rows of a trace in that order, all kinds together (a call's step tells how
    many rows of its trace came before it). The calls being one run of rows, `attribution.llm_calls` is a slice,
    not a copy."""
    return decoded_table(ordered_columns(table, keep))


def ordered_columns(table: pa.Table, keep: np.ndarray | None = None) -> list[pa.Array]:
    """`order_steps`' rows as one array per STEP_SCHEMA column, those of PARSED_SCHEMA still dictionary-encoded
    (decode them with `decoded_table`, which can free each encoded column once decoded)."""
    if table.num_rows == 0:
        return [nulls(0, f.type) for f in STEP_SCHEMA]
    table, order, traces = _sort_plan(table)
    if keep is not None:
        kept = keep[order]
        order, traces = order[kept], traces[kept]
    steps = _step_numbers(traces)
    calls_first = np.argsort(pc.not_equal(table["kind"], "llm").to_numpy(zero_copy_only=False)[order], kind="stable")
    order, steps = order[calls_first], steps[calls_first]
    indices = pa.array(order)
    arrays: list[pa.Array] = []
    for column_field in STEP_SCHEMA:
        column = table[column_field.name]
        if column_field.name == "step":
            arrays.append(pa.array(steps))
        elif column.null_count == len(column):  # a column a format never fills (17 of Claude Code's): made anew
            arrays.append(nulls(len(order), column_field.type))
        else:
            taken = column.take(indices).combine_chunks()
            if pa.types.is_dictionary(taken.type):  # a copy of the dictionary too, not a view of the parsed rows'
                dictionary = taken.dictionary.take(pa.array(np.arange(len(taken.dictionary))))  # (mapped) buffers
                taken = pa.DictionaryArray.from_arrays(taken.indices, dictionary)
            arrays.append(taken)
    return arrays


def decoded_table(arrays: list[pa.Array]) -> pa.Table:
    """The table of `ordered_columns`' arrays, decoded; it empties `arrays`, so that each encoded column can go
    as soon as its decoded copy is made (when the caller holds no other reference)."""
    arrays.reverse()
    plain: list[pa.Array] = []
    while arrays:
        plain.append(decoded(arrays.pop()))
    return pa.Table.from_arrays(plain, schema=STEP_SCHEMA)


def _sort_plan(table: pa.Table) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """(table with every trace id set, row order by (trace_id, start, source, line), trace rank in that order)."""
    if table["trace_id"].null_count:
        own = pc.binary_join_element_wise(decoded(table["source"]), pc.cast(table["line"], pa.string()), ":")
        trace_ids = pc.coalesce(decoded(table["trace_id"]), own)
        table = table.set_column(table.schema.get_field_index("trace_id"), "trace_id", trace_ids)
    # sort by the string columns' ranks among their distinct values: one numpy lexsort on numbers
    trace_rank = value_ranks(table["trace_id"])
    start = pc.fill_null(pc.cast(table["start"], pa.int64()), np.iinfo(np.int64).max)  # no start: last
    order = np.lexsort((table["line"].to_numpy(), value_ranks(table["source"]), start.to_numpy(), trace_rank))
    return table, order, trace_rank[order]


def _step_numbers(traces: np.ndarray) -> np.ndarray:
    position = np.arange(len(traces))
    first = np.ones(len(traces), dtype=bool)
    first[1:] = traces[1:] != traces[:-1]
    group_start = np.maximum.accumulate(np.where(first, position, 0))
    return (position - group_start + 1).astype(np.int32)


def _parse_time(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{option} {text!r} is not a date or ISO-8601 time", hint="e.g. 2026-10-01") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def matching(column: pa.ChunkedArray, patterns: tuple[str, ...]) -> np.ndarray:
    """Rows whose value matches one of the glob patterns, matching each distinct value once."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    keep = np.array(
        [any(fnmatch.fnmatchcase(v, p) for p in patterns) for v in encoded.dictionary.to_pylist()] + [False]
    )
    codes = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy(zero_copy_only=False)
    selected: np.ndarray = keep[codes]
    return selected


@dataclass(frozen=True)
class Filters:
    since: str | None = None
    until: str | None = None
    models: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()

    def apply(self, table: pa.Table) -> pa.Table:
        """Keep the rows the filters select. `--until` is exclusive; a bare date means its midnight UTC."""
        if not (self.since or self.until or self.models or self.agents):
            return table
        mask = pa.array(np.ones(table.num_rows, dtype=bool))
        if self.since:
            mask = pc.and_kleene(mask, pc.greater_equal(table["start"], _parse_time(self.since, "--since")))
        if self.until:
            mask = pc.and_kleene(mask, pc.less(table["start"], _parse_time(self.until, "--until")))
        for column, patterns in (("model", self.models), ("agent", self.agents)):
            if patterns:
                mask = pc.and_kleene(mask, pa.array(matching(table[column], patterns), type=pa.bool_()))
        return table.filter(pc.fill_null(mask, False))
