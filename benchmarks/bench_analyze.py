#!/usr/bin/env python3
"""Benchmark `costscope analyze` end to end on a call log: wall time, throughput and peak memory.

Three measurements, each of a fresh `python -m costscope` child process (interpreter start-up included):

1. `analyze FILE --format json --by model,agent,day`            (JSON Lines parse + price + report; --repeat N)
2. the same with `--output STEPS.parquet`                        (plus writing the priced step table; once)
3. `analyze STEPS.parquet --format json --by model,agent,day`   (re-analysis from Parquet, the fast path; --repeat N)

Peak RSS is the child's own `ru_maxrss` from `os.wait4`, so every run is measured separately. Each run's
JSON report is checked: `totals.calls` must equal the number of lines in FILE (and no record may be skipped),
and the Parquet re-analysis must reproduce the same call count and total cost.

    python benchmarks/bench_analyze.py /tmp/bench/calls-1m.jsonl --parquet /tmp/bench/steps.parquet
"""

from __future__ import annotations

import argparse
import math
import os
import pstats
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import childrun
import orjson

BY = "model,agent,day"
# ru_maxrss is KiB on Linux, bytes on macOS.


@dataclass
class Run:
    label: str
    calls: int
    input_bytes: int
    wall_s: float
    peak_rss_bytes: int
    report: dict

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.wall_s if self.wall_s else math.inf


def count_lines(path: Path) -> int:
    """Non-blank lines of a JSON Lines file, read in 16 MiB blocks."""
    lines = 0
    last = b"\n"
    with open(path, "rb") as fh:
        while block := fh.read(16 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def run_child(args: list[str], timeout: float | None) -> tuple[float, int, bytes, bytes]:
    """Run `python -m costscope ARGS`; (wall seconds, peak RSS bytes, stdout, stderr) of that child alone."""
    cmd = [sys.executable, "-m", "costscope", *args]
    child = childrun.run_child(cmd, timeout=timeout)
    if child.returncode != 0:
        sys.stderr.write(child.stderr.decode(errors="replace"))
        raise SystemExit(f"costscope exited with {child.returncode}: {' '.join(cmd)}")
    return child.wall, child.rss, child.stdout, child.stderr


def measure(label: str, args: list[str], input_path: Path, expected_calls: int, timeout: float | None) -> Run:
    print(f"  {label}: costscope {' '.join(args)}", flush=True)
    wall, rss, stdout, stderr = run_child(args, timeout)
    report = orjson.loads(stdout)
    calls = report["totals"]["calls"]
    if calls != expected_calls:
        raise SystemExit(f"{label}: totals.calls is {calls}, expected {expected_calls}")
    skipped = report["inputs"]["records_skipped"]
    if skipped:
        raise SystemExit(f"{label}: {skipped} records skipped: {report['inputs']['skipped_reasons']}")
    for line in stderr.decode(errors="replace").splitlines():
        print(f"    stderr: {line}")
    return Run(label, calls, input_path.stat().st_size, wall, rss, report)


def profile(args: list[str], out: Path, top: int) -> None:
    """One run under cProfile; print the `top` functions by cumulative time."""
    cmd = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "costscope", *args]
    print(f"\n  profile: {' '.join(cmd)}", flush=True)
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"\nprofile ({time.perf_counter() - started:.1f} s under cProfile), top {top} by cumulative time:")
    pstats.Stats(str(out)).strip_dirs().sort_stats("cumulative").print_stats(top)


def fmt_size(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def print_table(runs: list[Run]) -> None:
    header = ("run", "calls", "file size", "wall s", "calls/s", "peak RSS MiB")
    rows = [
        (
            r.label,
            f"{r.calls:,}",
            fmt_size(r.input_bytes),
            f"{r.wall_s:.2f}",
            f"{r.calls_per_s:,.0f}",
            f"{r.peak_rss_bytes / 2**20:,.0f}",
        )
        for r in runs
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True)))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="call log written by gen_calls.py")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions of the JSONL and Parquet analyses")
    parser.add_argument("--by", default=BY, help=f"--by keys passed to costscope (default {BY})")
    parser.add_argument("--parquet", type=Path, help="step table to write (default: FILE stem + .steps.parquet)")
    parser.add_argument("--no-parquet", action="store_true", help="skip the --output / Parquet re-analysis runs")
    parser.add_argument("--expect-calls", type=int, help="expected totals.calls (default: lines in FILE)")
    parser.add_argument("--profile", type=Path, help="also run once under cProfile, saving the stats here")
    parser.add_argument("--profile-top", type=int, default=15, help="profile lines to print (default 15)")
    parser.add_argument("--timeout", type=float, help="kill a costscope run after this many seconds")
    parser.add_argument("--json", type=Path, help="also write the measurements as JSON here")
    args = parser.parse_args(argv)

    path: Path = args.file
    if not path.is_file():
        parser.error(f"no such file: {path}")
    lines = count_lines(path)
    expected = args.expect_calls if args.expect_calls is not None else lines
    common = ["--format", "json", "--by", args.by, "--no-cache"]
    print(
        f"{path}: {lines:,} lines, {fmt_size(path.stat().st_size)}; python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )

    wall, rss, _, _ = run_child(["--version"], args.timeout)
    print(f"  start-up baseline: costscope --version takes {wall:.2f} s, peak RSS {rss / 2**20:,.0f} MiB", flush=True)
    runs: list[Run] = []
    for i in range(args.repeat):
        runs.append(measure(f"jsonl #{i + 1}", ["analyze", str(path), *common], path, expected, args.timeout))
    if not args.no_parquet:
        steps = args.parquet or path.with_name(path.stem + ".steps.parquet")
        steps.parent.mkdir(parents=True, exist_ok=True)
        steps.unlink(missing_ok=True)
        write = measure(
            "jsonl + --output parquet",
            ["analyze", str(path), *common, "--output", str(steps)],
            path,
            expected,
            args.timeout,
        )
        runs.append(write)
        for i in range(args.repeat):
            run = measure(
                f"parquet re-analysis #{i + 1}", ["analyze", str(steps), *common], steps, expected, args.timeout
            )
            runs.append(run)
            want, got = write.report["totals"]["cost_usd"], run.report["totals"]["cost_usd"]
            if not math.isclose(want or 0.0, got or 0.0, rel_tol=1e-9):
                raise SystemExit(f"Parquet re-analysis cost {got} differs from the JSONL analysis {want}")
    print()
    print_table(runs)
    first = runs[0].report["totals"]
    print(
        f"\ncheck: totals.calls = {first['calls']:,} (expected {expected:,}) in every run; records_skipped = 0; "
        f"total cost ${first['cost_usd']:,.2f}"
    )

    if args.json:
        payload = [
            {
                "run": r.label,
                "calls": r.calls,
                "input_bytes": r.input_bytes,
                "wall_s": round(r.wall_s, 3),
                "calls_per_s": round(r.calls_per_s),
                "peak_rss_mib": round(r.peak_rss_bytes / 2**20, 1),
            }
            for r in runs
        ]
        args.json.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    if args.profile:
        profile(["analyze", str(path), *common], args.profile, args.profile_top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
