#!/usr/bin/env python3
"""Benchmark `costscope simulate`: the joint replay of a policy file on a priced step table (Parquet).

The step tables come from the analyze benchmark corpus (`gen_calls.py`), converted once with
`costscope analyze CALLS.jsonl --output STEPS.parquet`, so that the figures measure the replay and not the
JSON parsing. For each table, two fresh `python -m costscope` children are measured (wall time, peak RSS):

1. `analyze STEPS.parquet --format json`                    (loading and pricing alone: the floor)
2. `simulate STEPS.parquet --policy POLICY --format json`   (the same plus every replay of the policy file:
                                                              each enabled policy alone, then jointly)

The report's call count must equal the table's; the difference of the two wall times is the replay's cost.

    python benchmarks/gen_calls.py --calls 1000000 -o /tmp/bench/calls-1m.jsonl --seed 7
    costscope analyze /tmp/bench/calls-1m.jsonl --no-cache -f json -o /tmp/bench/steps-1m.parquet > /dev/null
    python benchmarks/bench_simulate.py /tmp/bench/steps-1m.parquet /tmp/bench/steps-2m.parquet \\
        --policy sample_traces/policies/all.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import childrun
import orjson
import pyarrow.parquet as pq


def run(args: list[str], timeout: float | None) -> tuple[float, int, dict]:
    cmd = [sys.executable, "-m", "costscope", *args]
    child = childrun.run_child(cmd, timeout=timeout)
    if child.returncode != 0:
        sys.stderr.write(child.stderr.decode(errors="replace"))
        raise SystemExit(f"costscope exited with {child.returncode}: {' '.join(cmd)}")
    return child.wall, child.rss, orjson.loads(child.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="+", type=Path, help="priced step tables (.parquet)")
    parser.add_argument("--policy", required=True, help="policy file to replay")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before a run is killed")
    args = parser.parse_args()
    mib = 1 << 20
    print(f"{'table':<24}{'calls':>12}{'load s':>9}{'load MiB':>10}{'simulate s':>12}{'MiB':>8}{'replay s':>10}")
    for path in args.tables:
        rows = pq.ParquetFile(path).metadata.num_rows
        load_wall, load_rss, analyzed = run(["analyze", str(path), "--format", "json", "--no-cache"], args.timeout)
        wall, rss, report = run(
            ["simulate", str(path), "--policy", args.policy, "--format", "json", "--no-cache"], args.timeout
        )
        calls = report["baseline"]["calls"]
        if calls != analyzed["totals"]["calls"]:
            raise SystemExit(f"{path}: simulate saw {calls} calls, analyze {analyzed['totals']['calls']}")
        print(
            f"{path.name:<24}{rows:>12,}{load_wall:>9.1f}{load_rss / mib:>10,.0f}{wall:>12.1f}{rss / mib:>8,.0f}"
            f"{wall - load_wall:>10.1f}"
        )
        for scenario in report["scenarios"]:
            for r in scenario["runs"]:
                print(
                    f"    {r['technique']:<16} after ${r['cost_after_usd']:,.2f} of ${r['cost_before_usd']:,.2f}"
                    f" (saved {r['saved_pct'] or 0:.1f}%)"
                )


if __name__ == "__main__":
    main()
