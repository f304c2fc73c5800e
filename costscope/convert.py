"""`costscope convert`: trace files -> a partitioned step-table dataset (`dataset.py`), appending only new inputs.

Memory is bounded by chunk sizes, not by the input, in three passes over the new rows:
1. **parse and stage**: inputs are parsed on all cores (big line-by-line files in parts cut at line starts); every
   `chunk_bytes` of input the rows go to disk in buckets by a hash of their trace id, each with its reading order,
   and so does the index of step 2, in parts by response id: a 128-bit hash of each response id, its start, whether
   it reports usage and its bucket. Kept in memory: each chunk's distinct response id hashes (8 bytes per row of the
   run), to find the stored files new rows repeat or continue.
2. **deduplicate**, one part of the index at a time: one row per response id, by `steps.drop_duplicate_responses`'
   rule (the copy that reports usage, then the earliest, then the first read), over every row of the run.
3. **settle**, one bucket (whole traces) at a time: `order_steps`, `price_table`, each trace's partition (the UTC
   day of its earliest row, its smallest tenant), then each partition's new rows sorted into files of at most
   `file_rows` rows, cut between traces.
An input already converted (same path, size and modification time) is skipped; a changed one is an error. When
new rows share a trace id or a response id with rows already stored, the files holding those are read back,
settled again with the new rows, and replaced, so the dataset is what converting every input at once would give
(rows of earlier runs count as read first).
"""

from __future__ import annotations

import math
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .dataset import (
    DUPLICATES,
    FileEntry,
    InputRecord,
    Manifest,
    PartitionEntry,
    duplicates,
    empty_manifest,
    is_dataset,
    partition_dir,
    read_manifest,
    write_manifest,
)
from .errors import ConfigError, InputError
from .forked import pool_map
from .ingest import _merge, parse_in_chunks
from .io import GZIP_MAGIC, InputFile, expand_paths, line_parts
from .parse_cache import FileResult
from .parsers import Skips, detect, get_parser
from .pricing import PriceBook
from .staging import KEY_A, BucketJob, CompactJob, Stage, compact, hashes, settle

_STAGING = ".staging"
_LOCK = ".lock"


@dataclass(frozen=True)
class ConvertOptions:
    format_in: str | None = None
    strict: bool = False
    workers: int | None = None
    """Parsing and settling processes (default: all cores)."""
    part_bytes: int = 64 << 20
    """A line-by-line input larger than this is parsed in parts of about this size."""
    parse_bytes: int = 32 << 20
    """Input bytes a parse worker takes at a time: its files' rows come back as one table."""
    chunk_bytes: int = 256 << 20
    """Parsed rows are staged to disk every this many input bytes."""
    bucket_bytes: int = 512 << 20
    """Input bytes per trace bucket: the memory of the settle pass (about 2 GiB per process at the default)."""
    file_rows: int = 1_000_000
    """Most rows in one Parquet file (files are cut between traces)."""


@dataclass(frozen=True)
class ConvertResult:
    dataset: str
    inputs_added: int
    inputs_unchanged: int
    rows_added: int
    """Net change of the dataset's rows (new rows minus the duplicates they replaced)."""
    duplicates_dropped: int
    files_rewritten: int
    """Files of earlier runs read back and replaced because new rows continued their traces."""
    manifest: Manifest
    warnings: list[str] = field(default_factory=list)


def convert(
    paths: list[str],
    out: str,
    options: ConvertOptions = ConvertOptions(),
    progress: Callable[[int, int], None] | None = None,
) -> ConvertResult:
    """Convert the new inputs among `paths` into the dataset at `out` (created when missing)."""
    if "-" in paths:
        raise ConfigError("convert cannot read stdin", hint="save the traces to a file and convert that file")
    if options.format_in:
        get_parser(options.format_in)
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{out} is a file", hint="give a directory for the dataset: -o DATASET/")
    if root.is_dir() and not is_dataset(root) and any(p.name != _LOCK for p in root.iterdir()):
        raise ConfigError(f"{out} is not empty and holds no costscope dataset", hint="give a new directory")
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        return _convert(paths, root, options, progress)


