#!/usr/bin/env python3
"""Benchmark costscope against ccusage on a Claude Code log tree: wall time, peak memory and token totals.

Five measurements in one run, each a fresh child process (start-up included), with `CLAUDE_CONFIG_DIR=ROOT`:

1. costscope cold      `python -m costscope analyze --claude -f json`, COSTSCOPE_CACHE_DIR = a new empty dir
2. costscope warm      the same again (the parse cache from run 1 is reused)
3. costscope no-cache  the same with `--no-cache`
4. ccusage@18          `ccusage daily --offline --json`
5. ccusage@20          `ccusage claude daily --offline --json` (a Node wrapper that runs a native binary;
                       the native binary is also timed on its own when it is found beside the wrapper)

Peak RSS is the child's `ru_maxrss` from `os.wait4`; on Linux it covers the children the child waited for, so a
wrapper's figure is the larger of the wrapper and the program it runs. The token totals -- uncached input,
output, cache creation, cache read -- of every run must equal costscope's cold run (and, if ROOT holds the
`bench-manifest.json` that gen_claude_tree.py writes, its true totals); each difference is printed and the
script exits with status 1 if there is any. Costs are printed too (they may differ: ccusage has its own prices).

`--repeat N` runs every measurement N times (interleaved) and shows the best wall time. The warm run is checked
to have hit the cache (costscope's cache key includes a hash of its parser code, so editing costscope between
the cold and warm runs turns the warm run into a cold one; the script warns). `--profile OUT.prof` finally
runs a cold costscope analysis in one process under cProfile and prints the hotspots.

    python benchmarks/bench_ccusage.py /tmp/bench/claude-tree \\
        --ccusage18 /tmp/ccusage18/node_modules/.bin/ccusage --ccusage20 /tmp/ccusage20/node_modules/.bin/ccusage
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import childrun
import orjson

# ru_maxrss is KiB on Linux, bytes on macOS.
MANIFEST = "bench-manifest.json"
TOKENS = ("input", "output", "cache_creation", "cache_read")
TOKEN_LABELS = {
    "input": "input (uncached)",
    "output": "output",
    "cache_creation": "cache creation",
    "cache_read": "cache read",
}
COSTSCOPE_KEYS = {
    "input": "uncached_input_tokens",
    "output": "output_tokens",
    "cache_creation": "cache_write_tokens",
    "cache_read": "cache_read_tokens",
}
CCUSAGE_KEYS = {
    "input": "inputTokens",
    "output": "outputTokens",
    "cache_creation": "cacheCreationTokens",
    "cache_read": "cacheReadTokens",
}
# Anthropic list prices, USD per million tokens: input, output, cache read. Cache writes: 5m = 1.25x input,
# 1h = 2x input (FORMATS.md §1). Only used for the manifest's reference cost.
LIST_PRICES = {
    "claude-sonnet-4-5-20250929": (3.0, 15.0, 0.30),
    "claude-opus-4-5-20251101": (5.0, 25.0, 0.50),
    "claude-haiku-4-5-20251001": (1.0, 5.0, 0.10),
}
DEFAULT_CCUSAGE18 = "/tmp/ccusage18/node_modules/.bin/ccusage"
DEFAULT_CCUSAGE20 = "/tmp/ccusage20/node_modules/.bin/ccusage"


@dataclass
class Run:
    label: str
    command: list[str]
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    tokens: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None
    note: str = ""
    matches: bool | None = None
    stable: bool = True
    """Every repetition reported the same token totals and cost."""

    @property
    def wall_s(self) -> float:
        return min(self.walls, default=0.0)

    @property
    def cpu_s(self) -> float:
        return min(self.cpus, default=0.0)

    @property
    def peak_rss_bytes(self) -> int:
        return max(self.rss, default=0)

    def merge(self, other: Run) -> None:
        """Add a repetition's measurements."""
        self.walls += other.walls
        self.cpus += other.cpus
        self.rss += other.rss
        self.stable &= other.tokens == self.tokens and other.cost_usd == self.cost_usd


