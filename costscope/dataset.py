"""A step-table dataset: Parquet files partitioned by day and tenant, described by one manifest.

```
DATASET/costscope-dataset.json                    the manifest (`Manifest`): versions, inputs, partitions, counts
DATASET/duplicates.txt                            `file:line` of every record dropped as a repeated response id
DATASET/day=2026-10-05/tenant=acme/part-0001-0000.parquet
DATASET/day=2026-10-05/part-0001-0000.parquet     traces without a tenant
DATASET/day=undated/...                           traces without any timestamp
```

A trace is never split: all its rows live in one file, in the partition of (the UTC day of its earliest row,
its tenant: the smallest tenant named by its rows). A trace that runs past midnight stays in the day it
started. Each file's rows are in step-table order (trace, start, source, line) with their step ordinals, so any
group of files can be analyzed or replayed on its own. Readers take the file list from the manifest (a file
the manifest does not name is not part of the dataset). `costscope convert` (`convert.py`) writes datasets.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import orjson
import pyarrow as pa
import pyarrow.dataset as ds
from pydantic import BaseModel, ConfigDict, ValidationError

from . import __version__
from .errors import InputError
from .parsers import Skips
from .schema import DATASET_MANIFEST, SCHEMA_VERSION, STEP_SCHEMA, conform, empty_table
from .steps import FileReport, Filters, LoadResult, _parse_time

MANIFEST = DATASET_MANIFEST
DUPLICATES = "duplicates.txt"
DATASET_VERSION: Literal[1] = 1
UNDATED = "undated"
PARTITIONING = (
    "day = UTC date of the trace's earliest row (undated: no timestamp), then tenant = the smallest tenant named by "
    "the trace's rows (none: no tenant level); a trace is never split across files or partitions"
)
ORDER = [("trace_id", "ascending"), ("start", "ascending"), ("source", "ascending"), ("line", "ascending")]
"""The order of the rows inside every file, restored when files are combined: each trace's rows together, by time.
(`steps.order_steps` puts the calls before the other rows, each part in this order: the calls, which is what the
reports read, come in the same order either way.)"""
REPLAY_ONLY_COLUMNS = ("prompt_text", "output_text")
"""Columns only the simulator reads: analyze and baseline skip them (they are the widest)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputRecord(_Frozen):
    """One converted input file; `path` is absolute, `name` is how reports name it."""

    path: str
    name: str
    size: int
    mtime_ns: int
    format: str
    records: int
    rows: int


class FileEntry(_Frozen):
    """One Parquet file of a partition; `path` is relative to the dataset root (POSIX separators)."""

    path: str
    rows: int
    calls: int
    traces: int
    mixed_tenant_traces: int
    start_min_us: int | None
    start_max_us: int | None
    """Earliest and latest `start` of its rows (µs since the epoch, UTC); null when no row has one."""


class PartitionEntry(_Frozen):
    day: str
    tenant: str | None
    files: list[FileEntry]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


class Manifest(_Frozen):
    """The dataset's description (`costscope-dataset.json`). Field names are a public interface."""

    dataset_version: Literal[1]
    schema_version: int
    costscope_version: str
    price_sources: list[str]
    """Prices the stored cost columns were computed with (readers re-price: `--prices` applies)."""
    partitioning: str
    runs: int
    """Conversions so far: file names carry the run that wrote them."""
    rows: int
    calls: int
    traces: int
    mixed_tenant_traces: int
    """Traces whose rows name more than one tenant (stored under the smallest): per-tenant replay state then
    cannot be split by partition, and the engines treat tenant-scoped policies as global."""
    inputs: list[InputRecord]
    ignored_files: list[str]
    skipped_reasons: dict[str, int]
    skipped_examples: list[str]
    notes: dict[str, int]
    duplicates_dropped: int
    partitions: list[PartitionEntry]


def is_dataset(path: str | Path) -> bool:
    """True when `path` is a directory holding a costscope dataset manifest."""
    return (Path(path) / MANIFEST).is_file()


