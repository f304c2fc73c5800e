"""The parse cache: what parsing each file produced, kept between runs in the user cache directory.

A file's parse result (its rows, records read, skips and notes) depends only on its bytes, the parser and
costscope's parsing code, so it is stored under a key of (path, size, mtime, forced format, the state of the files
its parser consulted, code fingerprint). A second run over a large log directory parses only the files that
changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

from .errors import InputError
from .io import InputFile
from .parsers import CACHE_DEPENDENCIES, Skips
from .parsers.base import Piece
from .runcache import path_state
from .schema import PARSED_SCHEMA, empty_of, empty_table, with_shared_nulls
from .tokens import is_cached


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


@cache
def code_fingerprint() -> str:
    """A hash of the code that turns bytes into rows: a cached result is reused only by the same code."""
    root = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(
        [
            root / "io.py",
            root / "schema.py",
            root / "tokens.py",
            *root.joinpath("parsers").glob("*.py"),
            *root.joinpath("parsers").glob("*.c"),  # the compiled scanner's source
        ]
    ):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    # recounted usage depends on which encodings tiktoken's cache holds
    digest.update(",".join(name for name in ("o200k_base", "o200k_harmony") if is_cached(name)).encode())
    return digest.hexdigest()[:16]


class FileCache:
    """Parse results of many files in two Arrow IPC streams, each file's rows a contiguous block (PARSED_SCHEMA; a
    stream, unlike the Arrow file format, lets each batch carry its own dictionaries, so the workers' chunks are
    written as they come instead of being encoded again with shared dictionaries).

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
        pending = _SAVING.get(directory)
        if pending is not None:
            pending.wait()  # this process is still writing the store: read what it wrote
        self.directory = directory
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
                identity += f"\0{dependency}\0{path_state(str(dependency))}"
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
            return empty_of(_STORE_SCHEMA)
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

    def save_meanwhile(
        self, fresh_table: pa.Table, fresh: list[tuple[str | None, FileResult, Path | None]]
    ) -> PendingSave:
        """`save` on a thread (writing the store is mostly copying, done outside the interpreter lock), so that
        the run goes on ordering and pricing meanwhile; the caller waits for it (`PendingSave.wait`)."""
        return PendingSave(self, fresh_table, fresh)

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
            reader = ipc.open_stream(source)
            meta = orjson.loads((reader.schema.metadata or {}).get(b"costscope.store", b"null"))
            stored = reader.read_all()
    except (OSError, pa.ArrowInvalid, orjson.JSONDecodeError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("index"), dict):
        return None
    if not stored.schema.remove_metadata().equals(_STORE_SCHEMA):
        return None
    return with_shared_nulls(stored.replace_schema_metadata(PARSED_SCHEMA.metadata)), meta


def _write_store(path: Path, blocks: list[pa.Table], meta: dict[str, Any]) -> bool:
    table = pa.concat_tables([b.replace_schema_metadata(None) for b in blocks]) if blocks else empty_of(_STORE_SCHEMA)
    schema = _STORE_SCHEMA.with_metadata({b"costscope.store": orjson.dumps(meta)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        # uncompressed, so that a warm run memory-maps it without decoding
        with ipc.new_stream(str(partial), schema) as writer:
            writer.write_table(table, max_chunksize=1 << 20)
        os.replace(partial, path)
    except OSError:
        return False  # a cache that cannot be written only costs speed
    return True


class PendingSave:
    """A store being written on a thread. `wait` joins it and raises what the save raised (an unwritable cache
    raises nothing: it only costs speed); a FileCache opened on the same directory waits for it first."""

    def __init__(self, store: FileCache, fresh_table: pa.Table, fresh: list[Any]) -> None:
        self.directory = store.directory
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._save, args=(store, fresh_table, fresh), name="parse-cache")
        _SAVING[self.directory] = self
        self._thread.start()

    def _save(self, store: FileCache, fresh_table: pa.Table, fresh: list[Any]) -> None:
        try:
            store.save(fresh_table, fresh)
        except BaseException as error:  # handed to the waiting thread, which raises it
            self.error = error

    def wait(self) -> None:
        self._thread.join()
        if _SAVING.get(self.directory) is self:
            del _SAVING[self.directory]
        if self.error is not None:
            error, self.error = self.error, None
            raise error


_SAVING: dict[Path, PendingSave] = {}
"""The saves this process has running, by cache directory."""


_STORE_SCHEMA = PARSED_SCHEMA.remove_metadata()
"""The stored rows; which rows belong to which file is in the index (schema metadata), not in a column."""


def _unchanged(meta: dict[str, Any]) -> bool:
    try:
        stat = Path(meta["path"]).stat()
    except OSError:
        return False
    return bool(stat.st_size == meta["size"] and stat.st_mtime_ns == meta["mtime_ns"])
