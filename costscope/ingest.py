"""Parsing input files: one file at a time, in parallel on all cores, through the parse cache (`parse_cache`).

Results are merged in input order, so the outcome is identical whether a file was parsed now or earlier, in this
process or in a worker.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc

from .errors import InputError
from .forked import pool_map
from .io import GZIP_MAGIC, InputFile, ReadError, line_parts
from .nopandas import skip_pandas_probe
from .parse_cache import FileCache, FileResult, PendingSave
from .parsers import QUICK_SNIFF_BYTES, ParseContext, Skips, UnknownFormat, detect, get_parser
from .parsers.base import Piece, piece_rows, table_of
from .schema import PARSED_SCHEMA, compact, empty_of, empty_table, with_shared_nulls

__all__ = ["FileCache", "FileResult", "Parsed", "parse_file", "parse_files", "parse_in_chunks"]

PARALLEL_MIN_BYTES = 16 << 20
"""Below this much input, parsing in one process is faster than starting workers."""
SERIAL_CHUNK_BYTES = 8 << 20


def parse_file(
    source: InputFile, format_in: str | None, strict: bool, parser_name: str | None = None, materialize: bool = True
) -> FileResult:
    """Detect (unless forced or already known) and parse one file; damaged parts become counted skips.

    With `materialize` False the rows stay in `pieces` (see `parsers.base.Piece`) for the caller to convert."""
    ctx = ParseContext(skips=Skips(strict=strict))
    try:
        name = format_in or parser_name
        head = source.prefix(1 if name else QUICK_SNIFF_BYTES)  # read once for the empty check and the sniffing
        if not head:
            ctx.notes["empty files"] += 1
            return FileResult(source.name, "empty", empty_table(), 0, notes=ctx.notes)
        parser = get_parser(name) if name else detect(source, head, quick=True)
    except ReadError as error:
        ctx.read_error(error)
        return FileResult(
            source.name,
            "unreadable",
            empty_table(),
            1,
            ctx.skips.counts,
            ctx.skips.examples,
            first_skip=ctx.skips.first,
        )
    except UnknownFormat as error:
        ctx.skips.skip(source.name, 1, "unrecognized trace format")
        return FileResult(
            source.name, "unrecognized", empty_table(), 1, ctx.skips.counts, ctx.skips.examples, unrecognized=error
        )
    pieces: list[Piece] = []
    try:
        pieces.extend(parser.parse(source, ctx, forced=format_in is not None))
    except ReadError as error:
        ctx.read_error(error)
    return FileResult(
        source.name,
        parser.name,
        table_of(pieces) if materialize else empty_table(),
        ctx.records[source.name],
        ctx.skips.counts,
        ctx.skips.examples,
        ctx.notes,
        first_skip=ctx.skips.first,
        rows=sum(map(piece_rows, pieces)),
        pieces=[] if materialize else pieces,
    )


Job = tuple[InputFile, str | None, bool, str | None]
"""(file or part of one, forced format, strict, parser already detected)."""


def _parse_chunk(jobs: list[Job], spill: Path | None = None) -> tuple[pa.Table | Path, list[FileResult]]:
    """Parse several files; their rows travel back as ONE table in PARSED_SCHEMA (one serialization per chunk, not
    per file; dictionary-encoded, about half the bytes of STEP_SCHEMA).

    With `spill` (a worker's case) the table is written there as an Arrow file and its path returned: the parent
    maps it without a copy, where a pickle through the pipe costs a copy each side and a wait for each other. If
    the file cannot be written (e.g. a container's small /dev/shm is full), the table goes through the pipe."""
    done = {
        index: parse_file(*jobs[index], materialize=False)
        for index in sorted(range(len(jobs)), key=lambda i: _work_order(jobs[i][0]))
    }
    results = [done[index] for index in range(len(jobs))]
    table = compact(table_of([piece for r in results for piece in r.pieces]))
    for result in results:
        result.pieces = []
    if spill is None:
        return table, results
    path = spill / f"{os.getpid()}-{id(jobs)}-{time.monotonic_ns()}.arrow"
    try:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
        return table, results
    return path, results


def _worker_start() -> None:
    """A parse worker's settings: no pandas for pyarrow (`nopandas`), and the objects inherited from the parent left
    out of the cyclic garbage collector's passes (which otherwise walk them all, touching, so copying, their pages:
    7% of a worker's instructions on Claude Code logs). A worker makes no cycles of its own worth a pass."""
    skip_pandas_probe()
    gc.freeze()


def _unspill(table: pa.Table | Path) -> pa.Table:
    """A chunk's table, mapped from the file a worker wrote (and then unlinked: the mapping stays readable)."""
    if isinstance(table, pa.Table):
        return table
    try:
        mapped = pa.ipc.open_file(pa.memory_map(str(table))).read_all()
    finally:
        table.unlink()
    return with_shared_nulls(mapped)


def _spill_dir() -> str | None:
    """Where workers leave their tables: shared memory where the system has it, else the temporary directory."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _work_order(source: InputFile) -> tuple[str, int]:
    """Parse a Claude Code session before its subagent files (`<session>/subagents/*.jsonl`, which sort first):
    parsing the session tells their agent names, which they would otherwise read the session again for."""
    path = source.path
    if path is not None and path.parent.name == "subagents":
        return str(path.parent.parent) + ".jsonl", 1
    return str(path) if path is not None else source.name, 0


def _chunks(todo: list[int], sizes: list[int], count: int) -> list[list[int]]:
    """Contiguous runs of `todo` with about equal bytes each (input order is kept)."""
    total = sum(sizes) or 1
    chunks: list[list[int]] = [[]]
    filled = 0
    for index, size in zip(todo, sizes, strict=True):
        if chunks[-1] and filled >= total * len(chunks) / count:
            chunks.append([])
        chunks[-1].append(index)
        filled += size
    return chunks


@dataclass
class Parsed:
    """The rows of every input file, in input order, and what parsing each file produced."""

    table: pa.Table
    results: list[FileResult]
    saving: PendingSave | None = None
    """The parse cache being written meanwhile (wait for it before the process forks or ends)."""


def _assemble(results: list[FileResult], fresh: pa.Table, store: FileCache | None) -> pa.Table:
    """All rows in input-file order, without copying them: each file's rows are a slice of the store (cached) or of
    `fresh` (its consecutive blocks, in input order), and consecutive slices of one source are joined."""
    hits = [i for i, r in enumerate(results) if r.stored_at is not None]
    if store is None or not hits:
        return fresh
    spans: list[tuple[bool, int, int]] = []  # (from the store, first row, rows)
    fresh_at = 0
    for result in results:
        if result.stored_at is not None:
            spans.append((True, result.stored_at, result.rows))
        else:
            spans.append((False, fresh_at, result.rows))
            fresh_at += result.rows
    runs: list[list[Any]] = []
    for stored, start, rows in spans:
        if runs and runs[-1][0] == stored and runs[-1][1] + runs[-1][2] == start:
            runs[-1][2] += rows
        elif rows:
            runs.append([stored, start, rows])
    parts = [store.slice(start, rows) if stored else fresh.slice(start, rows) for stored, start, rows in runs]
    return pa.concat_tables(parts) if parts else fresh


def parse_files(
    sources: list[InputFile],
    *,
    format_in: str | None,
    strict: bool,
    cache_dir: Path | None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> Parsed:
    """Parse results in input order: from the cache where valid, else parsed (in parallel when large).

    `meanwhile` is called once, while the workers parse when there are workers (else before parsing): work of
    the caller's that needs no parsed row, done in the time this process would only wait."""
    store = FileCache(cache_dir) if cache_dir is not None else None
    keys = [store.key(s, format_in) if store else None for s in sources]
    cached = [store.load(k, strict) if store and k else None for k in keys]
    todo = [i for i, hit in enumerate(cached) if hit is None]
    sizes = [_size(sources[i]) for i in todo]
    workers = workers or os.cpu_count() or 1
    parallel = workers > 1 and sum(sizes) >= PARALLEL_MIN_BYTES and "fork" in _start_methods()
    units = _units(
        [(i, sources[i], size) for i, size in zip(todo, sizes, strict=True)], workers if parallel else 1, format_in
    )
    parallel = parallel and len(units) > 1
    unit_sizes = [u[2] for u in units]
    # in one process, chunks of about SERIAL_CHUNK_BYTES: rows become Arrow once per chunk, progress moves per chunk
    chunks = (
        []
        if not units
        else _chunks(
            list(range(len(units))),
            unit_sizes,
            workers * 4 if parallel else max(1, min(len(units), sum(unit_sizes) // SERIAL_CHUNK_BYTES)),
        )
    )
    jobs = [[(units[u][1], format_in, strict, units[u][3]) for u in chunk] for chunk in chunks]
    pool = (
        ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_start
        )
        if parallel
        else None
    )
    spill = tempfile.TemporaryDirectory(prefix="costscope-", dir=_spill_dir()) if pool is not None else None
    try:
        outcomes = (
            pool.map(functools.partial(_parse_chunk, spill=Path(spill.name)), jobs)
            if pool is not None and spill is not None
            else map(_parse_chunk, jobs)
        )
        if meanwhile is not None:
            meanwhile()
        tables: list[pa.Table] = []
        parts: dict[int, list[FileResult]] = {}
        done = 0
        for chunk, (table, results) in zip(chunks, outcomes, strict=True):
            tables.append(_unspill(table))
            for u, result in zip(chunk, results, strict=True):
                parts.setdefault(units[u][0], []).append(result)
                done += units[u][2]
            if progress is not None:
                progress(done, sum(sizes))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if spill is not None:
            spill.cleanup()
    fresh: list[tuple[str | None, FileResult, Path | None]] = []
    for i in todo:
        merged = _merge(parts[i])
        cached[i] = merged
        fresh.append((keys[i], merged, sources[i].path))
    fresh_table = pa.concat_tables(tables) if tables else empty_of(PARSED_SCHEMA)
    saving = store.save_meanwhile(fresh_table, fresh) if store is not None else None
    final = [r for r in cached if r is not None]
    return Parsed(_assemble(final, fresh_table, store), final, saving)


def parse_in_chunks(
    jobs: list[Job], sizes: list[int], workers: int, chunk_bytes: int
) -> Iterator[tuple[range, pa.Table, list[FileResult]]]:
    """`jobs` parsed in order, in consecutive chunks of about `chunk_bytes` of input (a bigger job is a chunk of its
    own): per chunk, (the positions of its jobs, their rows as one table in PARSED_SCHEMA, their results).

    As `parse_files` parses, in forked workers when there are several chunks, but with at most 2 × `workers` chunks
    in flight: however large the input, only those chunks' rows are held (in memory, or in the files the workers
    hand them back in), never every file's."""
    chunks: list[range] = []
    start = filled = 0
    for position, size in enumerate(sizes):
        if position > start and filled + size > chunk_bytes:
            chunks.append(range(start, position))
            start, filled = position, 0
        filled += size
    if start < len(jobs):
        chunks.append(range(start, len(jobs)))
    parallel = workers > 1 and len(chunks) > 1  # as `pool_map` decides (without `fork`, a spill file is only read back)
    spill = tempfile.TemporaryDirectory(prefix="costscope-", dir=_spill_dir()) if parallel else None
    parse = functools.partial(_parse_chunk, spill=Path(spill.name)) if spill is not None else _parse_chunk
    try:
        done = pool_map(parse, [[jobs[i] for i in chunk] for chunk in chunks], workers, initializer=_worker_start)
        for chunk, (table, results) in zip(chunks, done, strict=True):
            yield chunk, _unspill(table), results
    finally:
        if spill is not None:
            spill.cleanup()


SPLIT_MIN_BYTES = 64 << 20
"""A plain file at least this big, in a format whose records stand alone, is parsed in parts in parallel."""


def _units(
    files: list[tuple[int, InputFile, int]], workers: int, format_in: str | None
) -> list[tuple[int, InputFile, int, str | None]]:
    """(file index, file or part, bytes, parser name) to parse: big plain files of a line-by-line format are
    cut into parts at line starts (numbered from their real first line); everything else is one unit."""
    units: list[tuple[int, InputFile, int, str | None]] = []
    for index, source, size in files:
        parser = _splittable_parser(source, size, format_in) if workers > 1 else None
        if parser is None or source.path is None:
            units.append((index, source, size, None))
            continue
        for start, stop, first_line in line_parts(source.path, workers * 2):
            units.append((index, source.part(start, stop, first_line), stop - start, parser))
    return units


def _splittable_parser(source: InputFile, size: int, format_in: str | None) -> str | None:
    if source.path is None or size < SPLIT_MIN_BYTES:
        return None
    try:
        with open(source.path, "rb") as fh:  # the raw bytes: `prefix` is decompressed, offsets are not
            magic = fh.read(4)
        if magic[:2] == GZIP_MAGIC or magic == b"PAR1":
            return None
        parser = get_parser(format_in) if format_in else detect(source)
    except InputError:
        return None
    return parser.name if getattr(parser, "splittable", False) else None


def _merge(parts: list[FileResult]) -> FileResult:
    """One file's result from the results of its parts (in order); a file parsed whole is its own part."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    counts: Counter[str] = Counter()
    notes: Counter[str] = Counter()
    examples: list[str] = []
    for part in parts:
        counts.update(part.skip_counts)
        notes.update(part.notes)
        examples.extend(part.skip_examples)
    return FileResult(
        first.name,
        first.format,
        empty_table(),
        sum(p.records for p in parts),
        counts,
        examples[: Skips().max_examples],
        notes,
        next((p.first_skip for p in parts if p.first_skip is not None), None),
        rows=sum(p.rows for p in parts),
    )


def _start_methods() -> list[str]:
    return multiprocessing.get_all_start_methods() if sys.platform != "win32" else []


def _size(source: InputFile) -> int:
    if source.path is None:
        return len(source.data or b"")
    try:
        return source.path.stat().st_size
    except OSError:
        return 0