def read_manifest(root: str | Path) -> Manifest:
    """The validated manifest of the dataset at `root`; errors say how to rebuild it."""
    path = Path(root) / MANIFEST
    rebuild = f"convert the traces again into a new directory: costscope convert PATH... -o {Path(root).name}-new/"
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{root}: not a costscope dataset ({MANIFEST}: {exc.strerror})", hint=rebuild) from exc
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: the manifest is not valid JSON: {exc}", hint=rebuild) from exc
    version = data.get("dataset_version") if isinstance(data, dict) else None
    if version != DATASET_VERSION:
        raise InputError(f"{path}: dataset version {version!r}; this costscope reads {DATASET_VERSION}", hint=rebuild)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise InputError(f"{path}: {key}: {err['msg']}", hint=rebuild) from exc
    if manifest.schema_version != SCHEMA_VERSION:
        raise InputError(
            f"{path}: step-table schema {manifest.schema_version}; this costscope writes {SCHEMA_VERSION}", hint=rebuild
        )
    return manifest


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Replace the manifest atomically: readers see the old dataset or the new one, never a mix."""
    partial = root / f".{MANIFEST}.{os.getpid()}.tmp"
    partial.write_bytes(orjson.dumps(manifest.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(partial, root / MANIFEST)


def empty_manifest(price_sources: list[str]) -> Manifest:
    return Manifest(
        dataset_version=DATASET_VERSION,
        schema_version=SCHEMA_VERSION,
        costscope_version=__version__,
        price_sources=price_sources,
        partitioning=PARTITIONING,
        runs=0,
        rows=0,
        calls=0,
        traces=0,
        mixed_tenant_traces=0,
        inputs=[],
        ignored_files=[],
        skipped_reasons={},
        skipped_examples=[],
        notes={},
        duplicates_dropped=0,
        partitions=[],
    )


def partition_dir(day: str, tenant: str | None) -> str:
    """`day=D` or `day=D/tenant=T`, T percent-encoded (only letters, digits, `-` and `.` stay as they are)."""
    return f"day={day}" if tenant is None else f"day={day}/tenant={quote(tenant, safe='-.')}"


# ---------------------------------------------------------------- reading


def read_files(root: str | Path, files: Iterable[str], columns: list[str] | None = None) -> pa.Table:
    """The rows of some files of a dataset as one step table in ORDER (STEP_SCHEMA; `columns`, when
    given, are read and the others left null). Traces are whole, since a trace never spans files."""
    paths = [str(Path(root) / name) for name in files]
    if not paths:
        return empty_table()
    try:
        table = ds.dataset(paths, schema=_STORED, format="parquet").to_table(columns=columns)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{root}: cannot read the dataset's files: {exc}", hint="was the dataset changed?") from exc
    table = conform(table)
    return table.sort_by(ORDER).combine_chunks() if len(paths) > 1 else table


_STORED = STEP_SCHEMA.remove_metadata()


def analysis_columns() -> list[str]:
    """What analyze and baseline read: every column but the simulator's texts."""
    return [name for name in STEP_SCHEMA.names if name not in REPLAY_ONLY_COLUMNS]


def duplicates(root: str | Path, limit: int | None = None) -> list[str]:
    """`file:line` of the records dropped as repeats of a response id (the first `limit` of them)."""
    path = Path(root) / DUPLICATES
    if not path.exists():
        return []
    out: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if limit is not None and len(out) >= limit:
                break
            out.append(line.rstrip("\n"))
    return out


def load_result(root: str | Path, manifest: Manifest, table: pa.Table, filtered_out: int = 0) -> LoadResult:
    """A LoadResult for rows read from the dataset: the inputs, skips and duplicates its conversions recorded."""
    skips = Skips()
    skips.counts.update(manifest.skipped_reasons)
    skips.examples.extend(manifest.skipped_examples)
    files = [FileReport(i.name, i.format, i.records, i.rows) for i in manifest.inputs]
    result = LoadResult(table, files, list(manifest.ignored_files), skips, dict(manifest.notes), filtered_out)
    result.duplicates = duplicates(root)
    return result


def load(root: str | Path, filters: Filters | None = None) -> LoadResult:
    """The whole dataset as one step table (in memory), filtered, in step-table order: what `load_steps` gives
    for the converted inputs. For datasets larger than memory use the engines, which read it by parts."""
    manifest = read_manifest(root)
    files = [f.path for p in manifest.partitions for f in p.files]
    table = read_files(root, files)
    before = table.num_rows
    table = (filters or Filters()).apply(table)
    return load_result(root, manifest, table, before - table.num_rows)


# ---------------------------------------------------------------- work units


@dataclass(frozen=True)
class Unit:
    """Files processed together by one task: whole traces, and for `tenant` units every file of one tenant."""

    label: str
    files: tuple[str, ...]
    rows: int


Grouping = Literal["rows", "tenant", "all"]


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _kept(entry: FileEntry, filters: Filters) -> bool:
    """False when `--since`/`--until` select no row of the file (a row without a time never passes them)."""
    if filters.since is None and filters.until is None:
        return True
    if entry.start_min_us is None or entry.start_max_us is None:
        return False
    if filters.since is not None and entry.start_max_us < _micros(_parse_time(filters.since, "--since")):
        return False
    return filters.until is None or entry.start_min_us < _micros(_parse_time(filters.until, "--until"))


def plan_units(
    manifest: Manifest, grouping: Grouping, max_rows: int, filters: Filters | None = None
) -> tuple[list[Unit], int]:
    """Work units in manifest order, and the rows of the files `--since`/`--until` rule out (never read).

    `rows`: consecutive files up to `max_rows` rows per unit (a file is never cut); `tenant`: one unit per
    tenant with all its days; `all`: one unit."""
    groups: dict[str, list[FileEntry]] = {}
    pruned = 0
    for partition in manifest.partitions:
        for entry in partition.files:
            if filters is not None and not _kept(entry, filters):
                pruned += entry.rows
                continue
            if grouping == "tenant":
                key = "tenant " + ("(none)" if partition.tenant is None else partition.tenant)
            else:
                key = "all"
            groups.setdefault(key, []).append(entry)
    units: list[Unit] = []
    for key, entries in groups.items():
        if grouping != "rows":
            units.append(Unit(key, tuple(e.path for e in entries), sum(e.rows for e in entries)))
            continue
        batch: list[FileEntry] = []
        for entry in entries:
            if batch and sum(e.rows for e in batch) + entry.rows > max_rows:
                units.append(_rows_unit(batch))
                batch = []
            batch.append(entry)
        if batch:
            units.append(_rows_unit(batch))
    return units, pruned


def _rows_unit(batch: list[FileEntry]) -> Unit:
    first, last = batch[0].path, batch[-1].path
    label = first if len(batch) == 1 else f"{first} .. {last} ({len(batch)} files)"
    return Unit(label, tuple(e.path for e in batch), sum(e.rows for e in batch))