def _convert(
    paths: list[str], root: Path, options: ConvertOptions, progress: Callable[[int, int], None] | None
) -> ConvertResult:
    manifest = read_manifest(root) if is_dataset(root) else empty_manifest(PriceBook().sources)
    expanded = expand_paths(paths)
    known = {i.path: i for i in manifest.inputs}
    new: list[InputFile] = []
    unchanged = 0
    inside = Path(os.path.abspath(root))
    for source in expanded.files:
        assert source.path is not None
        if inside in Path(os.path.abspath(source.path)).parents:
            continue  # the dataset's own files, when it lives in an input directory
        stat = source.path.stat()
        record = known.get(os.path.abspath(source.path))
        if record is None:
            new.append(source)
            continue
        unchanged += 1
        if (record.size, record.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            raise InputError(
                f"{source.name} changed since it was converted into {root}",
                hint="convert new records into new files, or convert everything into a new dataset directory",
            )
    ignored = manifest.ignored_files + [
        i
        for i in expanded.ignored
        if i not in manifest.ignored_files and inside not in Path(os.path.abspath(i)).parents
    ]
    if not new:
        manifest = manifest.model_copy(update={"ignored_files": ignored})
        write_manifest(root, manifest)
        return ConvertResult(str(root), 0, unchanged, 0, 0, 0, manifest)
    staging = root / _STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        return _run(root, staging, manifest, new, unchanged, ignored, options, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _run(
    root: Path,
    staging: Path,
    manifest: Manifest,
    new: list[InputFile],
    unchanged: int,
    ignored: list[str],
    options: ConvertOptions,
    progress: Callable[[int, int], None] | None,
) -> ConvertResult:
    workers = options.workers or os.cpu_count() or 1
    sizes = [input_bytes(s) for s in new]
    stage = Stage(staging / "rows", bucket_count(sum(sizes), options, workers))
    results = parse_and_stage(new, sizes, stage, options, workers, progress)
    if all(r.unrecognized is not None for r in results):
        first = next(r.unrecognized for r in results if r.unrecognized is not None)
        raise first
    overlapped = _overlapping(root, manifest, stage)
    old_rows = sum(e.rows for _, e in overlapped)
    seq = -old_rows
    for _, entry in overlapped:
        table = pq.read_table(root / entry.path)
        stage.add(table, first_seq=seq)
        seq += table.num_rows
    dropped = stage.dropped()
    run = manifest.runs + 1
    settled = pool_map(
        settle,
        [BucketJob(stage.directory, b, dropped[b], staging / "parts") for b in range(stage.buckets)],
        workers,
    )
    pieces: dict[tuple[str, str | None], list[str]] = {}
    examples: list[tuple[int, str]] = []
    for result in settled:
        examples.extend(result.examples)
        for day, tenant, path in result.pieces:
            pieces.setdefault((day, tenant), []).append(path)
    keys = sorted(pieces, key=_partition_order)
    jobs = [CompactJob(root, partition_dir(*k), tuple(pieces[k]), run, options.file_rows) for k in keys]
    written = dict(zip(keys, pool_map(compact, jobs, workers), strict=True))
    examples.sort()
    updated = _updated_manifest(manifest, run, results, new, ignored, overlapped, written, len(examples))
    _write_duplicates(root, [text for _, text in examples])
    write_manifest(root, updated)
    _replace_duplicates(root)
    for _, entry in overlapped:
        (root / entry.path).unlink(missing_ok=True)
    return ConvertResult(
        str(root),
        len(new),
        unchanged,
        updated.rows - manifest.rows,
        len(examples),
        len(overlapped),
        updated,
        _warnings(results, [text for _, text in examples]),
    )


def _warnings(results: list[FileResult], dropped: list[str]) -> list[str]:
    """What this run skipped or dropped (each also counted in the manifest)."""
    out = []
    skipped = sum(sum(r.skip_counts.values()) for r in results)
    if skipped:
        first = next((e for r in results for e in r.skip_examples), "see skipped_examples in the manifest")
        out.append(f"{skipped} records skipped (first: {first})")
    if dropped:
        out.append(
            f"{len(dropped)} records repeat a response id already read and were counted once (first: {dropped[0]})"
        )
    unrecognized = [r.name for r in results if r.unrecognized is not None]
    if unrecognized:
        out.append(f"{len(unrecognized)} files in no known trace format (first: {unrecognized[0]})")
    return out


# ---------------------------------------------------------------- pass 1: parse and stage


def input_bytes(source: InputFile) -> int:
    """Bytes of input a file stands for (a gzip file about 8 times its size)."""
    assert source.path is not None
    with open(source.path, "rb") as fh:
        gzipped = fh.read(2) == GZIP_MAGIC
    size = source.path.stat().st_size
    return size * 8 if gzipped else size


def _splittable(source: InputFile, format_in: str | None) -> str | None:
    """The parser name when the file is plain text in a format whose records stand alone, line by line."""
    assert source.path is not None
    try:
        with open(source.path, "rb") as fh:
            head = fh.read(4)
        if head[:2] == GZIP_MAGIC or head == b"PAR1":
            return None
        parser = get_parser(format_in) if format_in else detect(source)
    except (OSError, InputError):
        return None
    return parser.name if getattr(parser, "splittable", False) else None


Job = tuple[InputFile, str | None, bool, str | None]


def _units(new: list[InputFile], options: ConvertOptions) -> list[tuple[int, Job, int]]:
    """(input index, parse job, bytes) in reading order; big line-by-line files are cut into parts."""
    units: list[tuple[int, Job, int]] = []
    for index, source in enumerate(new):
        assert source.path is not None
        size = source.path.stat().st_size
        parser = _splittable(source, options.format_in) if size > options.part_bytes else None
        if parser is None:
            units.append((index, (source, options.format_in, options.strict, None), size))
            continue
        for start, stop, first_line in line_parts(source.path, math.ceil(size / options.part_bytes)):
            units.append((index, (source.part(start, stop, first_line), options.format_in, options.strict, parser),
                          stop - start))  # fmt: skip
    return units


def bucket_count(total: int, options: ConvertOptions, workers: int) -> int:
    """Trace buckets for `total` input bytes: one per `bucket_bytes`, and one per worker from SETTLE_SPLIT_BYTES up, so
    that every core settles (the dataset is the same however many there are: each partition's rows are sorted)."""
    buckets = max(1, math.ceil(total / options.bucket_bytes))
    return max(buckets, workers) if total >= SETTLE_SPLIT_BYTES else buckets


SETTLE_SPLIT_BYTES = 64 << 20


def parse_and_stage(
    new: list[InputFile],
    sizes: list[int],
    stage: Stage,
    options: ConvertOptions,
    workers: int,
    progress: Callable[[int, int], None] | None,
) -> list[FileResult]:
    """Parse every new input in order, staging the rows every `chunk_bytes`; the merged result of each input."""
    units = _units(new, options)
    parts: dict[int, list[FileResult]] = {}
    pending: list[pa.Table] = []
    pending_bytes = done = 0
    total = sum(u[2] for u in units)
    chunks = parse_in_chunks([u[1] for u in units], [u[2] for u in units], workers, options.parse_bytes)
    for chunk, table, results in chunks:
        pending.append(table)
        for position, result in zip(chunk, results, strict=True):
            index, _, size = units[position]
            parts.setdefault(index, []).append(result)
            pending_bytes += size
            done += size
        if pending_bytes >= options.chunk_bytes:
            stage.add(pa.concat_tables(pending))
            pending, pending_bytes = [], 0
        if progress is not None:
            progress(done, total)
    if pending:
        stage.add(pa.concat_tables(pending))
    return [_merge(parts[i]) for i in range(len(new))]


def _overlapping(root: Path, manifest: Manifest, stage: Stage) -> list[tuple[PartitionEntry, FileEntry]]:
    """Stored files holding a trace id or a response id of the new rows (64-bit hashes: a rare false match only
    re-settles a file for nothing)."""
    if not manifest.partitions:
        return []
    traces = np.unique(np.concatenate(stage.trace_hashes)) if stage.trace_hashes else np.zeros(0, np.uint64)
    records = np.unique(np.concatenate(stage.record_hashes)) if stage.record_hashes else np.zeros(0, np.uint64)
    out = []
    for partition in manifest.partitions:
        for entry in partition.files:
            stored = pq.read_table(root / entry.path, columns=["trace_id", "record_id"])
            trace_hash, _ = hashes(stored["trace_id"], KEY_A)
            record_hash, has_record = hashes(stored["record_id"], KEY_A)
            if np.isin(trace_hash, traces).any() or np.isin(record_hash[has_record], records).any():
                out.append((partition, entry))
    return out


# ---------------------------------------------------------------- the manifest


def _partition_order(key: tuple[str, str | None]) -> tuple[str, int, str]:
    return key[0], key[1] is not None, key[1] or ""


def _updated_manifest(
    manifest: Manifest,
    run: int,
    results: list[FileResult],
    new: list[InputFile],
    ignored: list[str],
    overlapped: list[tuple[PartitionEntry, FileEntry]],
    written: dict[tuple[str, str | None], list[FileEntry]],
    dropped: int,
) -> Manifest:
    gone = {e.path for _, e in overlapped}
    files: dict[tuple[str, str | None], list[FileEntry]] = {}
    for p in manifest.partitions:
        kept = [e for e in p.files if e.path not in gone]
        if kept:
            files[(p.day, p.tenant)] = kept
    for key, entries in written.items():
        files.setdefault(key, []).extend(entries)
    partitions = [PartitionEntry(day=k[0], tenant=k[1], files=files[k]) for k in sorted(files, key=_partition_order)]
    every = [e for p in partitions for e in p.files]
    skipped = Counter(manifest.skipped_reasons)
    notes = Counter(manifest.notes)
    examples = list(manifest.skipped_examples)
    inputs = list(manifest.inputs)
    for source, result in zip(new, results, strict=True):
        assert source.path is not None
        stat = source.path.stat()
        skipped.update(result.skip_counts)
        notes.update(result.notes)
        examples.extend(result.skip_examples[: max(0, Skips().max_examples - len(examples))])
        inputs.append(
            InputRecord(
                path=os.path.abspath(source.path),
                name=result.name,
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
                format=result.format,
                records=result.records,
                rows=result.rows,
            )
        )
    return manifest.model_copy(
        update={
            "costscope_version": __version__,
            "price_sources": PriceBook().sources,
            "runs": run,
            "rows": sum(e.rows for e in every),
            "calls": sum(e.calls for e in every),
            "traces": sum(e.traces for e in every),
            "mixed_tenant_traces": sum(e.mixed_tenant_traces for e in every),
            "inputs": inputs,
            "ignored_files": ignored,
            "skipped_reasons": dict(sorted(skipped.items())),
            "skipped_examples": examples,
            "notes": dict(sorted(notes.items())),
            "duplicates_dropped": manifest.duplicates_dropped + dropped,
            "partitions": partitions,
        }
    )


def _write_duplicates(root: Path, new: list[str]) -> None:
    """The updated duplicate list beside the current one (swapped in once the manifest is written)."""
    lines = duplicates(root) + new
    (root / f"{DUPLICATES}.tmp").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _replace_duplicates(root: Path) -> None:
    os.replace(root / f"{DUPLICATES}.tmp", root / DUPLICATES)


# ---------------------------------------------------------------- helpers


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One conversion at a time per dataset."""
    lock = root / _LOCK
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        raise ConfigError(
            f"{root} is being converted by another process (or a conversion was killed)",
            hint=f"if no conversion is running, remove {lock}",
        ) from None
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)
