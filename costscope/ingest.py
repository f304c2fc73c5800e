"""Parsing input files: one file at a time, in parallel on all cores, through an incremental cache.

A file's parse result (its rows, records read, skips and notes) depends only on its bytes, the parser
and costscope's parsing code, so it is cached under a key of (path, size, mtime, forced format, code
fingerprint) in the user cache directory. A second run over a large log directory parses only the
files that changed; results are merged in input order, so the outcome is identical either way.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

from .errors import InputError
from .io import GZIP_MAGIC, InputFile, ReadError, line_parts
from .parsers import CACHE_DEPENDENCIES, ParseContext, Skips, UnknownFormat, detect, get_parser
from .parsers.base import Piece, piece_rows, table_of
from .schema import STEP_SCHEMA, empty_table
from .tokens import is_cached

PARALLEL_MIN_BYTES = 16 << 20
"""Below this much input, parsing in one process is faster than starting workers."""
SERIAL_CHUNK_BYTES = 8 << 20


@dataclass
class FileResult:
    """Everything parsing one file produced."""

    name: str
    format: str
    table: pa.Table
    records: int
    skip_counts: Counter[str] = field(default_factory=Counter)
    skip_examples: list[str] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)
    first_skip: tuple[str, int, str] | None = None
    unrecognized: InputError | None = None
    rows: int = -1
    """Rows this file produced; they live in `table`, or elsewhere once moved (a chunk's table, the store)."""
    stored_at: int | None = None
    """For a result served from the cache: where its rows start in the store."""
    pieces: list[Piece] = field(default_factory=list)
    """Rows not yet in `table` (`parse_file(materialize=False)`)."""

    def __post_init__(self) -> None:
        if self.rows < 0:
            self.rows = self.table.num_rows


def parse_file(
    source: InputFile, format_in: str | None, strict: bool, parser_name: str | None = None, materialize: bool = True
) -> FileResult:
    """Detect (unless forced or already known) and parse one file; damaged parts become counted skips.

    With `materialize` False the rows stay in `pieces` (see `parsers.base.Piece`) for the caller to convert."""
    ctx = ParseContext(skips=Skips(strict=strict))
    try:
        if not source.prefix(1):
            ctx.notes["empty files"] += 1
            return FileResult(source.name, "empty", empty_table(), 0, notes=ctx.notes)
        name = format_in or parser_name
        parser = get_parser(name) if name else detect(source)
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


@cache
def code_fingerprint() -> str:
    """A hash of the code that turns bytes into rows: a cached result is reused only by the same code."""
    root = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(
        [root / "io.py", root / "schema.py", root / "tokens.py", *root.joinpath("parsers").glob("*.py")]
    ):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    # recounted usage depends on which encodings tiktoken's cache holds
    digest.update(",".join(name for name in ("o200k_base", "o200k_harmony") if is_cached(name)).encode())
    return digest.hexdigest()[:16]


class FileCache:
    """Parse results of many files in two Arrow IPC files, each file's rows a contiguous block.

    The base (`parsed.arrow`) holds most rows; the delta (`parsed-delta.arrow`) the files parsed since, so that a
    run after one session grew writes that session's rows, not every row again. The index (file key -> rows'
    offset in base-then-delta and count, records read, skips, notes) lives in the schema metadata of the delta
    when there is one (it names the base it extends), else of the base: a warm run is a few `stat` calls, two
    memory-mapped reads and zero-copy slices. Entries whose file is gone or changed leave the index at once and
    their rows when the base is next rewritten, which happens when the delta and those rows together pass a
    quarter of the base.
    """

    FILE = "parsed.arrow"
    DELTA = "parsed-delta.arrow"

    def __init__(self, directory: Path) -> None:
        self.path = directory / self.FILE
        self.delta_path = directory / self.DELTA
        self.hits = 0
        self._table: pa.Table | None = None
        self._index: dict[str, dict[str, Any]] = {}
        self._base_rows = 0
        self._base_id = ""
        base = _read_store(self.path)
        if base is None:
            return
        table, meta = base
        self._base_rows, self._base_id = table.num_rows, str(meta.get("id", ""))
        self._table, self._index = table, meta["index"]
        delta = _read_store(self.delta_path)
        if delta is not None and delta[1].get("base") == self._base_id and self._base_id:
            self._table = pa.concat_tables([table, delta[0]])
            self._index = delta[1]["index"]

    def key(self, source: InputFile, format_in: str | None) -> str | None:
        if source.path is None:
            return None
        try:
            stat = source.path.stat()
        except OSError:
            return None
        identity = f"{os.path.abspath(source.path)}\0{source.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0{format_in}"
        for hook in CACHE_DEPENDENCIES:
            for dependency in hook(source.path):
                identity += f"\0{dependency}\0{_state(dependency)}"
        return hashlib.sha256(f"{identity}\0{code_fingerprint()}".encode()).hexdigest()

    def load(self, key: str, strict: bool) -> FileResult | None:
        meta = self._index.get(key)
        if meta is None or self._table is None:
            return None
        if strict and meta["first_skip"] is not None:
            Skips(strict=True).skip(*meta["first_skip"])
        self.hits += 1
        return FileResult(
            meta["name"],
            meta["format"],
            empty_table(),
            meta["records"],
            Counter(meta["skip_counts"]),
            meta["skip_examples"],
            Counter(meta["notes"]),
            tuple(meta["first_skip"]) if meta["first_skip"] is not None else None,
            rows=meta["rows"],
            stored_at=meta["offset"],
        )

    def _take(self, spans: list[tuple[int, int]]) -> pa.Table:
        """Stored rows of several (offset, rows) spans, in that order, without copying them: consecutive spans
        are joined into runs, and each run is a slice of the memory-mapped store."""
        assert self._table is not None
        runs: list[list[int]] = []
        for start, rows in spans:
            if runs and runs[-1][0] + runs[-1][1] == start:
                runs[-1][1] += rows
            elif rows:
                runs.append([start, rows])
        if not runs:
            return empty_table()
        return pa.concat_tables([self._table.slice(start, rows) for start, rows in runs])

    def slice(self, start: int, rows: int) -> pa.Table:
        """Stored rows [start, start + rows), zero-copy."""
        assert self._table is not None
        return self._table.slice(start, rows)

    def save(self, fresh_table: pa.Table, fresh: list[tuple[str | None, FileResult, Path | None]]) -> None:
        """Add freshly parsed files (their rows are consecutive blocks of `fresh_table`, in order) and drop
        entries whose file changed or vanished, or that older parsing code wrote: into the delta while it stays
        small, else by rewriting the base."""
        code = code_fingerprint()
        new_keys = {key for key, _, _ in fresh if key is not None}
        kept = {k: m for k, m in self._index.items() if k not in new_keys and m.get("code") == code and _unchanged(m)}
        storable = [key is not None and path is not None and r.unrecognized is None for key, r, path in fresh]
        if not any(storable) and len(kept) == len(self._index):
            return
        new_entries: dict[str, dict[str, Any]] = {}
        for (new_key, result, path), keep in zip(fresh, storable, strict=True):
            if keep:
                assert new_key is not None and path is not None
                stat = path.stat()
                new_entries[new_key] = {
                    "name": result.name,
                    "path": str(path),
                    "size": stat.st_size,
                    "mtime_ns": stat.st_mtime_ns,
                    "format": result.format,
                    "records": result.records,
                    "skip_counts": dict(result.skip_counts),
                    "skip_examples": result.skip_examples,
                    "notes": dict(result.notes),
                    "first_skip": result.first_skip,
                    "rows": result.rows,
                    "code": code,
                }
        row_counts = [r.rows for _, r, _ in fresh]
        mask = np.repeat(np.array(storable, dtype=bool), row_counts) if fresh else np.zeros(0, bool)
        new_rows = fresh_table if mask.all() else fresh_table.filter(pa.array(mask))
        in_base = {k: m for k, m in kept.items() if m["offset"] < self._base_rows}
        in_delta = {k: m for k, m in kept.items() if m["offset"] >= self._base_rows}
        unused = self._base_rows - sum(m["rows"] for m in in_base.values())
        delta_rows = sum(m["rows"] for m in in_delta.values()) + new_rows.num_rows
        if self._base_id and unused + delta_rows <= self._base_rows // 4:
            self._write_delta(in_base, in_delta, new_entries, new_rows)
        else:
            self._write_base(kept, new_entries, new_rows)

    def _write_base(
        self, kept: dict[str, dict[str, Any]], new_entries: dict[str, dict[str, Any]], new_rows: pa.Table
    ) -> None:
        index, offset = _placed(kept, 0)
        fresh_index, _ = _placed(new_entries, offset)
        index.update(fresh_index)
        blocks = [self._take([(m["offset"], m["rows"]) for m in kept.values()])] if kept else []
        meta = {"id": os.urandom(8).hex(), "index": index}
        if _write_store(self.path, [*blocks, new_rows], meta):
            with contextlib.suppress(OSError):
                self.delta_path.unlink()

    def _write_delta(
        self,
        in_base: dict[str, dict[str, Any]],
        in_delta: dict[str, dict[str, Any]],
        new_entries: dict[str, dict[str, Any]],
        new_rows: pa.Table,
    ) -> None:
        index = dict(in_base)  # base rows stay where they are
        moved, offset = _placed(in_delta, self._base_rows)
        fresh_index, _ = _placed(new_entries, offset)
        index.update(moved)
        index.update(fresh_index)
        blocks = [self._take([(m["offset"], m["rows"]) for m in in_delta.values()])] if in_delta else []
        _write_store(self.delta_path, [*blocks, new_rows], {"base": self._base_id, "index": index})


def _placed(entries: dict[str, dict[str, Any]], offset: int) -> tuple[dict[str, dict[str, Any]], int]:
    """The entries laid out one after the other from `offset`; and the offset after them."""
    placed = {}
    for key, meta in entries.items():
        placed[key] = {**meta, "offset": offset}
        offset += meta["rows"]
    return placed, offset


def _read_store(path: Path) -> tuple[pa.Table, dict[str, Any]] | None:
    """A store's rows (memory-mapped) and metadata, or None when it is missing, unreadable or of another schema."""
    try:
        with pa.memory_map(str(path)) as source:
            reader = ipc.open_file(source)
            meta = orjson.loads((reader.schema.metadata or {}).get(b"costscope.store", b"null"))
            stored = reader.read_all()
    except (OSError, pa.ArrowInvalid, orjson.JSONDecodeError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("index"), dict):
        return None
    if not stored.schema.remove_metadata().equals(_STORE_SCHEMA):
        return None
    return stored.replace_schema_metadata(STEP_SCHEMA.metadata), meta


def _write_store(path: Path, blocks: list[pa.Table], meta: dict[str, Any]) -> bool:
    table = (
        pa.concat_tables([b.replace_schema_metadata(None) for b in blocks]) if blocks else _STORE_SCHEMA.empty_table()
    )
    schema = _STORE_SCHEMA.with_metadata({b"costscope.store": orjson.dumps(meta)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        # uncompressed, so that a warm run memory-maps it without decoding
        with ipc.new_file(str(partial), schema) as writer:
            writer.write_table(table, max_chunksize=1 << 20)
        os.replace(partial, path)
    except OSError:
        return False  # a cache that cannot be written only costs speed
    return True


_STORE_SCHEMA = STEP_SCHEMA.remove_metadata()
"""The stored rows; which rows belong to which file is in the index (schema metadata), not in a column."""


def _unchanged(meta: dict[str, Any]) -> bool:
    try:
        stat = Path(meta["path"]).stat()
    except OSError:
        return False
    return bool(stat.st_size == meta["size"] and stat.st_mtime_ns == meta["mtime_ns"])


Job = tuple[InputFile, str | None, bool, str | None]
"""(file or part of one, forced format, strict, parser already detected)."""


def _parse_chunk(jobs: list[Job]) -> tuple[pa.Table, list[FileResult]]:
    """Parse several files; their rows travel back as ONE table (one serialization per chunk, not per file)."""
    done = {
        index: parse_file(*jobs[index], materialize=False)
        for index in sorted(range(len(jobs)), key=lambda i: _work_order(jobs[i][0]))
    }
    results = [done[index] for index in range(len(jobs))]
    # one chunk per column: a table of many small chunks costs far more to send between processes
    table = table_of([piece for r in results for piece in r.pieces]).combine_chunks()
    for result in results:
        result.pieces = []
    return table, results


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
) -> Parsed:
    """Parse results in input order: from the cache where valid, else parsed (in parallel when large)."""
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
        ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) if parallel else None
    )
    try:
        outcomes = pool.map(_parse_chunk, jobs) if pool is not None else map(_parse_chunk, jobs)
        tables: list[pa.Table] = []
        parts: dict[int, list[FileResult]] = {}
        done = 0
        for chunk, (table, results) in zip(chunks, outcomes, strict=True):
            tables.append(table)
            for u, result in zip(chunk, results, strict=True):
                parts.setdefault(units[u][0], []).append(result)
                done += units[u][2]
            if progress is not None:
                progress(done, sum(sizes))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    fresh: list[tuple[str | None, FileResult, Path | None]] = []
    for i in todo:
        merged = _merge(parts[i])
        cached[i] = merged
        fresh.append((keys[i], merged, sources[i].path))
    fresh_table = pa.concat_tables(tables) if tables else empty_table()
    if store is not None:
        store.save(fresh_table, fresh)
    final = [r for r in cached if r is not None]
    return Parsed(_assemble(final, fresh_table, store), final)


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


def _state(path: Path) -> str:
    """Size and modification time of a file or directory (a directory's mtime moves when entries come or go)."""
    try:
        stat = path.stat()
    except OSError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _start_methods() -> list[str]:
    return multiprocessing.get_all_start_methods() if sys.platform != "win32" else []


def _size(source: InputFile) -> int:
    if source.path is None:
        return len(source.data or b"")
    try:
        return source.path.stat().st_size
    except OSError:
        return 0
