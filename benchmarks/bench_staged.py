#!/usr/bin/env python3
"""Memory of `costscope analyze --staged` against `--in-memory` as the input grows: bounded, or not.

For each input (a file or a directory), each mode runs once as a fresh `costscope` child process:

    costscope analyze INPUT --format json --no-cache --staged | --in-memory

and is measured three ways: wall time; the peak RSS of its largest process (`ru_maxrss` from `os.wait4`, which on
Linux covers the children it waited for, each on its own); and the peak of the proportional set size (PSS) summed
over the process and its worker processes, sampled from `/proc/PID/smaps_rollup` every 20 ms. The PSS sum is the
memory the whole run holds at once: forked workers share their parent's pages, and PSS counts a shared page once,
split between the processes sharing it. The two reports of an input must be byte for byte the same.

    python benchmarks/gen_calls.py --calls 300000 --seed 7 -o /tmp/bench/calls-300k.jsonl
    python benchmarks/bench_staged.py /tmp/bench/calls-100k.jsonl /tmp/bench/calls-300k.jsonl /tmp/bench/calls-1m.jsonl
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MODES = ("--staged", "--in-memory")


@dataclass(frozen=True)
class Measured:
    wall: float
    largest_rss: int
    """Bytes: the largest single process's peak RSS."""
    tree_pss: int
    """Bytes: the peak of the PSS summed over the process tree."""
    stdout: bytes
    returncode: int
    stderr: bytes


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            return [int(c) for c in fh.read().split()]
    except OSError:
        return []


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_pss(pid: int) -> int:
    """PSS of `pid` and all its descendants now, in bytes."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += _pss(current)
        todo += _children(current)
    return total


def measure(cmd: list[str]) -> Measured:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_pss(proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        out.seek(0)
        err.seek(0)
        return Measured(wall, usage.ru_maxrss * 1024, peak, out.read(), os.waitstatus_to_exitcode(status), err.read())


def input_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=Path, help="trace files or directories, smallest first")
    parser.add_argument("--costscope", default=shutil.which("costscope") or "costscope", help="the program to run")
    parser.add_argument("--staged-only", action="store_true", help="measure only --staged (no comparison)")
    args = parser.parse_args()
    mib = 1 << 20
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; costscope = {args.costscope}")
    print(f"{'input':<28} {'MiB':>7} {'mode':<12} {'wall s':>7} {'largest MiB':>12} {'all MiB':>8}")
    failed = False
    for path in args.inputs:
        reports = []
        for mode in MODES[:1] if args.staged_only else MODES:
            run = measure([args.costscope, "analyze", str(path), "--format", "json", "--no-cache", mode])
            if run.returncode != 0:
                print(run.stderr.decode(errors="replace"), file=sys.stderr)
                failed = True
            reports.append(run.stdout)
            print(f"{path.name:<28} {input_bytes(path) / mib:>7.0f} {mode[2:]:<12} {run.wall:>7.2f} "
                  f"{run.largest_rss / mib:>12.0f} {run.tree_pss / mib:>8.0f}", flush=True)  # fmt: skip
        if len(reports) == 2:
            same = reports[0] == reports[1]
            failed |= not same
            print(f"{'':<28} reports byte for byte the same: {'yes' if same else 'NO'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
