"""The staging passes of `costscope convert` (see `convert.py`) and of the staged analyze (`staged.py`): rows on disk
in buckets by trace id with a deduplication index on disk in parts by response id, then each bucket settled
(deduplicated, ordered, priced, partitioned) and each partition's new rows written as sorted files. Bucket and
partition jobs run in forked processes (`forked.pool_map`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .dataset import ORDER, UNDATED, FileEntry, partition_dir
from .pricing import PriceBook, price_table
from .schema import STEP_SCHEMA, Kind, conform
from .steps import order_steps

KEY_A, KEY_B = "costscope-hash-a", "costscope-hash-b"
"""Two independent SipHash keys: a response id is identified by both hashes (128 bits)."""


def hashes(column: pa.ChunkedArray, key: str) -> tuple[np.ndarray, np.ndarray]:
    """A 64-bit SipHash of each value (each distinct value hashed once) and the mask of non-null values."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    valid = encoded.is_valid().to_numpy(zero_copy_only=False)
    values = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
    hashed = pd.util.hash_array(values, hash_key=key, categorize=False) if len(values) else np.zeros(1, np.uint64)
    codes = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)
    out: np.ndarray = hashed[codes]
    return out, valid


_IPC = pa.ipc.IpcWriteOptions(compression="lz4")


def _write_parts(path: Path, table: pa.Table, part: np.ndarray, parts: int) -> None:
    """`table` as one Arrow file whose batch k holds the rows of part k (empty or not), in their order: a file per
    chunk of rows, not one per chunk and part (whose number would grow as the square of the input)."""
    order = np.argsort(part, kind="stable")
    ordered = table.take(pa.array(order)).combine_chunks()
    offsets = np.concatenate([[0], np.cumsum(np.bincount(part, minlength=parts))]).tolist()
    batches = ordered.to_batches()
    rows = batches[0] if batches else pa.record_batch([pa.array([], f.type) for f in table.schema], schema=table.schema)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema, options=_IPC) as writer:
        for k in range(parts):
            writer.write_batch(rows.slice(offsets[k], offsets[k + 1] - offsets[k]))


def _read_part(directory: Path, prefix: str, part: int) -> pa.Table | None:
    """Part `part` of every `_write_parts` file named `{prefix}*.arrow` in `directory`, in file order (None: no row)."""
    batches = []
    for path in sorted(directory.glob(f"{prefix}*.arrow")) if directory.is_dir() else []:
        with pa.memory_map(str(path)) as source:
            batch = pa.ipc.open_file(source).get_batch(part)
        if batch.num_rows:
            batches.append(batch)
    return pa.Table.from_batches(batches) if batches else None