def run_child(cmd: list[str], env: dict[str, str], timeout: float | None) -> tuple[float, float, int, bytes, bytes]:
    """Run CMD; (wall s, CPU s, peak RSS bytes, stdout, stderr) of that child (and the children it waited for)."""
    child = childrun.run_child(cmd, env, timeout)
    if child.returncode != 0:
        sys.stderr.write(child.stderr.decode(errors="replace")[-4000:])
        raise SystemExit(f"exit status {child.returncode}: {' '.join(cmd)}")
    return child.wall, child.cpu, child.rss, child.stdout, child.stderr


def tree_stats(projects: Path) -> tuple[int, int, int]:
    """(files, lines, bytes) of the `.jsonl` files under PROJECTS."""
    files = lines = size = 0
    for path in projects.rglob("*.jsonl"):
        files += 1
        with open(path, "rb") as fh:
            while block := fh.read(16 << 20):
                lines += block.count(b"\n")
                size += len(block)
    return files, lines, size


def child_env(root: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(CLAUDE_CONFIG_DIR=str(root), TZ="UTC", NO_COLOR="1", **extra)
    env.pop("FORCE_COLOR", None)
    return env


def measure(run: Run, env: dict[str, str], timeout: float | None) -> dict[str, Any]:
    print(f"  {run.label}: {' '.join(run.command)}", flush=True)
    wall, cpu, rss, stdout, stderr = run_child(run.command, env, timeout)
    run.walls.append(wall)
    run.cpus.append(cpu)
    run.rss.append(rss)
    for line in stderr.decode(errors="replace").splitlines()[:10]:
        print(f"    stderr: {line}")
    return orjson.loads(stdout)


def appended_run(projects: Path, env: dict[str, str], timeout: float | None) -> Run:
    """A warm run after the largest session grew by one line (its last, written again: the totals stay the same),
    as while Claude Code is writing it: the run cache misses and only that file is parsed again. The file is put
    back afterwards, content and mtime, so the caches stay valid for the next round."""
    session = max((p for p in projects.glob("*/*.jsonl")), key=lambda p: p.stat().st_size)
    original, stat = session.read_bytes(), session.stat()
    last = original.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        with session.open("ab") as fh:
            fh.write(last + b"\n")
        run = costscope_run("costscope warm, one session appended", [], env, timeout)
        run.note += f"; {session.name} ({stat.st_size / 2**20:,.1f} MiB) parsed again"
        return run
    finally:
        session.write_bytes(original)
        os.utime(session, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def costscope_run(label: str, extra: list[str], env: dict[str, str], timeout: float | None) -> Run:
    run = Run(label, [sys.executable, "-m", "costscope", "analyze", "--claude", "-f", "json", *extra])
    report = measure(run, env, timeout)
    totals = report["totals"]
    run.tokens = {k: int(totals[key] or 0) for k, key in COSTSCOPE_KEYS.items()}
    run.cost_usd = totals.get("cost_usd")
    inputs = report.get("inputs", {})
    run.note = (
        f"{totals['calls']:,} calls, {inputs.get('records_read', 0):,} records, "
        f"{inputs.get('records_skipped', 0):,} skipped, {inputs.get('duplicates_dropped', 0):,} duplicates dropped"
    )
    if totals.get("calls_without_usage") or inputs.get("records_skipped"):
        run.note += f"; skipped reasons {inputs.get('skipped_reasons')}"
    return run


def ccusage_argv(binary: str, command: str, env: dict[str, str]) -> tuple[list[str], str]:
    """The ccusage command line for BINARY (newer releases need the `claude` sub-command) and its version."""
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, env=env, check=True).stdout.strip()
    helptext = subprocess.run([binary, "--help"], capture_output=True, text=True, env=env, check=True).stdout
    scoped = any(line.split()[:1] == ["claude"] for line in helptext.splitlines())
    return [binary, *(["claude"] if scoped else []), command, "--offline", "--json"], version


def native_binary(wrapper: str) -> str | None:
    """ccusage@20's platform binary (`node_modules/@ccusage/ccusage-<os>-<arch>/bin/ccusage`), if installed."""
    modules = Path(wrapper).resolve().parents[2]
    if modules.name != "node_modules":
        return None
    found = sorted(modules.glob("@ccusage/ccusage-*/bin/ccusage"))
    return str(found[0]) if found and os.access(found[0], os.X_OK) else None


def ccusage_run(label: str, argv: list[str], env: dict[str, str], timeout: float | None) -> Run:
    run = Run(label, argv)
    report = measure(run, env, timeout)
    totals = report["totals"]
    run.tokens = {k: int(totals[key]) for k, key in CCUSAGE_KEYS.items()}
    run.cost_usd = totals.get("totalCost")
    rows = report.get("daily") or report.get("sessions") or []
    run.note = f"{len(rows):,} {'days' if 'daily' in report else 'sessions'}"
    return run


def manifest_rows(root: Path) -> tuple[dict[str, Any] | None, list[Run]]:
    """The generator's true totals (keep-last) and what a keep-first reader finds, as pseudo-runs."""
    path = root / MANIFEST
    if not path.is_file():
        return None, []
    manifest = orjson.loads(path.read_bytes())
    t = manifest["totals"]
    keep_last = Run("manifest (truth)", [])
    keep_last.tokens = {
        "input": t["input_tokens"],
        "output": t["output_tokens"],
        "cache_creation": t["cache_creation_input_tokens"],
        "cache_read": t["cache_read_input_tokens"],
    }
    keep_first = Run("manifest keep-first", [])
    keep_first.tokens = dict(keep_last.tokens, output=t["output_tokens_first_line"])
    for run, output_key in ((keep_last, "output_tokens"), (keep_first, "output_tokens_first_line")):
        cost = cost_125 = 0.0
        for model, m in manifest["by_model"].items():
            p_in, p_out, p_cr = LIST_PRICES[model]
            base = m["input_tokens"] * p_in + m[output_key] * p_out + m["cache_read_input_tokens"] * p_cr
            base += m["ephemeral_5m_input_tokens"] * p_in * 1.25
            cost += (base + m["ephemeral_1h_input_tokens"] * p_in * 2) / 1e6
            cost_125 += (base + m["ephemeral_1h_input_tokens"] * p_in * 1.25) / 1e6
        run.cost_usd = cost
        run.note = f"at list prices, 1h writes at 2x input (${cost_125:,.2f} if priced at 1.25x)"
    return manifest, [keep_last, keep_first]


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 or header[i] == "note" else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    line = fmt(header)
    print(line)
    print("-" * len(line))
    for row in rows:
        print(fmt(row))


def cost_delta(delta: float) -> str:
    """A cost difference; float noise below a millionth of a dollar shows as 0."""
    return "0" if abs(delta) < 1e-6 else f"{delta:+,.6f}"


def cache_files(directory: Path) -> int:
    return sum(1 for p in directory.rglob("*") if p.is_file())


# costscope parses large inputs in a fork()ed process pool of os.cpu_count() workers, where the parent's
# cProfile sees nothing but lock waits: the profiled child reports one CPU so that parsing runs in-process.
PROFILE_SCRIPT = """
import cProfile, os, runpy, sys
out = sys.argv[1]
os.cpu_count = lambda: 1
sys.argv = ["costscope", "analyze", "--claude", "-f", "json"]
profiler = cProfile.Profile()
try:
    profiler.runcall(runpy.run_module, "costscope", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    if exc.code not in (0, None):
        raise
finally:
    profiler.dump_stats(out)
"""


def profile(root: Path, out: Path, top: int, timeout: float | None) -> None:
    """One cold costscope run (in one process) under cProfile; the top functions by cumulative and own time."""
    cache = Path(tempfile.mkdtemp(prefix="costscope-bench-profile-"))
    try:
        cmd = [sys.executable, "-c", PROFILE_SCRIPT, str(out)]
        print(f"\nprofile: cold costscope analyze --claude -f json, empty cache, one process -> {out}", flush=True)
        wall, _, _, _, _ = run_child(cmd, child_env(root, COSTSCOPE_CACHE_DIR=str(cache)), timeout)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"{wall:.1f} s under cProfile")
    # By cumulative time the top is a chain of wrappers (runpy, typer, click): list costscope's functions only.
    text = io.StringIO()
    pstats.Stats(str(out), stream=text).sort_stats("cumulative").print_stats(r"[/\\]costscope[/\\]", top)
    print(f"\ntop {top} costscope functions by cumulative time:")
    print(re.sub(r"\S*[/\\](costscope[/\\])", r"\1", text.getvalue().split("\n\n", 1)[-1]).rstrip())
    print(f"\ntop {top} functions by own (total) time:")
    pstats.Stats(str(out)).strip_dirs().sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="log tree root (holds projects/), e.g. from gen_claude_tree.py")
    parser.add_argument("--ccusage18", default=DEFAULT_CCUSAGE18, help="ccusage@18 executable ('' to skip)")
    parser.add_argument("--ccusage20", default=DEFAULT_CCUSAGE20, help="ccusage@20 executable ('' to skip)")
    parser.add_argument("--command", default="daily", choices=("daily", "session"), help="ccusage report")
    parser.add_argument("--no-native", action="store_true", help="do not also time ccusage@20's native binary")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of all runs (best wall time is shown)")
    parser.add_argument("--timeout", type=float, help="kill a run that takes longer than this many seconds")
    parser.add_argument("--json", type=Path, help="also write the measurements as JSON here")
    parser.add_argument("--profile", type=Path, help="finally profile a cold costscope run, saving the stats here")
    parser.add_argument("--profile-top", type=int, default=15, help="profile lines to print (default 15)")
    args = parser.parse_args(argv)

    root: Path = args.root.resolve()
    projects = root / "projects"
    if not projects.is_dir():
        parser.error(f"no projects/ directory in {root}")
    files, lines, size = tree_stats(projects)
    manifest, truth = manifest_rows(root)
    requests = f"{manifest['requests']:,} requests, " if manifest else ""
    print(
        f"{projects}: {requests}{files:,} files, {lines:,} lines, {size:,} bytes ({size / 2**20:,.1f} MiB); "
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs",
        flush=True,
    )

    base_env = child_env(root)
    wall, _, rss, _, _ = run_child([sys.executable, "-m", "costscope", "--version"], base_env, args.timeout)
    print(f"  start-up baseline: costscope --version takes {wall:.2f} s, peak RSS {rss / 2**20:,.0f} MiB", flush=True)

    peers: list[tuple[str, list[str]]] = []
    for label, binary in (("ccusage18", args.ccusage18), ("ccusage20", args.ccusage20)):
        if not binary:
            continue
        if shutil.which(binary) is None:
            parser.error(f"{label}: not an executable: {binary}")
        cmd, version = ccusage_argv(binary, args.command, base_env)
        peers.append((f"{label} {version.removeprefix('ccusage ')}", cmd))
        native = None if args.no_native else native_binary(binary)
        if native:
            peers.append((f"{label} native binary", [native, *cmd[1:]]))

    runs: list[Run] = []
    for round_no in range(args.repeat):
        if args.repeat > 1:
            print(f"round {round_no + 1} of {args.repeat}", flush=True)
        this: list[Run] = []
        cache = Path(tempfile.mkdtemp(prefix="costscope-bench-cache-"))
        try:
            env = child_env(root, COSTSCOPE_CACHE_DIR=str(cache))
            this.append(costscope_run("costscope cold", [], env, args.timeout))
            cached = cache_files(cache)
            this[-1].note += f"; {cached:,} cache files written"
            this.append(costscope_run("costscope warm", [], env, args.timeout))
            if (missed := cache_files(cache) - cached) > 0:
                # The cache key hashes costscope's parser code: an edit between the runs invalidates it.
                this[-1].note += f"; {missed:,} files re-parsed (cache misses)"
                print(f"    WARNING: the warm run missed the cache for {missed:,} files", flush=True)
            this.append(appended_run(projects, env, args.timeout))
            this.append(costscope_run("costscope --no-cache", ["--no-cache"], env, args.timeout))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        for label, cmd in peers:
            this.append(ccusage_run(label, cmd, base_env, args.timeout))
        if not runs:
            runs = this
        else:
            for run, again in zip(runs, this, strict=True):
                run.merge(again)

    reference = runs[0]
    ok = True
    for run in runs[1:] + truth[:1]:
        run.matches = run.tokens == reference.tokens
        ok &= run.matches
    reference.matches = True
    for run in runs:
        if not run.stable:
            ok = False
            print(f"  {run.label}: token totals or cost changed between repetitions", file=sys.stderr)

    print("\ntoken totals:")
    shown = runs + truth
    table(
        ("tokens", *(r.label for r in shown)),
        [(TOKEN_LABELS[k], *(f"{r.tokens[k]:,}" for r in shown)) for k in TOKENS],
    )
    print(f"\ndifferences against {reference.label} (other - costscope):")
    any_diff = False
    for run in shown[1:]:
        diffs = {k: run.tokens[k] - reference.tokens[k] for k in TOKENS if run.tokens[k] != reference.tokens[k]}
        if diffs:
            any_diff = True
            parts = ", ".join(
                f"{TOKEN_LABELS[k]} {d:+,} ({d / (reference.tokens[k] or 1):+.2%})" for k, d in diffs.items()
            )
            print(f"  {run.label}: {parts}")
    if not any_diff:
        print("  none")

    print("\ncost:")
    table(
        ("tool", "cost USD", "vs costscope cold", "note"),
        [
            (
                r.label,
                "-" if r.cost_usd is None else f"{r.cost_usd:,.4f}",
                "-"
                if r.cost_usd is None or reference.cost_usd is None
                else cost_delta(r.cost_usd - reference.cost_usd),
                r.note,
            )
            for r in shown
        ],
    )

    print(f"\nbest of {args.repeat} (peak RSS: highest)" if args.repeat > 1 else "")
    table(
        ("tool", "wall s", "CPU s", "peak RSS MiB", "tokens match", *(("all wall s",) if args.repeat > 1 else ())),
        [
            (
                r.label,
                f"{r.wall_s:.2f}",
                f"{r.cpu_s:.2f}",
                f"{r.peak_rss_bytes / 2**20:,.0f}",
                "reference" if r is reference else ("yes" if r.matches else "NO"),
                *(("/".join(f"{w:.1f}" for w in r.walls),) if args.repeat > 1 else ()),
            )
            for r in runs
        ],
    )
    if truth:
        print(f"manifest (true totals) {'matches' if truth[0].matches else 'DIFFERS from'} costscope cold")

    if args.json:
        payload = {
            "root": str(root),
            "files": files,
            "lines": lines,
            "bytes": size,
            "requests": manifest["requests"] if manifest else None,
            "runs": [
                {
                    "tool": r.label,
                    "command": r.command,
                    "wall_s": [round(w, 3) for w in r.walls],
                    "cpu_s": [round(c, 3) for c in r.cpus],
                    "peak_rss_mib": [round(b / 2**20, 1) for b in r.rss],
                    "tokens": r.tokens,
                    "cost_usd": r.cost_usd,
                    "tokens_match": r.matches,
                }
                for r in runs
            ],
            "truth": {r.label: {"tokens": r.tokens, "cost_usd": r.cost_usd} for r in truth},
        }
        args.json.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    if args.profile:
        profile(root, args.profile, args.profile_top, args.timeout)
    if not ok:
        print("\nFAIL: token totals differ (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
