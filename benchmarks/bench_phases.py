"""Time the phases of a cold `analyze` in one process: imports, walk, parse (parallel workers, no cache),
dedupe and order, pricing, report; with the peak RSS after each.

    python benchmarks/bench_phases.py /tmp/bench/claude-tree/projects [--by model]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

START = time.perf_counter()
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")  # as the `costscope` program does (`launch.py`)


def peak_mib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="trace files or directories")
    parser.add_argument("--by", default="model", help="group keys of the report (comma-separated)")
    args = parser.parse_args()

    from costscope import api, ingest, steps
    from costscope.launch import return_freed_memory
    from costscope.nopandas import skip_pandas_probe

    return_freed_memory()  # as the `costscope` program does, and for an analyze without findings:
    skip_pandas_probe()
    from costscope import io as inputs
    from costscope.parsers import Skips
    from costscope.pricing import PriceBook, price_table

    rows: list[tuple[str, float, int]] = []
    last = START

    def mark(phase: str) -> None:
        nonlocal last
        now = time.perf_counter()
        rows.append((phase, now - last, peak_mib()))
        last = now

    mark("imports")
    expanded = inputs.expand_paths(args.paths)
    mark(f"walk ({len(expanded.files):,} files)")
    # the built-in prices load while the workers parse, as `api.load_priced_steps` has them
    parsed = ingest.parse_files(
        expanded.files, format_in=None, strict=False, cache_dir=None, meanwhile=PriceBook.preload
    )
    mark(f"parse ({parsed.table.num_rows:,} rows)")
    keep, _ = steps.duplicate_responses(parsed.table)
    ordered = steps.ordered_columns(parsed.table, keep)  # as `steps.load_steps` does
    del parsed
    table = steps.decoded_table(ordered)
    mark("dedupe and order")
    book = PriceBook.from_file(None)
    pricing = price_table(table, book)
    mark("price")
    priced = api.PricedSteps(steps.LoadResult(pricing.table, [], [], Skips()), pricing, book)
    report = api.build_report(priced, api.AnalyzeOptions(by=tuple(args.by.split(","))))
    mark(f"report ({report.totals['calls']:,} calls)")
    width = max(len(phase) for phase, _, _ in rows)
    print(f"{'phase':{width}}  wall s  peak RSS MiB")
    for phase, seconds, peak in rows:
        print(f"{phase:{width}}  {seconds:6.2f}  {peak:12,}")


if __name__ == "__main__":
    main()
