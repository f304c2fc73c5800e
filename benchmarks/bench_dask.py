#!/usr/bin/env python3
"""Benchmark a step-table dataset on the local and the dask engine: convert, analyze, and a joint simulate.

For one call log (`gen_calls.py`) it measures, each in a fresh child process:

1. `convert CALLS.jsonl -o DATASET/`                      (parse, deduplicate, partition; forked parse workers)
2. `analyze DATASET --by model,agent,day` on the local engine (one process, one unit after the other)
3. the same on the dask engine, against a cluster started for the run: one `dask scheduler` process and
   `dask worker --nworkers W --nthreads 1` (one process per worker, each under a nanny process)
4. `simulate DATASET --policy POLICY` on the local engine
5. the same on the dask engine (a fresh cluster)

and prints wall time, seconds per million calls, the peak RSS (VmHWM) of every process: the client (the
child), the scheduler, each worker and each nanny, and the machine's 1-minute load average when the run started
(other work on the machine slows every figure). The dask runs must give byte-identical JSON to the local runs
(the script exits 1 otherwise). Cluster start-up is not part of the dask times (costscope connects to a running
cluster with `--scheduler`), and is printed apart.

    python benchmarks/gen_calls.py --calls 10000000 -o /tmp/bench/calls-10m.jsonl --seed 7
    python benchmarks/bench_dask.py /tmp/bench/calls-10m.jsonl --dataset /tmp/bench/ds-10m \\
        --policy benchmarks/policies/joint.yaml --json /tmp/bench/dask-10m.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import childrun

MIB = 1 << 20


def _vmhwm() -> int:
    """Peak resident set size of this process (bytes), from /proc (Linux). Self-contained: it is sent by value to
    the dask scheduler and workers."""
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


# ---------------------------------------------------------------- the child: one measured step


def child(args: argparse.Namespace) -> None:
    from costscope import engines
    from costscope.api import AnalyzeOptions
    from costscope.convert import ConvertOptions, convert

    started = time.perf_counter()
    peaks: dict[str, Any] = {}
    if args.child == "convert":
        result = convert([args.calls], args.dataset, ConvertOptions())
        out: Any = {"rows": result.manifest.rows, "calls": result.manifest.calls, "traces": result.manifest.traces,
                    "partitions": len(result.manifest.partitions),
                    "files": sum(len(p.files) for p in result.manifest.partitions)}  # fmt: skip
    else:
        options = AnalyzeOptions(by=("model", "agent", "day")) if args.child == "analyze" else AnalyzeOptions()
        with engines.open_engine(args.engine, args.scheduler) as engine:
            if args.child == "analyze":
                out = engines.analyze_dataset(args.dataset, options, engine).to_dict()
            else:
                out = engines.simulate_dataset(args.dataset, [args.policy], options, engine).to_dict()
            if args.engine == "dask":
                client = engine.client  # type: ignore[attr-defined]
                peaks["scheduler"] = client.run_on_scheduler(_vmhwm)
                peaks["workers"] = sorted(client.run(_vmhwm).values())
                peaks["nannies"] = sorted(client.run(_vmhwm, nanny=True).values())
    peaks["client"] = _vmhwm()
    Path(args.out).write_bytes(json.dumps(out, sort_keys=True).encode())
    print(json.dumps({"seconds": time.perf_counter() - started, "peaks": peaks}))


# ---------------------------------------------------------------- the parent


class Cluster:
    """A scheduler and W single-threaded workers, as separate processes; stopped by the pids started here."""

    def __init__(self, workers: int, port: int) -> None:
        env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
        bin_dir = Path(sys.executable).parent
        started = time.perf_counter()
        self.address = f"tcp://127.0.0.1:{port}"
        self.scheduler = subprocess.Popen(
            [str(bin_dir / "dask"), "scheduler", "--port", str(port), "--no-dashboard"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(2)
        self.workers = subprocess.Popen(
            [str(bin_dir / "dask"), "worker", self.address, "--nworkers", str(workers), "--nthreads", "1",
             "--no-dashboard", "--memory-limit", "auto"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)
        self.startup = time.perf_counter() - started

    def stop(self) -> None:
        for proc in (self.workers, self.scheduler):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def measure(step: str, engine: str, args: argparse.Namespace, scheduler: str | None) -> dict[str, Any]:
    out = Path(args.work) / f"{step}-{engine}.json"
    cmd = [sys.executable, __file__, args.calls, "--child", step, "--engine", engine, "--dataset", args.dataset,
           "--policy", args.policy, "--out", str(out)]  # fmt: skip
    if scheduler:
        cmd += ["--scheduler", scheduler]
    load = os.getloadavg()[0]
    run = childrun.run_child(cmd, timeout=args.timeout)
    if run.returncode != 0:
        sys.stderr.write(run.stderr.decode(errors="replace")[-4000:])
        raise SystemExit(f"{step} on {engine} failed with exit code {run.returncode}")
    reported = json.loads(run.stdout.decode().strip().splitlines()[-1])
    peaks = reported["peaks"]
    peaks["client"] = max(peaks["client"], run.rss)
    return {
        "step": step,
        "engine": engine,
        "wall": run.wall,
        "cpu": run.cpu,
        "peaks": peaks,
        "out": str(out),
        "load": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("calls", nargs="?", help="call log (JSON Lines) to convert")
    parser.add_argument("--dataset", required=True, help="dataset directory (converted unless --skip-convert)")
    parser.add_argument("--policy", required=True, help="policy file of the simulate runs")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="dask workers (default: cores)")
    parser.add_argument("--port", type=int, default=8797, help="port of the benchmark's dask scheduler")
    parser.add_argument("--skip-convert", action="store_true", help="use the dataset as it is")
    parser.add_argument("--steps", default="analyze,simulate", help="comma-separated: analyze, simulate")
    parser.add_argument("--work", default="/tmp/bench", help="where the reports of the runs are written")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before a run is killed")
    parser.add_argument("--json", help="also write the measurements here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="local", help=argparse.SUPPRESS)
    parser.add_argument("--scheduler", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    args.calls = args.calls or ""
    Path(args.work).mkdir(parents=True, exist_ok=True)
    runs = []
    if not args.skip_convert:
        runs.append(measure("convert", "local", args, None))
    manifest = json.loads((Path(args.dataset) / "costscope-dataset.json").read_text(encoding="utf-8"))
    calls = manifest["calls"]
    startups = []
    for step in [s.strip() for s in args.steps.split(",") if s.strip()]:
        runs.append(measure(step, "local", args, None))
        cluster = Cluster(args.workers, args.port)
        startups.append(cluster.startup)
        try:
            runs.append(measure(step, "dask", args, cluster.address))
        finally:
            cluster.stop()
        local, dask = (Path(r["out"]).read_bytes() for r in runs[-2:])
        runs[-1]["identical"] = local == dask
    startup = ", ".join(f"{s:.1f}" for s in startups)
    print(f"dataset {args.dataset}: {calls:,} calls, {manifest['traces']:,} traces, "
          f"{len(manifest['partitions']):,} partitions; cluster start-up {startup} s")  # fmt: skip
    print(f"{'step':<10}{'engine':<8}{'wall s':>9}{'s/M calls':>11}{'client MiB':>12}{'sched MiB':>11}"
          f"{'worker MiB':>22}{'nanny MiB':>16}{'load':>6}  same as local")  # fmt: skip
    failed = False
    for r in runs:
        p = r["peaks"]
        workers = "/".join(f"{w / MIB:,.0f}" for w in p.get("workers", [])) or "-"
        nannies = "/".join(f"{n / MIB:,.0f}" for n in p.get("nannies", [])) or "-"
        sched = f"{p['scheduler'] / MIB:,.0f}" if "scheduler" in p else "-"
        same = {True: "yes", False: "NO"}.get(r.get("identical"), "")
        failed |= r.get("identical") is False
        print(f"{r['step']:<10}{r['engine']:<8}{r['wall']:>9.1f}{r['wall'] / calls * 1e6:>11.1f}"
              f"{p['client'] / MIB:>12,.0f}{sched:>11}{workers:>22}{nannies:>16}{r['load']:>6.1f}  {same}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"calls": calls, "startup": startups, "runs": runs}, indent=2))
    if failed:
        raise SystemExit("the dask engine's report differs from the local engine's")


if __name__ == "__main__":
    main()
