"""`analyze` of trace files in memory bounded by chunk sizes, not by the input (`analyze --staged`, and the default
from `STAGED_FROM_BYTES` of input).

The in-memory analyze (`steps.load_steps`) holds every row of the run at once: about 0.6 times the bytes of a Claude
Code log tree at its peak, 2.8 times those of a request log. The staged analyze runs `convert`'s first passes and
writes no dataset:
1. **parse and stage** (`convert.parse_and_stage`): on all cores, `parse_bytes` of input per task; every `chunk_bytes`
   of input the rows go to a temporary directory in buckets by a hash of their trace id, and the deduplication
   index (a 128-bit hash of each response id, its start, whether it reports usage and its bucket) in parts by a hash
   of the response id.
2. **deduplicate** (`staging.Stage.dropped`): `steps.drop_duplicate_responses`' rule over every row of the run, one
   part of the index at a time; what stays in memory is the reading ordinal of each duplicate.
3. **reduce**, one bucket (whole traces, about `bucket_bytes` of input) per task on all cores: its rows ordered
   (`order_steps`), filtered and priced, then reduced to the engines' partial figures (`partials.analyze_part`),
   which this process combines (`engines.analyze_report`) as it does for a dataset's parts.
The report is the in-memory analyze's, byte for byte (the tests hold both to it). The parse cache is not used: each
run parses its inputs once (the run cache still answers a repeated run over unchanged inputs).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import ConfigError
from .io import Expanded
from .pricing import PriceBook
from .steps import Filters

# Staging needs pandas, which the in-memory analyze never imports: imported where used.
if TYPE_CHECKING:
    from .api import AnalyzeOptions
    from .engines.partials import AnalyzePart
    from .report import Report

STAGED_FROM_BYTES = 1 << 30
"""Inputs of at least this many bytes (a gzip file counting 8 times its size) are analyzed staged by default."""
PART_BYTES = PARSE_BYTES = BUCKET_BYTES = 8 << 20
"""Input bytes of a part of a big line-by-line file, of a parse task, and of a bucket (see `convert.ConvertOptions`):
with CHUNK_BYTES, what bounds the staged analyze's memory."""
CHUNK_BYTES = 16 << 20
"""Parsed rows are staged every this many bytes of input."""


def total_bytes(expanded: Expanded) -> int:
    """The input bytes `expanded`'s files stand for, from their sizes and names (stdin counts 0)."""
    total = 0
    for source in expanded.files:
        if source.path is None:
            continue
        size = source.path.stat().st_size
        total += size * 8 if source.path.name.lower().endswith(".gz") else size
    return total


def chosen(expanded: Expanded, options: AnalyzeOptions, rows_needed: str | None = None) -> bool:
    """Whether `analyze` runs staged: `options.staged` when set, else from `STAGED_FROM_BYTES` of input.
    `rows_needed` names an option that needs the whole step table (e.g. `--output`): such a run is in memory, and
    asking for both is a usage error, as is staging stdin."""
    stdin = any(source.path is None for source in expanded.files)
    if options.staged:
        if rows_needed is not None:
            raise ConfigError(f"{rows_needed} needs every row in memory: it cannot run staged", hint="drop --staged")
        if stdin:
            raise ConfigError("stdin cannot be analyzed staged", hint="save it to a file, or drop --staged")
        return True
    if options.staged is False or rows_needed is not None or stdin:
        return False
    return total_bytes(expanded) >= STAGED_FROM_BYTES


@dataclass(frozen=True)
class BucketTask:
    directory: Path
    bucket: int
    dropped: np.ndarray
    filters: Filters
    book: PriceBook
    by: tuple[str, ...]
    top: int


DUPLICATE_EXAMPLES = 5
"""Duplicates listed by `file:line` (all are counted): the report lists the first five read."""


def analyze_bucket(task: BucketTask) -> tuple[AnalyzePart | None, list[tuple[int, str]]]:
    """One bucket's partial figures (None when no row went to it) and the first duplicates dropped from it, by
    reading ordinal (its `dropped` says how many)."""
    from .engines import partials
    from .staging import bucket_steps

    table, examples = bucket_steps(task.directory, task.bucket, task.dropped)
    examples = sorted(examples)[:DUPLICATE_EXAMPLES]
    if table is None:
        return None, examples
    priced, read = partials.price_rows(table, f"bucket {task.bucket}", task.filters, task.book)
    return partials.analyze_part(priced, read, task.by, task.top), examples


def analyze(
    expanded: Expanded,
    options: AnalyzeOptions,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    bucket_bytes: int = BUCKET_BYTES,
) -> tuple[Report, list[str] | None]:
    """The report `api.analyze` gives for `expanded`'s files, and the paths it depends on (for the run cache);
    `workers` processes (default: one per core), buckets of about `bucket_bytes` of input each."""
    from .convert import ConvertOptions, bucket_count, input_bytes, parse_and_stage
    from .engines import analyze_report
    from .forked import pool_map
    from .staging import Stage
    from .steps import read_result

    book = PriceBook.from_file(options.prices)
    limits = ConvertOptions(options.format_in, options.strict, workers, PART_BYTES, PARSE_BYTES, CHUNK_BYTES,
                            bucket_bytes)  # fmt: skip
    cores = workers or os.cpu_count() or 1
    files = [source for source in expanded.files if source.path is not None]
    sizes = [input_bytes(source) for source in files]
    with tempfile.TemporaryDirectory(prefix="costscope-staged-") as directory:
        stage = Stage(Path(directory) / "rows", bucket_count(sum(sizes), limits, cores), overlaps=False)
        results = parse_and_stage(files, sizes, stage, limits, cores, progress) if files else []
        loaded = read_result(results, expanded, options.strict)
        dropped = stage.dropped()
        PriceBook.preload()  # once here, not in every bucket's process
        tasks = [
            BucketTask(stage.directory, b, dropped[b], options.filters, book, options.by, options.top)
            for b in range(stage.buckets)
        ]
        parts: list[AnalyzePart] = []
        examples: list[tuple[int, str]] = []
        for part, dropped_here in pool_map(analyze_bucket, tasks, cores):
            examples.extend(dropped_here)
            if part is not None:
                parts.append(part)
    loaded.duplicates = [text for _, text in sorted(examples)[:DUPLICATE_EXAMPLES]]
    loaded.duplicates_dropped = sum(len(seqs) for seqs in dropped)
    loaded.filtered_out = sum(p.read.filtered_out for p in parts)
    return analyze_report(parts, loaded, options, book), loaded.watched