class Stage:
    """Rows on disk in buckets by trace id, and the index deduplication needs on disk too, in parts by a hash of the
    response id (one Arrow file of each per chunk of rows, with one batch per bucket or part: `_write_parts`). In
    memory: the index of one part at a time, while the duplicates are found."""

    def __init__(self, directory: Path, buckets: int, overlaps: bool = True) -> None:
        """`overlaps`: also keep the distinct trace and response id hashes, which `convert` looks up among the rows
        it stored before (8 bytes more per row)."""
        self.directory = directory
        self.buckets = buckets
        self.overlaps = overlaps
        self.chunks = 0
        self.next_seq = 0
        self.trace_hashes: list[np.ndarray] = []
        self.record_hashes: list[np.ndarray] = []

    def add(self, table: pa.Table, first_seq: int | None = None) -> None:
        """Stage rows read in this order (`first_seq`: their first reading ordinal; default: after the last)."""
        n = table.num_rows
        if n == 0:
            return
        start = self.next_seq if first_seq is None else first_seq
        if first_seq is None:
            self.next_seq += n
        seq = np.arange(start, start + n, dtype=np.int64)
        table = conform(table)
        own = pc.binary_join_element_wise(table["source"], pc.cast(table["line"], pa.string()), ":")
        trace = pc.coalesce(table["trace_id"], own)
        table = table.set_column(table.schema.get_field_index("trace_id"), "trace_id", trace)
        trace_hash, _ = hashes(trace, KEY_A)
        if self.overlaps:
            self.trace_hashes.append(np.unique(trace_hash))
        record_a, has_record = hashes(table["record_id"], KEY_A)
        record_b, _ = hashes(table["record_id"], KEY_B)
        if self.overlaps:
            self.record_hashes.append(np.unique(record_a[has_record]))
        starts = pc.fill_null(pc.cast(table["start"], pa.int64()), np.iinfo(np.int64).max).to_numpy()
        no_usage = pc.is_null(table["usage_source"]).to_numpy(zero_copy_only=False)
        bucket = (trace_hash % np.uint64(self.buckets)).astype(np.int64)
        index = pa.table(
            {
                "a": record_a[has_record],
                "b": record_b[has_record],
                "start": starts[has_record],
                "no_usage": no_usage[has_record],
                "seq": seq[has_record],
                "bucket": bucket[has_record],
            }
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        part = (record_a[has_record] % np.uint64(self.buckets)).astype(np.int64)
        _write_parts(self.directory / f"i{self.chunks:05d}.arrow", index, part, self.buckets)
        _write_parts(self.directory / f"c{self.chunks:05d}.arrow", table.append_column("_seq", pa.array(seq)), bucket,
                     self.buckets)  # fmt: skip
        self.chunks += 1

    def dropped(self) -> list[np.ndarray]:
        """Per bucket, the reading ordinals (sorted) of its rows that repeat a response id and are not the copy
        kept (a bucket's task needs only its own). Every copy of a response id is in the same part of the index,
        read one part at a time."""
        found: list[list[np.ndarray]] = [[] for _ in range(self.buckets)]
        for part in range(self.buckets):
            index = _read_part(self.directory, "i", part)
            if index is None:
                continue
            a, b, start, no_usage, seq, bucket = (index[name].to_numpy() for name in index.column_names)
            order = np.lexsort((seq, start, no_usage, b, a))
            first = np.ones(len(order), dtype=bool)
            first[1:] = (a[order][1:] != a[order][:-1]) | (b[order][1:] != b[order][:-1])
            gone = order[~first]
            gone = gone[np.argsort(bucket[gone], kind="stable")]
            cuts = np.searchsorted(bucket[gone], np.arange(self.buckets + 1))
            for k in np.flatnonzero(np.diff(cuts)).tolist():
                found[k].append(seq[gone[cuts[k] : cuts[k + 1]]])
        return [np.sort(np.concatenate(seqs)) if seqs else np.zeros(0, np.int64) for seqs in found]


@dataclass(frozen=True)
class BucketJob:
    directory: Path
    bucket: int
    dropped: np.ndarray
    """The reading ordinals of this bucket's rows to drop (`Stage.dropped`)."""
    out: Path


@dataclass(frozen=True)
class Settled:
    pieces: list[tuple[str, str | None, str]]
    """(day, tenant, staged file) of each partition this bucket has rows for."""
    examples: list[tuple[int, str]]
    """(reading ordinal, `file:line`) of the duplicates dropped."""


def settle(job: BucketJob) -> Settled:
    """Deduplicate, order, number, price and partition one bucket's rows (whole traces)."""
    table, examples = bucket_steps(job.directory, job.bucket, job.dropped)
    if table is None:
        return Settled([], [])
    table = price_table(table, PriceBook()).table
    day, tenant = _trace_keys(table)
    labels = pc.binary_join_element_wise(day, pc.fill_null(tenant, "\x00"), "\x1f")
    encoded = pc.dictionary_encode(labels).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    pieces = []
    for code, label in enumerate(encoded.dictionary.to_pylist()):
        key_day, key_tenant = label.split("\x1f", 1)
        partition = (key_day, None if key_tenant == "\x00" else key_tenant)
        path = job.out / partition_dir(*partition) / f"b{job.bucket:04d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.filter(pa.array(codes == code)), path, compression="lz4")
        pieces.append((*partition, str(path)))
    return Settled(pieces, examples)


def bucket_steps(directory: Path, bucket: int, dropped: np.ndarray) -> tuple[pa.Table | None, list[tuple[int, str]]]:
    """One bucket's rows (whole traces) without the `dropped` reading ordinals, as a step table (`order_steps`), and
    the (reading ordinal, `file:line`) of the rows dropped; None for a bucket no row went to."""
    table = _read_part(directory, "c", bucket)
    if table is None:
        return None, []
    seq = table["_seq"].to_numpy()
    drop = np.isin(seq, dropped)
    gone = table.filter(pa.array(drop)).select(["source", "line"]).to_pylist()
    examples = [(int(s), f"{r['source']}:{r['line']}") for s, r in zip(seq[drop].tolist(), gone, strict=True)]
    table = table.filter(pa.array(~drop))
    table = table.take(pa.array(np.argsort(seq[~drop], kind="stable"))).drop_columns(["_seq"])
    return order_steps(conform(table)), examples


def _trace_keys(table: pa.Table) -> tuple[pa.Array, pa.Array]:
    """Per row: the day of its trace's earliest row (`undated` without any) and its trace's smallest tenant."""
    grouped = table.group_by(["trace_id"], use_threads=False).aggregate([("start", "min"), ("tenant", "min")])
    where = pc.index_in(table["trace_id"], value_set=grouped["trace_id"])
    day = pc.fill_null(pc.strftime(grouped["start_min"], format="%Y-%m-%d"), UNDATED)
    return pc.take(day, where), pc.take(grouped["tenant_min"], where)


@dataclass(frozen=True)
class CompactJob:
    root: Path
    directory: str
    pieces: tuple[str, ...]
    run: int
    file_rows: int


def compact(job: CompactJob) -> list[FileEntry]:
    """Write one partition's new rows (whole traces) as sorted files of at most `file_rows` rows."""
    table = pa.concat_tables([pq.read_table(p) for p in job.pieces]).sort_by(ORDER).combine_chunks()
    codes = pc.dictionary_encode(table["trace_id"]).combine_chunks().indices.to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.zeros(0, np.int64)
    cuts = [0]
    for begin in starts.tolist():
        if begin - cuts[-1] >= job.file_rows:
            cuts.append(begin)
    cuts.append(table.num_rows)
    (job.root / job.directory).mkdir(parents=True, exist_ok=True)
    entries = []
    for k, (begin, end) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        part = table.slice(begin, end - begin)
        name = f"{job.directory}/part-{job.run:04d}-{k:04d}.parquet"
        pq.write_table(part.replace_schema_metadata(STEP_SCHEMA.metadata), job.root / name, compression="zstd")
        bounds = pc.min_max(pc.cast(part["start"], pa.int64())).as_py()
        entries.append(
            FileEntry(
                path=name,
                rows=part.num_rows,
                calls=int(pc.sum(pc.equal(part["kind"], Kind.LLM.value)).as_py() or 0),
                traces=len(pc.unique(part["trace_id"])),
                mixed_tenant_traces=_mixed_tenants(part),
                start_min_us=bounds["min"],
                start_max_us=bounds["max"],
            )
        )
    return entries


def _mixed_tenants(table: pa.Table) -> int:
    grouped = table.group_by(["trace_id"], use_threads=False).aggregate([("tenant", "count_distinct")])
    return int(pc.sum(pc.greater(grouped["tenant_count_distinct"], 1)).as_py() or 0)
